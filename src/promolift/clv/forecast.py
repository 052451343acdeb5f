"""Point forecasts chosen for the loss: predictive distributions of future purchase counts.

The mean of a customer's future purchases (``expected``) is the right forecast for totals and
for CLV, and the one that minimises squared error. Per-customer *absolute* error is minimised
by the median instead: most customers buy nothing in a holdout year, so their conditional
median is 0 while their mean is positive, and a forecast of means loses on MAE to predicting
0 for everybody. This module gives the predictive distribution ``P(X = k)`` of the number of
repeat purchases and quantile point forecasts from it:

* :func:`bgnbd_pmf` — BG/NBD's ``P(X(T, T+t) = k | x, t_x, T)`` in closed form,
* :func:`poisson_cdf`, :func:`negbin_cdf` — count distributions around any mean (e.g. a
  LightGBM forecast),
* :func:`quantile_from_cdf` — the tau-quantile ``min{k : F(k) >= tau}`` per customer,
* :func:`level_for_total` — the one quantile level ``tau`` whose quantile forecasts add up to
  a target total. Minimising ``sum_i E|X_i - q_i|`` subject to ``sum_i q_i = S`` gives
  ``F_i(q_i) = tau`` for every customer with one common ``tau`` (Lagrange), so a total
  constraint is met by choosing a single level.
* :func:`inner_split_level` — ``tau`` chosen on calibration data only: refit BG/NBD on the
  first part of the calibration window, and take the level whose quantile forecasts of the
  last part add up to the purchases actually made in it.

BG/NBD predictive distribution (derivation). Given alive at ``T``, the purchase rate has
posterior ``Gamma(r + x, alpha + T)`` and the drop-out probability ``Beta(a, b + x)``,
independently. A customer makes exactly ``k`` purchases in ``(T, T + t]`` if either she
survives all ``k`` and the Poisson process has exactly ``k`` events, or she survives ``k - 1``
and drops out right after the ``k``-th with at least ``k`` events::

    P(X = k | alive) = E[(1-p)^k] NB(k) + 1{k>0} E[p (1-p)^(k-1)] (1 - sum_{j<k} NB(j))

with ``NB(j) = Gamma(s+j) / (Gamma(s) j!) rho^s (1-rho)^j``, ``s = r + x``,
``rho = (alpha+T)/(alpha+T+t)``, ``E[(1-p)^k] = B(a, b+x+k) / B(a, b+x)`` and
``E[p (1-p)^(k-1)] = B(a+1, b+x+k-1) / B(a, b+x)``. Dead customers (probability
``1 - P(alive)``) buy nothing. (Fader, Hardie & Lee's note "Deriving the conditional PMF of
the BG/NBD model" gives the same expression.) Its mean is the conditional expectation of
:meth:`BetaGeoModel.expected_purchases` (a test checks this).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from promolift.clv._fit import unique_rows
from promolift.errors import DataError

__all__ = [
    "bgnbd_dispersion",
    "bgnbd_pmf",
    "bgnbd_quantile",
    "inner_split_level",
    "level_for_total",
    "negbin_cdf",
    "poisson_cdf",
    "quantile_from_cdf",
]

TAIL = 1e-9
"""Probability mass left beyond the last count of a truncated distribution."""

MAX_COUNT = 400


def _check_level(tau: float) -> float:
    if not (np.isfinite(tau) and 0.0 < tau < 1.0):
        raise DataError(f"the quantile level must be strictly between 0 and 1, got {tau!r}.")
    return float(tau)


def bgnbd_pmf(bgnbd: Any, t: float, frequency, recency, T, *, max_count: int | None = None) -> np.ndarray:
    """``P(X(T, T+t) = k | x, t_x, T)`` for ``k = 0..K`` under a fitted BG/NBD model.

    Parameters
    ----------
    bgnbd : BetaGeoModel
        Fitted.
    t : float
        Horizon in the model's time unit.
    frequency, recency, T : array-like of shape (n,)
    max_count : int or None, default=None
        Last count ``K``; ``None`` extends it until every customer's tail beyond ``K`` is
        below :data:`TAIL` (at most :data:`MAX_COUNT`).

    Returns
    -------
    numpy.ndarray of shape (n, K + 1)
        Rows sum to ``1 -`` (tail beyond ``K``).

    Examples
    --------
    >>> from promolift.clv import BetaGeoModel
    >>> m = BetaGeoModel()
    >>> m.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> pmf = bgnbd_pmf(m, 39.0, [0, 2], [0.0, 30.0], [38.0, 38.0], max_count=2)
    >>> pmf.round(3)
    array([[0.853, 0.111, 0.025],
           [0.439, 0.239, 0.145]])
    """
    from promolift.clv.bgnbd import check_rft

    x, tx, T_ = check_rft(frequency, recency, T)
    t = float(t)
    if not (np.isfinite(t) and t >= 0):
        raise DataError(f"the horizon t must be a finite number >= 0, got {t!r}.")
    limit = MAX_COUNT if max_count is None else int(max_count)
    if limit < 0:
        raise DataError(f"max_count must be >= 0, got {max_count!r}.")
    (ux, utx, uT), inverse, _ = unique_rows(x, tx, T_)
    columns: list[np.ndarray] = []
    total = np.zeros(len(ux))
    for k, prob in _bgnbd_terms(bgnbd, t, ux, utx, uT, limit):
        columns.append(prob)
        total = total + prob
        if max_count is None and np.all(1.0 - total < TAIL):
            break
    return np.column_stack(columns)[inverse]


class _Terms:
    """Per-customer state of the recurrences over k (log NB(k), log E[(1-p)^k], sum NB(j<k))."""

    def __init__(self, bgnbd: Any, t: float, x, tx, T) -> None:
        r, alpha, a, b = bgnbd._p()
        self.a = a
        self.p_alive = bgnbd.probability_alive(x, tx, T)
        self.s = r + x
        self.bx = b + x
        self.abx = a + b + x
        self.log_1m_rho = (np.log(t) - np.log(alpha + T + t)) if t > 0 else np.full(len(x), -np.inf)
        self.log_nb = self.s * (np.log(alpha + T) - np.log(alpha + T + t))  # k = 0
        self.log_survive = np.zeros(len(x))  # log E[(1-p)^0]
        self.nb_cdf = np.zeros(len(x))

    def take(self, keep: np.ndarray) -> None:
        for name in ("p_alive", "s", "bx", "abx", "log_1m_rho", "log_nb", "log_survive", "nb_cdf",
                     "_log_drop"):
            setattr(self, name, getattr(self, name)[keep])

    def prob(self, k: int) -> np.ndarray:
        """P(X = k) for the current rows; then advance the state to k + 1."""
        nb = np.exp(self.log_nb)
        alive_k = np.exp(self.log_survive + self.log_nb)
        if k > 0:
            alive_k = alive_k + np.exp(self._log_drop) * np.maximum(1.0 - self.nb_cdf, 0.0)
        prob = self.p_alive * alive_k + ((1.0 - self.p_alive) if k == 0 else 0.0)
        # Advance: NB(k+1) = NB(k) (s+k)/(k+1) (1-rho); E[(1-p)^(k+1)] = E[(1-p)^k] (b+x+k)/(a+b+x+k);
        # E[p (1-p)^k] = E[(1-p)^k] a/(a+b+x+k).
        self.nb_cdf = self.nb_cdf + nb
        with np.errstate(invalid="ignore"):
            self.log_nb = self.log_nb + np.log(self.s + k) - np.log(k + 1.0) + self.log_1m_rho
        self._log_drop = np.log(self.a) - np.log(self.abx + k) + self.log_survive
        self.log_survive = self.log_survive + np.log(self.bx + k) - np.log(self.abx + k)
        return prob


def _bgnbd_terms(bgnbd: Any, t: float, x, tx, T, limit: int):
    state = _Terms(bgnbd, t, x, tx, T)
    for k in range(limit + 1):  # loop over counts (tens), vectorised over customers
        yield k, state.prob(k)


def bgnbd_quantile(bgnbd: Any, t: float, tau: float, frequency, recency, T) -> np.ndarray:
    """Per customer, the tau-quantile of BG/NBD's purchases in ``(T, T+t]`` (0.5: the median).

    Stops at the largest quantile needed instead of the far tail, so it is cheap for a
    million customers (evaluated once per distinct ``(x, t_x, T)``).

    Examples
    --------
    >>> from promolift.clv import BetaGeoModel
    >>> m = BetaGeoModel()
    >>> m.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    >>> bgnbd_quantile(m, 39.0, 0.5, [0, 2, 10], [0.0, 30.0, 37.0], [38.0, 38.0, 38.0]).tolist()
    [0, 1, 6]
    """
    from promolift.clv.bgnbd import check_rft

    tau = _check_level(tau)
    x, tx, T_ = check_rft(frequency, recency, T)
    t = float(t)
    if not (np.isfinite(t) and t >= 0):
        raise DataError(f"the horizon t must be a finite number >= 0, got {t!r}.")
    (ux, utx, uT), inverse, _ = unique_rows(x, tx, T_)
    out = np.full(len(ux), MAX_COUNT, dtype=np.int64)
    rows = np.arange(len(ux))
    state = _Terms(bgnbd, t, ux, utx, uT)
    cdf = np.zeros(len(ux))
    for k in range(MAX_COUNT + 1):  # loop over counts; customers leave once they reach tau
        cdf = cdf + state.prob(k)
        hit = cdf >= tau
        out[rows[hit]] = k
        keep = ~hit
        if not keep.any():
            break
        rows, cdf = rows[keep], cdf[keep]
        state.take(keep)
    return out[inverse]


def bgnbd_dispersion(bgnbd: Any, t: float, frequency, recency, T) -> np.ndarray:
    """Per customer, the negative binomial shape ``mean^2 / (variance - mean)`` of BG/NBD's
    predictive distribution over ``(T, T+t]``: the shape to put around another model's mean
    (:func:`negbin_cdf`) so that it keeps BG/NBD's over-dispersion (mass at zero)."""
    pmf = bgnbd_pmf(bgnbd, t, frequency, recency, T)
    k = np.arange(pmf.shape[1], dtype=np.float64)
    mean = pmf @ k
    excess = pmf @ (k * k) - mean * mean - mean
    return np.clip(mean * mean / np.maximum(excess, 1e-12), 1e-6, 1e6)


