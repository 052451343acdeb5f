"""Uplift ranking metrics: uplift and Qini curves, normalized AUCs, uplift@k, decile tables.

The binary-treatment functions follow the definitions of scikit-uplift 0.5.1
(``sklift.metrics``) exactly, including how tied scores are handled: rows are sorted by
descending predicted uplift with a stable sort reversed, and the curves are evaluated only at
the last row of each run of tied scores (plus a leading ``(0, 0)`` point).

Differences from scikit-uplift, all deliberate:

* The outcome ``y_true`` may be any finite number (e.g. spend), not only 0/1. The curves,
  :func:`uplift_at_k`, :func:`uplift_by_decile` and :func:`qini_auc_score` with
  ``negative_effect=True`` use the same formulas; for 0/1 outcomes the results are identical
  to scikit-uplift. :func:`perfect_uplift_curve`, :func:`uplift_auc_score` and
  ``negative_effect=False`` are defined by response counts and still need 0/1 outcomes.
* Invalid input raises :class:`~promolift.errors.DataError` with a message saying what is
  wrong; an empty group among the top-k rows gives ``nan`` instead of a ``RuntimeWarning``;
  a normalized AUC whose perfect curve has no area above the random line is ``nan``.
* ``strategy``, ``k`` and ``negative_effect`` are keyword-only.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from promolift.evaluate._validate import finite_float_array
from promolift.errors import DataError

__all__ = [
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "qini_auc_score",
    "qini_curve",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_by_decile",
    "uplift_curve",
    "uplift_report",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _as_1d_float(values: ArrayLike, name: str) -> FloatArray:
    arr = finite_float_array(values, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array; got shape {arr.shape}.")
    return arr


def _show(values: np.ndarray, limit: int = 5) -> str:
    """The first few distinct values, compactly: ``"2, 3.5"`` (``", ..."`` if there are more)."""
    distinct = np.unique(values)
    text = ", ".join(f"{v:g}" for v in distinct[:limit])
    return text + (", ..." if distinct.size > limit else "")


def _check_lengths(**arrays: np.ndarray) -> int:
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise DataError(f"inputs must have the same length, but {detail} rows.")
    n = next(iter(lengths.values()))
    if n == 0:
        raise DataError("inputs are empty: need at least one treated and one control row.")
    return n


def _as_binary_treatment(treatment: ArrayLike, name: str = "treatment") -> FloatArray:
    t = _as_1d_float(treatment, name)
    bad = (t != 0) & (t != 1)
    if bad.any():
        shown = _show(t[bad])
        raise DataError(
            f"{name} must contain only 0 (control) and 1 (treated); "
            f"got other values {shown}. For several arms use uplift_report."
        )
    n_treated = int(t.sum())
    if n_treated == 0:
        raise DataError(f"{name} has no treated rows ({name} == 1): uplift cannot be measured.")
    if n_treated == len(t):
        raise DataError(f"{name} has no control rows ({name} == 0): uplift cannot be measured.")
    return t


def _prepare(
    y_true: ArrayLike, uplift: ArrayLike, treatment: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    y = _as_1d_float(y_true, "y_true")
    u = _as_1d_float(uplift, "uplift")
    t = _as_1d_float(treatment, "treatment")
    _check_lengths(y_true=y, uplift=u, treatment=t)
    t = _as_binary_treatment(t)
    return y, u, t


def _is_binary(y: FloatArray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


def _require_binary_outcome(y: FloatArray, what: str) -> None:
    if not _is_binary(y):
        shown = _show(y[(y != 0) & (y != 1)])
        raise DataError(
            f"{what} is defined for 0/1 outcomes only; y_true has other values {shown}. "
            "Use qini_auc_score(..., negative_effect=True) for continuous outcomes."
        )


# --------------------------------------------------------------------------------------------
# curves
# --------------------------------------------------------------------------------------------


def _descending_order(uplift: FloatArray) -> IntArray:
    """Row order by descending score; ties keep the reversed original order (as sklift)."""
    return np.argsort(uplift, kind="stable")[::-1]


def _cumulative_counts(
    y: FloatArray, uplift: FloatArray, t: FloatArray
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Cumulative totals at the end of each run of tied scores, best scores first.

    Returns ``num_all, num_trmnt, num_ctrl, y_trmnt, y_ctrl``: rows, treated rows, control rows,
    summed treated outcome and summed control outcome among the rows scored at or above each
    distinct score.
    """
    order = _descending_order(uplift)
    score, y_sorted, t_sorted = uplift[order], y[order], t[order]
    thresholds = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    num_all = thresholds + 1
    num_trmnt = np.cumsum(t_sorted)[thresholds]
    y_trmnt = np.cumsum(np.where(t_sorted == 1, y_sorted, 0.0))[thresholds]
    y_ctrl = np.cumsum(np.where(t_sorted == 0, y_sorted, 0.0))[thresholds]
    num_ctrl = num_all - num_trmnt
    return num_all, num_trmnt, num_ctrl, y_trmnt, y_ctrl


