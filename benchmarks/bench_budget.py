"""Benchmark the budget pacing stores (``promolift.serve.budget``): commit latency and contention.

Scenarios, each repeated ``--repeats`` times on a fresh campaign:

* ``single``: one client commits one amount per call, ``--calls`` times; latency per call.
* ``16 threads``: 16 threads share one store object (as the service's thread pool does) and
  commit ``--calls`` amounts in total; latency per call and commits/s. For SQLite also with one
  connection per thread instead of the shipped one-connection-plus-lock design.
* ``4 processes``: 4 forked processes, each with its own store (as uvicorn workers), commit
  ``--calls`` amounts in total.

Stores: SQLite (default ``synchronous=NORMAL``, and ``?durable=1``: fsync per commit) in a temp
directory, and Redis: a throw-away ``redis-server`` (no persistence) started on a free port, or
``--redis-url``. The budget is never binding, so every call writes.

Usage::

    python benchmarks/bench_budget.py                 # 2,000 calls, 3 repeats
    python benchmarks/bench_budget.py --calls 500 --repeats 1 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from promolift.io import atomic_write_json, atomic_write_text
from promolift.serve.budget import SQLiteBudgetStore, open_budget_store

RESULTS = Path(__file__).parent / "results"
BUDGET = 1e9  # never binding


class PerThreadSQLiteBudgetStore(SQLiteBudgetStore):
    """Alternative design measured against the shipped one: one connection per thread, no lock."""

    def __init__(self, path: str | Path, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self._local = threading.local()

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        yield conn


def _timed_commits(store, campaign: str, calls: int) -> np.ndarray:
    out = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        store.commit(campaign, [0.01], BUDGET)
        out[i] = time.perf_counter() - t0
    return out


def run_single(make_store, calls: int) -> dict:
    with make_store() as store:
        campaign = uuid.uuid4().hex
        store.commit(campaign, [0.01], BUDGET)  # warm up: connection, script load
        t0 = time.perf_counter()
        lat = _timed_commits(store, campaign, calls)
        wall = time.perf_counter() - t0
        assert round(store.spent(campaign) * 100) == calls + 1
    return _summary(lat, wall)


def run_threads(make_store, calls: int, n_threads: int = 16) -> dict:
    with make_store() as store:
        campaign = uuid.uuid4().hex
        store.commit(campaign, [0.01], BUDGET)
        per = calls // n_threads
        lats: list[np.ndarray] = [np.empty(0)] * n_threads
        start = threading.Barrier(n_threads + 1)

        def client(i: int) -> None:
            start.wait()
            lats[i] = _timed_commits(store, campaign, per)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n_threads)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        assert round(store.spent(campaign) * 100) == per * n_threads + 1
    return _summary(np.concatenate(lats), wall)


def _process_client(url: str, campaign: str, calls: int, start, queue) -> None:
    with open_budget_store(url) as store:
        store.commit(campaign, [0.0], BUDGET)
        start.wait()
        queue.put(_timed_commits(store, campaign, calls).tolist())


def run_processes(url: str, calls: int, n_proc: int = 4) -> dict:
    ctx = multiprocessing.get_context("fork")
    campaign = uuid.uuid4().hex
    per = calls // n_proc
    start = ctx.Barrier(n_proc + 1)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_client, args=(url, campaign, per, start, queue))
             for _ in range(n_proc)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    lats = [queue.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    with open_budget_store(url) as store:
        assert round(store.spent(campaign) * 100) == per * n_proc
    return _summary(np.concatenate([np.asarray(x) for x in lats]), wall)


def _summary(lat: np.ndarray, wall: float) -> dict:
    return {"median_us": float(np.median(lat) * 1e6), "p99_us": float(np.percentile(lat, 99) * 1e6),
            "commits_per_s": float(lat.size / wall), "calls": int(lat.size)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _redis_server(workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install -y redis-server) "
                 "or pass --redis-url")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(500):
            try:
                open_budget_store(url).close()
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.02)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="commits per scenario (default 2000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--redis-url", help="use this Redis instead of starting redis-server")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        redis_url = args.redis_url or stack.enter_context(_redis_server(Path(tmp)))
        db = f"{tmp}/budget.db"
        scenarios = {
            ("sqlite", "single"): lambda: run_single(lambda: SQLiteBudgetStore(db), args.calls),
            ("sqlite ?durable=1", "single"): lambda: run_single(
                lambda: SQLiteBudgetStore(db, durable=True), args.calls),
            ("redis", "single"): lambda: run_single(lambda: open_budget_store(redis_url),
                                                    args.calls),
            ("sqlite (lock, shipped)", "16 threads"): lambda: run_threads(
                lambda: SQLiteBudgetStore(db), args.calls),
            ("sqlite (connection per thread)", "16 threads"): lambda: run_threads(
                lambda: PerThreadSQLiteBudgetStore(db), args.calls),
            ("redis", "16 threads"): lambda: run_threads(lambda: open_budget_store(redis_url),
                                                         args.calls),
            ("sqlite", "4 processes"): lambda: run_processes(f"sqlite:///{db}", args.calls),
            ("redis", "4 processes"): lambda: run_processes(redis_url, args.calls),
        }
        runs: dict[tuple[str, str], list[dict]] = {}
        for key, fn in scenarios.items():
            for rep in range(args.repeats):
                res = fn()
                runs.setdefault(key, []).append(res)
                print(f"  {key[0]} / {key[1]} run {rep + 1}: median {res['median_us']:.0f} us, "
                      f"p99 {res['p99_us']:.0f} us, {res['commits_per_s']:.0f} commits/s",
                      file=sys.stderr)

    lines = [
        f"# budget store benchmark: {args.calls:,} commits of one amount per scenario, "
        f"{args.repeats} repeats, {os.cpu_count()} cores (shared machine: timings are noisy)",
        "",
        f"1-min load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        "| store | clients | median latency (us) [min-max] | p99 latency (us) [min-max] "
        "| commits/s [min-max] |",
        "|---|---|---:|---:|---:|",
    ]

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):,.0f} [{min(values):,.0f}-{max(values):,.0f}]"

    for (store, clients), rs in runs.items():
        lines.append(f"| {store} | {clients} | {cell([r['median_us'] for r in rs])} | "
                     f"{cell([r['p99_us'] for r in rs])} | "
                     f"{cell([r['commits_per_s'] for r in rs])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        atomic_write_text(RESULTS / "budget.md", text)
        atomic_write_json(RESULTS / "budget.json", {
            "calls": args.calls, "repeats": args.repeats, "cores": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
            "runs": [{"store": s, "clients": c, "results": rs} for (s, c), rs in runs.items()],
        })


if __name__ == "__main__":
    main()