def poisson_cdf(mean, *, max_count: int | None = None) -> np.ndarray:
    """``P(X <= k)`` for ``k = 0..K`` of Poisson counts with the given means, shape (n, K+1).

    Examples
    --------
    >>> poisson_cdf([0.5], max_count=2).round(4)
    array([[0.6065, 0.9098, 0.9856]])
    """
    from scipy.stats import poisson

    mu = np.asarray(mean, dtype=np.float64)
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise DataError("Poisson means must be finite and >= 0.")
    k_max = _count_limit(poisson.ppf(1.0 - TAIL, mu.max(initial=0.0)), max_count)
    return poisson.cdf(np.arange(k_max + 1)[None, :], mu[:, None])


def negbin_cdf(mean, dispersion, *, max_count: int | None = None) -> np.ndarray:
    """``P(X <= k)`` of negative binomial counts with the given means and variance
    ``mean + mean^2 / dispersion`` (``dispersion`` = the gamma shape, one value or one per
    customer; large = Poisson).

    Examples
    --------
    >>> negbin_cdf([1.0], 1.0, max_count=2).round(4)  # geometric with mean 1
    array([[0.5  , 0.75 , 0.875]])
    """
    from scipy.stats import nbinom

    mu = np.asarray(mean, dtype=np.float64)
    shape = np.broadcast_to(np.asarray(dispersion, dtype=np.float64), mu.shape)
    if np.any(~np.isfinite(shape)) or np.any(shape <= 0):
        raise DataError("the dispersion must be finite and > 0.")
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise DataError("negative binomial means must be finite and >= 0.")
    prob = shape / (shape + mu)
    k_max = _count_limit(np.max(nbinom.ppf(1.0 - TAIL, shape, prob), initial=0.0), max_count)
    return nbinom.cdf(np.arange(k_max + 1)[None, :], shape[:, None], prob[:, None])