def _safe_div(num: FloatArray, den: FloatArray) -> FloatArray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den != 0)


def _uplift_curve(y: FloatArray, u: FloatArray, t: FloatArray) -> tuple[IntArray, FloatArray]:
    num_all, num_t, num_c, y_t, y_c = _cumulative_counts(y, u, t)
    values = (_safe_div(y_t, num_t) - _safe_div(y_c, num_c)) * num_all
    return np.r_[0, num_all], np.r_[0.0, values]


def _qini_curve(y: FloatArray, u: FloatArray, t: FloatArray) -> tuple[IntArray, FloatArray]:
    num_all, num_t, num_c, y_t, y_c = _cumulative_counts(y, u, t)
    values = y_t - y_c * _safe_div(num_t, num_c)
    return np.r_[0, num_all], np.r_[0.0, values]


def uplift_curve(
    y_true: ArrayLike, uplift: ArrayLike, treatment: ArrayLike
) -> tuple[IntArray, FloatArray]:
    """Uplift curve: estimated total uplift among the top-scored rows.

    At each distinct predicted uplift (best first) the curve is
    ``(mean y of treated - mean y of control) * rows`` over the rows scored at or above it; a
    group with no rows contributes a mean of 0. Same definition as ``sklift.metrics.uplift_curve``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome of each row (0/1 or continuous).
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.

    Returns
    -------
    num_all : ndarray of int, shape (d + 1,)
        Number of top rows, starting with 0; ``d`` is the number of distinct scores.
    curve_values : ndarray of float, shape (d + 1,)
        Uplift curve value at each ``num_all``, starting with 0.

    Raises
    ------
    DataError
        If lengths differ, values are not finite, ``treatment`` is not 0/1, or there are no
        treated or no control rows.

    Examples
    --------
    >>> x, v = uplift_curve([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1])
    >>> x.tolist(), v.tolist()
    ([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 1.5, 0.0])
    """
    return _uplift_curve(*_prepare(y_true, uplift, treatment))


def qini_curve(
    y_true: ArrayLike, uplift: ArrayLike, treatment: ArrayLike
) -> tuple[IntArray, FloatArray]:
    """Qini curve: incremental responders among the top-scored rows.

    At each distinct predicted uplift (best first) the curve is
    ``sum y of treated - sum y of control * treated rows / control rows`` over the rows scored
    at or above it (the control term is 0 while there are no control rows). Same definition as
    ``sklift.metrics.qini_curve``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome of each row (0/1 or continuous).
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.

    Returns
    -------
    num_all : ndarray of int, shape (d + 1,)
        Number of top rows, starting with 0; ``d`` is the number of distinct scores.
    curve_values : ndarray of float, shape (d + 1,)
        Qini curve value at each ``num_all``, starting with 0.

    Raises
    ------
    DataError
        If lengths differ, values are not finite, ``treatment`` is not 0/1, or there are no
        treated or no control rows.

    Examples
    --------
    >>> x, v = qini_curve([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1])
    >>> x.tolist(), v.tolist()
    ([0, 1, 2, 3, 4], [0.0, 1.0, 1.0, 0.5, 0.0])
    """
    return _qini_curve(*_prepare(y_true, uplift, treatment))


