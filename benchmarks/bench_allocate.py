"""Benchmark ``promolift.optimize.allocate`` at scale.

Generates a seeded, realistic ``n x 5`` float32 problem (control column 0 is zero, value is
correlated with cost, a share of customer/arm pairs lose money), then times the Lagrangian solver

* with a binding budget, and
* with a binding budget and a binding contact cap,

each repetition in a fresh subprocess so ``ru_maxrss`` is the peak RSS of that run alone (it
includes the ~0.4 GB of input data, reported separately). Finally it compares the Lagrangian and
the exact (HiGHS) solver on a smaller instance.

Usage::

    python benchmarks/bench_allocate.py                  # 10M x 5, 3 repeats, 20k exact check
    python benchmarks/bench_allocate.py --n 1000000 --repeats 1 --exact-n 5000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

K = 5
BASE_COST = np.array([0.0, 1.0, 2.5, 5.0, 10.0], dtype=np.float32)  # control + 4 offers


def make_problem(n: int, seed: int, chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Seeded ``(n, 5)`` float32 value/cost matrices, generated in chunks to bound memory.

    Cost is the expected redemption cost (offer size x redemption probability x basket factor);
    value is cost times a return on investment that has a customer effect (some customers are
    unresponsive, so many values are negative), diminishing returns for bigger offers and noise.
    """
    rng = np.random.default_rng(seed)
    value = np.empty((n, K), dtype=np.float32)
    cost = np.empty((n, K), dtype=np.float32)
    diminish = np.array([0.0, 0.0, 0.15, 0.3, 0.45], dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        basket = rng.lognormal(0.0, 0.5, size=(m, 1)).astype(np.float32)
        redeem = rng.uniform(0.05, 0.6, size=(m, K)).astype(np.float32)
        c = BASE_COST * basket * redeem
        roi_customer = rng.normal(0.6, 0.8, size=(m, 1)).astype(np.float32)
        noise = rng.normal(0.0, 0.4, size=(m, K)).astype(np.float32)
        v = c * (roi_customer - diminish + noise)
        v[:, 0] = 0.0
        c[:, 0] = 0.0
        value[s : s + m] = v
        cost[s : s + m] = c
    return value, cost


def unconstrained_spend(value: np.ndarray, cost: np.ndarray, chunk: int = 1 << 20) -> tuple:
    """Cost and contacts of giving every customer their best positive arm."""
    spend, contacts = 0.0, 0
    for s in range(0, value.shape[0], chunk):
        v = value[s : s + chunk]
        best = v.argmax(axis=1)
        pos = v[np.arange(v.shape[0]), best] > 0
        spend += float(cost[s : s + chunk][np.arange(v.shape[0]), best][pos].sum(dtype=np.float64))
        contacts += int(pos.sum())
    return spend, contacts


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker(config: str, n: int, seed: int) -> dict:
    from promolift.optimize import allocate

    t0 = time.perf_counter()
    value, cost = make_problem(n, seed)
    spend, contacts = unconstrained_spend(value, cost)
    gen_s = time.perf_counter() - t0
    rss_data = _rss_mb()
    kw: dict = {"budget": 0.3 * spend}
    if config == "budget+contacts":
        kw["max_contacts"] = int(0.3 * contacts)
    t0 = time.perf_counter()
    plan = allocate(value, cost, **kw)
    wall = time.perf_counter() - t0
    return {
        "config": config,
        "wall_s": wall,
        "gen_s": gen_s,
        "rss_data_mb": rss_data,
        "peak_rss_mb": _rss_mb(),
        "objective": plan.objective,
        "bound": plan.bound,
        "total_cost": plan.total_cost,
        "budget": kw["budget"],
        "n_contacts": plan.n_contacts,
        "max_contacts": kw.get("max_contacts"),
        "shadow_price": plan.shadow_price,
        "contact_price": plan.contact_price,
        "status": plan.status,
    }


def exact_gap(n: int, seed: int, time_limit: float | None) -> list[dict]:
    from promolift.optimize import allocate

    value, cost = make_problem(n, seed)
    spend, contacts = unconstrained_spend(value, cost)
    rows = []
    configs = [
        ("budget 10%", {"budget": 0.1 * spend}),
        ("budget 30%", {"budget": 0.3 * spend}),
        ("budget 30% + contacts", {"budget": 0.3 * spend, "max_contacts": int(0.3 * contacts)}),
        (
            "budget 50% + arm caps",
            {"budget": 0.5 * spend, "arm_caps": [None, n // 20] * 2 + [n // 50]},
        ),
    ]
    for name, kw in configs:
        t0 = time.perf_counter()
        lag = allocate(value, cost, **kw)
        t_lag = time.perf_counter() - t0
        t0 = time.perf_counter()
        ex = allocate(value, cost, method="exact", time_limit=time_limit, **kw)
        t_ex = time.perf_counter() - t0
        rows.append(
            {
                "config": name,
                "lagrangian": lag.objective,
                "exact": ex.objective,
                "exact_bound": ex.bound,
                "gap_pct": 100 * (ex.objective - lag.objective) / ex.objective,
                "t_lag": t_lag,
                "t_exact": t_ex,
                "exact_status": ex.status,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000, help="customers (default 10M)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-n", type=int, default=20_000, help="size of the exact comparison")
    ap.add_argument("--exact-time-limit", type=float, default=600.0)
    ap.add_argument("--worker", choices=["budget", "budget+contacts"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.seed)))
        return

    print(f"# allocate benchmark: n={args.n:,} x {K} float32, {os.cpu_count()} cores\n")
    results: dict[str, list[dict]] = {}
    for config in ("budget", "budget+contacts"):
        for rep in range(args.repeats):
            cmd = [sys.executable, __file__, "--worker", config, "--n", str(args.n)]
            cmd += ["--seed", str(args.seed)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            results.setdefault(config, []).append(res)
            print(f"  {config} run {rep + 1}: {res['wall_s']:.2f} s, {res['peak_rss_mb']:.0f} MB",
                  file=sys.stderr)  # fmt: skip

    print("| configuration | wall median (s) | min (s) | max (s) | peak RSS (MB) | "
          "RSS after data gen (MB) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for config, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        print(
            f"| {config} | {statistics.median(walls):.2f} | {min(walls):.2f} | {max(walls):.2f} | "
            f"{max(r['peak_rss_mb'] for r in runs):.0f} | "
            f"{max(r['rss_data_mb'] for r in runs):.0f} |"
        )
    print()
    print("| configuration | objective | dual bound | cost / budget | contacts / cap | "
          "lambda | mu | status |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for config, runs in results.items():
        r = runs[0]
        cap = "-" if r["max_contacts"] is None else f"{r['max_contacts']:,}"
        print(
            f"| {config} | {r['objective']:,.1f} | {r['bound']:,.1f} | "
            f"{r['total_cost']:,.1f} / {r['budget']:,.1f} | {r['n_contacts']:,} / {cap} | "
            f"{r['shadow_price']:.4f} | {r['contact_price']:.4f} | {r['status']} |"
        )

    if args.exact_n:
        print(f"\n## Lagrangian vs exact (HiGHS), n={args.exact_n:,}\n")
        print("| configuration | lagrangian | exact | gap (%) | t lagrangian (s) | t exact (s) | "
              "exact status |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in exact_gap(args.exact_n, args.seed + 1, args.exact_time_limit):
            print(
                f"| {r['config']} | {r['lagrangian']:,.3f} | {r['exact']:,.3f} | "
                f"{r['gap_pct']:.4f} | {r['t_lag']:.2f} | {r['t_exact']:.2f} | "
                f"{r['exact_status']} |"
            )


if __name__ == "__main__":
    main()
