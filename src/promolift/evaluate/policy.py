"""Off-policy value of a targeting plan on randomized held-out data.

A *policy* assigns one arm to each row. On data where the arm each row actually received was
randomized with known probabilities, the policy's mean reward per row is estimated without
bias by inverse propensity weighting (IPW, Horvitz-Thompson) or, with lower variance when a
reward model is available, by the doubly robust (DR) estimator:

* IPW: ``1[T_i = pi_i] * r_i / e_i(T_i)``
* DR:  ``mu_i(pi_i) + 1[T_i = pi_i] / e_i(pi_i) * (r_i - mu_i(pi_i))``

The estimate is the mean of these per-row contributions, its standard error is their sample
standard deviation over ``sqrt(n)`` and the confidence interval is normal. Gains against a
baseline policy use paired per-row differences, so their standard error accounts for the
correlation between the two values.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from promolift.evaluate._validate import finite_float_array
from promolift.errors import DataError

__all__ = ["PolicyValue", "per_row_contributions", "policy_gain", "policy_value"]

Method = Literal["ipw", "dr"]
_METHODS = ("ipw", "dr")
_PROPENSITY_SUM_TOL = 0.02


@dataclass(frozen=True)
class PolicyValue:
    """Estimated mean reward per row of a policy (or a gain between two policies).

    Attributes
    ----------
    estimate : float
        Mean of the per-row contributions.
    stderr : float
        Standard error of ``estimate`` (sample std with ``ddof=1`` over ``sqrt(n)``).
    ci_low, ci_high : float
        Normal confidence interval ``estimate -/+ z_{1 - alpha/2} * stderr``.
    n : int
        Number of rows.
    method : str
        ``"ipw"`` or ``"dr"``.
    """

    estimate: float
    stderr: float
    ci_low: float
    ci_high: float
    n: int
    method: str


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _show(values: np.ndarray, limit: int = 5) -> str:
    """The first few distinct values, compactly: ``"2, 3.5"`` (``", ..."`` if there are more)."""
    distinct = np.unique(values)
    text = ", ".join(f"{v:g}" for v in distinct[:limit])
    return text + (", ..." if distinct.size > limit else "")


def _arm_array(values: ArrayLike, name: str, n_arms: int) -> NDArray[np.int64]:
    arr = finite_float_array(values, name)
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of arm codes; got shape {arr.shape}.")
    bad = (arr != np.round(arr)) | (arr < 0) | (arr >= n_arms)
    if bad.any():
        shown = _show(arr[bad])
        raise DataError(
            f"{name} must hold integer arm codes 0..{n_arms - 1} (one per propensity column); "
            f"got {shown}."
        )
    return arr.astype(np.int64)


def _propensity_matrix(propensity: ArrayLike, n: int) -> NDArray[np.float64]:
    e = finite_float_array(propensity, "propensity")
    if e.ndim == 1:
        e = np.broadcast_to(e, (n, e.size))
    elif e.ndim != 2 or e.shape[0] != n:
        raise DataError(
            f"propensity must have shape (K,) or ({n}, K) for {n} rows; got shape {e.shape}."
        )
    if e.shape[1] == 0:
        raise DataError("propensity has no arms (0 columns).")
    if np.any(e <= 0) or np.any(e > 1):
        raise DataError(
            "propensity must be in (0, 1]: every arm needs a positive assignment probability; "
            f"got values from {e.min():.4g} to {e.max():.4g}."
        )
    sums = e.sum(axis=1)
    off = np.abs(sums - 1) > _PROPENSITY_SUM_TOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise DataError(
            f"propensity rows must sum to 1 over the arms; row {row} sums to {sums[row]:.4g}."
        )
    return e


def _policy_vector(policy: ArrayLike | int, name: str, n: int, n_arms: int) -> NDArray[np.int64]:
    if isinstance(policy, numbers.Integral) and not isinstance(policy, bool | np.bool_):
        policy = np.full(n, int(policy))
    arr = _arm_array(policy, name, n_arms)
    if arr.size != n:
        raise DataError(f"{name} has {arr.size} rows but reward has {n}.")
    return arr


def _validate(
    reward: ArrayLike,
    treatment: ArrayLike,
    propensity: ArrayLike,
    mu: ArrayLike | None,
    method: str,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64] | None]:
    if method not in _METHODS:
        raise DataError(f"method must be 'ipw' or 'dr'; got {method!r}.")
    r = finite_float_array(reward, "reward")
    if r.ndim != 1:
        raise DataError(f"reward must be a 1-D array; got shape {r.shape}.")
    n = r.size
    if n < 2:
        raise DataError(f"need at least 2 rows to estimate a standard error; got {n}.")
    t_arr = np.asarray(treatment)
    if t_arr.ndim != 1 or t_arr.size != n:
        raise DataError(
            f"treatment must be 1-D with {n} rows like reward; got shape {t_arr.shape}."
        )
    e = _propensity_matrix(propensity, n)
    n_arms = e.shape[1]
    t = _arm_array(t_arr, "treatment", n_arms)
    m = None
    if method == "dr":
        if mu is None:
            raise DataError(
                "method='dr' needs mu, the (n, K) predicted reward of each row under each arm."
            )
        m = finite_float_array(mu, "mu")
        if m.shape != (n, n_arms):
            raise DataError(f"mu must have shape ({n}, {n_arms}) (rows, arms); got {m.shape}.")
    return r, t, e, m


def _contributions(
    r: NDArray[np.float64],
    t: NDArray[np.int64],
    pi: NDArray[np.int64],
    e: NDArray[np.float64],
    m: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    rows = np.arange(r.size)
    match = t == pi
    e_pi = e[rows, pi]  # equals e(T) wherever the indicator is 1
    if m is None:
        return np.where(match, r / e_pi, 0.0)
    mu_pi = m[rows, pi]
    return mu_pi + np.where(match, (r - mu_pi) / e_pi, 0.0)


def _summarize(contrib: NDArray[np.float64], method: str, alpha: float) -> PolicyValue:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise DataError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha!r}.")
    n = contrib.size
    estimate = float(contrib.mean())
    stderr = float(contrib.std(ddof=1) / np.sqrt(n))
    z = NormalDist().inv_cdf(1 - float(alpha) / 2)
    return PolicyValue(estimate, stderr, estimate - z * stderr, estimate + z * stderr, n, method)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def per_row_contributions(
    reward: ArrayLike,
    treatment: ArrayLike,
    policy: ArrayLike,
    propensity: ArrayLike,
    *,
    mu: ArrayLike | None = None,
    method: Method = "ipw",
) -> NDArray[np.float64]:
    """Per-row terms whose mean is the IPW or DR estimate of a policy's value.

    Useful to bootstrap, to pool folds, or to aggregate by segment.

    Parameters
    ----------
    reward : array-like of shape (n,)
        Realized reward of each row under the arm it actually received.
    treatment : array-like of int, shape (n,)
        Arm each row received, coded ``0..K-1``.
    policy : array-like of int, shape (n,), or int
        Arm the plan chooses for each row (an int means the same arm for everyone).
    propensity : array-like of shape (n, K) or (K,)
        Probability that each row was assigned each arm; a (K,) vector is the same for all
        rows (a plain randomized experiment). Values in (0, 1], rows summing to 1 (+-0.02).
    mu : array-like of shape (n, K), optional
        Predicted reward of each row under each arm; required for ``method="dr"`` and
        ignored for ``"ipw"``.
    method : {"ipw", "dr"}, default "ipw"
        Inverse propensity weighting or doubly robust.

    Returns
    -------
    ndarray of float, shape (n,)
        IPW: ``1[T = pi] * r / e(T)``; DR: ``mu(pi) + 1[T = pi] / e(pi) * (r - mu(pi))``.

    Raises
    ------
    DataError
        If shapes disagree, values are not finite, arm codes are out of range, a propensity
        is outside (0, 1] or a row does not sum to 1, ``method`` is unknown, or ``mu`` is
        missing for ``"dr"``.

    Examples
    --------
    >>> per_row_contributions([2.0, 1.0, 4.0], [1, 0, 1], [1, 1, 0], [0.5, 0.5]).tolist()
    [4.0, 0.0, 0.0]
    """
    r, t, e, m = _validate(reward, treatment, propensity, mu, method)
    pi = _policy_vector(policy, "policy", r.size, e.shape[1])
    return _contributions(r, t, pi, e, m)


def policy_value(
    reward: ArrayLike,
    treatment: ArrayLike,
    policy: ArrayLike,
    propensity: ArrayLike,
    *,
    mu: ArrayLike | None = None,
    method: Method = "ipw",
    alpha: float = 0.05,
) -> PolicyValue:
    """Estimate the mean reward per row if every row got the arm the policy chooses.

    Parameters
    ----------
    reward : array-like of shape (n,)
        Realized reward of each row under the arm it actually received (e.g. profit).
    treatment : array-like of int, shape (n,)
        Arm each row received, coded ``0..K-1``.
    policy : array-like of int, shape (n,), or int
        Arm the plan chooses for each row (an int means the same arm for everyone).
    propensity : array-like of shape (n, K) or (K,)
        Assignment probabilities (see :func:`per_row_contributions`).
    mu : array-like of shape (n, K), optional
        Predicted reward under each arm; required for ``method="dr"``.
    method : {"ipw", "dr"}, default "ipw"
        Estimator.
    alpha : float, default 0.05
        The confidence interval has level ``1 - alpha``.

    Returns
    -------
    PolicyValue
        Estimate, standard error, normal confidence interval, rows and method.

    Raises
    ------
    DataError
        On invalid input (see :func:`per_row_contributions`) or ``alpha`` outside (0, 1).

    Examples
    --------
    >>> v = policy_value([2.0, 1.0, 4.0, 3.0], [1, 0, 1, 0], [1, 1, 0, 0], [0.5, 0.5])
    >>> v.estimate, v.n, v.method
    (2.5, 4, 'ipw')
    """
    contrib = per_row_contributions(reward, treatment, policy, propensity, mu=mu, method=method)
    return _summarize(contrib, method, alpha)


def policy_gain(
    reward: ArrayLike,
    treatment: ArrayLike,
    policy: ArrayLike,
    propensity: ArrayLike,
    *,
    baseline: ArrayLike | int | None = None,
    mu: ArrayLike | None = None,
    method: Method = "ipw",
    alpha: float = 0.05,
) -> PolicyValue:
    """Estimate how much more reward per row ``policy`` earns than ``baseline``.

    The gain is the mean of paired per-row differences of the two policies' contributions,
    so its standard error reflects their correlation (rows where both policies choose the
    same arm contribute exactly 0).

    Parameters
    ----------
    reward : array-like of shape (n,)
        Realized reward of each row under the arm it actually received.
    treatment : array-like of int, shape (n,)
        Arm each row received, coded ``0..K-1``.
    policy : array-like of int, shape (n,), or int
        Arm the plan chooses for each row.
    propensity : array-like of shape (n, K) or (K,)
        Assignment probabilities (see :func:`per_row_contributions`).
    baseline : array-like of int, shape (n,), or int, optional
        Policy to compare against; default: everyone gets arm 0 (the control, "nobody").
    mu : array-like of shape (n, K), optional
        Predicted reward under each arm; required for ``method="dr"``.
    method : {"ipw", "dr"}, default "ipw"
        Estimator.
    alpha : float, default 0.05
        The confidence interval has level ``1 - alpha``.

    Returns
    -------
    PolicyValue
        Estimated gain per row with its standard error and confidence interval.

    Raises
    ------
    DataError
        On invalid input (see :func:`per_row_contributions`) or ``alpha`` outside (0, 1).

    Examples
    --------
    >>> g = policy_gain([2.0, 1.0, 4.0, 3.0], [1, 0, 1, 0], [1, 1, 1, 1], [0.5, 0.5])
    >>> g.estimate
    1.0
    """
    r, t, e, m = _validate(reward, treatment, propensity, mu, method)
    n, n_arms = e.shape
    pi = _policy_vector(policy, "policy", n, n_arms)
    base = _policy_vector(0 if baseline is None else baseline, "baseline", n, n_arms)
    diff = _contributions(r, t, pi, e, m) - _contributions(r, t, base, e, m)
    return _summarize(diff, method, alpha)
