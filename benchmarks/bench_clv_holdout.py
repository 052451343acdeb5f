"""CDNOW holdout: BG/NBD (+ Gamma-Gamma) against supervised LightGBM models.

Calibration 1997-01-01..1997-09-30 (39 weeks), holdout 1997-10-01..1998-06-30 (39 weeks). Every
model is fitted on the calibration period only. The LightGBM models learn 13-week labels from the
cutoff 1997-07-01 (features up to it, purchases in 1997-07-02..09-30) and reach 39 weeks with
BG/NBD's per-customer shape E[X(39)]/E[X(13)] (or linearly, x3). Rows:

* ``bgnbd`` — BG/NBD conditional expectation; "buys again" score 1 - P(X(39) = 0); spend with
  Gamma-Gamma,
* ``lightgbm`` — Poisson purchases, binary "buys again" (13-week), Tweedie spend,
* ``lightgbm linear`` — same, extrapolated linearly,
* ``lightgbm + bgnbd features`` — stacked: BG/NBD expectation and P(alive) as features,
* ``lightgbm + bgnbd offset`` — stacked: also log BG/NBD expectation as the Poisson offset,
* ``lightgbm seed-avg`` — mean of the plain model over ``--seeds`` random states (variance check).

Data sets: the 1/10 sample (2,357 customers, shipped) and the full 23,570-customer master log
(``--master``; skipped if absent). Fit times: median and range over ``--repeats`` fits.

Usage::

    python benchmarks/bench_clv_holdout.py [--repeats 3] [--seeds 3] [--master PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from promolift.clv import load_transactions
from promolift.clv.holdout import bgnbd_predictions, compare_holdout
from promolift.clv.supervised import SupervisedCLV, next_period_labels, order_features
from promolift.datasets import load_cdnow_sample
from promolift.io import atomic_write_json

HERE = Path(__file__).parent
CAL, OBS = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
HORIZON = (OBS - CAL).days / 7.0
MODELS = {
    "lightgbm": {},
    "lightgbm linear": {"extrapolation": "linear"},
    "lightgbm + bgnbd features": {"stacking": "features"},
    "lightgbm + bgnbd offset": {"stacking": "offset"},
}


def _timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def run(tx: pd.DataFrame, repeats: int, seeds: int) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    from promolift.clv.bgnbd import BetaGeoModel
    from promolift.clv.gamma_gamma import GammaGammaModel
    from promolift.clv.holdout import _mean_repeat_value

    feats = order_features(tx, CAL)
    actual = next_period_labels(tx, CAL, OBS, feats.index)
    summary = feats[["frequency", "recency", "T"]].copy()
    summary["monetary_value"] = _mean_repeat_value(tx, CAL, feats.index)

    def fit_bg():
        bg = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
        gg = GammaGammaModel().fit(summary["frequency"], summary["monetary_value"])
        return bgnbd_predictions(bg, summary, HORIZON, gg)

    preds, times = {}, {}
    preds["bgnbd"], times["bgnbd"] = _timed(fit_bg, repeats)
    for name, params in MODELS.items():
        def fit(params=params):
            return SupervisedCLV(**params).fit(tx, calibration_end=CAL).predict(tx, horizon=HORIZON)

        preds[name], times[name] = _timed(fit, repeats)
    if seeds > 1:
        runs = [SupervisedCLV(random_state=s).fit(tx, calibration_end=CAL).predict(
            tx, horizon=HORIZON) for s in range(seeds)]
        preds["lightgbm seed-avg"] = sum(runs) / len(runs)
        single = compare_holdout(actual, {f"seed {s}": p for s, p in enumerate(runs)})
        print(f"  single seeds: total error % {single['purchases_error_pct'].round(1).tolist()}, "
              f"MAE {single['mae'].round(3).tolist()}, r {single['pearson_r'].round(3).tolist()}")
    table = compare_holdout(actual, preds)
    return table, times


def markdown(table: pd.DataFrame, times: dict[str, list[float]], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| model | total predicted | actual | % error | MAE | RMSE | r | AUC buys again | "
        "spend predicted | spend actual | spend % error | fit s (median [min–max]) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.to_dict(orient="records"):
        t = times.get(row["model"])
        fit = f"{np.median(t):.2f} [{min(t):.2f}–{max(t):.2f}]" if t else "–"
        lines.append(
            f"| {row['model']} | {row['predicted_purchases']:,.0f} | "
            f"{row['actual_purchases']:,.0f} | {row['purchases_error_pct']:+.1f}% | "
            f"{row['mae']:.3f} | {row['rmse']:.3f} | {row['pearson_r']:.3f} | "
            f"{row['auc_buy']:.3f} | {row['predicted_spend']:,.0f} | {row['actual_spend']:,.0f} | "
            f"{row['spend_error_pct']:+.1f}% | {fit} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--master", type=Path,
                    default=HERE.parents[1] / "shared" / "datasets" / "cdnow_master.txt")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "clv_holdout.json")
    args = ap.parse_args()
    sets = {"CDNOW 1/10 sample (2,357 customers)": load_transactions(
        load_cdnow_sample(), customer_col="customer_id", date_col="date",
        value_col="dollar_value")}
    if args.master.exists():
        sets["CDNOW full log (23,570 customers)"] = load_transactions(
            args.master, customer_col="customer_id", date_col="date", value_col="dollar_value")
    else:
        print(f"{args.master} not found: full-log table skipped")
    results = {}
    for title, tx in sets.items():
        print(f"{title}: fitting ...", flush=True)
        table, times = run(tx, args.repeats, args.seeds)
        print(markdown(table, times, title) + "\n", flush=True)
        results[title] = {"table": table.to_dict(orient="records"), "fit_seconds": times}
    results["setup"] = {
        "calibration_end": str(CAL.date()), "observation_end": str(OBS.date()),
        "horizon_weeks": HORIZON, "repeats": args.repeats, "seeds": args.seeds,
        "note": "fit seconds include prediction; machine shared with other jobs (2 cores)",
    }
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
