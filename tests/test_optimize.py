"""Tests of promolift.optimize: the Lagrangian and exact allocators."""

from __future__ import annotations

import dataclasses
import doctest
import itertools

import numpy as np
import pytest

import promolift.optimize as optimize
from promolift.errors import DataError
from promolift.optimize import Allocation, allocate, available_methods
from promolift.optimize import exact as exact_mod
from promolift.optimize import lagrangian as lagrangian_mod

METHODS = ["lagrangian", "exact"]


# ---------------------------------------------------------------------------------------------
# helpers


def uplift_like(n: int, n_arms: int, seed: int, *, correlated: bool = True, dtype=np.float64):
    """Random value/cost with control column 0; correlated like real uplift data if asked."""
    rng = np.random.default_rng(seed)
    if correlated:
        base = np.linspace(0.0, 10.0, n_arms)
        basket = rng.lognormal(0.0, 0.5, size=(n, 1))
        cost = base * basket * rng.uniform(0.05, 0.6, size=(n, n_arms))
        roi = rng.normal(0.6, 0.8, size=(n, 1)) - np.linspace(0, 0.45, n_arms)
        value = cost * (roi + rng.normal(0.0, 0.4, size=(n, n_arms)))
    else:
        cost = rng.gamma(2.0, 1.0, size=(n, n_arms))
        value = (
            cost * rng.normal(1.2, 0.5, size=(n, n_arms)) - 0.5 + rng.normal(0, 0.5, (n, n_arms))
        )
    value[:, 0] = 0.0
    cost[:, 0] = 0.0
    return value.astype(dtype), cost.astype(dtype)


def unconstrained(value: np.ndarray, cost: np.ndarray, control: int = 0) -> np.ndarray:
    """Every customer's best positive arm (control if none)."""
    v = value.astype(np.float64).copy()
    v[:, control] = 0.0
    best = v.argmax(axis=1)
    return np.where(v[np.arange(len(v)), best] > 0, best, control)


def check_feasible(plan: Allocation, value, cost, *, budget=None, max_contacts=None,
                   arm_caps=None, min_roi=None, control=0) -> None:  # fmt: skip
    """Every hard guarantee of an allocation, recomputed from scratch."""
    n, k = value.shape
    arm = plan.arm
    assert arm.shape == (n,) and np.issubdtype(arm.dtype, np.integer)
    assert ((arm >= 0) & (arm < k)).all()
    treated = np.flatnonzero(arm != control)
    v = value[treated, arm[treated]].astype(np.float64)
    c = cost[treated, arm[treated]].astype(np.float64)
    assert (v > 0).all(), "an arm with value <= 0 was assigned"
    assert plan.objective == pytest.approx(v.sum(), rel=1e-9, abs=1e-9)
    assert plan.total_cost == pytest.approx(c.sum(), rel=1e-9, abs=1e-9)
    assert plan.n_contacts == treated.size
    if budget is not None:
        assert c.sum() <= budget, f"budget exceeded: {c.sum()!r} > {budget!r}"
    if max_contacts is not None:
        assert treated.size <= max_contacts
    if arm_caps is not None:
        caps = dict(arm_caps) if isinstance(arm_caps, dict) else dict(enumerate(arm_caps))
        counts = np.bincount(arm[treated], minlength=k)
        for a, cap in caps.items():
            if cap is not None and a != control:
                assert counts[a] <= cap, f"arm {a}: {counts[a]} > cap {cap}"
    if min_roi is not None:
        assert (v >= min_roi * c).all()
    assert plan.arm_prices.shape == (k,)
    assert plan.shadow_price >= 0 and plan.contact_price >= 0 and (plan.arm_prices >= 0).all()


