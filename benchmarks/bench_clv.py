"""Benchmark the CLV core: model fit time on CDNOW, and ``promolift clv`` end to end at scale.

(a) BG/NBD + Gamma-Gamma fit on the full CDNOW log (23,570 customers, 39-week calibration),
    repeated in one process (the first repeat also pays one-off costs such as page faults);
    also the holdout accuracy on the 1/10 sample and the full log.
(b) ``promolift clv`` on a synthetic order log simulated from BG/NBD + Gamma-Gamma (~10M orders,
    ~1.15M customers) written as Parquet and CSV under /tmp; every run is a fresh process under
    ``/usr/bin/time -v`` so wall time and peak RSS are those of that run alone. The machine's
    1-minute load average is recorded before and after each run (the cores are shared).
    ``--engines auto`` is what ``promolift clv`` does by default (DuckDB for files of 64 MiB
    and more, so both logs here); ``--engines auto,pandas`` also times the in-memory engine.

Usage::

    python benchmarks/bench_clv.py                      # 7 fit repeats, 10M orders, 3 CLI repeats
    python benchmarks/bench_clv.py --customers 100000 --cli-repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
CDNOW = ROOT.parent / "shared" / "datasets" / "cdnow_master.txt"
WORK = Path("/tmp/promolift_clv_bench")
SIM_PARAMS = {"r": 0.8, "alpha": 3.0, "a": 0.8, "b": 5.0}  # ~8.7 orders per customer in 78 weeks


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def bench_fit(repeats: int) -> dict:
    from promolift.clv import BetaGeoModel, GammaGammaModel, load_transactions, rfm_summary
    from promolift.clv.pipeline import holdout_accuracy
    from promolift.datasets import load_cdnow_sample

    read = dict(customer_col="customer_id", date_col="date", value_col="dollar_value")
    periods = dict(calibration_end="1997-09-30", observation_end="1998-06-30")
    full = rfm_summary(load_transactions(CDNOW, **read), **periods)
    bg_t, gg_t = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        bg = BetaGeoModel().fit(full["frequency"], full["recency"], full["T"])
        mid = time.perf_counter()
        gg = GammaGammaModel().fit(full["frequency"], full["monetary_value"])
        bg_t.append(mid - start)
        gg_t.append(time.perf_counter() - mid)
    both = [a + b for a, b in zip(bg_t, gg_t, strict=True)]
    out = {"customers": len(full), "bgnbd_seconds": spread(bg_t), "gamma_gamma_seconds": spread(gg_t),
           "total_seconds": spread(both), "bgnbd_params": bg.params_.to_dict(),
           "gamma_gamma_params": gg.params_.to_dict(), "holdout": {}}
    sample = rfm_summary(load_transactions(load_cdnow_sample(), **read), **periods)
    for name, s in (("sample", sample), ("full", full)):
        m = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
        pred = m.expected_purchases(s["duration_holdout"], s["frequency"], s["recency"], s["T"])
        out["holdout"][name] = holdout_accuracy(s["frequency_holdout"], pred)
    return out


def make_logs(customers: int, seed: int) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from promolift.clv import simulate_order_log

    WORK.mkdir(parents=True, exist_ok=True)
    meta = WORK / "meta.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        if info.get("customers") == customers and info.get("seed") == seed:
            return info
    start = time.perf_counter()
    log = simulate_order_log(customers, **SIM_PARAMS, random_state=seed)
    log = log.rename(columns={"customer": "customer_id", "value": "amount"})
    log["date"] = log["date"].dt.strftime("%Y-%m-%d")
    log = log.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # raw logs are not sorted
    table = pa.Table.from_pandas(log, preserve_index=False)
    pq.write_table(table, WORK / "orders.parquet")
    pacsv.write_csv(table, WORK / "orders.csv")
    info = {"customers": customers, "seed": seed, "orders": len(log),
            "parquet_mb": (WORK / "orders.parquet").stat().st_size / 1e6,
            "csv_mb": (WORK / "orders.csv").stat().st_size / 1e6,
            "generate_seconds": time.perf_counter() - start}
    meta.write_text(json.dumps(info))
    return info


def run_cli(path: Path, engine: str) -> dict:
    load_before = os.getloadavg()[0]
    exe = Path(sys.executable).with_name("promolift")
    cmd = ["/usr/bin/time", "-v", str(exe), "clv", str(path), "--customer-col", "customer_id",
           "--date-col", "date", "--value-col", "amount", "--calibration-end", "1997-12-31",
           "--engine", engine, "--out", str(WORK / "clv.parquet")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    summary = json.loads((WORK / "clv.json").read_text())
    return {"wall": wall, "rss_gb": rss_kb / 1e6, "customers": summary["customers"],
            "engine": summary["engine"], "load": [load_before, os.getloadavg()[0]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-repeats", type=int, default=7)
    parser.add_argument("--customers", type=int, default=1_150_000)
    parser.add_argument("--cli-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engines", default="auto", help="comma-separated: auto, duckdb, pandas")
    parser.add_argument("--skip-fit", action="store_true", help="only the end-to-end runs")
    args = parser.parse_args()

    previous = {}
    out = ROOT / "benchmarks" / "results" / "clv.json"
    if args.skip_fit and out.exists():
        previous = json.loads(out.read_text()).get("fit_cdnow", {})
    fit = previous or bench_fit(args.fit_repeats)
    logs = make_logs(args.customers, args.seed)
    cli = {}
    for engine in args.engines.split(","):
        for fmt in ("parquet", "csv"):
            runs = [run_cli(WORK / f"orders.{fmt}", engine) for _ in range(args.cli_repeats)]
            cli[f"{fmt}/{engine}"] = {"wall_seconds": spread([r["wall"] for r in runs]),
                                      "peak_rss_gb": spread([r["rss_gb"] for r in runs]),
                                      "engine_used": runs[0]["engine"],
                                      "load_average_1min": [r["load"] for r in runs],
                                      "customers_scored": runs[0]["customers"]}

    f = fit
    print(f"## CLV fit on the full CDNOW log ({f['customers']:,} customers), {args.fit_repeats} repeats\n")
    print("| step | median s | min s | max s |\n| --- | ---: | ---: | ---: |")
    for key, label in (("bgnbd_seconds", "BG/NBD fit"), ("gamma_gamma_seconds", "Gamma-Gamma fit"),
                       ("total_seconds", "both")):
        v = f[key]
        print(f"| {label} | {v['median']:.3f} | {v['min']:.3f} | {v['max']:.3f} |")
    print("\n## BG/NBD holdout forecast (39-week calibration, weeks 40-78)\n")
    print("| data | customers | actual | predicted | error | MAE | Pearson r |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, h in f["holdout"].items():
        print(f"| {name} | {h['customers']:,} | {h['actual']:,.0f} | {h['predicted']:,.1f} | "
              f"{h['error_pct']:+.1f}% | {h['mae']:.3f} | {h['pearson_r']:.3f} |")
    print(f"\n## `promolift clv` end to end: {logs['orders']:,} orders, {args.customers:,} customers "
          f"(Parquet {logs['parquet_mb']:.0f} MB, CSV {logs['csv_mb']:.0f} MB), {args.cli_repeats} runs\n")
    print("| input / engine (used) | median wall s | min | max | peak RSS GB (max) | load average 1 min |\n"
          "| --- | ---: | ---: | ---: | ---: | --- |")
    for key, v in cli.items():
        w = v["wall_seconds"]
        loads = [x for pair in v["load_average_1min"] for x in pair]
        print(f"| {key} ({v['engine_used']}) | {w['median']:.1f} | {w['min']:.1f} | {w['max']:.1f} | "
              f"{v['peak_rss_gb']['max']:.2f} | {min(loads):.1f}–{max(loads):.1f} |")
    result = {"machine": "2 shared cores (timings noisy)", "fit_cdnow": fit, "synthetic_log": logs,
              "sim_params": SIM_PARAMS, "cli": cli}
    from promolift.io import atomic_write_json

    atomic_write_json(out, result)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
