"""Hurdle or direct regression for zero-inflated spend: which predicts better?

``spend_model="hurdle"`` models spend as P(spend > 0) × E[spend | spend > 0];
``"direct"`` fits one L2 regressor. Two measurements:

1. the simulator, where the truth is known: RMSE of predicted spend levels and of predicted
   spend uplift (arm minus control) against the true expected values, on 10,000 fresh customers;
2. Hillstrom, five stratified 70/30 splits: Qini AUC of spend uplift on the held-out 30%.

Usage::

    python benchmarks/bench_spend_model.py [--seeds 3] [--splits 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from promolift.data import FeatureEncoder, load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.datasets.simulator import make_campaign
from promolift.evaluate.metrics import qini_auc_score
from promolift.models import make_model
from promolift.train import stratification_label

KINDS = ("t", "x", "dr", "relative")


def simulator(seeds: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        sim = make_campaign(40000, random_state=seed)
        X = FeatureEncoder(categorical=sim.categorical).fit_transform(sim.feature_frame())
        t, Y = sim.treatment_codes(), sim.outcome_matrix()
        train, test = np.arange(30000), np.arange(30000, 40000)
        truth = sim.true_outcomes[test][..., 2]
        for kind in KINDS:
            for spend_model in ("hurdle", "direct"):
                start = time.perf_counter()
                model = make_model(kind, spend_model=spend_model, random_state=seed)
                model.fit(X.iloc[train], Y[train], treatment=t[train], outcome_types=sim.outcome_types)
                pred = model.predict(X.iloc[test])[..., 2]
                lift, true_lift = pred[:, 1:] - pred[:, :1], truth[:, 1:] - truth[:, :1]
                rows.append({"seed": seed, "kind": kind, "spend_model": spend_model,
                             "rmse_level": float(np.sqrt(np.mean((pred - truth) ** 2))),
                             "rmse_uplift": float(np.sqrt(np.mean((lift - true_lift) ** 2))),
                             "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)


def hillstrom(splits: int) -> pd.DataFrame:
    cfg = hillstrom_config()
    data = load_campaign(load_hillstrom(), cfg)
    X = FeatureEncoder().fit_transform(data.X)
    spend = list(data.outcomes).index("spend")
    rows = []
    for s in range(splits):
        tr, te = train_test_split(np.arange(len(data)), test_size=0.3, random_state=s,
                                  stratify=stratification_label(data, cfg))
        for kind in KINDS:
            for spend_model in ("hurdle", "direct"):
                model = make_model(kind, spend_model=spend_model)
                model.fit(X.iloc[tr], data.Y[tr], treatment=data.treatment[tr], outcome_types=data.outcome_types)
                pred = model.predict(X.iloc[te])[..., spend]
                row = {"split": s, "kind": kind, "spend_model": spend_model}
                for k, arm in enumerate(data.arms[1:], start=1):
                    keep = np.isin(data.treatment[te], (0, k))
                    row[f"qini_{arm}"] = qini_auc_score(data.Y[te][keep, spend], (pred[:, k] - pred[:, 0])[keep],
                                                        (data.treatment[te][keep] == k).astype(int))
                rows.append(row)
    return pd.DataFrame(rows)


def _table(frame: pd.DataFrame, metrics: list[str]) -> str:
    g = frame.groupby(["kind", "spend_model"], sort=False)[metrics]
    mean, sd = g.mean(), g.std()
    lines = ["| kind | spend model | " + " | ".join(metrics) + " |", "| --- | --- |" + " --- |" * len(metrics)]
    for (kind, sm), r in mean.iterrows():
        cells = [f"{r[m]:.4f} ± {sd.loc[(kind, sm), m]:.4f}" for m in metrics]
        lines.append(f"| {kind} | {sm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--splits", type=int, default=5)
    args = ap.parse_args()
    sim = simulator(args.seeds)
    print(f"Simulator, 30,000 training rows, RMSE against the true expected spend on 10,000 new "
          f"customers (mean ± sd over {args.seeds} seeds; lower is better)\n")
    print(_table(sim, ["rmse_level", "rmse_uplift", "seconds"]))
    hs = hillstrom(args.splits)
    print(f"\nHillstrom, Qini AUC of spend uplift on the held-out 30% (mean ± sd over {args.splits} "
          "splits; higher is better)\n")
    print(_table(hs, [c for c in hs.columns if c.startswith("qini_")]))


if __name__ == "__main__":
    main()
