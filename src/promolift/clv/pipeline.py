"""Fit BG/NBD + Gamma-Gamma on an RFM summary and score every customer, in one call.

:func:`fit_clv` is what ``promolift clv`` runs: it returns the per-customer table and a
JSON-ready summary (parameters with standard errors, log-likelihoods, fit times, segment
counts and, when the summary has a holdout, the holdout accuracy of the purchase forecast).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promolift.clv.bgnbd import BetaGeoModel
from promolift.clv.forecast import bgnbd_quantile
from promolift.clv.gamma_gamma import GammaGammaModel
from promolift.clv.value import SEGMENT_THRESHOLDS, SEGMENTS, customer_value
from promolift.errors import DataError

__all__ = ["fit_clv", "ClvResult", "holdout_accuracy"]


@dataclass(eq=False)
class ClvResult:
    """Fitted models, the per-customer table and a JSON-ready summary.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per customer (column ``customer`` first): the RFM summary, ``p_alive``,
        ``expected_purchases``, ``p_buy_again``, ``segment`` and, with order values,
        ``expected_spend`` and ``clv``.
    bgnbd : BetaGeoModel
    gamma_gamma : GammaGammaModel or None
        ``None`` when the log has no order values.
    summary : dict
        Parameters, standard errors, log-likelihoods, fit seconds, settings, segment counts,
        totals and (with a holdout) ``holdout`` accuracy of the expected purchases, with
        ``holdout["median"]`` the accuracy of the median forecast.
    """

    table: pd.DataFrame
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel | None
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the table (CSV or Parquet by suffix) and ``<stem>.json`` beside it, atomically."""
        from promolift.io import atomic_write_frame, atomic_write_json

        path = Path(path)
        if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise DataError(f"{path}: the output must end in .parquet or .csv.")
        table = self.table.copy()
        table["segment"] = table["segment"].astype(str)
        json_path = path.with_suffix(".json")
        atomic_write_frame(path, table)
        atomic_write_json(json_path, self.summary)
        return path, json_path


def holdout_accuracy(actual, predicted) -> dict[str, float]:
    """Totals, % error, per-customer MAE and Pearson r of a holdout purchase forecast.

    Examples
    --------
    >>> holdout_accuracy([0, 2, 1], [0.5, 1.0, 1.5])
    {'customers': 3, 'actual': 3.0, 'predicted': 3.0, 'error_pct': 0.0, 'mae': 0.6666666666666666, 'pearson_r': 0.5}
    """
    a, p = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    total_a, total_p = float(a.sum()), float(p.sum())
    r = float(np.corrcoef(a, p)[0, 1]) if a.std() > 0 and p.std() > 0 else float("nan")
    return {"customers": int(len(a)), "actual": total_a, "predicted": total_p,
            "error_pct": 100.0 * (total_p - total_a) / total_a if total_a else float("nan"),
            "mae": float(np.mean(np.abs(a - p))), "pearson_r": r}


def fit_clv(
    summary: pd.DataFrame,
    *,
    horizon: float = 52.0,
    margin: float = 1.0,
    discount_rate: float = 0.1,
    thresholds: tuple[float, float] = SEGMENT_THRESHOLDS,
    penalizer: float = 0.0,
) -> ClvResult:
    """Fit BG/NBD (and Gamma-Gamma when values exist) and score every customer.

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_summary` or :func:`summarize_file`.
    horizon : float, default=52.0
        Forecast horizon in the summary's unit (weeks by default).
    margin : float, default=1.0
        Profit share of revenue used in ``clv``.
    discount_rate : float, default=0.1
        Annual discount rate.
    thresholds : (float, float), default=(0.3, 0.7)
        P(alive) cut points of the churn-risk segments.
    penalizer : float, default=0.0
        L2 penalty of the BG/NBD fit.

    Returns
    -------
    ClvResult

    Raises
    ------
    DataError
        Too little data to fit (no repeat purchases), or invalid parameters.

    Examples
    --------
    >>> from promolift.clv import load_transactions, rfm_summary
    >>> from promolift.datasets import load_cdnow_sample
    >>> tx = load_transactions(load_cdnow_sample(), customer_col="customer_id",
    ...                        date_col="date", value_col="dollar_value")
    >>> res = fit_clv(rfm_summary(tx, calibration_end="1997-09-30"))
    >>> res.bgnbd.params_.round(3).to_dict()
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """
    x, tx, T = (summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    bg = BetaGeoModel(penalizer=penalizer).fit(x, tx, T)
    has_values = "monetary_value" in summary and not summary["monetary_value"].isna().all()
    gg = GammaGammaModel().fit(x, summary["monetary_value"]) if has_values else None
    start = time.perf_counter()
    table = customer_value(summary, bg, gg, horizon=horizon, margin=margin,
                           discount_rate=discount_rate, thresholds=thresholds)
    score_seconds = time.perf_counter() - start
    counts = table["segment"].value_counts()
    info: dict[str, Any] = {
        "customers": int(len(table)),
        "repeat_customers": int((x > 0).sum()),
        "calibration_end": summary.attrs.get("calibration_end"),
        "observation_end": summary.attrs.get("observation_end"),
        "unit": summary.attrs.get("unit", "W"),
        "new_customers_left_out": int(summary.attrs.get("n_new_customers", 0)),
        "horizon": horizon, "margin": margin, "discount_rate": discount_rate,
        "segment_thresholds": {"likely lost below": thresholds[0], "active from": thresholds[1]},
        "segments": {s: int(counts.get(s, 0)) for s in SEGMENTS},
        "bgnbd": _model_info(bg),
        "gamma_gamma": _model_info(gg) if gg is not None else None,
        "totals": {"expected_purchases": float(table["expected_purchases"].sum())},
        "score_seconds": score_seconds,
    }
    if gg is not None:
        info["totals"]["clv"] = float(table["clv"].sum())
        info["gamma_gamma"]["mean_spend"] = gg.mean_spend()
    if "frequency_holdout" in summary:
        duration = summary["duration_holdout"].to_numpy(dtype=np.float64)
        predicted = bg.expected_purchases(duration, x, tx, T)
        median = bgnbd_quantile(bg, float(duration[0]), 0.5, x, tx, T)
        table["expected_purchases_holdout"] = predicted
        table["median_purchases_holdout"] = median
        info["holdout"] = {"duration": float(duration[0]),
                           **holdout_accuracy(summary["frequency_holdout"], predicted),
                           "median": holdout_accuracy(summary["frequency_holdout"], median)}
    table = table.reset_index()
    return ClvResult(table=table, bgnbd=bg, gamma_gamma=gg, summary=info)


def _model_info(model) -> dict[str, Any]:
    return {"params": model.params_.to_dict(), "standard_errors": model.standard_errors_.to_dict(),
            "log_likelihood": model.log_likelihood_, "customers": model.n_customers_,
            "converged": model.converged_, "fit_seconds": model.fit_seconds_}
