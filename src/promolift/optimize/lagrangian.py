"""Lagrangian-relaxation allocator that scales to tens of millions of customers.

Every constraint is priced: ``lambda`` per unit of budget, ``mu`` per contact and ``nu_k`` per
customer on a capped arm ``k``. At given prices the problem separates by customer, who gets

    ``argmax_k  value[i, k] - lambda * cost[i, k] - mu - nu_k``   over eligible arms,

or control when no adjusted value is positive. The solver

1. finds the prices by coordinate-wise bisection: each price in turn is set to the smallest value
   at which its own constraint holds, given the others, until no price moves (with a single
   constraint one pass is exact). Each bisection works on an *active set*: customers whose choice
   is the same at both ends of the bracket cannot change inside it and are frozen, so only the
   first couple of steps touch every customer;
2. on large problems, first solves a 250k-customer random subsample for a warm start, then
   freezes every customer whose choice provably cannot change while the prices stay in a small
   box around it (a per-customer margin test) and runs step 1 on the few percent that remain,
   verifying the result with one full pass (and widening the box if the prices left it);
3. fixes the integrality gap at the threshold: the plan at the final prices leaves a little of
   each resource unused, which is filled greedily with the best remaining upgrades (by value
   gained per unit of priced resource) that still fit;
4. checks every constraint in float64 on the original data and repairs the plan if rounding ever
   pushed it over, so the budget, contact cap and arm caps are hard guarantees.

The prices are returned with the plan (:attr:`~promolift.optimize.Allocation.shadow_price` etc.):
the per-customer rule above reproduces the plan except for the few customers upgraded by the
fill, so an online service can make per-request decisions with them. The Lagrangian dual value at
those prices, computed in float64, is returned as :attr:`~promolift.optimize.Allocation.bound`,
an upper bound on the optimum.

Memory: the non-control arms are copied once, transposed to ``(K - 1, n)`` in the input's float
precision (float32 stays float32) with arms failing ``min_roi`` set to ``-inf``; evaluation reuses a
handful of ``n``-vectors and uses only branch-free numpy kernels (no masked assignment), so peak
memory is about the input plus ``2 (K - 1) n`` floats plus ~20 bytes per customer.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from promolift.optimize import Allocation, _finish, _Problem, _repair, _usage

__all__ = ["solve"]

#: Solve a random subsample first (warm start) when more customers than this are eligible.
SAMPLE_ABOVE = 1_000_000
#: Size of that subsample.
SAMPLE_SIZE = 250_000
#: Initial relative half-width of the price box used to freeze customers on large problems.
BOX_RTOL = 0.02
#: Maximum rounds of coordinate-wise price updates.
MAX_ROUNDS = 50
#: A price "moved" in a round when it changed by more than this, relatively.
PRICE_RTOL = 1e-4
#: Candidate upgrades kept per arm for the greedy fill.
FILL_PER_ARM = 20_000
#: Rounds of greedy fill.
FILL_PASSES = 2

_BUDGET, _CONTACTS = 0, 1  # resource indices; treatment arm j (0-based) is resource 2 + j


@dataclass
class _Eval:
    """Choice of every customer at some prices, and the resources it uses."""

    arg: np.ndarray  # treatment-arm index per customer, -1 = control
    usage: np.ndarray  # (2 + A,) float64: cost, contacts, count per arm


class _Work:
    """The eligible part of the problem, arms as rows so that each arm is one contiguous vector.

    ``V[j, i]`` is the value of treatment arm ``j`` for customer ``i`` (``-inf`` if it fails
    ``min_roi``; values ``<= 0`` are kept, they can never be chosen), ``C[j, i]`` its cost.
    """

    def __init__(self, V: np.ndarray, C: np.ndarray, need_cost: bool, need_counts: bool):
        self.V = V
        self.C = C
        self.need_cost = need_cost
        self.need_counts = need_counts
        self.n_arms, self.m = V.shape
        self.argdt = np.int8 if self.n_arms < 126 else np.int32
        self._bufs: dict[str, np.ndarray] = {}

    @property
    def n_resources(self) -> int:
        return 2 + self.n_arms

    def buf(self, name: str, dtype: np.dtype | type | None = None) -> np.ndarray:
        """A reusable length-``m`` scratch vector (float working dtype by default)."""
        b = self._bufs.get(name)
        if b is None:
            b = self._bufs[name] = np.empty(self.m, dtype=self.V.dtype if dtype is None else dtype)
        return b

    def release(self) -> None:
        self._bufs.clear()

    def subset(self, idx: np.ndarray) -> _Work:
        return _Work(
            np.take(self.V, idx, axis=1), np.take(self.C, idx, axis=1),
            self.need_cost, self.need_counts,
        )  # fmt: skip

    def _score(self, j: int, lam: float, off: float, out: np.ndarray) -> np.ndarray:
        """``V[j] - lam * C[j] - off`` (into ``out`` unless nothing needs computing)."""
        src = self.V[j]
        if lam != 0.0:
            np.multiply(self.C[j], -lam, out=out)
            np.add(out, src, out=out)
            src = out
        if off != 0.0:
            np.subtract(src, off, out=out)
            src = out
        return src

    def evaluate(self, y: np.ndarray) -> _Eval:
        """Each customer's best arm at prices ``y`` and the resources used."""
        lam, mu = float(y[_BUDGET]), float(y[_CONTACTS])
        best, tmp = self.buf("best"), self.buf("tmp")
        mask, t8 = self.buf("mask", np.bool_), self.buf("t8", self.argdt)
        arg = np.zeros(self.m, dtype=self.argdt)
        for j in range(self.n_arms):
            src = self._score(j, lam, float(y[2 + j]), best if j == 0 else tmp)
            if j == 0:
                if src is not best:
                    np.copyto(best, src)
                continue
            np.greater(src, best, out=mask)
            np.maximum(best, src, out=best)
            # arg = j where mask: j exceeds every index stored so far, so a max does it
            np.multiply(mask, j, out=t8, casting="unsafe")
            np.maximum(arg, t8, out=arg)
        # control (-1) when the best adjusted value minus the contact price is not positive
        np.less_equal(best, mu, out=mask)
        np.add(arg, 1, out=t8)
        np.multiply(t8, mask, out=t8, casting="unsafe")
        np.subtract(arg, t8, out=arg)
        usage = self.usage(arg)
        return _Eval(arg, usage)

    def usage(self, arg: np.ndarray) -> np.ndarray:
        """Resources used by the plan ``arg`` (float64 sums, exact per element)."""
        usage = np.zeros(self.n_resources)
        usage[_CONTACTS] = np.count_nonzero(arg >= 0)
        if not (self.need_cost or self.need_counts):
            return usage
        mask, tmp, acc = self.buf("mask", np.bool_), self.buf("tmp"), self.buf("acc")
        if self.need_cost:
            acc.fill(0)
        for j in range(self.n_arms):
            np.equal(arg, j, out=mask)
            if self.need_counts:
                usage[2 + j] = np.count_nonzero(mask)
            if self.need_cost:
                # exactly one term per customer is non-zero, so the float sum is exact
                np.multiply(self.C[j], mask, out=tmp)
                np.add(acc, tmp, out=acc)
        if self.need_cost:
            usage[_BUDGET] = float(acc.sum(dtype=np.float64))
        return usage

    def usage_of(self, arg: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Resources used by customers ``idx`` when they take ``arg[idx]`` (small ``idx``)."""
        usage = np.zeros(self.n_resources)
        a = arg[idx]
        usage[_CONTACTS] = np.count_nonzero(a >= 0)
        for j in range(self.n_arms):
            on_j = a == j
            if self.need_cost:
                usage[_BUDGET] += self.C[j, idx[on_j]].sum(dtype=np.float64)
            if self.need_counts:
                usage[2 + j] = np.count_nonzero(on_j)
        return usage

    def robust(self, y: np.ndarray, rad: np.ndarray) -> np.ndarray:
        """Choice at ``y`` for customers whose choice is the same for all prices in the box
        ``|y' - y| <= rad``; ``-2`` for the others (the active customers).

        With ``lo_k``/``hi_k`` the smallest/largest adjusted value of option ``k`` over the box
        (control is 0 at any prices), the option with the largest ``lo`` wins throughout the box
        if its ``lo`` beats every other option's ``hi``; that is the case exactly when it beats
        the second largest ``hi`` (the largest being its own).
        """
        lam, mu = float(y[_BUDGET]), float(y[_CONTACTS])
        r_lam = float(rad[_BUDGET])
        s, pad, h = self.buf("best"), self.buf("tmp"), self.buf("acc")
        mask, t8 = self.buf("mask", np.bool_), self.buf("t8", self.argdt)
        lo_best = np.zeros(self.m, self.V.dtype)  # control: 0
        top1 = np.zeros(self.m, self.V.dtype)
        top2 = np.full(self.m, -np.inf, self.V.dtype)
        idx_lo = np.zeros(self.m, self.argdt)  # option + 1; 0 = control
        for j in range(self.n_arms):
            r_off = float(rad[_CONTACTS]) + float(rad[2 + j])
            src = self._score(j, lam, mu + float(y[2 + j]), s)
            if r_lam != 0.0:
                np.multiply(self.C[j], r_lam, out=pad)
                np.add(pad, r_off, out=pad)
            else:
                pad.fill(r_off)
            np.subtract(src, pad, out=h)  # lo_j
            np.greater(h, lo_best, out=mask)
            np.maximum(lo_best, h, out=lo_best)
            np.multiply(mask, j + 1, out=t8, casting="unsafe")
            np.maximum(idx_lo, t8, out=idx_lo)
            np.add(src, pad, out=h)  # hi_j: keep the two largest
            np.minimum(top1, h, out=pad)
            np.maximum(top2, pad, out=top2)
            np.maximum(top1, h, out=top1)
        np.greater(lo_best, top2, out=mask)  # frozen
        del lo_best, top1, top2
        # frozen: idx_lo - 1; active: -2
        np.add(idx_lo, 1, out=t8)
        np.multiply(t8, mask, out=t8, casting="unsafe")
        np.subtract(t8, 2, out=idx_lo)
        return idx_lo

    def dual_value(self, y: np.ndarray, chunk: int = 1 << 20) -> float:
        """``sum_i max(0, max_k adjusted value)`` at prices ``y``, in float64 (chunked)."""
        lam, mu = float(y[_BUDGET]), float(y[_CONTACTS])
        total = 0.0
        for s in range(0, self.m, chunk):
            best = np.zeros(min(chunk, self.m - s))
            for j in range(self.n_arms):
                score = self.V[j, s : s + chunk].astype(np.float64)
                score -= lam * self.C[j, s : s + chunk].astype(np.float64)
                score -= mu + float(y[2 + j])
                np.maximum(best, score, out=best)
            total += float(best.sum())
        return total

    def upper(self, y: np.ndarray, r: int) -> float:
        """A value of price ``r`` at which resource ``r`` is certainly unused (others fixed)."""
        lam, mu = float(y[_BUDGET]), float(y[_CONTACTS])
        top = 0.0
        for j in range(self.n_arms):
            if r >= 2 and j != r - 2:
                continue
            v = self.V[j].astype(np.float64)
            if r == _BUDGET:
                pos = self.C[j] > 0
                if pos.any():
                    ratio = (v[pos] - (mu + float(y[2 + j]))) / self.C[j][pos]
                    top = max(top, float(ratio.max()))
            elif self.m:
                # adjusted value without the price being searched
                off = float(y[2 + j]) if r == _CONTACTS else mu
                top = max(top, float((v - lam * self.C[j] - off).max()))
        return top * (1 + 1e-5) + 1e-12


def _build(problem: _Problem) -> tuple[_Work, np.ndarray | None, np.ndarray]:
    """Transposed working copy; drops customers with no eligible arm if they are many.

    Arms failing ``min_roi`` are set to ``-inf``; arms with ``value <= 0`` are left as they are,
    since their adjusted value is never positive.
    """
    value, cost = problem.value, problem.cost
    n = problem.n
    arms = problem.treatment_arms
    wdt = np.result_type(value.dtype, cost.dtype, np.float32)
    V = np.empty((arms.size, n), dtype=wdt)
    C = np.empty((arms.size, n), dtype=wdt)
    alive = np.zeros(n, dtype=bool)
    ok = np.empty(n, dtype=bool)
    for j, k in enumerate(arms):
        np.copyto(V[j], value[:, k], casting="unsafe")
        np.copyto(C[j], cost[:, k], casting="unsafe")
        # value <= 0 needs no marking: such an arm can never beat control (0) at prices >= 0
        np.greater(V[j], 0, out=ok)
        if problem.min_roi is not None:
            # compared in float64 so that both solvers agree on the boundary
            ok &= value[:, k].astype(np.float64) >= problem.min_roi * cost[:, k].astype(np.float64)
            np.copyto(V[j], -np.inf, where=~ok)
        alive |= ok
    rows = None
    n_alive = int(np.count_nonzero(alive))
    if n_alive < 0.5 * n:  # otherwise the dead customers just never get an arm
        rows = np.flatnonzero(alive)
        V, C = np.take(V, rows, axis=1), np.take(C, rows, axis=1)
    need_cost = problem.budget is not None
    need_counts = bool(np.isfinite(problem.arm_caps[arms]).any())
    return _Work(V, C, need_cost, need_counts), rows, arms


def _search(
    work: _Work, y: np.ndarray, r: int, cap: np.ndarray, ev0: _Eval, deadline: float
) -> tuple[float, _Eval]:
    """Smallest price ``y[r] >= 0`` at which resource ``r`` fits, the other prices fixed.

    ``ev0`` is the evaluation at the current ``y``. Returns the price and the evaluation there.
    """

    def at(t: float, w: _Work = work) -> _Eval:
        yy = y.copy()
        yy[r] = t
        return w.evaluate(yy)

    def fits(usage: np.ndarray) -> bool:
        return bool(usage[r] <= cap[r])

    t0 = float(y[r])
    # ---- bracket [lo, hi]: lo infeasible, hi feasible -----------------------------------------
    if fits(ev0.usage):
        if t0 == 0.0:
            return 0.0, ev0
        hi, ev_hi = t0, ev0
        delta = 0.01
        while True:
            t = t0 * (1 - delta) if delta < 1 else 0.0
            ev = at(t)
            if not fits(ev.usage):
                lo, ev_lo = t, ev
                break
            hi, ev_hi = t, ev
            if t == 0.0:
                return 0.0, ev
            delta *= 8
    else:
        lo, ev_lo = t0, ev0
        t_max = None
        step = 0.01
        for _ in range(64):
            if t0 > 0 and step < 1:
                t = t0 * (1 + step)
                step *= 8
            elif t_max is None:
                t_max = work.upper(y, r)
                t = t_max if t_max > lo else 2 * lo + 1e-12
            else:
                t = 2 * t + 1e-12  # rounding at t_max: go further
            ev = at(t)
            if fits(ev.usage):
                hi, ev_hi = t, ev
                break
            lo, ev_lo = t, ev
        else:  # cannot happen with finite data; the final repair keeps the plan feasible
            return lo, ev_lo
    # ---- bisection on the customers whose choice differs between lo and hi ---------------------
    arg = ev_hi.arg.copy()
    pos = np.flatnonzero(ev_lo.arg != ev_hi.arg)
    sub = work.subset(pos)
    base = ev_hi.usage - work.usage_of(ev_hi.arg, pos)  # frozen customers' usage
    a_lo, a_hi = ev_lo.arg[pos], ev_hi.arg[pos]
    u_hi = ev_hi.usage
    rtol = max(float(8 * np.finfo(work.V.dtype).eps), 1e-10)
    while hi - lo > rtol * hi and time.perf_counter() < deadline:
        mid = math.sqrt(lo * hi) if lo > 0 and hi > 4 * lo else 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        ev = at(mid, sub)
        total = base + ev.usage
        if fits(total):
            hi, a_hi, u_hi = mid, ev.arg, total
        else:
            lo, a_lo = mid, ev.arg
        diff = a_lo != a_hi
        n_diff = int(np.count_nonzero(diff))
        if n_diff == 0:
            break
        if n_diff <= 0.5 * diff.size:
            keep, drop = np.flatnonzero(diff), np.flatnonzero(~diff)
            arg[pos[drop]] = a_hi[drop]
            base = base + sub.usage_of(a_hi, drop)
            sub = sub.subset(keep)
            pos, a_lo, a_hi = pos[keep], a_lo[keep], a_hi[keep]
    arg[pos] = a_hi
    return hi, _Eval(arg, u_hi)


def _prices(
    work: _Work, cap: np.ndarray, y0: np.ndarray, deadline: float
) -> tuple[np.ndarray, _Eval]:
    """Coordinate-wise price search: each price in turn set to its smallest feasible value.

    Each such step minimises the Lagrangian dual ``D(y)`` along one coordinate, so ``D`` never
    increases. Stops when every priced constraint has been re-optimised after all other moves
    (converged), when ``D`` has stopped decreasing for a few rounds (stalled at a kink, which
    happens with heavily tied data), at ``MAX_ROUNDS`` or at the deadline. A stopped search ends
    with raise-only steps on the violated constraints, so that the plan is feasible whenever
    possible (otherwise the final repair takes over).
    """
    y = y0.copy()
    ev = work.evaluate(y)
    finite = np.isfinite(cap)
    cons = [r for r in range(work.n_resources) if finite[r]]

    def feasible(e: _Eval) -> bool:
        return bool(np.all(e.usage[finite] <= cap[finite]))

    dual_prev, stalled = math.inf, 0
    for _ in range(MAX_ROUNDS):
        moved_at: dict[int, int] = {}  # constraint -> step at which its price moved
        searched_at: dict[int, int] = {}
        for step, r in enumerate(cons):
            if y[r] == 0.0 and ev.usage[r] <= cap[r]:
                continue
            t, ev = _search(work, y, r, cap, ev, deadline)
            searched_at[r] = step
            if abs(t - y[r]) > PRICE_RTOL * max(abs(t), abs(y[r])):
                moved_at[r] = step
            y[r] = t
            if time.perf_counter() >= deadline:
                break
        # converged when every priced constraint was re-optimised after all other moves
        stale = any(
            y[r] > 0 and any(s > searched_at.get(r, -1) for q, s in moved_at.items() if q != r)
            for r in cons
        )
        if (feasible(ev) and not stale) or time.perf_counter() >= deadline:
            return y, ev
        dual = work.dual_value(y) + float(np.dot(y[finite], cap[finite]))
        stalled = stalled + 1 if dual >= dual_prev - 1e-12 * abs(dual) else 0
        if stalled >= 3:
            break
        dual_prev = min(dual, dual_prev)
    for _ in range(3):  # raise-only clean-up: each search only raises a violated price
        for r in cons:
            if ev.usage[r] > cap[r]:
                y[r], ev = _search(work, y, r, cap, ev, deadline)
        if feasible(ev) or time.perf_counter() >= deadline:
            break
    return y, ev


def _prices_boxed(
    work: _Work, cap: np.ndarray, y0: np.ndarray, deadline: float
) -> tuple[np.ndarray, _Eval]:
    """:func:`_prices` on the customers whose choice can change near the warm start ``y0``.

    Customers whose choice is constant over the box ``|y - y0| <= BOX_RTOL * y0`` are frozen and
    their usage moved to the right-hand side. If the prices found stay inside the box they are
    exactly those of the full problem (checked with one full evaluation); otherwise the box is
    re-centred and widened. Falls back to the full search after a few attempts.
    """
    y = y0.copy()
    finite = np.isfinite(cap)
    rho = BOX_RTOL
    for _ in range(4):
        rad = np.where(finite, rho * y, 0.0)
        arg = work.robust(y, rad * 1.05)  # a little slack against float32 rounding
        active = np.flatnonzero(arg == -2)
        arg[active] = -1  # not counted in the frozen usage
        base = work.usage(arg)
        sub = work.subset(active)
        y_new, _ = _prices(sub, cap - base, y, deadline)
        del sub
        if np.all(np.abs(y_new - y) <= rad) or time.perf_counter() >= deadline:
            ev = work.evaluate(y_new)
            if all(ev.usage[finite] <= cap[finite]):
                return y_new, ev
        y = y_new
        rho *= 4
    return _prices(work, cap, y, deadline)


def _fill(work: _Work, arg: np.ndarray, y: np.ndarray, rem: np.ndarray) -> np.ndarray:
    """Greedily spend the slack left by the Lagrangian plan on the best upgrades that fit.

    Candidates are switches of a customer to an arm of higher value; they are ranked by value
    gained per unit of priced resource (``dvalue / (lambda dcost + mu dcontact + dnu)``), which
    for a budget alone is the classic value-per-cost order of the knapsack greedy. At most
    ``FILL_PER_ARM`` candidates per arm are kept; each customer changes at most once per pass.
    """
    V, C = work.V, work.C
    n_arms, m = V.shape
    arg = arg.copy()
    rem = rem.astype(np.float64).copy()
    nu_ext = np.append(np.asarray(y[2:], dtype=np.float64), 0.0)  # index -1 -> control, price 0
    treated = arg >= 0
    # value and cost of the current choice (exact: one non-zero term per customer)
    v_cur, c_cur = np.zeros(m, V.dtype), np.zeros(m, V.dtype)
    tmp, mask = work.buf("tmp"), work.buf("mask", np.bool_)
    for j in range(n_arms):
        np.equal(arg, j, out=mask)
        np.multiply(C[j], mask, out=tmp)
        c_cur += tmp
        np.maximum(V[j], 0, out=tmp)  # a chosen arm's value is > 0; this drops -inf
        tmp *= mask
        v_cur += tmp
    for _ in range(FILL_PASSES):
        keys, who, to, dvs, dcs = [], [], [], [], []
        for j in range(n_arms):
            if rem[2 + j] < 1:
                continue
            ok = V[j] > v_cur
            if work.need_cost:
                np.subtract(C[j], c_cur, out=tmp)
                # loose float filter here, exact float64 check in the loop below
                ok &= tmp <= rem[_BUDGET] * (1 + 1e-6) + 1e-9
            if rem[_CONTACTS] < 1:
                ok &= treated
            idx = np.flatnonzero(ok)
            if idx.size == 0:
                continue
            dv = V[j, idx].astype(np.float64) - v_cur[idx]
            dc = C[j, idx].astype(np.float64) - c_cur[idx]
            new = ~treated[idx]
            priced = y[_BUDGET] * dc + y[_CONTACTS] * new + nu_ext[j] - nu_ext[arg[idx]]
            with np.errstate(divide="ignore", invalid="ignore"):
                key = np.where(priced > 0, dv / priced, np.inf)
            if idx.size > FILL_PER_ARM:
                top = np.argpartition(-key, FILL_PER_ARM)[:FILL_PER_ARM]
                idx, dv, dc, key = idx[top], dv[top], dc[top], key[top]
            keys.append(key)
            who.append(idx)
            to.append(np.full(idx.size, j))
            dvs.append(dv)
            dcs.append(dc)
        if not keys:
            break
        order = np.lexsort((-np.concatenate(dvs), -np.concatenate(keys)))
        who_a = np.concatenate(who)[order]
        budget, contacts = float(rem[_BUDGET]), float(rem[_CONTACTS])
        caps = rem[2:].tolist()
        touched: set[int] = set()
        for i, j, dc, frm in zip(
            who_a.tolist(),
            np.concatenate(to)[order].tolist(),
            np.concatenate(dcs)[order].tolist(),
            arg[who_a].tolist(),
            strict=True,
        ):
            if dc > budget or caps[j] < 1 or i in touched:
                continue
            if frm < 0:
                if contacts < 1:
                    continue
                contacts -= 1
            else:
                caps[frm] += 1
            budget -= dc
            caps[j] -= 1
            touched.add(i)
            arg[i] = j
        rem[_BUDGET], rem[_CONTACTS] = budget, contacts
        rem[2:] = caps
        if not touched:
            break
        done = np.fromiter(touched, dtype=np.intp, count=len(touched))
        treated[done] = True
        v_cur[done] = V[arg[done], done]
        c_cur[done] = C[arg[done], done]
    return arg


def solve(problem: _Problem, *, time_limit: float | None = None, seed: int = 0) -> Allocation:
    """Lagrangian allocation; see :func:`promolift.optimize.allocate` for the problem.

    Parameters
    ----------
    problem : promolift.optimize._Problem
        A validated problem.
    time_limit : float, optional
        Stop refining the prices after this many seconds; the plan is still feasible.
    seed : int, default 0
        Seed of the subsample used to warm-start large problems (results are deterministic).

    Returns
    -------
    Allocation
    """
    start = time.perf_counter()
    deadline = math.inf if time_limit is None else start + time_limit
    n = problem.n
    ctrl = problem.control
    work, rows, arms = _build(problem)
    n_arms = arms.size

    cap = np.full(work.n_resources, np.inf)
    if problem.budget is not None:
        cap[_BUDGET] = problem.budget
    if problem.max_contacts is not None:
        cap[_CONTACTS] = problem.max_contacts
    cap[2:] = problem.arm_caps[arms]
    finite = np.isfinite(cap)

    y = np.zeros(work.n_resources)
    if work.m > SAMPLE_ABOVE and finite.any():
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(rng.random(work.m, dtype=np.float32) < SAMPLE_SIZE / work.m)
        y, _ = _prices(work.subset(idx), cap * (idx.size / work.m), y, deadline)
        y, ev = _prices_boxed(work, cap, y, deadline)
    else:
        y, ev = _prices(work, cap, y, deadline)
    work.release()
    bound = work.dual_value(y) + float(np.dot(y[finite], cap[finite]))

    def to_arm(a: np.ndarray) -> np.ndarray:
        out = np.full(n, ctrl, dtype=np.intp)
        treated = np.flatnonzero(a >= 0)
        out[treated if rows is None else rows[treated]] = arms[a[treated]]
        return out

    argdt = work.argdt

    def to_arg(arm: np.ndarray) -> np.ndarray:
        col2arg = np.full(problem.n_arms, -1, dtype=argdt)
        col2arg[arms] = np.arange(n_arms)
        return col2arg[arm if rows is None else arm[rows]]

    arg = ev.arg
    status = "feasible" if np.any(y > 0) else "optimal"
    # Slack left by the plan, less a hair so that float64 rounding in the final check (another
    # summation order) can never tip the budget over.
    margin = np.zeros(work.n_resources)
    if finite[_BUDGET]:
        margin[_BUDGET] = 1e-11 * max(cap[_BUDGET], 1.0)
    rem = cap - ev.usage - margin
    if np.any(rem < 0):
        # prices not converged (time limit) or rounding: repair on the original data
        arm = _repair(problem, to_arm(arg))
        usage = _usage(problem, arm)
        arg = to_arg(arm)
        used = np.concatenate(
            [[usage.total_cost, usage.n_contacts], usage.counts[arms].astype(np.float64)]
        )
        rem = cap - used - margin
        status = "feasible"
    if status != "optimal" and np.any(rem[finite] > 0):
        arg = _fill(work, arg, y, rem)
    work.release()
    arm = to_arm(arg)
    del work, ev, arg
    prices = np.zeros(problem.n_arms)
    prices[arms] = y[2:]
    return _finish(
        problem,
        arm,
        shadow_price=y[_BUDGET],
        contact_price=y[_CONTACTS],
        arm_prices=prices,
        method="lagrangian",
        status=status,
        bound=bound,
    )
