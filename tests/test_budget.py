"""Budget pacing stores: semantics, money rounding, persistence and races, on real stores.

The SQLite store runs on a file in ``tmp_path``; the Redis store on the real ``redis-server``
started by the ``redis_url`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import uuid

import numpy as np
import pytest

from promolift.errors import ConfigError, DataError
from promolift.serve.budget import (
    MAX_DOLLARS,
    BudgetStore,
    BudgetStoreUnavailableError,
    RedisBudgetStore,
    SQLiteBudgetStore,
    _amounts_to_micros,
    _budget_to_micros,
    _fit_in_order,
    open_budget_store,
)


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/budget.db"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def store(store_url):
    with open_budget_store(store_url) as s:
        yield s


@pytest.fixture
def campaign() -> str:
    """A fresh campaign name, so tests sharing the session's Redis server never collide."""
    return f"test-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- money


def test_amounts_round_up_to_micro_dollars_but_float_noise_is_not_rounded():
    assert _amounts_to_micros([0.1, 0.2, 0.3, 1.005, 123456.789012, 0.0]).tolist() == [
        100_000, 200_000, 300_000, 1_005_000, 123_456_789_012, 0]
    # genuine fractions of a micro-dollar are rounded up, never down
    assert _amounts_to_micros([1e-7, 1.0000001, 2.0000000001, 1e-300]).tolist() == [
        1, 1_000_001, 2_000_001, 1]
    # every whole number of micro-dollars up to $1e9 survives the float round trip exactly
    k = np.random.default_rng(0).integers(0, 10**15, 200_000)
    assert np.array_equal(_amounts_to_micros(k / 1e6), k)


def test_budget_rounds_down_to_micro_dollars():
    assert _budget_to_micros(0.3) == 300_000
    assert _budget_to_micros(1.0000009) == 1_000_000
    assert _budget_to_micros(0.0) == 0
    assert _budget_to_micros(-5.0) == 0
    k = np.random.default_rng(1).integers(0, 10**15, 2_000).tolist()
    assert [_budget_to_micros(x / 1e6) for x in k] == k


def _fit_reference(micros: list[int], remaining: int) -> list[bool]:
    out = []
    for m in micros:
        out.append(m <= remaining)
        if m <= remaining:
            remaining -= m
    return out


@pytest.mark.parametrize("seed", range(30))
def test_vectorised_in_order_fit_matches_the_sequential_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 5, 50, 2_000]))
    micros = rng.integers(0, 1_000, n) * rng.choice([0, 1], n, p=[0.1, 0.9])
    micros[rng.random(n) < 0.05] = 10**6  # a few amounts that never fit
    remaining = int(rng.integers(0, micros.sum() + 2))
    accepted, left = _fit_in_order(micros.astype(np.int64), remaining)
    expected = _fit_reference(micros.tolist(), remaining)
    assert accepted.tolist() == expected
    assert left == remaining - int(micros[np.array(expected, dtype=bool)].sum())


# --------------------------------------------------------------------------- semantics


def test_both_stores_implement_the_protocol(store):
    assert isinstance(store, BudgetStore)


def test_commit_is_in_order_and_all_or_nothing_per_amount(store, campaign):
    assert store.spent(campaign) == 0.0
    assert store.commit(campaign, [3.0, 2.5, 1.0], budget=5.0) == [True, False, True]
    assert store.spent(campaign) == 4.0
    assert store.remaining(campaign, 5.0) == 1.0
    assert store.commit(campaign, np.array([1.5, 1.0, 0.01]), budget=5.0) == [False, True, False]
    assert store.spent(campaign) == 5.0


def test_exact_at_the_boundary_in_micro_dollars(store, campaign):
    # 0.1 + 0.2 > 0.3 in floats; in micro-dollars it is exactly the budget
    assert store.commit(campaign, [0.1, 0.2], budget=0.3) == [True, True]
    assert store.commit(campaign, [0.000001], budget=0.3) == [False]
    assert store.spent(campaign) == pytest.approx(0.3, abs=0)
    # a fraction of a micro-dollar counts as a whole one
    other = campaign + "-fractions"
    assert store.commit(other, [1e-7, 1e-7, 1e-7], budget=0.000002) == [True, True, False]
    assert store.spent(other) == 0.000002