def _perfect_uplift_curve(y: FloatArray, t: FloatArray) -> tuple[IntArray, FloatArray]:
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    # Best order: treated responders, control non-responders, then the smaller of the two
    # "bad" groups (control responders / treated non-responders) before the larger one.
    summand = y if control_responders > treated_non_responders else t
    score = 2.0 * (y == t) + summand
    return _uplift_curve(y, score, t)


def perfect_uplift_curve(y_true: ArrayLike, treatment: ArrayLike) -> tuple[IntArray, FloatArray]:
    """Uplift curve of the best possible ranking (0/1 outcomes), as in scikit-uplift.

    Rows are ranked treated responders first, then control non-responders, then the smaller
    and finally the larger of control responders and treated non-responders.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed 0/1 outcome of each row.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.

    Returns
    -------
    num_all : ndarray of int
        Number of top rows, starting with 0.
    curve_values : ndarray of float
        Perfect uplift curve at each ``num_all``.

    Raises
    ------
    DataError
        If lengths differ, ``y_true`` is not 0/1, ``treatment`` is not 0/1, or there are no
        treated or no control rows.

    Examples
    --------
    >>> x, v = perfect_uplift_curve([1, 0, 1, 0], [1, 0, 0, 1])
    >>> x.tolist(), v.tolist()
    ([0, 1, 2, 3, 4], [0.0, 1.0, 2.0, 1.5, 0.0])
    """
    y = _as_1d_float(y_true, "y_true")
    t = _as_1d_float(treatment, "treatment")
    _check_lengths(y_true=y, treatment=t)
    t = _as_binary_treatment(t)
    _require_binary_outcome(y, "perfect_uplift_curve")
    return _perfect_uplift_curve(y, t)


def _perfect_qini_curve(
    y: FloatArray, t: FloatArray, negative_effect: bool
) -> tuple[np.ndarray, FloatArray]:
    if negative_effect:
        # treated rows by descending outcome, then control rows by ascending outcome
        return _qini_curve(y, np.where(t == 1, y, -y), t)
    _require_binary_outcome(y, "perfect_qini_curve(negative_effect=False)")
    n_treated = t.sum()
    total_effect = y[t == 1].sum() - n_treated * y[t == 0].sum() / (len(t) - n_treated)
    if total_effect < 0:
        raise DataError(
            f"perfect_qini_curve(negative_effect=False) needs a non-negative overall effect; "
            f"the treated group has {total_effect:.4g} fewer responders than expected from "
            "control. Use negative_effect=True."
        )
    x = np.array([0.0, total_effect, float(len(y))])
    return x, np.array([0.0, total_effect, total_effect])


def _check_negative_effect(negative_effect: object) -> None:
    if not isinstance(negative_effect, bool | np.bool_):
        raise DataError(f"negative_effect must be True or False; got {negative_effect!r}.")


def perfect_qini_curve(
    y_true: ArrayLike, treatment: ArrayLike, *, negative_effect: bool = True
) -> tuple[np.ndarray, FloatArray]:
    """Qini curve of the best possible ranking, as in scikit-uplift.

    With ``negative_effect=True`` the ranking puts treated rows first (largest outcome first)
    and control rows last (largest outcome last), so the curve rises to the treated total and
    falls back; this also works for continuous outcomes. With ``negative_effect=False`` the
    curve rises linearly to the overall incremental responders ``r`` at ``x = r`` and stays
    flat (0/1 outcomes only).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome of each row.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.
    negative_effect : bool, default True
        Whether the perfect curve may include rows the campaign hurts.

    Returns
    -------
    num_all : ndarray
        x coordinates (number of top rows), starting with 0.
    curve_values : ndarray of float
        Perfect Qini curve at each x.

    Raises
    ------
    DataError
        If inputs are invalid; with ``negative_effect=False`` also if ``y_true`` is not 0/1 or
        the overall effect is negative.

    Examples
    --------
    >>> x, v = perfect_qini_curve([1, 0, 1, 0], [1, 0, 0, 1])
    >>> x.tolist(), v.tolist()
    ([0, 1, 3, 4], [0.0, 1.0, 1.0, 0.0])
    """
    _check_negative_effect(negative_effect)
    y = _as_1d_float(y_true, "y_true")
    t = _as_1d_float(treatment, "treatment")
    _check_lengths(y_true=y, treatment=t)
    t = _as_binary_treatment(t)
    return _perfect_qini_curve(y, t, bool(negative_effect))


