"""The numbers behind the report's plots, computed from a bundle's cross-validated predictions.

Every function here returns plain arrays, DataFrames or a small result object, so it can be
tested by its data; :mod:`promolift.report.plots` draws them and :mod:`promolift.report.html`
puts them on the page. Nothing here imports matplotlib.

All curves are computed on the *out-of-fold* predictions stored in the bundle
(``bundle.oof``): each customer is scored by models that never saw them, so the curves show
what the models do on new customers, not how well they memorised the training rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promolift.bundle import OutOfFold, blend
from promolift.economics import Economics

__all__ = [
    "BudgetCurve",
    "SelectionSummary",
    "profit_budget_curve",
    "qini_curves",
    "reference_mu",
    "selection_summary",
    "subsample_curve",
    "uplift_deciles",
]

MAX_POINTS = 500
SIMPLE_CANDIDATES = ("nobody", "constant")


def subsample_curve(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points of a curve, evenly spaced, ends and extremes kept.

    Parameters
    ----------
    x, y : ndarray of shape (n,)
        The curve.
    max_points : int, default=500
        Upper bound on the points returned (at least 4).

    Returns
    -------
    x, y : ndarray
        The kept points in their original order.

    Examples
    --------
    >>> x, y = subsample_curve(np.arange(1000), np.sin(np.arange(1000) / 100), max_points=50)
    >>> len(x) <= 50, x[0], x[-1]
    (True, np.int64(0), np.int64(999))
    """
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if n <= max_points:
        return x, y
    keep = np.unique(
        np.r_[
            np.linspace(0, n - 1, max_points - 2).round().astype(np.intp),
            np.argmax(y),
            np.argmin(y),
        ]
    )
    return x[keep], y[keep]


def _arm_rows(oof: OutOfFold, arm: int) -> tuple[np.ndarray, np.ndarray]:
    if arm < 1:
        raise ValueError(f"arm must be a treated arm index (1 or more), got {arm}")
    keep = (oof.treatment == 0) | (oof.treatment == arm)
    return keep, (oof.treatment[keep] == arm).astype(np.float64)