def test_zero_amounts_always_commit_and_budgets_at_or_below_zero_commit_nothing(store, campaign):
    assert store.commit(campaign, [], budget=10.0) == []
    assert store.commit(campaign, [1.0, 0.0], budget=0.0) == [False, True]
    assert store.commit(campaign, [1.0, 0.0], budget=-5.0) == [False, True]
    assert store.spent(campaign) == 0.0
    assert store.commit(campaign, [4.0], budget=5.0) == [True]
    # the budget was lowered below what is already committed
    assert store.commit(campaign, [0.5, 0.0], budget=3.0) == [False, True]
    assert store.remaining(campaign, 3.0) == 0.0
    assert store.spent(campaign) == 4.0


def test_campaigns_are_counted_separately(store, campaign):
    store.commit(campaign + "-a", [2.0], budget=2.0)
    assert store.commit(campaign + "-b", [2.0], budget=2.0) == [True]
    assert store.spent(campaign + "-a") == store.spent(campaign + "-b") == 2.0


@pytest.mark.parametrize(("amounts", "budget", "match"), [
    ([1.0, -0.5], 10.0, r"amounts\[1\] = -0.5.*>= 0"),
    ([float("nan")], 10.0, r"amounts\[0\] = nan"),
    ([float("inf")], 10.0, r"amounts\[0\] = inf"),
    ([MAX_DOLLARS * 2], 10.0, r"largest countable amount"),
    ([[1.0, 2.0]], 10.0, r"flat sequence"),
    (["ten"], 10.0, r"must be numbers"),
    ([1.0], float("nan"), r"finite number of dollars"),
    ([1.0], "lots", r"budget must be a number"),
])
def test_bad_input_is_a_data_error_and_commits_nothing(store, campaign, amounts, budget, match):
    with pytest.raises(DataError, match=match):
        store.commit(campaign, amounts, budget)
    assert store.spent(campaign) == 0.0


def test_bad_campaign_name_is_a_data_error(store):
    with pytest.raises(DataError, match="campaign must be a non-empty string"):
        store.commit("", [1.0], 10.0)


def test_spend_persists_across_reopen_and_a_closed_store_refuses(store_url, campaign):
    with open_budget_store(store_url) as first:
        first.commit(campaign, [1.25, 2.5], budget=10.0)
    with pytest.raises(BudgetStoreUnavailableError, match="is closed"):
        first.commit(campaign, [1.0], budget=10.0)
    with open_budget_store(store_url) as second:
        assert second.spent(campaign) == 3.75
        assert second.commit(campaign, [6.25, 0.01], budget=10.0) == [True, False]


def test_sqlite_ledger_reconciles_with_spent(tmp_path, campaign):
    with SQLiteBudgetStore(tmp_path / "b.db") as store:
        store.commit(campaign, [1.0, 0.0, 2.5, 9.0], budget=5.0)
        store.commit("other", [0.75], budget=5.0)
        ledger = store.ledger(campaign)
        assert ledger["amount"].tolist() == [1.0, 2.5]  # zeros and rejected amounts not recorded
        assert ledger["amount"].sum() == store.spent(campaign)
        assert len(store.ledger()) == 3
        assert str(ledger["committed_at"].dt.tz) == "UTC"


def test_sqlite_store_survives_fork(tmp_path, campaign):
    url = f"sqlite:///{tmp_path}/b.db"
    with open_budget_store(url) as store:
        store.commit(campaign, [1.0], budget=10.0)
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=_commit_once, args=(store, campaign))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert store.commit(campaign, [1.0], budget=10.0) == [True]  # parent's connection intact
        assert store.spent(campaign) == 4.0


def _commit_once(store, campaign):
    assert store.commit(campaign, [2.0], budget=10.0) == [True]