# --------------------------------------------------------------------------------------------
# normalized areas
# --------------------------------------------------------------------------------------------


def _normalized_area(
    x_actual: np.ndarray, y_actual: np.ndarray, x_perfect: np.ndarray, y_perfect: np.ndarray
) -> float:
    """(area(actual) - area(random)) / (area(perfect) - area(random)); nan if denominator is 0."""
    random_area = 0.5 * float(x_perfect[-1]) * float(y_perfect[-1])
    perfect = float(np.trapezoid(y_perfect, x_perfect)) - random_area
    actual = float(np.trapezoid(y_actual, x_actual)) - random_area
    return actual / perfect if perfect != 0 else float("nan")


def uplift_auc_score(y_true: ArrayLike, uplift: ArrayLike, treatment: ArrayLike) -> float:
    """Normalized area under the uplift curve (AUUC), as ``sklift.metrics.uplift_auc_score``.

    ``(area(model) - area(random)) / (area(perfect) - area(random))``, where the random curve
    is the straight line from ``(0, 0)`` to the curve's end point and the perfect curve is
    :func:`perfect_uplift_curve`. 1 is a perfect ranking, 0 is no better than random.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed 0/1 outcome of each row.
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.

    Returns
    -------
    float
        Normalized AUUC; ``nan`` if the perfect curve has no area above the random line.

    Raises
    ------
    DataError
        If inputs are invalid or ``y_true`` is not 0/1.

    Examples
    --------
    >>> round(uplift_auc_score([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1]), 4)
    1.0
    """
    y, u, t = _prepare(y_true, uplift, treatment)
    _require_binary_outcome(y, "uplift_auc_score")
    return _normalized_area(*_uplift_curve(y, u, t), *_perfect_uplift_curve(y, t))


def qini_auc_score(
    y_true: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, *, negative_effect: bool = True
) -> float:
    """Normalized area under the Qini curve (Qini coefficient), as in scikit-uplift.

    ``(area(model) - area(random)) / (area(perfect) - area(random))`` with the perfect curve
    from :func:`perfect_qini_curve`. 1 is a perfect ranking, 0 is no better than random.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome of each row (0/1, or continuous with ``negative_effect=True``).
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.
    negative_effect : bool, default True
        Whether the perfect curve may include rows the campaign hurts.

    Returns
    -------
    float
        Normalized Qini AUC; ``nan`` if the perfect curve has no area above the random line.

    Raises
    ------
    DataError
        If inputs are invalid (see :func:`perfect_qini_curve` for ``negative_effect=False``).

    Examples
    --------
    >>> round(qini_auc_score([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1]), 4)
    0.8333
    """
    _check_negative_effect(negative_effect)
    y, u, t = _prepare(y_true, uplift, treatment)
    return _normalized_area(
        *_qini_curve(y, u, t), *_perfect_qini_curve(y, t, bool(negative_effect))
    )


# --------------------------------------------------------------------------------------------
# uplift at k
# --------------------------------------------------------------------------------------------


def _group_mean_difference(y: FloatArray, t: FloatArray) -> float:
    """mean(y | t == 1) - mean(y | t == 0), nan if either group is empty."""
    n_t = t.sum()
    n_c = t.size - n_t
    if n_t == 0 or n_c == 0:
        return float("nan")
    return float(y[t == 1].sum() / n_t - y[t == 0].sum() / n_c)


