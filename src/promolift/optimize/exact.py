"""Exact allocation as a mixed-integer program solved by HiGHS.

One binary ``x[i, k]`` per eligible customer/arm pair (positive value, passing ``min_roi``), with
rows

* ``sum_k x[i, k] <= 1`` per customer with two or more eligible arms,
* ``sum cost * x <= budget`` (scaled by the budget so tolerances are relative),
* ``sum x <= max_contacts``,
* ``sum_i x[i, k] <= cap_k`` per capped arm (only when the cap can bind).

Meant for small problems (up to ~50k customers) and as the reference the Lagrangian solver is
tested against. The prices reported are the row duals of the LP relaxation.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from promolift.optimize import Allocation, _finish, _Problem

__all__ = ["solve"]

#: Default relative MIP gap at which HiGHS stops.
MIP_REL_GAP = 1e-6

_banner_lock = threading.Lock()
_banner_done = False


def _new_highs() -> Any:
    """Create a silent ``highspy.Highs``.

    HiGHS prints its copyright banner to the process's stdout (file descriptor 1, below Python)
    the first time a solver object is constructed, before any option can be set. Redirect the
    descriptor for that one construction so library users do not get it mixed into their output.
    """
    global _banner_done
    import highspy

    with _banner_lock:
        if _banner_done:
            h = highspy.Highs()
        else:
            try:
                sys.stdout.flush()
                saved = os.dup(1)
            except (OSError, ValueError, AttributeError):  # no usable fd 1: nothing to hide
                saved = None
            try:
                if saved is not None:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 1)
                    os.close(devnull)
                h = highspy.Highs()
            finally:
                if saved is not None:
                    os.dup2(saved, 1)
                    os.close(saved)
            _banner_done = True
    h.setOptionValue("output_flag", False)
    return h


def solve(
    problem: _Problem,
    *,
    time_limit: float | None = None,
    mip_rel_gap: float | None = None,
    reduce: bool = True,
) -> Allocation:
    """Solve ``problem`` to (near) optimality with HiGHS; see :func:`promolift.optimize.allocate`.

    1. The LP relaxation is solved (interior point + crossover); its row duals are the reported
       prices and ``D``, the Lagrangian dual value at those prices, bounds the optimum.
    2. With ``reduce`` (default), the Lagrangian solver gives a feasible plan of value ``P`` and
       every pair whose adjusted value is more than ``D - P`` below its customer's best option is
       fixed to 0 (and a customer for whom control is that far below is fixed to be treated):
       forcing such a pair into a plan costs more than ``D - P`` against the bound, so no plan
       using it can beat ``P``. This is exact reduced-cost fixing, computed in float64; it
       usually leaves only the customers at the price threshold to branch on.
    3. The MIP is solved, warm-started from the Lagrangian plan.

    Parameters
    ----------
    problem : promolift.optimize._Problem
        A validated problem.
    time_limit : float, optional
        Wall-clock limit in seconds for all the steps together.
    mip_rel_gap : float, optional
        Relative optimality gap at which the branch and bound stops (default ``MIP_REL_GAP``).
    reduce : bool, default True
        Apply the reduced-cost fixing of step 2 (turn off to test it, or to time plain HiGHS).

    Returns
    -------
    Allocation
        ``status`` is ``"optimal"`` when HiGHS proved optimality within ``mip_rel_gap``,
        ``"feasible"`` when it stopped early with a plan and ``"time_limit"`` without one.
    """
    import highspy

    start = time.perf_counter()
    gap = MIP_REL_GAP if mip_rel_gap is None else float(mip_rel_gap)
    n, n_arms = problem.value.shape
    arms = problem.treatment_arms
    ctrl = problem.control
    arm = np.full(n, ctrl, dtype=np.intp)
    zeros = np.zeros(n_arms)

    value = problem.value[:, arms].astype(np.float64, copy=False)
    cost = problem.cost[:, arms].astype(np.float64, copy=False)
    eligible = value > 0
    if problem.min_roi is not None:
        eligible &= value >= problem.min_roi * cost
    ii, jj = np.nonzero(eligible)  # customer-major order
    n_var = ii.size
    if n_var == 0:
        return _finish(
            problem, arm, shadow_price=0.0, contact_price=0.0, arm_prices=zeros,
            method="exact", status="optimal", bound=0.0,
        )  # fmt: skip
    obj = value[ii, jj]
    cc = cost[ii, jj]
    var = np.arange(n_var)

    # ---- rows, as COO triplets -------------------------------------------------------------
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    upper: list[float] = []

    per_customer = np.bincount(ii, minlength=n)
    multi = per_customer >= 2
    n_multi = int(multi.sum())
    row_of = np.cumsum(multi) - 1  # customer -> its row (valid where multi)
    if n_multi:
        sel = multi[ii]
        rows.append(row_of[ii[sel]])
        cols.append(var[sel])
        vals.append(np.ones(int(sel.sum())))
        upper.extend([1.0] * n_multi)
    r = n_multi

    budget_row = contacts_row = None
    budget_scale = 1.0
    if problem.budget is not None and cc.sum() > problem.budget:
        budget_row = r
        r += 1
        budget_scale = problem.budget if problem.budget > 0 else 1.0
        nz = cc != 0
        rows.append(np.full(int(nz.sum()), budget_row))
        cols.append(var[nz])
        vals.append(cc[nz] / budget_scale)
        upper.append(problem.budget / budget_scale)
    if problem.max_contacts is not None and np.count_nonzero(per_customer) > problem.max_contacts:
        contacts_row = r
        r += 1
        rows.append(np.full(n_var, contacts_row))
        cols.append(var)
        vals.append(np.ones(n_var))
        upper.append(float(problem.max_contacts))
    cap_rows: dict[int, int] = {}  # treatment-arm position j -> row
    for j, k in enumerate(arms):
        cap = problem.arm_caps[k]
        on_j = jj == j
        if math.isfinite(cap) and on_j.sum() > cap:
            cap_rows[j] = r
            rows.append(np.full(int(on_j.sum()), r))
            cols.append(var[on_j])
            vals.append(np.ones(int(on_j.sum())))
            upper.append(float(cap))
            r += 1
    n_row = r

    if n_row:
        a = sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_row, n_var),
        )
        a.sort_indices()
        start_, index_, value_ = a.indptr, a.indices, a.data
    else:
        start_ = np.zeros(n_var + 1, dtype=np.int32)
        index_ = np.zeros(0, dtype=np.int32)
        value_ = np.zeros(0)

    lp = highspy.HighsLp()
    lp.num_col_ = n_var
    lp.num_row_ = n_row
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = obj
    lp.col_lower_ = np.zeros(n_var)
    lp.col_upper_ = np.ones(n_var)
    lp.row_lower_ = np.full(n_row, -highspy.kHighsInf)
    lp.row_upper_ = np.asarray(upper, dtype=np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n_var
    lp.a_matrix_.num_row_ = n_row
    lp.a_matrix_.start_ = start_.astype(np.int32)
    lp.a_matrix_.index_ = index_.astype(np.int32)
    lp.a_matrix_.value_ = value_.astype(np.float64)

    h = _new_highs()
    h.setOptionValue("mip_rel_gap", gap)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    h.passModel(lp)

    def set_time_limit() -> None:
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - start)
            h.setOptionValue("time_limit", max(left, 1e-3))

    # ---- 1. LP relaxation: prices ------------------------------------------------------------
    y_lam = y_mu = 0.0
    y_nu = np.zeros(arms.size)
    h.setOptionValue("solver", "ipm")  # much faster than simplex on these GUB-structured LPs
    set_time_limit()
    h.run()
    lp_ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    if lp_ok:
        dual = np.maximum(np.asarray(h.getSolution().row_dual, dtype=np.float64), 0.0)
        if budget_row is not None:
            y_lam = float(dual[budget_row]) / budget_scale
        if contacts_row is not None:
            y_mu = float(dual[contacts_row])
        for j, row in cap_rows.items():
            y_nu[j] = float(dual[row])
    h.setOptionValue("solver", "choose")

    # ---- 2. Lagrangian plan and reduced-cost fixing ------------------------------------------
    incumbent = None
    if reduce:
        from promolift.optimize.lagrangian import solve as lagrangian

        left = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 0)
        heur = lagrangian(problem, time_limit=left)
        x_heur = (heur.arm[ii] == arms[jj]).astype(np.float64)
        incumbent = heur.arm
        if not lp_ok:  # fall back on the Lagrangian prices
            y_lam, y_mu = heur.shadow_price, heur.contact_price
            y_nu = heur.arm_prices[arms].astype(np.float64)
        fix = _fixing(problem, ii, obj, cc, jj, per_customer, y_lam, y_mu, y_nu, heur.objective)
        if fix is not None:
            drop, force = fix
            idx = np.flatnonzero(drop | force)
            h.changeColsBounds(
                idx.size, idx.astype(np.int32),
                force[idx].astype(np.float64), (~drop[idx]).astype(np.float64),
            )  # fmt: skip
        h.setSolution(n_var, var.astype(np.int32), x_heur)

    # ---- 3. MIP -----------------------------------------------------------------------------
    h.changeColsIntegrality(n_var, np.arange(n_var, dtype=np.int32), np.ones(n_var, dtype=np.uint8))
    set_time_limit()
    h.run()
    status_code = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    bound = float(info.mip_dual_bound) if has_solution else math.nan
    if has_solution:
        x = np.asarray(h.getSolution().col_value)
        chosen = x > 0.5
        arm[ii[chosen]] = arms[jj[chosen]]
        status = "optimal" if status_code == highspy.HighsModelStatus.kOptimal else "feasible"
    elif incumbent is not None:
        arm, status = incumbent, "feasible"
    else:
        status = "time_limit"
    prices = zeros.copy()
    prices[arms] = y_nu
    return _finish(
        problem,
        arm,
        shadow_price=y_lam,
        contact_price=y_mu,
        arm_prices=prices,
        method="exact",
        status=status,
        bound=bound,
    )


def _fixing(
    problem: _Problem,
    ii: np.ndarray,
    obj: np.ndarray,
    cc: np.ndarray,
    jj: np.ndarray,
    per_customer: np.ndarray,
    lam: float,
    mu: float,
    nu: np.ndarray,
    incumbent: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Reduced-cost fixing from the Lagrangian bound at prices ``(lam, mu, nu) >= 0``.

    Returns boolean masks over the variables: ``drop`` (fix to 0) and ``force`` (fix to 1), or
    ``None`` if nothing can be fixed.
    """
    lam, mu = max(lam, 0.0), max(mu, 0.0)
    nu = np.maximum(nu, 0.0)
    s = obj - lam * cc - mu - nu[jj]  # adjusted value of every variable
    has = per_customer > 0
    starts = np.concatenate([[0], np.cumsum(per_customer[has])[:-1]])
    s_star = np.maximum(np.maximum.reduceat(s, starts), 0.0)  # per customer with variables
    dual = float(s_star.sum())
    if problem.budget is not None:
        dual += lam * problem.budget
    if problem.max_contacts is not None:
        dual += mu * problem.max_contacts
    caps = problem.arm_caps[problem.treatment_arms]
    finite = np.isfinite(caps)
    dual += float(np.dot(nu[finite], caps[finite]))
    slack = dual - incumbent + 1e-9 * max(1.0, abs(dual))
    if slack < 0:  # cannot happen with a feasible incumbent; be safe
        return None
    best_of = np.repeat(s_star, per_customer[has])  # s_star per variable (customer-major)
    drop = best_of - s > slack
    # customers for whom control (adjusted value 0) is out: if one variable is left, it is forced
    must = s_star > slack
    kept = np.bincount(ii[~drop], minlength=per_customer.size)
    force = ~drop & must[np.repeat(np.arange(s_star.size), per_customer[has])] & (kept[ii] == 1)
    if not drop.any() and not force.any():
        return None
    return drop, force
