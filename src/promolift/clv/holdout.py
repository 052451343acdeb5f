"""Compare purchase models on the same holdout period: BG/NBD (+ Gamma-Gamma) and LightGBM.

Every model is fitted on the calibration period only and judged on the holdout customers'
actual repeat purchases (same-day orders merged) and spend:

* totals — predicted against actual repeat purchases and % error,
* per customer — MAE, RMSE and Pearson r of the predicted number of purchases,
* "buys again" — AUC of the model's score for at least one holdout purchase. For BG/NBD the
  score is ``1 - P(X(t) = 0 | x, t_x, T)`` with ``P(X(t) = 0) = 1 - P(alive) + P(alive) *
  ((alpha+T)/(alpha+T+t))^(r+x)`` (an alive customer's rate has posterior
  ``Gamma(r+x, alpha+T)`` and she cannot drop out before her next purchase),
* spend — total predicted against actual holdout spend, % error, MAE and Pearson r.

:func:`compare_holdout` scores given predictions; :func:`holdout_comparison` fits BG/NBD,
Gamma-Gamma and the supervised models on one log and scores them all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from promolift.clv.forecast import bgnbd_quantile
from promolift.clv.supervised import SupervisedCLV, next_period_labels, order_features
from promolift.errors import DataError

__all__ = [
    "HoldoutComparison",
    "auc_score",
    "bgnbd_predictions",
    "compare_holdout",
    "holdout_comparison",
    "holdout_metrics",
]

DAYS_PER_WEEK = 7.0


def auc_score(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for the 0/1 labels ``y`` (ties count half).

    NaN when ``y`` has a single class.

    Examples
    --------
    >>> auc_score(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    >>> auc_score(np.array([0, 1]), np.array([0.5, 0.5]))
    0.5
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _pct_error(predicted: float, actual: float) -> float:
    return 100.0 * (predicted - actual) / actual if actual else float("nan")


def holdout_metrics(
    actual: pd.DataFrame, prediction: pd.DataFrame
) -> dict[str, float]:
    """Accuracy of one model's holdout prediction.

    Parameters
    ----------
    actual : DataFrame
        Indexed by customer, with ``purchases`` and optionally ``spend`` in the holdout.
    prediction : DataFrame
        Indexed by the same customers (any order), with ``expected_purchases`` and optionally
        ``p_buy`` (score for "buys again"; default ``expected_purchases``) and
        ``expected_spend``.

    Returns
    -------
    dict
        ``customers``, ``actual_purchases``, ``predicted_purchases``, ``purchases_error_pct``,
        ``mae``, ``rmse``, ``pearson_r``, ``auc_buy`` (all of ``expected_purchases``); of the
        ``median_purchases`` point forecast when given (NaN otherwise): ``median_predicted``,
        ``median_error_pct``, ``median_mae``; and, when both sides have spend,
        ``actual_spend``, ``predicted_spend``, ``spend_error_pct``, ``spend_mae``,
        ``spend_pearson_r`` (NaN otherwise).

    Raises
    ------
    DataError
        If columns are missing or the prediction lacks some customers.

    Examples
    --------
    >>> actual = pd.DataFrame({"purchases": [0.0, 2.0, 1.0]}, index=["a", "b", "c"])
    >>> pred = pd.DataFrame({"expected_purchases": [0.5, 1.5, 1.0]}, index=["a", "b", "c"])
    >>> m = holdout_metrics(actual, pred)
    >>> m["predicted_purchases"], round(m["mae"], 4), m["auc_buy"]
    (3.0, 0.3333, 1.0)
    """
    if "purchases" not in actual.columns:
        raise DataError("the actual holdout frame needs a 'purchases' column")
    if "expected_purchases" not in prediction.columns:
        raise DataError(
            "the prediction needs an 'expected_purchases' column, it has "
            f"{list(prediction.columns)}"
        )
    missing = actual.index.difference(prediction.index)
    if len(missing):
        raise DataError(
            f"the prediction lacks {len(missing)} holdout customer(s), e.g. "
            f"{list(missing[:3])}; predict every customer of the calibration period"
        )
    pred = prediction.reindex(actual.index)
    y = actual["purchases"].to_numpy(np.float64)
    p = pred["expected_purchases"].to_numpy(np.float64)
    score = pred["p_buy"].to_numpy(np.float64) if "p_buy" in pred else p
    err = p - y
    out = {
        "customers": float(len(y)),
        "actual_purchases": float(y.sum()),
        "predicted_purchases": float(p.sum()),
        "purchases_error_pct": _pct_error(float(p.sum()), float(y.sum())),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "pearson_r": _pearson(p, y),
        "auc_buy": auc_score(y > 0, score),
    }
    nan = float("nan")
    if "median_purchases" in pred.columns:
        med = pred["median_purchases"].to_numpy(np.float64)
        out |= {"median_predicted": float(med.sum()),
                "median_error_pct": _pct_error(float(med.sum()), float(y.sum())),
                "median_mae": float(np.mean(np.abs(med - y)))}
    else:
        out |= dict.fromkeys(("median_predicted", "median_error_pct", "median_mae"), nan)
    if "spend" in actual.columns and "expected_spend" in pred.columns:
        ys = actual["spend"].to_numpy(np.float64)
        ps = pred["expected_spend"].to_numpy(np.float64)
        out |= {
            "actual_spend": float(ys.sum()),
            "predicted_spend": float(ps.sum()),
            "spend_error_pct": _pct_error(float(ps.sum()), float(ys.sum())),
            "spend_mae": float(np.mean(np.abs(ps - ys))),
            "spend_pearson_r": _pearson(ps, ys),
        }
    else:
        out |= dict.fromkeys(
            ("actual_spend", "predicted_spend", "spend_error_pct", "spend_mae", "spend_pearson_r"),
            nan,
        )
    return out


def compare_holdout(
    actual: pd.DataFrame, predictions: Mapping[str, pd.DataFrame]
) -> pd.DataFrame:
    """One row of :func:`holdout_metrics` per model, in the given order.

    Returns
    -------
    DataFrame
        Column ``model`` then the metrics.

    Examples
    --------
    >>> actual = pd.DataFrame({"purchases": [0.0, 2.0]}, index=[1, 2])
    >>> preds = {"zero": pd.DataFrame({"expected_purchases": [0.0, 0.0]}, index=[1, 2]),
    ...          "mean": pd.DataFrame({"expected_purchases": [1.0, 1.0]}, index=[1, 2])}
    >>> compare_holdout(actual, preds)[["model", "predicted_purchases", "mae"]]
      model  predicted_purchases  mae
    0  zero                  0.0  1.0
    1  mean                  2.0  1.0
    """
    rows = [{"model": name, **holdout_metrics(actual, pred)} for name, pred in predictions.items()]
    frame = pd.DataFrame(rows)
    frame["customers"] = frame["customers"].astype(int)
    return frame


def bgnbd_predictions(
    bgnbd: Any,
    summary: pd.DataFrame,
    horizon: float,
    gamma_gamma: Any | None = None,
) -> pd.DataFrame:
    """BG/NBD (and Gamma-Gamma) predictions over the next ``horizon`` time units.

    Parameters
    ----------
    bgnbd : BetaGeoModel
        Fitted.
    summary : DataFrame
        Per-customer ``frequency``, ``recency``, ``T`` (and ``monetary_value`` for spend).
    horizon : float
        In the summary's time unit.
    gamma_gamma : GammaGammaModel, optional
        Fitted; adds ``expected_spend = E[X(horizon)] * E[value per purchase]``.

    Returns
    -------
    DataFrame
        Indexed like ``summary``: ``expected_purchases``, ``p_buy`` (``1 - P(no purchase)``),
        ``p_alive``, ``median_purchases`` (median of the predictive distribution) and
        optionally ``expected_spend``.
    """
    x, tx, T = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    out = pd.DataFrame(index=summary.index)
    out["expected_purchases"] = bgnbd.expected_purchases(horizon, x, tx, T)
    out["p_buy"] = 1.0 - bgnbd.probability_no_purchases(horizon, x, tx, T)
    out["p_alive"] = bgnbd.probability_alive(x, tx, T)
    out["median_purchases"] = bgnbd_quantile(bgnbd, horizon, 0.5, x, tx, T).astype(np.float64)
    if gamma_gamma is not None:
        per_order = gamma_gamma.expected_spend(x, summary["monetary_value"].to_numpy(np.float64))
        out["expected_spend"] = out["expected_purchases"].to_numpy() * per_order
    return out


@dataclass(eq=False)
class HoldoutComparison:
    """Result of :func:`holdout_comparison`.

    Attributes
    ----------
    table : DataFrame
        :func:`compare_holdout` of every model, plus ``fit_seconds``.
    actual : DataFrame
        Per customer ``purchases``, ``spend``, ``buy`` in the holdout, and the calibration
        ``frequency``.
    predictions : dict of str to DataFrame
        Each model's per-customer predictions.
    bgnbd, gamma_gamma : fitted models
    models : dict of str to SupervisedCLV
        The fitted supervised models.
    horizon : float
        Holdout length in weeks.
    """

    table: pd.DataFrame
    actual: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    bgnbd: Any
    gamma_gamma: Any | None
    models: dict[str, SupervisedCLV] = field(default_factory=dict)
    horizon: float = 0.0


def default_models() -> dict[str, SupervisedCLV]:
    """The supervised models compared by default: plain LightGBM and LightGBM with a
    BG/NBD offset (both 13-week labels, BG/NBD-shaped extrapolation)."""
    return {
        "lightgbm": SupervisedCLV(),
        "lightgbm + bgnbd offset": SupervisedCLV(stacking="offset"),
    }


def holdout_comparison(
    tx: pd.DataFrame,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    models: Mapping[str, SupervisedCLV] | None = None,
) -> HoldoutComparison:
    """Fit BG/NBD, Gamma-Gamma and supervised models on the calibration period; score them
    on the holdout ``(calibration_end, observation_end]``.

    Only the customers whose first order is on or before ``calibration_end`` are scored;
    nothing after ``calibration_end`` is used to fit.

    Parameters
    ----------
    tx : DataFrame
        Order log (``customer``, ``date``, ``value``) covering both periods.
    calibration_end, observation_end : str or Timestamp
        Ends of the calibration and holdout periods (inclusive).
    models : dict of str to SupervisedCLV, optional
        Supervised models by name (copied with ``get_params`` before fitting, so the given
        objects are left untouched); default :func:`default_models`.

    Returns
    -------
    HoldoutComparison

    Raises
    ------
    DataError
        If the holdout is empty or the log is malformed.
    """
    from promolift.clv.bgnbd import BetaGeoModel
    from promolift.clv.gamma_gamma import GammaGammaModel

    cal, obs = pd.Timestamp(calibration_end), pd.Timestamp(observation_end)
    if obs <= cal:
        raise DataError(
            f"observation_end {obs.date()} must be after calibration_end {cal.date()}: the "
            "holdout period is (calibration_end, observation_end]"
        )
    horizon = (obs - cal).days / DAYS_PER_WEEK
    feats = order_features(tx, cal)
    feats = feats[feats["T"] > 0]
    if feats.empty:
        raise DataError(f"no customer has an order before {cal.date()}")
    actual = next_period_labels(tx, cal, obs, feats.index)
    actual["frequency"] = feats["frequency"]
    summary = feats[["frequency", "recency", "T"]].copy()
    summary["monetary_value"] = _mean_repeat_value(tx, cal, feats.index)
    start = time.perf_counter()
    bg = BetaGeoModel().fit(summary["frequency"], summary["recency"], summary["T"])
    gg = GammaGammaModel().fit(summary["frequency"], summary["monetary_value"])
    fit_seconds = {"bgnbd": time.perf_counter() - start}
    predictions = {"bgnbd": bgnbd_predictions(bg, summary, horizon, gg)}
    fitted: dict[str, SupervisedCLV] = {}
    for name, given in (default_models() if models is None else dict(models)).items():
        start = time.perf_counter()
        model = SupervisedCLV(**given.get_params())
        model.fit(tx, calibration_end=cal)
        predictions[name] = model.predict(tx, horizon=horizon)
        fit_seconds[name] = time.perf_counter() - start
        fitted[name] = model
    table = compare_holdout(actual, predictions)
    table["fit_seconds"] = table["model"].map(fit_seconds)
    return HoldoutComparison(
        table=table,
        actual=actual,
        predictions=predictions,
        bgnbd=bg,
        gamma_gamma=gg,
        models=fitted,
        horizon=horizon,
    )


def _mean_repeat_value(tx: pd.DataFrame, end: pd.Timestamp, customers: pd.Index) -> pd.Series:
    """Mean value of each customer's repeat orders (same-day merged) up to ``end``; 0 if none."""
    d = tx.loc[tx["date"] <= end, ["customer", "date", "value"]]
    d = d.groupby(["customer", "date"], sort=True, observed=True)["value"].sum().reset_index()
    repeat = d["customer"].duplicated(keep="first").to_numpy()
    mean = d.loc[repeat].groupby("customer")["value"].mean()
    return mean.reindex(customers, fill_value=0.0)