def uplift_at_k(
    y_true: ArrayLike,
    uplift: ArrayLike,
    treatment: ArrayLike,
    *,
    strategy: Literal["overall", "by_group"] = "overall",
    k: float = 0.3,
) -> float:
    """Observed uplift among the top-k rows by predicted uplift, as in scikit-uplift.

    Rows are ordered by descending predicted uplift (ties in reversed input order, as sklift).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Observed outcome of each row (0/1 or continuous).
    uplift : array-like of shape (n,)
        Predicted uplift; higher means target first.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.
    strategy : {"overall", "by_group"}, default "overall"
        ``"overall"``: take the top ``int(n * k)`` rows of all data, then compare treated and
        control means among them. ``"by_group"``: take the top ``int(n_treated * k)`` treated
        rows and the top ``int(n_control * k)`` control rows separately.
    k : float or int, default 0.3
        A float in (0, 1) is a share of rows; an int in ``[1, n)`` is a number of rows (with
        ``"by_group"``, taken from each group).

    Returns
    -------
    float
        Mean outcome of treated minus mean outcome of control among the selected rows; ``nan``
        if one group has no selected rows.

    Raises
    ------
    DataError
        If inputs are invalid, ``strategy`` is unknown, or ``k`` is out of range.

    Examples
    --------
    >>> uplift_at_k([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1], k=0.5)
    1.0
    """
    y, u, t = _prepare(y_true, uplift, treatment)
    if strategy not in ("overall", "by_group"):
        raise DataError(f"strategy must be 'overall' or 'by_group'; got {strategy!r}.")
    n = y.size
    is_int = isinstance(k, numbers.Integral) and not isinstance(k, bool | np.bool_)
    is_float = isinstance(k, numbers.Real) and not is_int and not isinstance(k, bool | np.bool_)
    if is_int:
        if not 0 < k < n:
            raise DataError(f"k={k} rows must be at least 1 and smaller than the {n} rows.")
    elif is_float:
        if not 0 < k < 1:
            raise DataError(f"k={k} must be a share in the open interval (0, 1) or a row count.")
    else:
        raise DataError(f"k must be a float share in (0, 1) or an int row count; got {k!r}.")

    order = _descending_order(u)
    y_sorted, t_sorted = y[order], t[order]
    if strategy == "overall":
        n_top = int(k) if is_int else int(n * k)
        return _group_mean_difference(y_sorted[:n_top], t_sorted[:n_top])

    n_treated = int(t.sum())
    n_control = n - n_treated
    if is_int:
        top_treated = top_control = int(k)
        for group, size in (("treated", n_treated), ("control", n_control)):
            if k > size:
                raise DataError(
                    f"k={k} is larger than the {size} {group} rows; with strategy='by_group' "
                    "an int k is taken from each group."
                )
    else:
        top_treated, top_control = int(n_treated * k), int(n_control * k)
    y_t, y_c = y_sorted[t_sorted == 1][:top_treated], y_sorted[t_sorted == 0][:top_control]
    if y_t.size == 0 or y_c.size == 0:
        return float("nan")
    return float(y_t.mean() - y_c.mean())


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _names(values: Sequence[object] | None, size: int, what: str) -> list[str]:
    if values is None:
        raise DataError(f"{what} names are required.")
    names = [str(v) for v in values]
    if len(names) != size:
        raise DataError(f"got {len(names)} {what} names but the arrays have {size} {what}s.")
    return names


