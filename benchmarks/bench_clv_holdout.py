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

Every model gives ``expected_purchases`` (the mean: totals, MAE of the mean) and
``median_purchases`` (the median of its predictive distribution: BG/NBD's closed-form
``P(X = k | x, t_x, T)``; for LightGBM a negative binomial around its mean with BG/NBD's
per-customer shape), whose total and MAE are the "median" columns. A second table gives
BG/NBD tau-quantile forecasts with tau chosen without the holdout: on an inner split of the
calibration window (BG/NBD refitted up to the inner cutoff; tau such that the quantile
forecasts of the inner window add up to its actual purchases) — half the window (chosen as the
main variant before measuring) and the supervised models' 13 weeks — and tau such that the
quantile forecasts add up to BG/NBD's own expected total.

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
    seed_rows = {}
    if seeds > 1:
        for label, params in (("lightgbm", {}), ("lightgbm + bgnbd offset", {"stacking": "offset"})):
            runs = [SupervisedCLV(random_state=s, **params).fit(tx, calibration_end=CAL).predict(
                tx, horizon=HORIZON) for s in range(seeds)]
            if not params:
                avg = sum(runs) / len(runs)
                avg["median_purchases"] = np.nan  # a mean of medians is not a median
                preds["lightgbm seed-avg"] = avg
            single = compare_holdout(actual, {f"seed {s}": p for s, p in enumerate(runs)})
            seed_rows[label] = single[["model", "purchases_error_pct", "mae", "median_mae",
                                       "pearson_r"]].to_dict(orient="records")
            print(f"  {label}, seeds 0-{seeds - 1}: total error % "
                  f"{single['purchases_error_pct'].round(1).tolist()}, MAE "
                  f"{single['mae'].round(3).tolist()}, median MAE "
                  f"{single['median_mae'].round(3).tolist()}")
    table = compare_holdout(actual, preds)
    return table, times, seed_rows, quantile_table(tx, summary, actual)


def quantile_table(tx: pd.DataFrame, summary: pd.DataFrame, actual: pd.DataFrame) -> list[dict]:
    """BG/NBD tau-quantile forecasts of the holdout, tau chosen without the holdout."""
    from promolift.clv.bgnbd import BetaGeoModel
    from promolift.clv.forecast import bgnbd_pmf, inner_split_level, level_for_total, quantile_from_cdf

    bg = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    pmf = bgnbd_pmf(bg, HORIZON, summary["frequency"], summary["recency"], summary["T"])
    cdf = np.cumsum(pmf, axis=1)
    y = actual["purchases"].reindex(summary.index).to_numpy(float)
    span = (CAL - tx["date"].min()).days / 7.0
    levels = {"median (tau = 0.5)": {"tau": 0.5}}
    for label, weeks in ((f"inner split, last {span / 2:.1f} of {span:.0f} weeks (main)", span / 2),
                         ("inner split, last 13 weeks", 13.0)):
        levels[label] = inner_split_level(tx, CAL, weeks)
    levels["tau matching BG/NBD's expected total"] = {
        "tau": level_for_total(cdf, float((pmf @ np.arange(pmf.shape[1])).sum()))}
    rows = []
    for label, info in levels.items():
        q = quantile_from_cdf(cdf, info["tau"])
        rows.append({"choice": label, **info, "predicted": float(q.sum()), "actual_holdout": float(y.sum()),
                     "error_pct": 100.0 * (q.sum() - y.sum()) / y.sum(),
                     "mae": float(np.mean(np.abs(q - y)))})
    return rows


def markdown(table: pd.DataFrame, times: dict[str, list[float]], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| model | total predicted | actual | % error | MAE | RMSE | r | AUC buys again | "
        "median: total | median: % error | median: MAE | "
        "spend predicted | spend actual | spend % error | fit s (median [min–max]) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.to_dict(orient="records"):
        t = times.get(row["model"])
        fit = f"{np.median(t):.2f} [{min(t):.2f}–{max(t):.2f}]" if t else "–"
        lines.append(
            f"| {row['model']} | {row['predicted_purchases']:,.0f} | "
            f"{row['actual_purchases']:,.0f} | {row['purchases_error_pct']:+.1f}% | "
            f"{row['mae']:.3f} | {row['rmse']:.3f} | {row['pearson_r']:.3f} | "
            f"{row['auc_buy']:.3f} | {row['median_predicted']:,.0f} | {row['median_error_pct']:+.1f}% | "
            f"{row['median_mae']:.3f} | {row['predicted_spend']:,.0f} | {row['actual_spend']:,.0f} | "
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
        table, times, seed_rows, quantiles = run(tx, args.repeats, args.seeds)
        print(markdown(table, times, title) + "\n", flush=True)
        print("| BG/NBD tau-quantile | tau | predicted | % error | MAE |\n|---|---:|---:|---:|---:|")
        for q in quantiles:
            print(f"| {q['choice']} | {q['tau']:.3f} | {q['predicted']:,.0f} | {q['error_pct']:+.1f}% | "
                  f"{q['mae']:.3f} |")
        print(flush=True)
        results[title] = {"table": table.to_dict(orient="records"), "fit_seconds": times,
                          "seeds": seed_rows, "bgnbd_quantiles": quantiles}
    results["setup"] = {
        "calibration_end": str(CAL.date()), "observation_end": str(OBS.date()),
        "horizon_weeks": HORIZON, "repeats": args.repeats, "seeds": args.seeds,
        "note": "fit seconds include prediction; machine shared with other jobs (2 cores)",
    }
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