# --------------------------------------------------------------------------- errors


def test_open_rejects_unknown_schemes_naming_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"unknown scheme; use sqlite:///path.*redis://host"):
        open_budget_store("postgres://db/budget")
    with pytest.raises(ConfigError, match=r"Did you mean 'sqlite:///budget.db'\?"):
        open_budget_store("budget.db")
    with pytest.raises(ConfigError, match="in-memory database cannot be shared"):
        open_budget_store("sqlite:///:memory:")
    with pytest.raises(ConfigError, match=r"only SQLite option is \?durable=0"):
        open_budget_store("sqlite:///budget.db?fsync=yes")


def test_sqlite_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(BudgetStoreUnavailableError, match=r"directory .*missing.* does not exist"):
        open_budget_store(f"sqlite:///{tmp_path}/missing/budget.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(BudgetStoreUnavailableError, match=r"junk\.db.*not a database"):
        open_budget_store(f"sqlite:///{junk}")


def test_sqlite_relative_url_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_budget_store() as store:
        store.commit("c", [1.0], budget=1.0)
    assert (tmp_path / "promolift-budget.db").is_file()
    with open_budget_store("sqlite:///promolift-budget.db") as store:
        assert store.spent("c") == 1.0
    with open_budget_store("sqlite:///promolift-budget.db?durable=1") as store:
        assert store.durable and store.commit("c", [0.5], budget=2.0) == [True]
    conn = sqlite3.connect(tmp_path / "promolift-budget.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_unreachable_redis_is_a_config_error_naming_the_url_without_password():
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    with pytest.raises(ConfigError, match=rf"redis://:\*\*\*@127.0.0.1:{port}/0.*redis-server is "
                                          r"running") as info:
        RedisBudgetStore(url, timeout=1.0)
    assert "s3cret" not in str(info.value)


# --------------------------------------------------------------------------- races


def _race(store, campaign: str, budget: float, seed: int, start=None) -> int:
    """Commit random cent amounts until not a cent of the budget is left; return cents won."""
    rng = np.random.default_rng(seed)
    if start is not None:
        start.wait()
    won = 0
    for _ in range(5_000):
        cents = rng.integers(1, 51, 1 if rng.random() < 0.7 else 3)
        accepted = np.array(store.commit(campaign, (cents / 100).tolist(), budget), dtype=bool)
        won += int(cents[accepted].sum())
        if store.remaining(campaign, budget) < 0.01:
            break
    return won


def _race_process(url, campaign, budget, seed, start, results):
    with open_budget_store(url) as store:
        results.put(_race(store, campaign, budget, seed, start))


def _check_race(store, campaign: str, budget: float, won: list[int]) -> None:
    total = sum(won)
    assert store.spent(campaign) * 100 == pytest.approx(total, abs=1e-6)  # nothing lost or extra
    assert store.spent(campaign) <= budget  # never above
    assert budget - store.spent(campaign) < 0.01  # and used up to the last cent
    assert sum(w > 0 for w in won) >= len(won) // 2  # the clients really competed
    if isinstance(store, SQLiteBudgetStore):
        assert store.ledger(campaign)["amount"].sum() * 100 == pytest.approx(total, abs=1e-6)


def test_threads_racing_for_the_last_dollars_never_exceed_the_budget(store, campaign):
    budget = 20.37
    start = threading.Barrier(16)
    won = [0] * 16

    def client(i: int) -> None:
        won[i] = _race(store, campaign, budget, seed=i, start=start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    _check_race(store, campaign, budget, won)


def test_processes_racing_for_the_last_dollars_never_exceed_the_budget(store_url, campaign):
    budget = 15.83
    # fork: starts in milliseconds; each child opens its own store, as a uvicorn worker does
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_process, args=(store_url, campaign, budget, 100 + i, start,
                                                     results)) for i in range(4)]
    for p in procs:
        p.start()
    won = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    with open_budget_store(store_url) as store:
        _check_race(store, campaign, budget, won)