def _count_limit(ppf: float, max_count: int | None) -> int:
    if max_count is not None:
        return int(max_count)
    return int(min(max(ppf, 1.0), MAX_COUNT))


def quantile_from_cdf(cdf: np.ndarray, tau: float) -> np.ndarray:
    """Per row, the tau-quantile ``min{k : F(k) >= tau}`` of a count distribution.

    Rows whose truncated CDF never reaches ``tau`` get the last count.

    Examples
    --------
    >>> cdf = np.array([[0.6, 0.9, 1.0], [0.2, 0.5, 1.0]])
    >>> quantile_from_cdf(cdf, 0.5).tolist(), quantile_from_cdf(cdf, 0.95).tolist()
    ([0, 1], [2, 2])
    """
    tau = _check_level(tau)
    cdf = np.asarray(cdf, dtype=np.float64)
    return np.minimum((cdf < tau).sum(axis=1), cdf.shape[1] - 1).astype(np.int64)


def level_for_total(cdf: np.ndarray, target: float) -> float:
    """The quantile level whose quantile forecasts add up closest to ``target``.

    ``sum_i q_i(tau) = #{(i, k) : F_i(k) < tau}`` is a step function of ``tau``, so the level
    that makes the total ``m = round(target)`` is read off the sorted CDF values: any
    ``tau`` in ``(e_m, e_(m+1)]`` gives exactly ``m``; this returns the midpoint.

    Examples
    --------
    >>> cdf = np.array([[0.6, 0.9, 1.0], [0.2, 0.5, 1.0]])
    >>> tau = level_for_total(cdf, 2)
    >>> round(tau, 3), quantile_from_cdf(cdf, tau).sum()
    (0.55, np.int64(2))
    """
    cdf = np.asarray(cdf, dtype=np.float64)
    values = np.sort(cdf[:, :-1].ravel())  # the last column is ~1: it never counts
    values = values[(values > 0.0) & (values < 1.0)]
    if len(values) == 0:
        raise DataError("the distributions have no mass to choose a quantile level from.")
    m = int(np.clip(round(float(target)), 0, len(values)))
    low = values[m - 1] if m > 0 else 0.0
    high = values[m] if m < len(values) else 1.0
    return float(np.clip((low + high) / 2.0, 1e-9, 1.0 - 1e-9))