def uplift_report(
    Y: ArrayLike,  # noqa: N803 - matrix of outcomes
    uplift: ArrayLike,
    treatment: ArrayLike,
    *,
    arms: Sequence[str],
    outcomes: Sequence[str],
    k: float = 0.3,
) -> pd.DataFrame:
    """Ranking metrics of every treated arm against control, for every outcome.

    For treated arm ``a`` and outcome ``m`` the rows with ``treatment`` in ``{0, a}`` are kept
    and scored by ``uplift[:, a, m]``; :func:`qini_auc_score` (``negative_effect=True``),
    :func:`uplift_auc_score` and :func:`uplift_at_k` (``strategy="overall"``) are computed
    on them.

    Parameters
    ----------
    Y : array-like of shape (n, M)
        Observed outcomes, one column per outcome.
    uplift : array-like of shape (n, K, M)
        Predicted uplift of each arm versus control for each outcome; arm 0 is the control
        (its column is ignored).
    treatment : array-like of int, shape (n,)
        Arm each row received, coded ``0..K-1`` with 0 the control.
    arms : sequence of str, length K
        Arm names, control first.
    outcomes : sequence of str, length M
        Outcome names.
    k : float or int, default 0.3
        Top share (or row count) for ``uplift_at_k``.

    Returns
    -------
    pandas.DataFrame
        One row per (treated arm, outcome) with columns ``arm``, ``outcome``, ``qini_auc``,
        ``auuc``, ``uplift_at_k`` and ``n`` (rows of that arm plus control). ``auuc`` is
        ``nan`` for outcomes that are not 0/1, where the perfect uplift curve is undefined.

    Raises
    ------
    DataError
        If shapes or names do not match, values are not finite, treatment codes are out of
        range, or an arm (or the control) has no rows.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1.0], [0.0], [1.0], [0.0], [0.0], [1.0]])
    >>> up = np.zeros((6, 3, 1))
    >>> up[:, 1, 0] = [0.4, 0.3, 0.2, 0.1, 0.0, 0.0]
    >>> up[:, 2, 0] = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2]
    >>> t = [1, 0, 0, 1, 0, 2]
    >>> rep = uplift_report(Y, up, t, arms=["control", "a", "b"], outcomes=["buy"], k=0.5)
    >>> rep[["arm", "outcome", "n"]].values.tolist()
    [['a', 'buy', 5], ['b', 'buy', 4]]
    """
    Y_arr = np.asarray(Y, dtype=np.float64)  # noqa: N806
    u_arr = np.asarray(uplift, dtype=np.float64)
    t_raw = np.asarray(treatment)
    if Y_arr.ndim != 2:
        raise DataError(f"Y must be a 2-D (rows, outcomes) array; got shape {Y_arr.shape}.")
    if u_arr.ndim != 3:
        raise DataError(
            f"uplift must be a 3-D (rows, arms, outcomes) array; got shape {u_arr.shape}."
        )
    if t_raw.ndim != 1:
        raise DataError(f"treatment must be a 1-D array of arm codes; got shape {t_raw.shape}.")
    _, n_arms, n_outcomes = u_arr.shape
    _check_lengths(Y=Y_arr, uplift=u_arr, treatment=t_raw)
    if Y_arr.shape[1] != n_outcomes:
        raise DataError(
            f"Y has {Y_arr.shape[1]} outcome columns but uplift has {n_outcomes} outcomes."
        )
    arm_names = _names(arms, n_arms, "arm")
    outcome_names = _names(outcomes, n_outcomes, "outcome")
    if n_arms < 2:
        raise DataError("uplift needs at least 2 arms (control plus one treated arm).")
    for name, arr in (("Y", Y_arr), ("uplift", u_arr)):
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{name} contains NaN or infinite values; drop or impute those rows.")
    t_codes = _arm_codes(t_raw, n_arms)
    if not np.any(t_codes == 0):
        raise DataError(f"treatment has no control rows (arm 0, '{arm_names[0]}').")

    rows = []
    for a in range(1, n_arms):
        keep = (t_codes == 0) | (t_codes == a)
        if not np.any(t_codes == a):
            raise DataError(f"treatment has no rows of arm {a} ('{arm_names[a]}').")
        t_bin = (t_codes[keep] == a).astype(np.float64)
        for m in range(n_outcomes):
            y, u = Y_arr[keep, m], u_arr[keep, a, m]
            binary = _is_binary(y)
            rows.append(
                {
                    "arm": arm_names[a],
                    "outcome": outcome_names[m],
                    "qini_auc": _normalized_area(
                        *_qini_curve(y, u, t_bin), *_perfect_qini_curve(y, t_bin, True)
                    ),
                    "auuc": _normalized_area(
                        *_uplift_curve(y, u, t_bin), *_perfect_uplift_curve(y, t_bin)
                    )
                    if binary
                    else float("nan"),
                    "uplift_at_k": uplift_at_k(y, u, t_bin, strategy="overall", k=k),
                    "n": int(keep.sum()),
                }
            )
    columns = ["arm", "outcome", "qini_auc", "auuc", "uplift_at_k", "n"]
    return pd.DataFrame(rows, columns=columns)


