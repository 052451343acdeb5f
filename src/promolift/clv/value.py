"""Per-customer lifetime value: P(alive), expected purchases and spend, discounted CLV, churn risk.

CLV uses the standard discrete approximation: the horizon is cut into periods of ``step``
time units; each period's expected purchases (the increase of the BG/NBD conditional
expectation over the period) times the Gamma-Gamma expected spend per purchase times
``margin`` is discounted to today at ``discount_rate`` per year, and the periods are summed.

Churn-risk segments come from P(alive) with :data:`SEGMENT_THRESHOLDS`: ``"active"`` when
P(alive) >= 0.7, ``"at risk"`` when 0.3 <= P(alive) < 0.7, ``"likely lost"`` below 0.3. Note
that BG/NBD gives P(alive) = 1 to customers without repeat purchases (they can only drop out
after a repeat purchase), so one-time buyers are always "active"; ``p_buy_again`` (the
probability of at least one purchase over the horizon) is the better signal for them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from promolift.clv._fit import unique_rows
from promolift.clv.bgnbd import BetaGeoModel, check_rft
from promolift.clv.forecast import bgnbd_quantile
from promolift.clv.gamma_gamma import GammaGammaModel
from promolift.clv.summary import UNIT_DAYS
from promolift.errors import DataError

__all__ = ["customer_value", "churn_segment", "discounted_purchases", "SEGMENT_THRESHOLDS",
           "SEGMENTS"]

SEGMENT_THRESHOLDS = (0.3, 0.7)
"""P(alive) cut points: below the first is "likely lost", from the second on "active"."""

SEGMENTS = ("active", "at risk", "likely lost")

_DAYS_PER_YEAR = 365.25


def churn_segment(p_alive, thresholds: tuple[float, float] = SEGMENT_THRESHOLDS) -> pd.Categorical:
    """Label each customer "active", "at risk" or "likely lost" by P(alive).

    Examples
    --------
    >>> list(churn_segment([0.95, 0.5, 0.1]))
    ['active', 'at risk', 'likely lost']
    """
    low, high = thresholds
    if not 0 <= low <= high <= 1:
        raise DataError(f"segment thresholds must satisfy 0 <= low <= high <= 1, got {thresholds}.")
    p = np.asarray(p_alive, dtype=np.float64)
    codes = np.where(p >= high, 0, np.where(p >= low, 1, 2))
    return pd.Categorical.from_codes(codes, categories=list(SEGMENTS))


def discounted_purchases(
    bgnbd: BetaGeoModel,
    frequency,
    recency,
    T,
    *,
    horizon: float,
    discount_rate: float,
    unit: str = "W",
    step: float | None = None,
) -> np.ndarray:
    """Expected repeat purchases over ``(T, T + horizon]``, each period discounted to today.

    Parameters
    ----------
    bgnbd : BetaGeoModel
        A fitted model.
    frequency, recency, T : array-like of shape (n,)
    horizon : float
        Length of the horizon in ``unit``.
    discount_rate : float
        Annual discount rate (0.1 = 10% a year).
    unit : {"W", "D"}, default="W"
        Time unit of the model.
    step : float or None, default=None
        Period length in ``unit``; ``None`` = about a month (30.4375 days). The last period
        may be shorter so that the periods end exactly at ``horizon``.

    Returns
    -------
    numpy.ndarray of shape (n,)
        ``sum_k (E[X(T, T+t_k)] - E[X(T, T+t_{k-1})]) / (1 + d)^(t_k in years)``.
    """
    if discount_rate <= -1 or not np.isfinite(discount_rate):
        raise DataError(f"discount_rate must be > -1 (a yearly rate, e.g. 0.1), got {discount_rate}.")
    if horizon <= 0:
        raise DataError(f"horizon must be > 0, got {horizon}.")
    days = UNIT_DAYS[unit]
    step = (_DAYS_PER_YEAR / 12.0) / days if step is None else float(step)
    n_steps = int(np.ceil(horizon / step - 1e-9))
    ends = np.minimum(np.arange(1, n_steps + 1) * step, horizon)
    x, tx, T_ = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    # Evaluate on unique customers only: the expectations depend on (x, t_x, T) alone.
    (ux, utx, uT), inverse, _ = unique_rows(x, tx, T_)
    cumulative = _cumulative(bgnbd, ends, ux, utx, uT)
    per_period = np.diff(cumulative, axis=1, prepend=0.0)
    discount = (1.0 + discount_rate) ** (-(ends * days / _DAYS_PER_YEAR))
    return (per_period @ discount)[inverse]


def _cumulative(bgnbd: BetaGeoModel, ends: np.ndarray, x, tx, T) -> np.ndarray:
    """(n_unique, n_steps) matrix of E[X(T, T + t_k)]."""
    out = np.empty((len(x), len(ends)))
    for k, t in enumerate(ends):  # loop over periods (about 12), vectorised over customers
        out[:, k] = bgnbd.expected_purchases(t, x, tx, T)
    return out


def customer_value(
    summary: pd.DataFrame,
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel | None = None,
    *,
    horizon: float = 52.0,
    margin: float = 1.0,
    discount_rate: float = 0.1,
    thresholds: tuple[float, float] = SEGMENT_THRESHOLDS,
) -> pd.DataFrame:
    """Score every customer of an RFM summary with fitted BG/NBD (and Gamma-Gamma) models.

    Parameters
    ----------
    summary : DataFrame
        From :func:`rfm_summary` (its ``attrs["unit"]`` gives the time unit, default weeks).
    bgnbd : BetaGeoModel
        Fitted on ``summary`` (or on customers like them).
    gamma_gamma : GammaGammaModel or None, default=None
        Fitted spend model; without it the spend and CLV columns are left out.
    horizon : float, default=52.0
        Horizon of ``expected_purchases``, ``p_buy_again`` and ``clv``, in the summary's unit.
    margin : float, default=1.0
        Share of revenue that is profit; 1.0 makes ``clv`` discounted revenue.
    discount_rate : float, default=0.1
        Annual discount rate of future purchases.
    thresholds : (float, float), default=(0.3, 0.7)
        P(alive) cut points of the churn-risk segments.

    Returns
    -------
    pandas.DataFrame
        The summary's columns plus ``p_alive``, ``expected_purchases`` (the mean: for totals
        and CLV), ``p_buy_again``, ``median_purchases`` (the median of BG/NBD's predictive
        distribution over the horizon: the point forecast that minimises absolute error),
        ``segment`` and, with ``gamma_gamma``, ``expected_spend`` (per purchase) and ``clv``.

    Raises
    ------
    DataError
        Missing summary columns or invalid parameters.
    """
    need = ["frequency", "recency", "T"] + (["monetary_value"] if gamma_gamma is not None else [])
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise DataError(f"the summary lacks column(s) {', '.join(missing)}; build it with "
                        "promolift.clv.rfm_summary.")
    if not 0 <= margin <= 1:
        raise DataError(f"margin must be between 0 and 1 (share of revenue), got {margin}.")
    unit = summary.attrs.get("unit", "W")
    x, tx, T = check_rft(*(summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T")))
    # Everything BG/NBD gives depends on (x, t_x, T) alone: evaluate it once per distinct row
    # (a million customers share far fewer rows) and gather.
    (ux, utx, uT), inverse, _ = unique_rows(x, tx, T)
    out = summary.copy()
    p_alive = bgnbd.probability_alive(ux, utx, uT)
    out["p_alive"] = p_alive[inverse]
    out["expected_purchases"] = bgnbd.expected_purchases(horizon, ux, utx, uT)[inverse]
    out["p_buy_again"] = (1.0 - bgnbd.probability_no_purchases(horizon, ux, utx, uT))[inverse]
    # The median of the predictive distribution: the point forecast for absolute error (most
    # customers' median is 0); expected_purchases is the one for totals and CLV.
    out["median_purchases"] = bgnbd_quantile(bgnbd, horizon, 0.5, ux, utx, uT)[inverse]
    out["segment"] = churn_segment(out["p_alive"].to_numpy(), thresholds)
    if gamma_gamma is not None:
        spend = gamma_gamma.expected_spend(x, summary["monetary_value"].to_numpy(dtype=np.float64))
        out["expected_spend"] = spend
        out["clv"] = margin * spend * discounted_purchases(
            bgnbd, ux, utx, uT, horizon=horizon, discount_rate=discount_rate, unit=unit)[inverse]
    return out
