"""Explanations on Hillstrom: latency of ``reason_codes`` per method, and tree vs exact Shapley.

A bundle is trained on a stratified 70% of Hillstrom (every LightGBM kind, ``n_folds`` folds);
customers are drawn from the other 30%. For the bundle's chosen policy (and ``--weights``):

* latency of ``reason_codes(bundle, X, top=3)`` for 1 customer (``--repeats`` calls, a different
  customer each time) and for 1,000 customers (``--repeats-large`` calls), per method;
  median and p95 wall-clock seconds;
* agreement of ``"tree"`` with exact ``"shapley"`` (all 2^8 coalitions, ``--background``
  background rows) on the same 1,000 customers: mean per-customer Spearman rank correlation
  of the contributions, share of the top-3 features in common, top-1 agreement, and the rank
  correlation of global importance (mean |contribution| per feature).

Usage::

    python benchmarks/bench_explain.py [--repeats 50] [--repeats-large 3] [--background 16]

Writes ``benchmarks/results/explain.md`` and ``explain.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import train_test_split

from promolift.config import CampaignConfig
from promolift.data import load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.explain import explain, global_importance, reason_codes
from promolift.io import atomic_write_json, atomic_write_text
from promolift.train import stratification_label, train

RESULTS = Path(__file__).parent / "results"


def _timed(fn, repeats: int) -> list[float]:
    out = []
    for r in range(repeats):
        start = time.perf_counter()
        fn(r)
        out.append(time.perf_counter() - start)
    return out


def _summary(times: list[float]) -> dict:
    t = np.asarray(times)
    return {
        "median_s": float(np.median(t)),
        "p95_s": float(np.percentile(t, 95)),
        "min_s": float(t.min()),
        "max_s": float(t.max()),
        "repeats": len(t),
    }


def agreement(tree: np.ndarray, exact: np.ndarray) -> dict:
    """Per-customer rank agreement of two contribution matrices (n, p)."""
    rho = [spearmanr(a, b).statistic for a, b in zip(tree, exact, strict=True)]
    ta, tb = np.argsort(-np.abs(tree), axis=1), np.argsort(-np.abs(exact), axis=1)
    top3 = [len(set(a[:3]) & set(b[:3])) / 3 for a, b in zip(ta, tb, strict=True)]
    g_tree, g_exact = np.abs(tree).mean(axis=0), np.abs(exact).mean(axis=0)
    return {
        "spearman_mean": float(np.nanmean(rho)),
        "top3_overlap": float(np.mean(top3)),
        "top1_agreement": float(np.mean(ta[:, 0] == tb[:, 0])),
        "global_spearman": float(spearmanr(g_tree, g_exact).statistic),
        "mean_abs_dollars_tree": float(np.abs(tree).sum(axis=1).mean()),
        "mean_abs_dollars_exact": float(np.abs(exact).sum(axis=1).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--repeats-large", type=int, default=3)
    ap.add_argument("--background", type=int, default=16)
    ap.add_argument("--n-folds", type=int, default=2)
    ap.add_argument(
        "--weights",
        action="append",
        default=[],
        help="extra blend as JSON, e.g. '{\"t@visit\": 1}' (repeatable)",
    )
    args = ap.parse_args()

    cfg = hillstrom_config()
    raw = cfg.to_toml_dict()
    raw["model"] = raw.get("model", {}) | {"n_folds": args.n_folds}
    cfg = CampaignConfig.from_dict(raw)
    data = load_campaign(load_hillstrom(), cfg)
    tr, te = train_test_split(
        np.arange(len(data)),
        test_size=0.3,
        random_state=0,
        stratify=stratification_label(data, cfg),
    )
    start = time.perf_counter()
    bundle = train(cfg, data.subset(tr))
    fit_s = time.perf_counter() - start
    X_test = data.X.iloc[te]
    rng = np.random.default_rng(0)
    X1000 = X_test.iloc[rng.choice(len(X_test), 1000, replace=False)]
    singles = rng.choice(len(X_test), max(args.repeats, 1), replace=False)
    policies = [("chosen: " + bundle.metrics["chosen"]["candidate"], dict(bundle.weights))]
    policies += [(w, json.loads(w)) for w in args.weights]

    rows = []
    for label, weights in policies:
        res: dict = {"policy": label, "weights": weights}
        for method, kw in (("tree", {}), ("shapley", {"n_background": args.background})):
            reason_codes(bundle, X_test.iloc[[0]], weights=weights, method=method, **kw)  # warm-up
            one = _timed(
                lambda r, m=method, kw=kw, w=weights: reason_codes(
                    bundle, X_test.iloc[[singles[r]]], weights=w, method=m, **kw
                ),
                args.repeats if method == "tree" else max(5, args.repeats // 5),
            )
            big = _timed(
                lambda r, m=method, kw=kw, w=weights: reason_codes(
                    bundle, X1000, weights=w, method=m, **kw
                ),
                args.repeats_large,
            )
            res[method] = {"one": _summary(one), "thousand": _summary(big)}
            print(
                label,
                method,
                "1:",
                res[method]["one"],
                "1000:",
                res[method]["thousand"],
                flush=True,
            )
        tree = explain(bundle, X1000, weights=weights, method="tree").contributions.to_numpy()
        exact = explain(
            bundle, X1000, weights=weights, method="shapley", n_background=args.background
        ).contributions.to_numpy()
        res["agreement"] = agreement(tree, exact)
        res["importance"] = global_importance(bundle, X1000, weights=weights).to_dict(
            orient="records"
        )
        print(label, res["agreement"], flush=True)
        rows.append(res)

    meta = {
        "train_rows": len(tr),
        "n_folds": args.n_folds,
        "fit_s": fit_s,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "background": args.background,
        "note": "machine shared with other jobs: timings are noisy",
    }
    atomic_write_json(RESULTS / "explain.json", {"meta": meta, "results": rows})
    lines = [
        (
            f"# explain benchmark: Hillstrom, bundle trained on {len(tr):,} rows "
            f"({args.n_folds} folds), {os.cpu_count()} cores (shared machine: noisy)"
        ),
        "",
        (
            f"Latency of `reason_codes(top=3)`; shapley = exact 2^8 coalitions x "
            f"{args.background} background rows, one `bundle.predict` per chunk."
        ),
        "",
        "| policy | method | 1 customer median (ms) | p95 (ms) | 1,000 customers median (s) | p95 (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        for m in ("tree", "shapley"):
            one, big = r[m]["one"], r[m]["thousand"]
            lines.append(
                f"| {r['policy']} | {m} | {1e3 * one['median_s']:.1f} | {1e3 * one['p95_s']:.1f} | "
                f"{big['median_s']:.2f} | {big['p95_s']:.2f} |"
            )
    lines += [
        "",
        "## tree vs exact Shapley (1,000 held-out customers)",
        "",
        "| policy | mean Spearman | top-3 overlap | top-1 agreement | global importance Spearman |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        a = r["agreement"]
        lines.append(
            f"| {r['policy']} | {a['spearman_mean']:.3f} | {a['top3_overlap']:.3f} | "
            f"{a['top1_agreement']:.3f} | {a['global_spearman']:.3f} |"
        )
    lines += ["", "## global importance (tree), mean |$ contribution| per customer", ""]
    for r in rows:
        lines.append(
            f"{r['policy']}: "
            + ", ".join(f"{d['feature']} {d['mean_abs_contribution']:.4f}" for d in r["importance"])
        )
    atomic_write_text(RESULTS / "explain.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
