"""Explain a bundle's decisions in dollars: per-customer reason codes and global importance.

What is explained is the customer's **expected incremental profit** of one arm,
``value[i, arm]`` from :meth:`promolift.economics.Economics.value_cost` (dollars, arm vs
control), for the blend of model kinds the bundle (or ``weights``) uses. The attribution is
additive over the raw features::

    contributions[i].sum() == value(x_i) - reference_i

Two methods, both exactly additive:

``"shapley"`` (every model kind, blend and derived ``kind@funnel``, the deep network too)
    Interventional Shapley values of the profit function against a *background*: a random
    sample of training rows kept in the bundle at train time
    (``bundle.metrics["explain_background"]``, see :func:`background_sample`). The payoff of a
    coalition S of features is the mean profit over the background rows with the features in S
    set to the customer's values; the reference is the mean profit over the background (the
    average training customer). With p <= ``max_exact`` (10) features all 2^p coalitions are
    enumerated exactly; beyond, antithetic permutation sampling (still exactly additive, since
    every permutation's marginal contributions telescope). Every coalition x background row of
    a chunk of customers goes through **one** ``bundle.predict`` call.

``"tree"`` (bundles whose used kinds are all LightGBM-based: constant, relative, t, x, dr and
their derived kinds)
    LightGBM's TreeSHAP (``pred_contrib=True``) on every booster, carried to dollars in two
    documented steps. (1) A booster's contributions are on its raw scale (log-odds for binary
    boosters, whose odds correction ``odds_divisor`` is a constant shift, identity for
    regressions); each is multiplied by the booster's secant slope ``(c(x) - c_ref) /
    (z(x) - z_ref)`` so that they sum to its own output difference ``c(x) - c_ref`` on the
    probability/dollar scale, where ``z_ref`` is TreeSHAP's expected raw score and
    ``c_ref = link(z_ref)``. (2) The profit is a known function ``g`` of the boosters' outputs
    (the learners' own composition -- hurdle products, fold averages, X-learner weights,
    clipping, calibration, the funnel ratio, the blend and the economics); its change
    ``g(c(x)) - g(c_ref)`` is split over boosters by Aumann-Shapley (the path integral of
    ``dg/dc_l`` from ``c_ref`` to ``c(x)``, Gauss-Legendre with central differences), and each
    booster's share over features in proportion to its rescaled contributions. The reference is
    ``g(c_ref)``: the profit the model gives when every booster outputs its average training
    score. It costs one ``pred_contrib`` call per booster, no background and no extra
    predictions: ~1 ms for one customer.

``"auto"`` takes ``"tree"`` when every used kind is LightGBM-based (benchmarks/bench_explain.py
measures its agreement with exact Shapley values), else ``"shapley"``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from promolift.bundle import ModelBundle, blend
from promolift.errors import BundleError, ConfigError, DataError, did_you_mean

__all__ = [
    "BACKGROUND_KEY",
    "Explanation",
    "Reason",
    "background_sample",
    "contributions",
    "explain",
    "global_importance",
    "reason_codes",
    "reason_columns",
    "stored_background",
]

Method = Literal["auto", "tree", "shapley"]
BACKGROUND_KEY = "explain_background"
"""Key of ``bundle.metrics`` holding the background sample (written by ``promolift.train``)."""
BACKGROUND_SIZE = 200
TREE_KINDS = frozenset({"constant", "relative", "t", "x", "dr"})
MAX_EXACT = 10
_MAX_ROWS_PER_CALL = 1 << 18  # rows of one bundle.predict call (shapley)
_TREE_JOBS = 2  # threads running TreeSHAP on 64+ customers
_MAX_TREE_ROWS = 1 << 21  # component rows evaluated at once (tree, gradient batch)
_GAUSS = np.polynomial.legendre.leggauss(3)
_NODES, _NODE_WEIGHTS = (_GAUSS[0] + 1.0) / 2.0, _GAUSS[1] / 2.0  # on [0, 1]


# ------------------------------------------------------------------------------ result types
@dataclass(frozen=True)
class Reason:
    """One reason code: a feature, the customer's raw value, and its dollar contribution.

    ``contribution`` is this feature's share (dollars) of the customer's expected incremental
    profit of the explained arm vs control, relative to the method's reference; ``direction``
    is ``"+"`` if it raises that profit, ``"-"`` if it lowers it.
    """

    feature: str
    value: Any
    contribution: float
    direction: Literal["+", "-"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what the decision service returns)."""
        return {
            "feature": self.feature,
            "value": self.value,
            "contribution": self.contribution,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class Explanation:
    """Additive dollar attributions of ``value`` to the raw features, one row per customer.

    Attributes
    ----------
    contributions : pandas.DataFrame of shape (n, p)
        Dollars per raw feature, index of the ``X`` explained; rows sum to
        ``value - reference``.
    value : numpy.ndarray of shape (n,)
        Expected incremental profit of the explained arm (``value_cost(pred)[0][i, arm[i]]``).
    reference : numpy.ndarray of shape (n,)
        The same quantity for the method's reference (see the module docstring).
    arm : numpy.ndarray of int, shape (n,)
        Index of the arm explained for each customer (never 0, the control).
    arms : list of str
        Arm names, control first.
    method : {"tree", "shapley"}
        The method used.
    """

    contributions: pd.DataFrame
    value: np.ndarray
    reference: np.ndarray
    arm: np.ndarray
    arms: list[str]
    method: str

    @property
    def arm_names(self) -> np.ndarray:
        """Name of the explained arm of each customer."""
        return np.asarray(self.arms, dtype=object)[self.arm]


# ------------------------------------------------------------------------------ background
def background_sample(
    X: pd.DataFrame, *, size: int = BACKGROUND_SIZE, random_state: int = 0
) -> dict[str, Any]:
    """A JSON-able random sample of raw feature rows: the stored reference of ``"shapley"``.

    ``promolift.train`` keeps it in ``bundle.metrics["explain_background"]`` so that one
    customer can be explained with no other data. It holds feature values only (no ids, no
    outcomes): missing values are ``None``, categorical ones are their text.

    Parameters
    ----------
    X : pandas.DataFrame
        Raw training features.
    size : int, default=200
        Rows kept (all of them if ``X`` has fewer), in random order.
    random_state : int, default=0
        Seed of the sample.

    Returns
    -------
    dict
        ``{"columns": [...], "numeric": [...], "rows": [[...], ...], "n_source": len(X)}``.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"age": [30.0, None, 50.0], "channel": ["web", "phone", None]})
    >>> bg = background_sample(X, size=2)
    >>> bg["columns"], bg["numeric"], len(bg["rows"])
    (['age', 'channel'], ['age'], 2)
    >>> stored_background({"explain_background": bg}).dtypes.astype(str).tolist()
    ['float64', 'object']
    """
    rng = np.random.default_rng(random_state)
    rows = rng.permutation(len(X))[: min(size, len(X))]
    sample = X.iloc[rows]
    numeric, columns = [], {}
    for col in sample.columns:
        s = sample[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric.append(str(col))
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            columns[col] = [None if math.isnan(x) else float(x) for x in v]
        else:
            columns[col] = [None if pd.isna(x) else str(x) for x in s.astype(object)]
    records = [list(r) for r in zip(*columns.values(), strict=True)] if columns else []
    return {
        "columns": [str(c) for c in sample.columns],
        "numeric": numeric,
        "rows": records,
        "n_source": len(X),
    }


def stored_background(metrics: dict[str, Any]) -> pd.DataFrame | None:
    """The background frame kept in a bundle's ``metrics`` (``None`` if there is none)."""
    bg = metrics.get(BACKGROUND_KEY)
    if not bg or not bg.get("rows"):
        return None
    frame = pd.DataFrame(bg["rows"], columns=bg["columns"], dtype=object)
    for col in bg["numeric"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(np.float64)
    return frame


def _background(
    bundle: ModelBundle, X: pd.DataFrame, background: pd.DataFrame | None
) -> pd.DataFrame:
    if background is not None:
        return _features(bundle, background, "background")
    stored = stored_background(bundle.metrics)
    if stored is not None:
        return _features(bundle, stored, "the bundle's stored background")
    if len(X) >= 50:  # an older bundle: the customers themselves are a fair background
        return X.sample(min(BACKGROUND_SIZE, len(X)), random_state=0)
    raise BundleError(
        "this bundle keeps no background sample (bundle.metrics['explain_background']), which "
        "method='shapley' needs to explain fewer than 50 customers. Re-train it with this "
        "promolift ('promolift train'), or pass background=<a frame of typical customers>."
    )


# ------------------------------------------------------------------------------ validation
def _features(bundle: ModelBundle, X: Any, what: str = "X") -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise DataError(
            f"{what} must be a pandas DataFrame of raw features, got {type(X).__name__}."
        )
    cols = bundle.encoder.columns_
    if list(X.columns) == cols:
        return X
    missing = [c for c in cols if c not in X.columns]
    if missing:
        raise DataError(
            f"{what} is missing feature column(s) the model was trained on: "
            f"{', '.join(repr(c) for c in missing)}. Add them (values may be empty)."
        )
    return X[cols]


def _weights(bundle: ModelBundle, weights: dict[str, float] | None) -> dict[str, float]:
    weights = dict(bundle.weights if weights is None else weights)
    for kind, w in weights.items():
        base = kind.split("@")[0]
        if base not in bundle.models:
            raise ConfigError(
                f"weights name model kind '{kind}', which this bundle does not hold."
                f"{did_you_mean(base, bundle.models)} Kinds: {', '.join(bundle.models)}."
            )
        if "@" in kind and (
            bundle.config.funnel is None
            or kind.split("@")[1] != bundle.config.funnel[1]
            or "relative" not in bundle.models
        ):
            raise ConfigError(
                f"weights name derived kind '{kind}', but the bundle has no matching "
                "model.funnel_outcome and 'relative' model."
            )
        if not np.isfinite(w) or w < 0:
            raise ConfigError(f"weight of '{kind}' must be a finite number >= 0, got {w!r}.")
    return weights


def _used(weights: dict[str, float]) -> list[str]:
    return [k for k, w in weights.items() if w > 0] or ["constant"]


def _base_kinds(used: Sequence[str]) -> list[str]:
    base = {k.split("@")[0] for k in used} | (
        {"relative"} if any("@" in k for k in used) else set()
    )
    return sorted(base)


def tree_supported(bundle: ModelBundle, weights: dict[str, float] | None = None) -> bool:
    """Whether every kind the blend uses is LightGBM-based, so ``method="tree"`` applies.

    Not when conversions are valued by a per-customer column: the value then depends on a
    feature directly, not only through the boosters.
    """
    from promolift.models.learners import ConstantModel, _LGBMLearner

    if bundle.config.economics.conversion_value is not None:
        return False
    used = _base_kinds(_used(_weights(bundle, weights)))
    return all(
        k in TREE_KINDS and isinstance(bundle.models[k], ConstantModel | _LGBMLearner) for k in used
    )


def _resolve_method(bundle: ModelBundle, weights: dict[str, float], method: str) -> str:
    if method not in ("auto", "tree", "shapley"):
        raise ConfigError(
            f"method must be 'auto', 'tree' or 'shapley', got {method!r}."
            f"{did_you_mean(str(method), ['auto', 'tree', 'shapley'])}"
        )
    tree_ok = tree_supported(bundle, weights)
    if method == "tree" and not tree_ok:
        raise ConfigError(
            f"method='tree' needs LightGBM-based kinds only, but the blend uses "
            f"{', '.join(_base_kinds(_used(weights)))}. Use method='shapley' (any kind) "
            "or 'auto'."
        )
    if method == "auto":
        return "tree" if tree_ok else "shapley"
    return method


def _check_arm(arm: Any, n: int, K: int) -> np.ndarray | None:
    """``arm`` as an int array of shape (n,) (a scalar is broadcast), or ``None``."""
    if arm is None:
        return None
    a = np.asarray(arm)
    if a.ndim == 0:
        a = np.full(n, a.item())
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise DataError(
            f"arm must be one integer arm index per customer (shape ({n},)), got "
            f"{a.dtype} of shape {a.shape}."
        )
    if ((a < 0) | (a >= K)).any():
        bad = int(a[(a < 0) | (a >= K)][0])
        raise DataError(f"arm index {bad} is out of range: the bundle has {K} arms (0 = control).")
    return a.astype(np.intp)


def _arms(value: np.ndarray, arm: np.ndarray | None) -> np.ndarray:
    """The arm to explain per customer: as given, with control (0) or ``None`` replaced by the
    best treated arm (why a promotion was, or was not, worth it)."""
    best = 1 + np.argmax(value[:, 1:], axis=1)
    return best if arm is None else np.where(arm == 0, best, arm)


# ------------------------------------------------------------------------------ public API
def explain(
    bundle: ModelBundle,
    X: pd.DataFrame,
    arm: np.ndarray | None = None,
    *,
    weights: dict[str, float] | None = None,
    method: Method = "auto",
    background: pd.DataFrame | None = None,
    n_background: int = 16,
    max_exact: int = MAX_EXACT,
    n_permutations: int = 16,
    random_state: int = 0,
    encoded: np.ndarray | None = None,
) -> Explanation:
    """Attribute each customer's expected incremental profit of an arm to the raw features.

    Parameters
    ----------
    bundle : ModelBundle
        A trained bundle.
    X : pandas.DataFrame of shape (n, ...)
        Raw features of the customers (at least the bundle's feature columns).
    arm : array-like of int, shape (n,), default=None
        Arm index to explain per customer; ``None`` or 0 (control) explains the best treated
        arm (for a customer left in control: why the best promotion was not worth it).
    weights : dict of str to float, default=None
        Blend of model kinds (may name derived kinds such as ``"t@visit"``); default the
        bundle's chosen policy.
    method : {"auto", "tree", "shapley"}, default="auto"
        See the module docstring.
    background : pandas.DataFrame, default=None
        Reference customers for ``"shapley"``; default the sample stored in the bundle.
    n_background : int, default=16
        Background rows used by ``"shapley"`` (the cost grows linearly with it).
    max_exact : int, default=10
        Largest feature count for exact enumeration of the 2^p coalitions.
    n_permutations : int, default=16
        Permutations (antithetic pairs) per customer when sampling beyond ``max_exact``.
    random_state : int, default=0
        Seed of the permutations.
    encoded : numpy.ndarray, default=None
        ``bundle.encoder.matrix(X)`` when the caller has it already (a decision service that
        has just scored ``X``); computed here otherwise.

    Returns
    -------
    Explanation
        Contributions in dollars with the value, reference, arm and method.

    Raises
    ------
    promolift.errors.DataError
        If ``X`` lacks a feature column or ``arm`` is malformed.
    promolift.errors.ConfigError
        If ``method`` or ``weights`` is invalid, or ``"tree"`` is asked for a non-LightGBM kind.
    promolift.errors.BundleError
        If ``"shapley"`` needs the stored background and the bundle has none.

    See Also
    --------
    reason_codes : The top features per customer, for a decision service.
    global_importance : Mean absolute contribution per feature.
    """
    X = _features(bundle, X)
    if len(X) == 0:
        raise DataError("X has no rows to explain.")
    weights = _weights(bundle, weights)
    method = _resolve_method(bundle, weights, method)
    if len(bundle.arms) < 2:
        raise ConfigError("the bundle has no treated arm to explain.")
    arm = _check_arm(arm, len(X), len(bundle.arms))
    if encoded is None:
        encoded = bundle.encoder.matrix(X, source="X")
    elif encoded.shape != X.shape:
        raise DataError(f"encoded must be bundle.encoder.matrix(X), of shape {X.shape}; got {encoded.shape}. "
                        "Leave it out to encode X here.")
    if method == "tree":
        return _tree(bundle, X, encoded, arm, weights)
    bg = _background(bundle, X, background)
    if n_background < 1:
        raise ConfigError(f"n_background must be >= 1, got {n_background}.")
    return _shapley(
        bundle,
        X,
        encoded,
        arm,
        weights,
        bg.iloc[:n_background],
        max_exact=max_exact,
        n_permutations=n_permutations,
        random_state=random_state,
    )


def contributions(
    bundle: ModelBundle,
    X: pd.DataFrame,
    arm: np.ndarray | None = None,
    *,
    weights: dict[str, float] | None = None,
    method: Method = "auto",
    **options: Any,
) -> pd.DataFrame:
    """Dollar contribution of every raw feature for every customer (n x p).

    Rows sum to the customer's expected incremental profit of the explained arm minus the
    method's reference; see :func:`explain` (which also returns value, reference and arm).

    Examples
    --------
    >>> from promolift.explain import contributions      # doctest: +SKIP
    >>> contributions(bundle, customers).round(2)          # doctest: +SKIP
    """
    return explain(bundle, X, arm, weights=weights, method=method, **options).contributions


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def _top(contrib: np.ndarray, top: int) -> np.ndarray:
    """Column indices of the ``top`` largest |contribution| per row (descending)."""
    k = min(top, contrib.shape[1])
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
    return order[:, :k]


def reason_codes(
    bundle: ModelBundle,
    X: pd.DataFrame,
    arm: np.ndarray | None = None,
    *,
    weights: dict[str, float] | None = None,
    top: int = 3,
    method: Method = "auto",
    **options: Any,
) -> list[list[Reason]]:
    """The ``top`` features that move each customer's expected incremental profit most.

    Parameters
    ----------
    bundle, X, arm, weights, method
        As for :func:`explain`.
    top : int, default=3
        Reasons per customer, largest absolute dollar contribution first (features with a zero
        contribution are left out).
    **options
        Passed to :func:`explain`.

    Returns
    -------
    list of list of Reason
        One list per row of ``X``.

    Examples
    --------
    >>> from promolift.explain import reason_codes                    # doctest: +SKIP
    >>> reason_codes(bundle, customer_frame)[0][0]                    # doctest: +SKIP
    Reason(feature='recency', value=2, contribution=0.41, direction='+')
    """
    if not isinstance(top, int | np.integer) or top < 1:
        raise ConfigError(f"top must be an integer >= 1, got {top!r}.")
    raw = _features(bundle, X)
    ex = explain(bundle, raw, arm, weights=weights, method=method, **options)
    c = ex.contributions.to_numpy()
    idx = _top(c, int(top))
    names = list(ex.contributions.columns)
    out = []
    for i in range(len(c)):  # building Python objects: one small loop over the rows returned
        row = []
        for j in idx[i]:
            v = float(c[i, j])
            if v == 0.0:
                continue
            row.append(Reason(names[j], _json_value(raw.iat[i, j]), v, "+" if v > 0 else "-"))
        out.append(row)
    return out


def reason_columns(
    bundle: ModelBundle,
    X: pd.DataFrame,
    arm: np.ndarray,
    *,
    weights: dict[str, float] | None = None,
    top: int = 3,
    method: Method = "auto",
) -> pd.DataFrame:
    """Reason codes as plan columns: ``explained_arm`` and ``reason_r_feature``,
    ``reason_r_value``, ``reason_r_contribution`` for r = 1..top (index of ``X`` reset).

    For customers allocated the control, the best treated arm is explained (why it was not
    worth it); the contributions are dollars of that arm's expected incremental profit.
    """
    ex = explain(bundle, X, arm, weights=weights, method=method)
    c = ex.contributions.to_numpy()
    idx = _top(c, top)
    rows = np.arange(len(c))[:, None]
    names = np.asarray(ex.contributions.columns, dtype=object)
    raw = _features(bundle, X).to_numpy(dtype=object)
    vals = c[rows, idx]
    out = {"explained_arm": ex.arm_names}
    for r in range(idx.shape[1]):
        zero = vals[:, r] == 0.0
        out[f"reason_{r + 1}_feature"] = np.where(zero, None, names[idx[:, r]])
        out[f"reason_{r + 1}_value"] = np.where(zero, None, raw[rows[:, 0], idx[:, r]])
        out[f"reason_{r + 1}_contribution"] = np.where(zero, np.nan, vals[:, r])
    return pd.DataFrame(out)


def global_importance(
    bundle: ModelBundle,
    X: pd.DataFrame | None = None,
    *,
    weights: dict[str, float] | None = None,
    method: Method = "auto",
    max_rows: int = 2000,
    random_state: int = 0,
    **options: Any,
) -> pd.DataFrame:
    """Mean absolute (and signed) dollar contribution of each feature over customers.

    Each customer's best treated arm is explained (the arm a budgeted plan would give first).

    Parameters
    ----------
    bundle : ModelBundle
    X : pandas.DataFrame, default=None
        Customers to average over; default the background sample stored in the bundle.
    weights, method
        As for :func:`explain`.
    max_rows : int, default=2000
        Customers used at most (a seeded random subsample beyond).
    random_state : int, default=0
        Seed of the subsample.
    **options
        Passed to :func:`explain`.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature``, ``mean_abs_contribution``, ``mean_contribution`` (dollars per
        customer) and ``share`` (of the total mean absolute contribution), sorted by the first
        contribution column, largest first. ``attrs["method"]`` and ``attrs["n_rows"]`` say how
        it was computed.
    """
    if X is None:
        X = stored_background(bundle.metrics)
        if X is None:
            raise BundleError(
                "the bundle keeps no background sample to average over; pass X "
                "(customers), or re-train with this promolift."
            )
    if len(X) > max_rows:
        X = X.sample(max_rows, random_state=random_state)
    ex = explain(bundle, X, weights=weights, method=method, **options)
    c = ex.contributions
    mean_abs = c.abs().mean()
    total = float(mean_abs.sum())
    table = (
        pd.DataFrame(
            {
                "feature": c.columns,
                "mean_abs_contribution": mean_abs.to_numpy(),
                "mean_contribution": c.mean().to_numpy(),
                "share": mean_abs.to_numpy() / total if total > 0 else 0.0,
            }
        )
        .sort_values("mean_abs_contribution", ascending=False, kind="stable")
        .reset_index(drop=True)
    )
    table.attrs.update(method=ex.method, n_rows=len(X))
    return table


# ------------------------------------------------------------------------------ shapley
def _shapley_weights(p: int) -> tuple[np.ndarray, np.ndarray]:
    """All 2^p coalitions (bool, (S, p)) and W with phi = v @ W (exact Shapley)."""
    S = 1 << p
    masks = ((np.arange(S)[:, None] >> np.arange(p)) & 1).astype(bool)
    size = masks.sum(axis=1)
    fact = np.array([math.factorial(k) for k in range(p + 1)], dtype=np.float64)
    w = fact[:p] * fact[p - 1 :: -1] / fact[p]  # w[s] = s! (p - s - 1)! / p!
    w_in = w[np.clip(size - 1, 0, p - 1)]  # S contains j: + w(|S| - 1)
    w_out = w[np.clip(size, 0, p - 1)]  # S lacks j: - w(|S|)
    W = np.where(masks, w_in[:, None], -w_out[:, None])
    return masks, W


def _permutation_weights(
    p: int, n_permutations: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Coalitions along antithetic random permutations and W with phi = v @ W (an unbiased
    estimate whose rows still sum to v(all) - v(empty))."""
    half = max(1, n_permutations // 2)
    perms = [rng.permutation(p) for _ in range(half)]
    perms += [q[::-1] for q in perms]
    P = len(perms)
    masks = np.zeros((P, p + 1, p), dtype=bool)
    for r, perm in enumerate(perms):  # P x p small: building the design, not touching customers
        for k, j in enumerate(perm):
            masks[r, k + 1 :, j] = True
    flat = masks.reshape(-1, p)
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.reshape(P, p + 1)
    W = np.zeros((len(unique), p))
    for r, perm in enumerate(perms):
        np.add.at(W, (inverse[r, 1:], perm), 1.0 / P)
        np.add.at(W, (inverse[r, :-1], perm), -1.0 / P)
    return unique, W


def _mix(Xe: np.ndarray, bge: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Encoded matrix of n x S x B rows: customer i's values on the coalition's features,
    background row b's elsewhere."""
    mixed = np.where(masks[None, :, None, :], Xe[:, None, None, :], bge[None, None, :, :])
    return mixed.reshape(-1, Xe.shape[1])


def _bound_economics(bundle: ModelBundle, rows: np.ndarray):
    """The bundle's economics bound to encoded ``rows`` (their future value per conversion)."""
    economics, enc = bundle.economics, bundle.encoder
    col = economics.conversion_value_column
    if col is None:
        return economics
    frame = pd.DataFrame({col: rows[:, enc.columns_.index(col)]} if col in enc.numeric_ else {})
    return economics.for_customers(frame)  # a column that is no numeric feature: its error


def _shapley(
    bundle: ModelBundle,
    X: pd.DataFrame,
    Xe: np.ndarray,
    arm: np.ndarray | None,
    weights: dict[str, float],
    background: pd.DataFrame,
    *,
    max_exact: int,
    n_permutations: int,
    random_state: int,
) -> Explanation:
    p = X.shape[1]
    if p <= max_exact:
        masks, W = _shapley_weights(p)
    else:
        masks, W = _permutation_weights(p, n_permutations, np.random.default_rng(random_state))
    empty = int(np.flatnonzero(~masks.any(axis=1))[0])
    full = int(np.flatnonzero(masks.all(axis=1))[0])
    bge = bundle.encoder.matrix(background, source="background")
    S, B, n = len(masks), len(bge), len(X)
    chunk = max(1, _MAX_ROWS_PER_CALL // (S * B))
    v = np.empty((n, S))
    arms = np.empty(n, dtype=np.intp)
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        m = sl.stop - start
        rows = _mix(Xe[sl], bge, masks)
        value = _bound_economics(bundle, rows).value_cost(bundle.predict(rows, weights))[0].reshape(m, S, B, -1)
        arms[sl] = _arms(value[:, full, 0], None if arm is None else arm[sl])
        v[sl] = np.take_along_axis(value, arms[sl, None, None, None], axis=3)[..., 0].mean(axis=2)
    phi = v @ W
    return Explanation(
        contributions=pd.DataFrame(phi, index=X.index, columns=list(X.columns)),
        value=v[:, full],
        reference=v[:, empty],
        arm=arms,
        arms=bundle.arms,
        method="shapley",
    )


# ------------------------------------------------------------------------------ tree
class _Leaf:
    """Stands in for a booster inside a copy of a learner: returns preset outputs."""

    def __init__(self, table: list[np.ndarray], index: int) -> None:
        self._table, self._index = table, index

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._table[0][:, self._index]


class _TreeModel:
    """The boosters of the used kinds, and the learners rebuilt on stand-ins for them, so the
    profit can be recomputed from any matrix of booster outputs with the learners' own code."""

    def __init__(self, bundle: ModelBundle, weights: dict[str, float]) -> None:
        from promolift.models.lgbm import BoosterComponent, ConstantComponent, HurdleComponent

        self.bundle, self.weights = bundle, weights
        self.used = _used(weights)
        self.kinds = _base_kinds(self.used)
        self.boosters: list[BoosterComponent] = []
        self.table: list[np.ndarray] = [np.zeros((0, 0))]
        self.copies: dict[str, Any] = {}

        def swap(value: Any) -> Any:
            if isinstance(value, BoosterComponent):
                self.boosters.append(value)
                return _Leaf(self.table, len(self.boosters) - 1)
            if isinstance(value, HurdleComponent):
                return HurdleComponent(positive=swap(value.positive), amount=swap(value.amount))
            if isinstance(value, ConstantComponent):
                return value
            if isinstance(value, list | tuple):
                return type(value)(swap(v) for v in value)
            return value

        for kind in self.kinds:
            model = bundle.models[kind]
            clone = copy.copy(model)
            for name in type(model)._model_attrs:
                setattr(clone, name, swap(getattr(model, name)))
            if hasattr(clone, "n_jobs"):
                clone.n_jobs = 1
            self.copies[kind] = clone

    def value(self, C: np.ndarray) -> np.ndarray:
        """Value (N, K) from booster outputs ``C`` (N, L), exactly as ``bundle.predict``."""
        self.table[0] = C
        dummy = range(len(C))  # the learners' _predict only take len() of their input here
        preds = {}
        for kind, model in self.copies.items():
            raw = model._predict(dummy)
            binary = np.array([t == "binary" for t in model.outcome_types_])
            lower = np.where(binary | np.asarray(model.nonnegative_, dtype=bool), 0.0, -np.inf)
            upper = np.where(binary, 1.0, np.inf)
            preds[kind] = np.clip(raw, lower, upper) * self.bundle.calibration[kind]
        if any("@" in k for k in self.used):
            preds = self.bundle.with_derived(preds)
        pred = blend({k: preds[k] for k in self.used}, self.weights)
        return self.bundle.economics.value_cost(pred)[0]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _tree(
    bundle: ModelBundle, X: pd.DataFrame, A: np.ndarray, arm: np.ndarray | None, weights: dict[str, float]
) -> Explanation:
    """TreeSHAP of every booster on the encoded ``A``, carried to dollars (``X`` names the rows)."""
    tm = _TreeModel(bundle, weights)
    n, p, L = len(X), X.shape[1], len(tm.boosters)
    phi = np.zeros((n, L, p))  # raw-scale contributions per booster
    slope = np.zeros((n, L))
    c = np.zeros((n, L))
    c_ref = np.zeros(L)
    from promolift.models.lgbm import run_parallel

    # TreeSHAP dominates for many rows: single-threaded boosters side by side (LightGBM releases
    # the GIL), as the learners predict; one customer stays on the calling thread.
    tasks = [
        partial(
            comp.booster.predict,
            A,
            num_iteration=comp.num_iteration,
            pred_contrib=True,
            num_threads=1,
        )
        for comp in tm.boosters
    ]
    results = run_parallel(tasks, _TREE_JOBS if n >= 64 else 1)
    for l, (comp, contrib) in enumerate(zip(tm.boosters, results, strict=True)):
        phi[:, l] = contrib[:, :-1]
        z, z0 = contrib.sum(axis=1), contrib[0, -1]
        if comp.objective == "binary":
            shift = math.log(comp.odds_divisor)
            c[:, l], c_ref[l] = _sigmoid(z - shift), _sigmoid(z0 - shift)
            dz = z - z0
            tangent = c[:, l] * (1.0 - c[:, l])
            slope[:, l] = np.divide(c[:, l] - c_ref[l], dz, out=tangent, where=np.abs(dz) > 1e-9)
        else:
            c[:, l], c_ref[l], slope[:, l] = z, z0, 1.0
    value_x = tm.value(c)
    arms = _arms(value_x, arm)
    rows = np.arange(n)
    ref_value = tm.value(c_ref[None, :])[0]
    value = value_x[rows, arms]
    reference = ref_value[arms]
    contrib = np.zeros((n, p))
    if L:
        G = _mean_gradient(tm, c, c_ref, arms)  # (n, L)
        contrib = np.einsum("nl,nlp->np", G * slope, phi)
        # the quadrature leaves a tiny residual: spread it in proportion to |contribution|
        resid = (value - reference) - contrib.sum(axis=1)
        mass = np.abs(contrib).sum(axis=1)
        share = np.divide(
            np.abs(contrib), mass[:, None], out=np.full((n, p), 1.0 / p), where=mass[:, None] > 0
        )
        contrib += resid[:, None] * share
    return Explanation(  # the matrix's columns are X's (the encoder's order)
        contributions=pd.DataFrame(contrib, index=X.index, columns=list(X.columns)),
        value=value,
        reference=reference,
        arm=arms,
        arms=bundle.arms,
        method="tree",
    )


def _mean_gradient(
    tm: _TreeModel, c: np.ndarray, c_ref: np.ndarray, arms: np.ndarray
) -> np.ndarray:
    """Aumann-Shapley: mean of dg/dc_l along the segment c_ref -> c(x), per customer (n, L).

    Gauss-Legendre nodes on the segment and forward differences: ``g`` is linear in each
    booster output separately except through clipping and the funnel ratio (hurdle products and
    blends are multilinear), so both are near-exact; the caller spreads the tiny remainder.
    """
    n, L = c.shape
    scale = np.maximum(np.maximum(np.abs(c), np.abs(c_ref)), 1e-3)
    h = 1e-6 * scale  # (n, L) difference steps
    G = np.zeros((n, L))
    Q = len(_NODES)
    chunk = max(1, _MAX_TREE_ROWS // (Q * (L + 1) * L))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        m = sl.stop - start
        path = c_ref + _NODES[None, :, None] * (c[sl] - c_ref)[:, None, :]  # (m, Q, L)
        points = np.repeat(path[:, :, None, :], L + 1, axis=2)  # (m, Q, L + 1, L)
        diag = np.arange(L)
        points[:, :, diag + 1, diag] += h[sl][:, None, :]  # point l + 1 moves c_l
        val = tm.value(points.reshape(-1, L)).reshape(m, Q, L + 1, -1)
        v = np.take_along_axis(val, arms[sl, None, None, None], axis=3)[..., 0]  # (m, Q, L + 1)
        grad = (v[:, :, 1:] - v[:, :, :1]) / h[sl][:, None, :]
        G[sl] = np.einsum("q,mql->ml", _NODE_WEIGHTS, grad)
    return G