def brute_force(value, cost, *, budget=None, max_contacts=None, arm_caps=None, min_roi=None):
    """Optimum by enumeration (control = 0), for tiny instances."""
    n, k = value.shape
    caps = arm_caps or [None] * k
    best = 0.0
    for plan in itertools.product(range(k), repeat=n):
        p = np.array(plan)
        t = np.flatnonzero(p != 0)
        v, c = value[t, p[t]], cost[t, p[t]]
        if (v <= 0).any() or (min_roi is not None and (v < min_roi * c).any()):
            continue
        if budget is not None and c.sum() > budget:
            continue
        if max_contacts is not None and t.size > max_contacts:
            continue
        counts = np.bincount(p[t], minlength=k)
        if any(cap is not None and counts[a] > cap for a, cap in enumerate(caps) if a):
            continue
        best = max(best, float(v.sum()))
    return best


@pytest.fixture
def fast_exact(monkeypatch):
    """Exact solver stopping at a 1e-4 gap: its ``bound`` still bounds the optimum."""
    monkeypatch.setattr(exact_mod, "MIP_REL_GAP", 1e-4)


# ---------------------------------------------------------------------------------------------
# known optimum


VALUE = np.array([[0.0, 5.0, 9.0], [0.0, 4.0, 6.0], [0.0, -1.0, 3.0]])
COST = np.array([[0.0, 1.0, 4.0], [0.0, 1.0, 3.0], [0.0, 1.0, 2.0]])


@pytest.mark.parametrize("method", METHODS)
def test_tiny_known_optimum(method):
    plan = allocate(VALUE, COST, budget=7.0, method=method)
    assert plan.arm.tolist() == [2, 1, 2]
    assert plan.objective == 16.0 and plan.total_cost == 7.0 and plan.n_contacts == 3
    assert plan.status == "optimal" and plan.method == method
    # lambda = 1 is the price at which customer 1 switches from arm 2 to arm 1
    assert plan.shadow_price == pytest.approx(1.0, abs=1e-6) or method == "exact"


