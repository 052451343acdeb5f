"""Budgeted allocation of promotions: which customer gets which arm.

Given, for ``n`` customers and ``K`` arms, the expected incremental profit ``value[i, k]`` and the
expected promotion cost ``cost[i, k]`` of giving arm ``k`` to customer ``i``, :func:`allocate`
gives each customer at most one arm so that the total expected value is maximal subject to a
budget, a contact cap, per-arm caps and a minimum return on investment.

Two solvers are registered:

``"lagrangian"``
    Vectorised Lagrangian relaxation with a greedy fill at the price threshold. Scales to tens
    of millions of customers; the prices it returns (:attr:`Allocation.shadow_price` and friends)
    reproduce the plan with a per-customer rule, so an online service can reuse them.
``"exact"``
    Mixed-integer program solved by HiGHS. Meant for small problems (up to ~50k customers) and as
    a reference for the Lagrangian solver.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from promolift.errors import DataError, did_you_mean

__all__ = ["Allocation", "allocate", "assign_at_prices", "available_methods"]


@dataclass(frozen=True)
class Allocation:
    """The result of :func:`allocate`.

    Attributes
    ----------
    arm : numpy.ndarray
        ``(n,)`` integer arm index per customer; the control index when the customer gets nothing.
    objective : float
        Total expected value of the plan, ``sum(value[i, arm[i]])`` over treated customers.
    total_cost : float
        Total expected cost of the plan; never above the budget.
    n_contacts : int
        Number of customers given a non-control arm; never above ``max_contacts``.
    shadow_price : float
        Price ``lambda`` of one unit of budget (0 when there is no budget or it does not bind).
        The Lagrangian solver guarantees that the rule "give customer ``i`` the arm maximising
        ``value - shadow_price * cost - contact_price * [arm != control] - arm_prices[arm]``, or
        nothing if that is not positive" reproduces the plan up to the few customers at the
        threshold. The exact solver reports the dual of the LP relaxation.
    contact_price : float
        Price ``mu`` of one contact (0 when there is no contact cap or it does not bind).
    arm_prices : numpy.ndarray
        ``(K,)`` prices ``nu_k`` of the per-arm caps (zeros when there are none; 0 for control).
    method : str
        ``"lagrangian"`` or ``"exact"``.
    status : str
        ``"optimal"`` when the plan is proven optimal: no constraint binds, the objective is
        within 1e-9 (relative) of :attr:`bound`, or HiGHS proved it within its relative gap
        (1e-6). ``"feasible"`` for a feasible plan without such a proof. ``"time_limit"`` when
        the exact solver stopped before finding any plan (everybody is then assigned control).
    bound : float
        Upper bound on the optimal objective (the Lagrangian dual value, or the MIP dual bound);
        ``bound - objective`` bounds the sub-optimality of the plan. ``nan`` when unknown.
    """

    arm: np.ndarray
    objective: float
    total_cost: float
    n_contacts: int
    shadow_price: float
    contact_price: float
    arm_prices: np.ndarray
    method: str
    status: str
    bound: float = math.nan


@dataclass(frozen=True)
class _Problem:
    """A validated allocation problem (internal; built by :func:`allocate`)."""

    value: np.ndarray  # (n, K) float, finite outside the control column
    cost: np.ndarray  # (n, K) float, finite and >= 0 outside the control column
    control: int
    budget: float | None
    max_contacts: int | None
    arm_caps: np.ndarray  # (K,) float64, inf = uncapped; control entry always inf
    min_roi: float | None

    @property
    def n(self) -> int:
        return int(self.value.shape[0])

    @property
    def n_arms(self) -> int:
        return int(self.value.shape[1])

    @property
    def treatment_arms(self) -> np.ndarray:
        """Original column indices of the non-control arms, in order."""
        return np.array([k for k in range(self.n_arms) if k != self.control], dtype=np.intp)


Solver = Callable[[_Problem, float | None], Allocation]


def _lagrangian(problem: _Problem, time_limit: float | None) -> Allocation:
    from promolift.optimize.lagrangian import solve

    return solve(problem, time_limit=time_limit)


def _exact(problem: _Problem, time_limit: float | None) -> Allocation:
    from promolift.optimize.exact import solve

    return solve(problem, time_limit=time_limit)


_SOLVERS: dict[str, Solver] = {"lagrangian": _lagrangian, "exact": _exact}


def available_methods() -> list[str]:
    """Return the names accepted by ``allocate(..., method=...)``."""
    return sorted(_SOLVERS)


def allocate(
    value: Any,
    cost: Any,
    *,
    budget: float | None = None,
    max_contacts: int | None = None,
    arm_caps: Sequence[int | None] | Mapping[int, int | None] | None = None,
    min_roi: float | None = None,
    control: int = 0,
    method: str = "lagrangian",
    time_limit: float | None = None,
) -> Allocation:
    """Give each customer at most one promotion arm so that total expected value is maximal.

    Maximises ``sum(value[i, arm[i]])`` subject to the optional constraints below. Column
    ``control`` means "nothing": its value and cost are treated as 0 whatever the matrices say.
    An arm with ``value <= 0`` is never assigned, since it would lower profit.

    Parameters
    ----------
    value : array_like, shape (n, K)
        Expected incremental profit of giving arm ``k`` to customer ``i``.
    cost : array_like, shape (n, K)
        Expected promotion cost of giving arm ``k`` to customer ``i``; must be ``>= 0``.
    budget : float, optional
        Upper bound on ``sum(cost[i, arm[i]])``. Never exceeded.
    max_contacts : int, optional
        Upper bound on the number of customers given a non-control arm. Never exceeded.
    arm_caps : sequence or mapping, optional
        Per-arm maximum number of customers: a length-``K`` sequence (``None`` entries are
        uncapped) or a dict ``{arm_index: cap}``. A cap on the control column is ignored.
    min_roi : float, optional
        Eligibility rule applied per customer and arm: arm ``k`` may be given to customer ``i``
        only if ``value[i, k] >= min_roi * cost[i, k]``. It is not a constraint on the
        plan's overall return.
    control : int, default 0
        Index of the "nothing" column.
    method : {"lagrangian", "exact"}, default "lagrangian"
        Solver; see :func:`available_methods`. ``"exact"`` is meant for up to ~50k customers.
    time_limit : float, optional
        Wall-clock limit in seconds. The Lagrangian solver stops refining its prices and returns
        a feasible plan; the exact solver returns its best plan so far.

    Returns
    -------
    Allocation
        The plan, its value, cost and contacts, and the prices of the binding constraints.

    Raises
    ------
    promolift.errors.DataError
        If the shapes disagree, ``value``/``cost`` hold NaN or inf, a cost is negative, or a
        constraint or the control index is invalid.
    ValueError
        If ``method`` is not a registered solver.

    Notes
    -----
    The ``"lagrangian"`` solver prices every constraint, gives each customer the best arm at those
    prices, and spends the little slack left at the price threshold greedily; the constraints
    are hard guarantees, checked in float64 at the end. With many customers it is within a few
    thousandths of a percent of the optimum (at most 0.04% on 480 random instances of 2,000
    customers, against ``"exact"``); on a handful of customers the threshold can cost up to one
    customer's value. :attr:`Allocation.bound` certifies the gap of any plan.

    The ``"exact"`` solver reports the duals of the LP relaxation as prices and uses the
    Lagrangian plan for exact reduced-cost fixing before branching, which makes problems of tens
    of thousands of customers take seconds.

    Examples
    --------
    >>> import numpy as np
    >>> from promolift.optimize import allocate
    >>> value = np.array([[0.0, 5.0, 9.0],
    ...                   [0.0, 4.0, 6.0],
    ...                   [0.0, -1.0, 3.0]])
    >>> cost = np.array([[0.0, 1.0, 4.0],
    ...                  [0.0, 1.0, 3.0],
    ...                  [0.0, 1.0, 2.0]])
    >>> plan = allocate(value, cost, budget=7.0)
    >>> plan.arm.tolist()
    [2, 1, 2]
    >>> plan.objective, plan.total_cost, plan.status
    (16.0, 7.0, 'optimal')

    At the shadow price, customer 1 is indifferent between arms 1 and 2 (``4 - 1 = 6 - 3``):

    >>> round(plan.shadow_price, 6)
    1.0
    """
    solver = _get_solver(method)
    problem = _validate(
        value,
        cost,
        budget=budget,
        max_contacts=max_contacts,
        arm_caps=arm_caps,
        min_roi=min_roi,
        control=control,
    )
    if time_limit is not None:
        time_limit = _real(time_limit, "time_limit")
        if not time_limit > 0:
            raise DataError(f"time_limit must be a positive number of seconds, got {time_limit}.")
    return solver(problem, time_limit)


def assign_at_prices(
    value: Any,
    cost: Any,
    *,
    shadow_price: float = 0.0,
    contact_price: float = 0.0,
    arm_prices: Any = None,
    min_roi: float | None = None,
    control: int = 0,
) -> np.ndarray:
    """Each customer's best arm at given constraint prices, by the rule the Lagrangian solver uses.

    At λ per dollar of cost, μ per contact and ν_k per customer on arm k, customer i gets
    ``argmax_k value[i, k] − λ·cost[i, k] − μ − ν_k`` over the arms eligible under ``min_roi``,
    or ``control`` when no adjusted value is positive. A plan's own prices (``Allocation``'s
    ``shadow_price``, ``contact_price``, ``arm_prices``) thus decide new customers one at a time
    exactly as the plan decided its own, but for ties at the price threshold.

    Returns
    -------
    numpy.ndarray of shape (n,)
        Arm index per customer.
    """
    from promolift.optimize.lagrangian import _build

    problem = _validate(value, cost, budget=None, max_contacts=None, arm_caps=None, min_roi=min_roi,
                        control=control)
    nu = np.zeros(problem.n_arms) if arm_prices is None else np.asarray(arm_prices, dtype=np.float64)
    if nu.shape != (problem.n_arms,):
        raise ValueError(f"arm_prices must have one price per arm ({problem.n_arms}), got shape {nu.shape}.")
    work, rows, arms = _build(problem)
    arg = work.evaluate(np.concatenate([[shadow_price, contact_price], nu[arms]])).arg
    arm = np.full(problem.n, control, dtype=np.intp)
    treated = np.flatnonzero(arg >= 0)
    arm[treated if rows is None else rows[treated]] = arms[arg[treated]]
    return arm


def _get_solver(method: str) -> Solver:
    if not isinstance(method, str) or method not in _SOLVERS:
        choices = ", ".join(repr(m) for m in available_methods())
        hint = did_you_mean(method, _SOLVERS) if isinstance(method, str) else ""
        raise ValueError(f"Unknown allocation method {method!r}; choose one of {choices}.{hint}")
    return _SOLVERS[method]


# --------------------------------------------------------------------------------------------
# validation


def _as_matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise DataError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{name} must be real-valued, got dtype {arr.dtype}.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a 2-D (n_customers, n_arms) array, got shape {arr.shape}.")
    return arr


def _real(x: Any, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise DataError(f"{name} must be a real number, got {x!r}.")
    x = float(x)
    if math.isnan(x):
        raise DataError(f"{name} must be a number, got NaN.")
    return x


def _count(x: Any, name: str) -> float:
    """A non-negative integer count; ``inf`` means unlimited."""
    v = _real(x, name)
    if v < 0:
        raise DataError(f"{name} must be >= 0, got {x!r}.")
    if math.isfinite(v) and v != math.floor(v):
        raise DataError(f"{name} must be a whole number of customers, got {x!r}.")
    return v


def _check_entries(bad: np.ndarray, name: str, what: str, fix: str) -> None:
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        row, col = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise DataError(
            f"{name} has {n_bad} {what} entr{'y' if n_bad == 1 else 'ies'}; "
            f"the first is at row {row}, arm {col}. {fix}"
        )


def _validate(
    value: Any,
    cost: Any,
    *,
    budget: Any,
    max_contacts: Any,
    arm_caps: Any,
    min_roi: Any,
    control: Any,
) -> _Problem:
    value = _as_matrix(value, "value")
    cost = _as_matrix(cost, "cost")
    if value.shape != cost.shape:
        raise DataError(
            f"value has shape {value.shape} but cost has shape {cost.shape}; both must be "
            "(n_customers, n_arms) with the same arms in the same order."
        )
    n, n_arms = value.shape
    if n_arms < 1:
        raise DataError("value and cost need at least one column (the control arm).")

    if isinstance(control, bool) or not isinstance(control, numbers.Integral):
        raise DataError(f"control must be an integer column index, got {control!r}.")
    control = int(control)
    if not 0 <= control < n_arms:
        raise DataError(
            f"control index {control} is out of range for {n_arms} arms "
            f"(valid indices 0..{n_arms - 1})."
        )

    treat = np.ones(n_arms, dtype=bool)
    treat[control] = False  # the control column is ignored whatever it holds
    if n and n_arms > 1:
        for arr, name in ((value, "value"), (cost, "cost")):
            bad = ~np.isfinite(arr)
            bad[:, control] = False
            _check_entries(bad, name, "non-finite (NaN or inf)", "Fill or drop them first.")
        neg = cost < 0
        neg[:, control] = False
        _check_entries(neg, "cost", "negative", "Costs must be >= 0.")

    b: float | None = None
    if budget is not None:
        b = _real(budget, "budget")
        if b < 0:
            raise DataError(f"budget must be >= 0, got {budget!r}.")
        if math.isinf(b):
            b = None

    m: int | None = None
    if max_contacts is not None:
        mc = _count(max_contacts, "max_contacts")
        m = None if math.isinf(mc) else int(mc)

    caps = np.full(n_arms, np.inf)
    if arm_caps is not None:
        if isinstance(arm_caps, Mapping):
            items = list(arm_caps.items())
            for key, _ in items:
                if isinstance(key, bool) or not isinstance(key, numbers.Integral):
                    raise DataError(f"arm_caps keys must be arm indices, got {key!r}.")
                if not 0 <= int(key) < n_arms:
                    raise DataError(
                        f"arm_caps has arm index {key} but there are only {n_arms} arms "
                        f"(valid indices 0..{n_arms - 1})."
                    )
        elif isinstance(arm_caps, Sequence | np.ndarray) and not isinstance(arm_caps, str):
            if len(arm_caps) != n_arms:
                raise DataError(
                    f"arm_caps has {len(arm_caps)} entries but there are {n_arms} arms; give one "
                    "cap per arm (None = uncapped) or a dict {arm_index: cap}."
                )
            items = list(enumerate(arm_caps))
        else:
            raise DataError(
                "arm_caps must be a sequence of per-arm caps or a dict {arm_index: cap}, "
                f"got {type(arm_caps).__name__}."
            )
        for key, cap in items:
            if cap is not None:
                caps[int(key)] = _count(cap, f"arm_caps[{int(key)}]")
        caps[control] = np.inf

    roi: float | None = None
    if min_roi is not None:
        roi = _real(min_roi, "min_roi")
        if math.isinf(roi):
            raise DataError(f"min_roi must be finite, got {min_roi!r}.")

    return _Problem(
        value=value,
        cost=cost,
        control=control,
        budget=b,
        max_contacts=m,
        arm_caps=caps,
        min_roi=roi,
    )


# --------------------------------------------------------------------------------------------
# helpers shared by the solvers


@dataclass(frozen=True)
class _Usage:
    objective: float
    total_cost: float
    n_contacts: int
    counts: np.ndarray  # (K,) customers per arm; 0 for control

    def violations(self, problem: _Problem) -> list[str]:
        out = []
        if problem.budget is not None and self.total_cost > problem.budget:
            out.append("budget")
        if problem.max_contacts is not None and self.n_contacts > problem.max_contacts:
            out.append("max_contacts")
        if np.any(self.counts > problem.arm_caps):
            out.append("arm_caps")
        return out


def _treated(problem: _Problem, arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = np.flatnonzero(arm != problem.control)
    return rows, arm[rows]


def _usage(problem: _Problem, arm: np.ndarray) -> _Usage:
    """Objective, cost, contacts and per-arm counts of a plan, accumulated in float64."""
    rows, cols = _treated(problem, arm)
    counts = np.bincount(cols, minlength=problem.n_arms)
    return _Usage(
        objective=float(problem.value[rows, cols].sum(dtype=np.float64)),
        total_cost=float(problem.cost[rows, cols].sum(dtype=np.float64)),
        n_contacts=int(rows.size),
        counts=counts,
    )


def _repair(problem: _Problem, arm: np.ndarray) -> np.ndarray:
    """Return ``arm`` with customers moved to control until every constraint holds.

    Only used as the last line of defence (numerical edge cases, time limits): customers of an
    over-full arm, the least valuable contacts and the worst value-per-cost customers are dropped
    first. Moving a customer to control never increases any resource, so this always succeeds.
    """
    arm = arm.copy()
    ctrl = problem.control
    for k in np.flatnonzero(np.isfinite(problem.arm_caps)):
        on_k = np.flatnonzero(arm == k)
        excess = on_k.size - int(problem.arm_caps[k])
        if excess > 0:
            order = np.argsort(problem.value[on_k, k], kind="stable")
            arm[on_k[order[:excess]]] = ctrl
    if problem.max_contacts is not None:
        rows, cols = _treated(problem, arm)
        excess = rows.size - problem.max_contacts
        if excess > 0:
            order = np.argsort(problem.value[rows, cols], kind="stable")
            arm[rows[order[:excess]]] = ctrl
    if problem.budget is not None:
        rows, cols = _treated(problem, arm)
        c = problem.cost[rows, cols].astype(np.float64)
        excess = c.sum() - problem.budget
        if excess > 0:
            v = problem.value[rows, cols].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(c > 0, v / c, np.inf)
            order = np.argsort(ratio, kind="stable")
            dropped = np.cumsum(c[order])
            # Drop the shortest prefix freeing at least `excess`; re-check after rounding.
            n_drop = int(np.searchsorted(dropped, excess, side="left")) + 1
            arm[rows[order[:n_drop]]] = ctrl
            while _usage(problem, arm).total_cost > problem.budget:
                rows, cols = _treated(problem, arm)
                if rows.size == 0:
                    break
                c = problem.cost[rows, cols]
                arm[rows[int(np.argmax(c))]] = ctrl
    return arm


def _finish(
    problem: _Problem,
    arm: np.ndarray,
    *,
    shadow_price: float,
    contact_price: float,
    arm_prices: np.ndarray,
    method: str,
    status: str,
    bound: float = math.nan,
) -> Allocation:
    """Check the plan against every constraint (repairing if needed) and build the result."""
    arm = np.ascontiguousarray(arm, dtype=np.intp)
    usage = _usage(problem, arm)
    if usage.violations(problem):
        arm = _repair(problem, arm)
        usage = _usage(problem, arm)
        if status == "optimal":
            status = "feasible"
    if status == "feasible" and usage.objective >= bound - 1e-9 * max(1.0, abs(bound)):
        status = "optimal"  # the plan attains the upper bound (nan bound: comparison is False)
    prices = np.zeros(problem.n_arms)
    prices[:] = arm_prices
    prices[problem.control] = 0.0
    return Allocation(
        arm=arm,
        objective=usage.objective,
        total_cost=usage.total_cost,
        n_contacts=usage.n_contacts,
        shadow_price=float(shadow_price) if problem.budget is not None else 0.0,
        contact_price=float(contact_price) if problem.max_contacts is not None else 0.0,
        arm_prices=prices,
        method=method,
        status=status,
        bound=float(bound),
    )