def _arm_codes(t_raw: np.ndarray, n_arms: int) -> IntArray:
    try:
        t_float = t_raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"treatment must hold integer arm codes 0..{n_arms - 1}; ({exc}).") from exc
    bad = (
        ~np.isfinite(t_float) | (t_float != np.round(t_float)) | (t_float < 0) | (t_float >= n_arms)
    )
    if bad.any():
        shown = _show(t_float[bad])
        raise DataError(f"treatment must hold integer arm codes 0..{n_arms - 1}; got {shown}.")
    return t_float.astype(np.int64)


def uplift_by_decile(
    y: ArrayLike, uplift: ArrayLike, treatment: ArrayLike, *, bins: int = 10
) -> pd.DataFrame:
    """Predicted versus observed uplift in bins of descending predicted uplift.

    Rows are sorted by descending predicted uplift (ties as sklift) and cut into ``bins``
    consecutive bins whose sizes differ by at most one (``numpy.array_split``, the
    ``strategy="overall"`` binning of ``sklift.metrics.uplift_by_percentile``).

    Parameters
    ----------
    y : array-like of shape (n,)
        Observed outcome of each row (0/1 or continuous).
    uplift : array-like of shape (n,)
        Predicted uplift.
    treatment : array-like of shape (n,)
        1 for treated rows, 0 for control rows.
    bins : int, default 10
        Number of bins, at most ``n``.

    Returns
    -------
    pandas.DataFrame
        One row per bin with columns ``decile`` (1 = highest predicted uplift),
        ``n_treated``, ``n_control``, ``predicted_uplift`` (mean prediction in the bin),
        ``observed_uplift`` (mean outcome of treated minus control) and ``observed_se``
        (``sqrt(var_t / n_t + var_c / n_c)`` with population variances, which for 0/1 outcomes
        is sklift's ``std_uplift``). Observed columns are ``nan`` in bins missing a group.

    Raises
    ------
    DataError
        If inputs are invalid or ``bins`` is not an int in ``[1, n]``.

    Examples
    --------
    >>> tab = uplift_by_decile([1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1], [1, 0, 0, 1], bins=2)
    >>> tab["observed_uplift"].tolist()
    [1.0, -1.0]
    """
    y_arr, u, t = _prepare(y, uplift, treatment)
    n = y_arr.size
    if (
        isinstance(bins, bool | np.bool_)
        or not isinstance(bins, numbers.Integral)
        or not 1 <= bins <= n
    ):
        raise DataError(f"bins must be an int between 1 and the {n} rows; got {bins!r}.")
    bins = int(bins)
    order = _descending_order(u)
    y_s, u_s, t_s = y_arr[order], u[order], t[order]
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1
    bin_id = np.repeat(np.arange(bins), sizes)

    def per_bin(weights: FloatArray) -> FloatArray:
        return np.bincount(bin_id, weights=weights, minlength=bins)

    n_t = per_bin(t_s)
    n_c = sizes - n_t
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_t = per_bin(t_s * y_s) / n_t
        mean_c = per_bin((1 - t_s) * y_s) / n_c
        resid = np.where(t_s == 1, y_s - mean_t[bin_id], y_s - mean_c[bin_id])
        var_t = per_bin(np.where(t_s == 1, resid**2, 0.0)) / n_t
        var_c = per_bin(np.where(t_s == 0, resid**2, 0.0)) / n_c
        se = np.sqrt(var_t / n_t + var_c / n_c)
    return pd.DataFrame(
        {
            "decile": np.arange(1, bins + 1),
            "n_treated": n_t.astype(np.int64),
            "n_control": n_c.astype(np.int64),
            "predicted_uplift": per_bin(u_s) / sizes,
            "observed_uplift": mean_t - mean_c,
            "observed_se": se,
        }
    )
