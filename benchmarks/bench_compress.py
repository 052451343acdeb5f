"""Serving formats of the deep model on Hillstrom: speed, size and what compression costs.

The deep kind is fitted once (defaults) on a 70/30 split stratified by arm × conversion (seed
0, as in ``bench_models.py``); then the same fitted weights are scored as

* ``fp32 (before)``: the original predict (network rebuilt per call, one pass per arm);
* ``fp32``: the cached network, all arms in one batched pass;
* ``int8``: PyTorch dynamic int8 Linear layers;
* ``onnx`` / ``onnx-int8``: onnxruntime (CPU) on the ONNX export / its int8 quantization.

For each: throughput (customers/s) of ``model.predict`` at batch sizes 1, 100 and 10,000
(median and 10th-90th percentile over repeats; every call includes feature validation and
post-processing), single-customer latency p50/p99, the largest prediction difference against
fp32, the change in Qini AUC (conversion, spend; per arm) and in the IPW value of the plan on
the held-out 30% (per 1,000 customers, unconstrained and ≤ 30% contacted), and the model's
size on disk. Prints Markdown tables and writes ``benchmarks/results/compress.json``.

Usage::

    python benchmarks/bench_compress.py [--repeats 7] [--single 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from promolift.data import FeatureEncoder, load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.economics import Economics
from promolift.evaluate.metrics import qini_auc_score
from promolift.evaluate.policy import policy_gain
from promolift.io import atomic_write_json
from promolift.models import load_model, make_model
from promolift.models.deep import SERVING_FORMATS
from promolift.optimize import allocate
from promolift.train import arm_propensity, stratification_label

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 100, 10_000)


def _variants(model) -> dict:
    """Label -> a copy of the fitted model scoring in that format (sharing the fp32 weights)."""
    before = copy.copy(model)
    before._predict = before._predict_unbatched  # the original implementation, for reference
    out = {"fp32 (before)": before}
    for fmt in SERVING_FORMATS:
        out[fmt] = copy.copy(model).set_params(serving_format=fmt)
    return out


def _speed(model, X: pd.DataFrame, repeats: int, single: int, rng: np.random.Generator) -> dict:
    row: dict = {}
    for batch in BATCHES:
        n_calls = single if batch == 1 else repeats
        starts = rng.integers(0, len(X) - batch + 1, size=n_calls)
        model.predict(X.iloc[:batch])  # warm-up (builds and caches the network / session)
        seconds = []
        for s in starts:
            chunk = X.iloc[s:s + batch]
            t0 = time.perf_counter()
            model.predict(chunk)
            seconds.append(time.perf_counter() - t0)
        rate = batch / np.asarray(seconds)
        row[f"batch {batch}"] = {"median": float(np.median(rate)), "p10": float(np.percentile(rate, 10)),
                                 "p90": float(np.percentile(rate, 90)), "calls": n_calls}
        if batch == 1:
            ms = 1000 * np.asarray(seconds)
            row["latency_ms"] = {"p50": float(np.median(ms)), "p99": float(np.percentile(ms, 99))}
    return row


def _quality(pred: np.ndarray, test, eco: Economics, outcomes: list[str], arms: list[str]) -> dict:
    out: dict = {}
    for k, arm in enumerate(arms[1:], start=1):
        keep = np.isin(test.treatment, (0, k))
        for o in ("conversion", "spend"):
            m = outcomes.index(o)
            out[f"qini {arm} {o}"] = float(qini_auc_score(
                test.Y[keep, m], (pred[:, k, m] - pred[:, 0, m])[keep], (test.treatment[keep] == k).astype(int)))
    reward, prop = eco.realized_profit(test.Y, test.treatment), arm_propensity(test)
    value, cost = eco.value_cost(pred)
    for label, cap in (("profit/1000", None), ("profit/1000 ≤30%", int(0.3 * len(test)))):
        arm = allocate(value, cost, max_contacts=cap).arm
        out[label] = float(1000 * policy_gain(reward, test.treatment, arm, prop, method="ipw").estimate)
    return out


def _size(model) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        files = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    return {"disk_bytes": sum(files.values()), "onnx_bytes": files.get("network.onnx")}


def _fmt_rate(r: dict) -> str:
    return f"{r['median']:,.0f} ({r['p10']:,.0f}–{r['p90']:,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7, help="calls per format at batch 100 and 10,000")
    ap.add_argument("--single", type=int, default=300, help="single-customer calls per format")
    ap.add_argument("--threads", type=int, default=2, help="torch / onnxruntime threads when scoring")
    ap.add_argument("--fit-threads", type=int, default=2, help="torch threads when fitting")
    ap.add_argument("--model-dir", type=Path, default=None,
                    help="reuse the fitted model saved here (fit and save it there if missing)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    logging.getLogger("promolift.models.deep").setLevel(logging.INFO)  # one line per epoch

    cfg = hillstrom_config()
    data = load_campaign(load_hillstrom(), cfg)
    eco = Economics.from_config(cfg)
    X = FeatureEncoder().fit_transform(data.X)
    tr, te = train_test_split(np.arange(len(data)), test_size=0.3, random_state=args.seed,
                              stratify=stratification_label(data, cfg))
    test = data.subset(te)
    if args.model_dir is not None and (args.model_dir / "model.json").is_file():
        model, fit_s = load_model(args.model_dir), None
    else:
        start = time.perf_counter()
        model = make_model("deep", n_threads=args.fit_threads).fit(
            X.iloc[tr], data.Y[tr], treatment=data.treatment[tr], outcome_types=data.outcome_types)
        fit_s = time.perf_counter() - start
        if args.model_dir is not None:
            args.model_dir.mkdir(parents=True, exist_ok=True)
            model.save(args.model_dir)
    model.set_params(n_threads=args.threads)
    Xte = X.iloc[te]
    rng = np.random.default_rng(0)

    rows, preds = {}, {}
    for label, m in _variants(model).items():
        t0 = time.perf_counter()
        preds[label] = m.predict(Xte)
        first_s = time.perf_counter() - t0  # includes the conversion (export / quantization)
        rows[label] = {"first_call_s": first_s, **_speed(m, Xte, args.repeats, args.single, rng),
                       **_size(m), **_quality(preds[label], test, eco, list(data.outcomes), list(data.arms))}
        print(f"{label}: done", file=sys.stderr)
    ref = preds["fp32"]
    for label, r in rows.items():
        d = np.abs(preds[label] - ref)
        r["max_abs_diff"] = {o: float(d[..., m].max()) for m, o in enumerate(data.outcomes)}
        r["delta_vs_fp32"] = {k: r[k] - rows["fp32"][k] for k in rows["fp32"]
                              if k.startswith(("qini", "profit"))}

    served = list(SERVING_FORMATS)
    fastest_single = max(served, key=lambda f: rows[f]["batch 1"]["median"])
    fastest_bulk = max(served, key=lambda f: rows[f]["batch 10000"]["median"])
    result = {
        "machine": f"{platform.machine()}, {args.threads} threads, shared with other jobs (timings noisy)",
        "fit_s": fit_s, "n_test": len(te), "best_epoch": model.best_epoch_, "rows": rows,
        "fastest": {"batch 1": fastest_single, "batch 10000": fastest_bulk},
    }
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / "compress.json", result)

    fitted = "reused from --model-dir" if fit_s is None else f"fit {fit_s:.0f} s"
    print(f"Hillstrom deep model ({fitted}, best epoch {model.best_epoch_}), scored on the "
          f"held-out {len(te):,} customers; {args.threads} threads, shared machine.\n")
    print("Throughput, customers/s: median (p10–p90); latency of one customer in ms\n")
    print("| format | batch 1 | batch 100 | batch 10,000 | latency p50 | latency p99 | disk (KB) | ONNX file (KB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in rows.items():
        onnx = f"{r['onnx_bytes'] / 1024:,.0f}" if r["onnx_bytes"] else "–"
        print(f"| {label} | {_fmt_rate(r['batch 1'])} | {_fmt_rate(r['batch 100'])} | "
              f"{_fmt_rate(r['batch 10000'])} | {r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} | "
              f"{r['disk_bytes'] / 1024:,.0f} | {onnx} |")
    print("\nAccuracy against fp32 on the held-out 30% (Qini AUC and IPW profit per 1,000: change vs fp32)\n")
    metrics = list(rows["fp32"]["delta_vs_fp32"])
    outs = list(data.outcomes)
    print("| format | " + " | ".join(f"max abs diff {o}" for o in outs) + " | "
          + " | ".join(f"Δ {k}" for k in metrics) + " |")
    print("| --- |" + " ---: |" * (len(outs) + len(metrics)))
    for label, r in rows.items():
        print(f"| {label} | " + " | ".join(f"{r['max_abs_diff'][o]:.2g}" for o in outs) + " | "
              + " | ".join(f"{r['delta_vs_fp32'][k]:+.4g}" for k in metrics) + " |")
    print("\nfp32 reference: " + ", ".join(f"{k} {rows['fp32'][k]:.4g}" for k in metrics))
    print(f"\nFastest here: {fastest_single} for single customers, {fastest_bulk} for batches of 10,000.")


if __name__ == "__main__":
    main()