def inner_split_level(
    tx: pd.DataFrame,
    calibration_end,
    inner_weeks: float,
    *,
    penalizer: float = 0.0,
) -> dict[str, float]:
    """Choose the quantile level on the calibration period only (an inner split).

    BG/NBD is refitted on the orders up to ``calibration_end - inner_weeks`` and predicts the
    distribution of each of those customers' purchases in the last ``inner_weeks`` weeks of
    the calibration period; the level is the one whose quantile forecasts add up to the
    purchases they actually made then (:func:`level_for_total`). Orders after
    ``calibration_end`` are never read.

    Returns
    -------
    dict
        ``tau``, ``inner_cutoff`` (ISO date), ``inner_weeks``, ``customers``, ``actual``
        (purchases in the inner window), ``expected`` (BG/NBD's sum of means there) and
        ``quantile_total`` (the chosen quantile forecasts' sum).
    """
    from promolift.clv.bgnbd import BetaGeoModel
    from promolift.clv.supervised import next_period_labels, order_features

    end = pd.Timestamp(calibration_end)
    if not inner_weeks > 0:
        raise DataError(f"inner_weeks must be > 0, got {inner_weeks!r}.")
    cut = (end - pd.Timedelta(days=float(inner_weeks) * 7.0)).normalize()
    calib = tx.loc[tx["date"] <= end]
    feats = order_features(calib, cut)
    feats = feats[feats["T"] > 0]
    if feats.empty:
        raise DataError(f"no customer has an order before the inner cutoff {cut.date()}; use a "
                        "shorter inner window.")
    horizon = (end - cut).days / 7.0
    bg = BetaGeoModel(penalizer=penalizer).fit(feats["frequency"], feats["recency"], feats["T"])
    actual = next_period_labels(calib, cut, end, feats.index)["purchases"].to_numpy()
    pmf = bgnbd_pmf(bg, horizon, feats["frequency"], feats["recency"], feats["T"])
    cdf = np.cumsum(pmf, axis=1)
    tau = level_for_total(cdf, actual.sum())
    return {"tau": tau, "inner_cutoff": str(cut.date()), "inner_weeks": horizon,
            "customers": int(len(feats)), "actual": float(actual.sum()),
            "expected": float((pmf @ np.arange(pmf.shape[1])).sum()),
            "quantile_total": float(quantile_from_cdf(cdf, tau).sum())}