def test_tiny_knapsack_gap_exact_vs_lagrangian():
    # budget 5: the optimum [2, 1, 0] (13) leaves out customer 2 although its ratio is better
    ex = allocate(VALUE, COST, budget=5.0, method="exact")
    assert ex.arm.tolist() == [2, 1, 0] and ex.objective == 13.0 and ex.status == "optimal"
    lag = allocate(VALUE, COST, budget=5.0)
    check_feasible(lag, VALUE, COST, budget=5.0)
    # the greedy loses at most one customer's value on a 3-customer toy, and knows it
    assert 13.0 - VALUE.max() <= lag.objective <= 13.0
    assert lag.bound >= 13.0 - 1e-9
    assert lag.shadow_price == pytest.approx(4 / 3, rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_contacts_and_arm_caps_known_optimum(method):
    value = np.array([[0, 10, 12], [0, 8, 9], [0, 6, 11], [0, 3, -1]], dtype=float)
    cost = np.ones_like(value)
    # two contacts, one customer on arm 2: customer 0 -> arm 1, customer 2 -> arm 2
    plan = allocate(value, cost, max_contacts=2, arm_caps={2: 1}, method=method)
    assert plan.objective == 21.0
    treated = np.flatnonzero(plan.arm)
    assert treated.tolist() == [0, 2] and plan.arm[treated].tolist() == [1, 2]
    plan = allocate(value, cost, arm_caps=[None, None, 1], method=method)
    assert plan.objective == 32.0 and plan.arm.tolist() == [1, 1, 2, 1]


def test_exact_matches_brute_force_on_tiny_random_instances():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n, k = int(rng.integers(1, 7)), int(rng.integers(2, 4))
        value = np.round(rng.normal(2, 3, (n, k)), 1)
        cost = np.round(rng.uniform(0, 4, (n, k)), 1)
        kw = {
            "budget": float(rng.uniform(0, 8)),
            "max_contacts": int(rng.integers(0, n + 1)) if rng.random() < 0.5 else None,
            "arm_caps": [None] + [int(rng.integers(0, 3)) for _ in range(k - 1)]
            if rng.random() < 0.5
            else None,
            "min_roi": 0.5 if rng.random() < 0.3 else None,
        }
        best = brute_force(value, cost, **kw)
        ex = allocate(value, cost, method="exact", **kw)
        check_feasible(ex, value, cost, **kw)
        assert ex.objective == pytest.approx(best, abs=1e-6)
        lag = allocate(value, cost, **kw)
        check_feasible(lag, value, cost, **kw)
        assert lag.objective <= best + 1e-9
        assert lag.bound >= best - 1e-9  # the dual value bounds the optimum


# ---------------------------------------------------------------------------------------------
# hard guarantees on many random instances


@pytest.mark.parametrize("method", METHODS)
def test_constraints_never_violated(method):
    rng = np.random.default_rng(11 if method == "exact" else 12)
    n_cases = 30 if method == "exact" else 80
    for case in range(n_cases):
        n = int(rng.integers(1, 80 if method == "exact" else 400))
        k = int(rng.integers(2, 6))
        if case % 3 == 0:  # integers: lots of exact ties at the threshold
            value = rng.integers(-3, 8, (n, k)).astype(float)
            cost = rng.integers(0, 4, (n, k)).astype(float)
        else:
            value, cost = uplift_like(n, k, int(rng.integers(1 << 30)), correlated=case % 2 == 0)
        spend = cost[np.arange(n), unconstrained(value, cost)].sum()
        budget = float(rng.choice([0.0, 1e-3, 0.05, 0.3, 0.9, 2.0]) * spend)
        kw = {"budget": budget}
        if case % 4 == 1:
            kw["max_contacts"] = int(rng.integers(0, n + 1))
        if case % 5 == 2:
            kw["arm_caps"] = [None] + [int(rng.integers(0, max(2, n // 3))) for _ in range(k - 1)]
        plan = allocate(value, cost, method=method, **kw)
        check_feasible(plan, value, cost, **kw)
        assert plan.bound >= plan.objective - 1e-6 * max(1.0, abs(plan.objective))


def test_budget_respected_with_float32_inputs():
    value, cost = uplift_like(5000, 5, 3, dtype=np.float32)
    for frac in (0.01, 0.1, 0.5):
        budget = float(frac * cost.astype(np.float64).sum() / 5)
        plan = allocate(value, cost, budget=budget)
        check_feasible(plan, value, cost, budget=budget)
        assert plan.total_cost <= budget
        assert plan.total_cost >= 0.99 * budget  # and the budget is (almost) all used


def test_contact_cap_and_arm_caps_respected_and_priced():
    value, cost = uplift_like(3000, 4, 5)
    caps = {1: 150, 3: 100}
    plan = allocate(value, cost, max_contacts=400, arm_caps=caps)
    check_feasible(plan, value, cost, max_contacts=400, arm_caps=caps)
    counts = np.bincount(plan.arm, minlength=4)
    assert plan.n_contacts == 400 and plan.contact_price > 0
    for a, cap in caps.items():
        assert counts[a] <= cap
        if plan.arm_prices[a] > 0:
            assert counts[a] == cap  # complementary slackness: priced caps are full
    assert plan.arm_prices[0] == 0 and plan.arm_prices[2] == 0


# ---------------------------------------------------------------------------------------------
# quality: Lagrangian within 0.5% of the exact optimum


@pytest.mark.parametrize("seed", range(20))
def test_lagrangian_within_half_percent_of_exact(seed, fast_exact):
    tightness = [0.05, 0.15, 0.3, 0.6][seed % 4]
    value, cost = uplift_like(2000, 4, seed, correlated=seed % 2 == 0)
    spend = cost[np.arange(2000), unconstrained(value, cost)].sum()
    kw = {"budget": tightness * spend}
    if seed % 5 == 3:
        kw["max_contacts"] = int(0.6 * np.count_nonzero(unconstrained(value, cost)))
    if seed % 5 == 4:
        kw["arm_caps"] = [None, None, 80, 40]
    lag = allocate(value, cost, **kw)
    ex = allocate(value, cost, method="exact", **kw)
    check_feasible(lag, value, cost, **kw)
    check_feasible(ex, value, cost, **kw)
    assert lag.shadow_price > 0  # the budget binds
    # ex.bound >= optimum (HiGHS dual bound), so this is "within 0.5% of the optimum"
    assert lag.objective >= (1 - 0.005) * ex.bound
    assert lag.objective <= ex.bound + 1e-6


def test_exact_reduction_does_not_change_the_optimum():
    for seed in range(4):
        value, cost = uplift_like(150, 4, 100 + seed, correlated=bool(seed % 2))
        spend = cost[np.arange(150), unconstrained(value, cost)].sum()
        problem = optimize._validate(
            value, cost, budget=0.2 * spend, max_contacts=60 if seed >= 2 else None,
            arm_caps=[None, None, 10, None] if seed == 3 else None, min_roi=None, control=0,
        )  # fmt: skip
        full = exact_mod.solve(problem, reduce=False)
        reduced = exact_mod.solve(problem, reduce=True)
        assert reduced.objective == pytest.approx(full.objective, rel=2e-6)


# ---------------------------------------------------------------------------------------------
# prices


def test_shadow_price_reproduces_the_plan():
    value, cost = uplift_like(20000, 5, 21)
    budget = 0.2 * cost[np.arange(20000), unconstrained(value, cost)].sum()
    plan = allocate(value, cost, budget=budget)
    # the online rule: best arm by value - lambda * cost, control unless positive
    adjusted = value - plan.shadow_price * cost
    adjusted[:, 0] = 0.0
    adjusted[value <= 0] = -np.inf
    rule = adjusted.argmax(axis=1)
    rule[adjusted[np.arange(20000), rule] <= 0] = 0
    assert np.count_nonzero(rule != plan.arm) <= 20  # only the threshold customers differ
    rule_cost = cost[np.arange(20000), rule].sum()
    assert rule_cost == pytest.approx(budget, rel=1e-3)


def test_exact_reports_lp_prices_close_to_lagrangian(fast_exact):
    value, cost = uplift_like(2000, 4, 3)
    budget = 0.2 * cost[np.arange(2000), unconstrained(value, cost)].sum()
    lag = allocate(value, cost, budget=budget)
    ex = allocate(value, cost, budget=budget, method="exact")
    assert ex.shadow_price == pytest.approx(lag.shadow_price, rel=1e-2)


def test_large_problem_path_with_subsample_warm_start(monkeypatch):
    value, cost = uplift_like(30000, 5, 8, dtype=np.float32)
    spend = cost.astype(np.float64)[np.arange(30000), unconstrained(value, cost)].sum()
    kw = {"budget": 0.3 * spend, "max_contacts": 6000}
    direct = allocate(value, cost, **kw)
    monkeypatch.setattr(lagrangian_mod, "SAMPLE_ABOVE", 1000)
    monkeypatch.setattr(lagrangian_mod, "SAMPLE_SIZE", 3000)
    boxed = allocate(value, cost, **kw)
    check_feasible(boxed, value, cost, **kw)
    assert boxed.contact_price > 0 and boxed.shadow_price > 0
    assert boxed.objective == pytest.approx(direct.objective, rel=1e-4)
    assert boxed.shadow_price == pytest.approx(direct.shadow_price, rel=1e-2)


# ---------------------------------------------------------------------------------------------
# special cases


@pytest.mark.parametrize("method", METHODS)
def test_no_constraints_gives_everyone_their_best_positive_arm(method):
    value, cost = uplift_like(500, 4, 2)
    plan = allocate(value, cost, method=method)
    assert (plan.arm == unconstrained(value, cost)).all()
    assert plan.status == "optimal" and plan.shadow_price == 0 and plan.contact_price == 0
    loose = allocate(value, cost, budget=1e12, max_contacts=10**9, method=method)
    assert (loose.arm == plan.arm).all() and loose.shadow_price == 0


@pytest.mark.parametrize("method", METHODS)
def test_min_roi_is_per_customer_arm_eligibility(method):
    value, cost = uplift_like(400, 4, 9)
    plan = allocate(value, cost, min_roi=0.8, method=method)
    check_feasible(plan, value, cost, min_roi=0.8)
    masked = np.where(value >= 0.8 * cost, value, -1.0)
    assert (plan.arm == unconstrained(masked, cost)).all()
    budget = 0.3 * plan.total_cost
    tight = allocate(value, cost, min_roi=0.8, budget=budget, method=method)
    check_feasible(tight, value, cost, min_roi=0.8, budget=budget)


@pytest.mark.parametrize("method", METHODS)
def test_all_negative_values_mean_everyone_control(method):
    rng = np.random.default_rng(0)
    value = -rng.uniform(0.1, 5, (50, 3))
    cost = rng.uniform(0, 1, (50, 3))
    plan = allocate(value, cost, budget=100.0, method=method)
    assert (plan.arm == 0).all()
    assert plan.objective == 0 and plan.total_cost == 0 and plan.n_contacts == 0
    assert plan.status == "optimal"


@pytest.mark.parametrize("method", METHODS)
def test_control_column_is_ignored_and_can_be_anywhere(method):
    value, cost = uplift_like(300, 4, 4)
    ref = allocate(value, cost, budget=50.0, method=method)
    # move control to the last column and fill it with garbage
    v2, c2 = np.roll(value, -1, axis=1), np.roll(cost, -1, axis=1)
    v2[:, 3], c2[:, 3] = np.nan, -np.inf
    plan = allocate(v2, c2, budget=50.0, control=3, method=method)
    assert ((plan.arm + 1) % 4 == ref.arm).all()
    assert plan.objective == pytest.approx(ref.objective)


def test_mostly_hopeless_customers_are_compacted_away(fast_exact):
    value, cost = uplift_like(4000, 4, 12)
    hopeless = np.random.default_rng(0).random(4000) < 0.8
    value[hopeless] = -np.abs(value[hopeless]) - 0.1  # nobody to gain from 80% of customers
    budget = 0.3 * cost[np.arange(4000), unconstrained(value, cost)].sum()
    lag = allocate(value, cost, budget=budget, arm_caps=[5, None, 30, None])  # control cap ignored
    ex = allocate(value, cost, budget=budget, arm_caps=[5, None, 30, None], method="exact")
    check_feasible(lag, value, cost, budget=budget, arm_caps={2: 30})
    assert (lag.arm[hopeless] == 0).all()
    assert lag.objective >= (1 - 0.005) * ex.bound


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_shapes(method):
    empty = allocate(np.zeros((0, 3)), np.zeros((0, 3)), budget=5.0, method=method)
    assert empty.arm.shape == (0,) and empty.objective == 0
    only_control = allocate(np.ones((4, 1)), np.ones((4, 1)), method=method)
    assert (only_control.arm == 0).all()
    zero_budget = allocate([[0, 3, 5]], [[0, 0, 1]], budget=0.0, method=method)
    assert zero_budget.arm.tolist() == [1]  # the free arm is still given


@pytest.mark.parametrize("method", METHODS)
def test_time_limit_still_returns_a_feasible_plan(method):
    value, cost = uplift_like(3000, 4, 6)
    kw = {"budget": 100.0, "max_contacts": 300, "arm_caps": [None, 50, 50, 50]}
    plan = allocate(value, cost, time_limit=1e-6, method=method, **kw)
    check_feasible(plan, value, cost, **kw)


def test_final_check_repairs_a_broken_plan(monkeypatch):
    value, cost = uplift_like(1000, 4, 1)
    budget = 30.0

    def broken_fill(work, arg, y, rem):
        return np.where(arg >= 0, arg, 0).astype(arg.dtype)  # treat everybody: way over budget

    monkeypatch.setattr(lagrangian_mod, "_fill", broken_fill)
    plan = allocate(value, cost, budget=budget, max_contacts=200, arm_caps=[None, 20, 20, 20])
    check_feasible(plan, value, cost, budget=budget, max_contacts=200, arm_caps=[None, 20, 20, 20])
    assert plan.status == "feasible"


# ---------------------------------------------------------------------------------------------
# API and validation


def test_api_surface():
    assert set(optimize.__all__) == {"Allocation", "allocate", "assign_at_prices", "available_methods"}
    assert all(isinstance(name, str) for name in optimize.__all__)
    assert available_methods() == ["exact", "lagrangian"]
    plan = allocate(VALUE, COST, budget=7.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.objective = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        allocate(VALUE, COST, 7.0)  # type: ignore[misc]  # constraints are keyword-only


def test_docstring_example_runs():
    result = doctest.testmod(optimize, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match=r"'exact', 'lagrangian'.*Did you mean 'exact'"):
        allocate(VALUE, COST, method="exakt")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cost": np.zeros((3, 4))}, r"value has shape \(3, 3\) but cost has shape \(3, 4\)"),
        ({"value": np.zeros(3)}, r"2-D .* got shape \(3,\)"),
        ({"value": [["a", "b"]], "cost": [[0, 1]]}, "numeric"),
        ({"budget": -1.0}, "budget must be >= 0"),
        ({"budget": float("nan")}, "budget must be a number"),
        ({"control": 3}, "control index 3 is out of range for 3 arms"),
        ({"control": -1}, "control index -1 is out of range"),
        ({"max_contacts": -2}, "max_contacts must be >= 0"),
        ({"max_contacts": 2.5}, "whole number"),
        ({"arm_caps": [None, 1]}, "arm_caps has 2 entries but there are 3 arms"),
        ({"arm_caps": {5: 1}}, "arm index 5"),
        ({"arm_caps": {1: -1}}, r"arm_caps\[1\] must be >= 0"),
        ({"arm_caps": 3}, "sequence of per-arm caps or a dict"),
        ({"min_roi": float("inf")}, "min_roi must be finite"),
        ({"time_limit": 0}, "time_limit must be a positive"),
    ],
)
def test_invalid_inputs_raise_data_error(kwargs, match):
    args = {"value": VALUE, "cost": COST, **kwargs}
    with pytest.raises(DataError, match=match):
        allocate(args.pop("value"), args.pop("cost"), **args)


def test_non_finite_entries_are_counted_and_located():
    value = VALUE.copy()
    value[1, 2] = np.nan
    value[2, 1] = np.inf
    with pytest.raises(DataError, match=r"value has 2 non-finite .* first is at row 1, arm 2"):
        allocate(value, COST)
    cost = COST.copy()
    cost[2, 2] = -np.inf
    with pytest.raises(DataError, match=r"cost has 1 non-finite .* row 2, arm 2"):
        allocate(VALUE, cost)


def test_negative_costs_are_rejected():
    cost = COST.copy()
    cost[0, 1] = -0.5
    cost[2, 2] = -1.0
    with pytest.raises(DataError, match=r"2 negative entries; the first is at row 0, arm 1"):
        allocate(VALUE, cost)
    with pytest.raises(ValueError):  # DataError is a ValueError
        allocate(VALUE, cost)


def test_assign_at_prices_reproduces_a_lagrangian_plan():
    from promolift.optimize import assign_at_prices

    rng = np.random.default_rng(3)
    value, cost = rng.normal(1.0, 1.0, (2000, 4)), rng.uniform(0.5, 2.0, (2000, 4))
    value[:, 0] = cost[:, 0] = 0.0
    plan = allocate(value, cost, budget=600.0, max_contacts=700, arm_caps=[None, 200, None, None])
    arm = assign_at_prices(value, cost, shadow_price=plan.shadow_price, contact_price=plan.contact_price,
                           arm_prices=plan.arm_prices)
    assert plan.shadow_price > 0 or plan.contact_price > 0
    # only the solver's repair and greedy fill near the price threshold differ from the rule
    assert np.mean(arm != plan.arm) < 0.01
    rule_value = value[np.arange(len(arm)), arm].sum()
    assert abs(rule_value - plan.objective) < 0.01 * plan.objective
    assert (assign_at_prices(value, cost) == value.argmax(axis=1)).all()
    with pytest.raises(ValueError, match="one price per arm"):
        assign_at_prices(value, cost, arm_prices=[0.0, 1.0])