def qini_curves(
    oof: OutOfFold,
    *,
    arm: int,
    outcome: int,
    kinds: Sequence[str] | None = None,
    max_points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Qini curves of treated ``arm`` against control for one outcome, one per model kind.

    Rows that received ``arm`` or the control are kept and ranked by the predicted uplift
    ``pred[:, arm, outcome] - pred[:, 0, outcome]`` of each kind; the best possible ranking
    (``perfect``) and random targeting (``random``, a straight line) are added for scale.

    Parameters
    ----------
    oof : OutOfFold
        Cross-validated predictions ``(n, K, M)`` per kind, outcomes ``Y`` and arms.
    arm : int
        Treated arm index (1..K-1).
    outcome : int
        Outcome column.
    kinds : sequence of str, optional
        Kinds to draw; default every kind except ``constant`` (its uplift is the same for
        everybody, so its curve is the random line).
    max_points : int, default=500
        Points kept per curve.

    Returns
    -------
    DataFrame
        Columns ``curve`` (kind, ``"perfect"`` or ``"random"``), ``n_targeted`` (top-ranked
        rows), ``share`` (``n_targeted`` over the rows of the arm and control) and ``value``
        (incremental outcome among them, in treated-group units, as
        :func:`promolift.evaluate.metrics.qini_curve`).
    """
    from promolift.evaluate.metrics import perfect_qini_curve, qini_curve

    keep, t01 = _arm_rows(oof, arm)
    y = oof.Y[keep, outcome]
    total = int(keep.sum())
    if kinds is None:
        kinds = [k for k in oof.predictions if k != "constant"]
    frames = []

    def add(name: str, x: np.ndarray, v: np.ndarray) -> None:
        x, v = subsample_curve(np.asarray(x, float), np.asarray(v, float), max_points)
        frames.append(
            pd.DataFrame({"curve": name, "n_targeted": x, "share": x / total, "value": v})
        )

    for kind in kinds:
        pred = oof.predictions[kind][keep]
        add(kind, *qini_curve(y, pred[:, arm, outcome] - pred[:, 0, outcome], t01))
    px, pv = perfect_qini_curve(y, t01)
    add("perfect", px, pv)
    # every ranking ends at the same total incremental outcome; random targeting is the chord
    add("random", np.array([0.0, total]), np.array([0.0, pv[-1]]))
    return pd.concat(frames, ignore_index=True)


def uplift_deciles(
    oof: OutOfFold,
    weights: Mapping[str, float],
    *,
    arm: int,
    outcome: int,
    bins: int = 10,
) -> pd.DataFrame:
    """Predicted against observed uplift of ``arm`` in deciles of the blend's predicted uplift.

    Parameters
    ----------
    oof : OutOfFold
    weights : mapping of str to float
        The blend of kinds (the bundle's chosen candidate).
    arm : int
        Treated arm index (1..K-1).
    outcome : int
        Outcome column.
    bins : int, default=10

    Returns
    -------
    DataFrame
        :func:`promolift.evaluate.metrics.uplift_by_decile`: ``decile`` (1 = highest predicted
        uplift), ``n_treated``, ``n_control``, ``predicted_uplift``, ``observed_uplift``,
        ``observed_se``.
    """
    from promolift.evaluate.metrics import uplift_by_decile

    keep, t01 = _arm_rows(oof, arm)
    pred = blend(oof.predictions, dict(weights))[keep]
    return uplift_by_decile(
        oof.Y[keep, outcome],
        pred[:, arm, outcome] - pred[:, 0, outcome],
        t01,
        bins=min(bins, int(keep.sum())),
    )


def reference_mu(oof: OutOfFold, economics: Economics) -> np.ndarray:
    """Reward model of the doubly-robust estimates: expected profit ``(n, K)`` of the equal blend
    of every kind, the same one :func:`promolift.selection.score_candidates` uses, so the
    report's numbers match the selection table."""
    kinds = [k for k in oof.predictions if "@" not in k]  # fitted kinds, as in selection
    return economics.expected_profit(blend(oof.predictions, {k: 1.0 / len(kinds) for k in kinds}))


@dataclass(frozen=True)
class BudgetCurve:
    """Plans of one policy along a grid of budgets.

    Attributes
    ----------
    points : DataFrame
        One row per budget: ``budget_per_customer``, ``cost_per_customer`` (planned, never above
        the budget), ``contact_share``, ``expected_profit_per_1000`` (what the model expects),
        ``dr_profit_per_1000``, ``dr_low_per_1000``, ``dr_high_per_1000`` (cross-validated
        doubly-robust estimate and 95% interval) and ``shadow_price``.
    mix : DataFrame
        Share of customers per arm (columns, control first) at each budget (index
        ``budget_per_customer``); rows sum to 1.
    """

    points: pd.DataFrame
    mix: pd.DataFrame


def profit_budget_curve(
    oof: OutOfFold,
    economics: Economics,
    weights: Mapping[str, float],
    *,
    arms: Sequence[str],
    n_points: int = 12,
    solver: str = "lagrangian",
) -> BudgetCurve:
    """Incremental profit of the policy's plan at budgets from 0 to the unconstrained plan's cost.

    The plan at each budget is made on the cross-validated value and cost of the blend
    ``weights`` and valued twice: as the model expects it, and by the doubly-robust estimate on
    the logged outcomes. If the solver's plan at a budget is worth less (to the model) than the
    plan kept at the previous, smaller budget, that plan is kept instead (it fits the larger
    budget too), so the expected profit never falls as the budget grows.

    Parameters
    ----------
    oof : OutOfFold
    economics : Economics
    weights : mapping of str to float
        Blend of kinds (the chosen candidate).
    arms : sequence of str
        Arm names, control first (the columns of ``mix``).
    n_points : int, default=12
        Budgets on the grid (evenly spaced, 0 and the unconstrained plan's cost included).
    solver : {"lagrangian", "exact"}, default="lagrangian"

    Returns
    -------
    BudgetCurve
    """
    from promolift.evaluate.policy import policy_gain
    from promolift.optimize import allocate

    if n_points < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points}")
    n = len(oof.treatment)
    value, cost = economics.value_cost(blend(oof.predictions, dict(weights)))
    reward = economics.realized_profit(oof.Y, oof.treatment)
    mu = reference_mu(oof, economics)
    full = allocate(value, cost, method=solver)
    top = full.total_cost / n
    budgets = np.linspace(0.0, top, n_points) if top > 0 else np.array([0.0])
    rows, mix = [], []
    kept = None
    for i, b in enumerate(budgets):
        alloc = (
            full if i == len(budgets) - 1 else allocate(value, cost, budget=b * n, method=solver)
        )
        if kept is not None and alloc.objective < kept.objective:
            alloc = kept
        kept = alloc
        gain = policy_gain(reward, oof.treatment, alloc.arm, oof.propensity, mu=mu, method="dr")
        rows.append(
            {
                "budget_per_customer": float(b),
                "cost_per_customer": alloc.total_cost / n,
                "contact_share": alloc.n_contacts / n,
                "expected_profit_per_1000": 1000 * alloc.objective / n,
                "dr_profit_per_1000": 1000 * gain.estimate,
                "dr_low_per_1000": 1000 * gain.ci_low,
                "dr_high_per_1000": 1000 * gain.ci_high,
                "shadow_price": float(alloc.shadow_price),
            }
        )
        mix.append(np.bincount(alloc.arm, minlength=len(arms)) / n)
    points = pd.DataFrame(rows)
    mix_frame = pd.DataFrame(
        np.array(mix),
        columns=list(arms),
        index=pd.Index(points["budget_per_customer"], name="budget_per_customer"),
    )
    return BudgetCurve(points=points, mix=mix_frame)


@dataclass(frozen=True)
class SelectionSummary:
    """The chosen policy, the best simple policy and the best model-based one, per 1,000
    customers (cross-validated).

    ``challenger`` is the best candidate that uses a model (the chosen one, unless a simple
    policy was chosen; ``None`` if no candidate uses a model). ``difference*`` is the paired
    doubly-robust estimate of challenger minus simple on the same customers, so its interval
    accounts for the two plans being correlated. ``simple_mix`` is the share of customers per
    arm (control first) in the simple policy's plan.
    """

    chosen: str
    chosen_estimate: float
    chosen_low: float
    chosen_high: float
    simple: str
    simple_estimate: float
    simple_mix: tuple[float, ...]
    challenger: str | None
    challenger_estimate: float
    difference: float
    difference_low: float
    difference_high: float

    @property
    def chosen_is_simple(self) -> bool:
        return self.chosen in SIMPLE_CANDIDATES

    @property
    def interval_includes_simple(self) -> bool:
        """Whether the chosen policy's own 95% interval reaches down to the simple estimate."""
        return self.chosen_low <= self.simple_estimate

    @property
    def difference_is_clear(self) -> bool:
        """Whether the paired 95% interval of challenger minus simple lies above zero."""
        return self.difference_low > 0


def selection_summary(
    oof: OutOfFold,
    economics: Economics,
    table: pd.DataFrame,
    chosen: str,
    *,
    solver: str = "lagrangian",
) -> SelectionSummary:
    """Compare the chosen candidate with the best simple policy (nobody, or ``constant``).

    Parameters
    ----------
    oof : OutOfFold
    economics : Economics
    table : DataFrame
        The cross-validated candidate table (``bundle.metrics["selection_unconstrained"]``):
        ``candidate``, ``profit_per_1000``, ``ci_low``, ``ci_high``, ``weights``.
    chosen : str
        The chosen candidate's name.
    solver : {"lagrangian", "exact"}, default="lagrangian"

    Returns
    -------
    SelectionSummary

    Raises
    ------
    KeyError
        If ``chosen`` is not in ``table``.
    """
    from promolift.evaluate.policy import policy_gain
    from promolift.optimize import allocate

    by_name = table.drop_duplicates("candidate").set_index("candidate")
    if chosen not in by_name.index:
        raise KeyError(
            f"chosen candidate '{chosen}' is not in the candidate table "
            f"({', '.join(map(str, by_name.index))})"
        )
    simple_rows = by_name[by_name.index.isin(SIMPLE_CANDIDATES)]
    simple = "nobody" if simple_rows.empty else str(simple_rows["profit_per_1000"].idxmax())
    model_rows = by_name[~by_name.index.isin(SIMPLE_CANDIDATES)]
    if chosen not in SIMPLE_CANDIDATES:
        challenger: str | None = chosen
    elif len(model_rows):
        challenger = str(model_rows["profit_per_1000"].idxmax())
    else:
        challenger = None

    def plan(name: str) -> np.ndarray:
        weights = by_name.loc[name, "weights"] if name in by_name.index else {}
        value, cost = economics.value_cost(blend(oof.predictions, dict(weights or {})))
        return allocate(value, cost, method=solver).arm

    simple_arm = plan(simple)
    n_arms = oof.predictions[next(iter(oof.predictions))].shape[1]
    mix = np.bincount(simple_arm, minlength=n_arms) / len(simple_arm)
    nan = float("nan")
    diff_est = diff_low = diff_high = nan
    if challenger is not None:
        reward = economics.realized_profit(oof.Y, oof.treatment)
        diff = policy_gain(
            reward, oof.treatment, plan(challenger), oof.propensity,
            baseline=simple_arm, mu=reference_mu(oof, economics), method="dr",
        )  # fmt: skip
        diff_est, diff_low, diff_high = (1000 * diff.estimate, 1000 * diff.ci_low,
                                         1000 * diff.ci_high)  # fmt: skip
    row = by_name.loc[chosen]

    def estimate(name: str | None) -> float:
        if name is None or name not in by_name.index:
            return 0.0 if name == "nobody" else nan
        return float(by_name.loc[name, "profit_per_1000"])

    return SelectionSummary(
        chosen=chosen,
        chosen_estimate=float(row["profit_per_1000"]),
        chosen_low=float(row["ci_low"]),
        chosen_high=float(row["ci_high"]),
        simple=simple,
        simple_estimate=estimate(simple),
        simple_mix=tuple(float(x) for x in mix),
        challenger=challenger,
        challenger_estimate=estimate(challenger),
        difference=diff_est,
        difference_low=diff_low,
        difference_high=diff_high,
    )
