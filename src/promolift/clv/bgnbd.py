"""The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting your customers the
easy way").

While alive, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after each repeat
purchase she drops out for good with probability ``p ~ Beta(a, b)``. From each customer's
``(frequency x, recency t_x, age T)`` the model gives the probability she is still alive and
the number of purchases to expect over the next ``t`` time units.

Fitting is maximum likelihood: the log-likelihood is computed in log space (``gammaln``,
``logaddexp`` for the two-term sum), optimised with L-BFGS-B over log-parameters with an
analytic gradient, on the unique ``(x, t_x, T)`` rows weighted by their counts.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, gammaln, hyp2f1

from promolift.clv._fit import (
    as_array,
    check_fitted,
    check_positive,
    compress,
    hessian_standard_errors,
    minimize_log_params,
    same_length,
    series,
    unique_rows,
)
from promolift.errors import DataError

__all__ = ["BetaGeoModel", "check_rft"]

PARAMS = ("r", "alpha", "a", "b")


def check_rft(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate per-customer ``(frequency, recency, T)`` and return them as float arrays.

    Raises
    ------
    DataError
        Different lengths, missing values, negative or fractional frequency, negative
        recency, recency after the age ``T``, or a recency without repeat purchases.
    """
    x, tx, T = (as_array(frequency, "frequency"), as_array(recency, "recency"), as_array(T, "T"))
    same_length(frequency=x, recency=tx, T=T)
    checks = [
        ((x < 0) | (x != np.round(x)), "frequency must be a whole number >= 0 (repeat purchases)"),
        (tx < 0, "recency must be >= 0"),
        (tx > T + 1e-9, "recency must not exceed T (the last purchase is before the end)"),
        ((x == 0) & (tx != 0), "recency must be 0 when frequency is 0"),
        (T <= 0, "T must be > 0 (customers first seen on the calibration-end day have no "
                 "history; end the calibration later or drop them)"),
    ]
    for bad, rule in checks:
        if bad.any():
            pos = ", ".join(map(str, np.flatnonzero(bad)[:5]))
            raise DataError(f"{rule}; {int(bad.sum())} customer(s) break it (positions {pos}). "
                            "Build the inputs with promolift.clv.rfm_summary.")
    return x, tx, T


class _Data:
    """Unique (x, t_x, T) rows with weights; the special functions only ever see unique x, T, t_x.

    Frequencies are small integers and ages/recencies take one value per calendar day, so
    ``gammaln``/``digamma``/``log`` are evaluated on a few hundred values and gathered.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
        self.x, self.tx, self.T, self.w = x, tx, T, w
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.utx, self.itx = np.unique(tx, return_inverse=True)
        self.repeat = x > 0
        self.n = w.sum()


def _loglik_terms(params: np.ndarray, d: _Data):
    """Per-row log-likelihood and the pieces the gradient needs."""
    r, alpha, a, b = params
    ux = d.ux
    s_u = r + ux
    A12_u = (gammaln(s_u) - gammaln(r) + r * np.log(alpha)
             + gammaln(b + ux) + gammaln(a + b) - gammaln(b) - gammaln(a + b + ux))
    bx1_u = np.where(ux > 0, b + ux - 1.0, 1.0)
    logT, logtx = np.log(alpha + d.uT)[d.iT], np.log(alpha + d.utx)[d.itx]
    s = s_u[d.ix]
    A3 = -s * logT
    A4 = np.where(d.repeat, (np.log(a) - np.log(bx1_u))[d.ix] - s * logtx, -np.inf)
    L = np.logaddexp(A3, A4)
    return A12_u[d.ix] + L, (A3 - L, A4 - L)


def _neg_ll_and_grad(params, d: _Data, penalizer: float):
    r, alpha, a, b = params
    ll, (l3, l4) = _loglik_terms(params, d)
    w = d.w
    w3, w4 = w * np.exp(l3), w * np.exp(l4)
    ux = d.ux
    # Sums of weights per unique x, T, t_x turn per-row terms into short dot products.
    wx = np.bincount(d.ix, weights=w, minlength=len(ux))
    w4x = np.bincount(d.ix, weights=w4, minlength=len(ux))
    s_u = r + ux
    sw3T = np.bincount(d.iT, weights=w3 * (r + d.x), minlength=len(d.uT))
    sw4t = np.bincount(d.itx, weights=w4 * (r + d.x), minlength=len(d.utx))
    w3T = np.bincount(d.iT, weights=w3, minlength=len(d.uT))
    w4t = np.bincount(d.itx, weights=w4, minlength=len(d.utx))
    logT, logtx = np.log(alpha + d.uT), np.log(alpha + d.utx)
    bx1_u = np.where(ux > 0, b + ux - 1.0, 1.0)
    d_r = (wx @ (digamma(s_u) - digamma(r) + np.log(alpha)) - w3T @ logT - w4t @ logtx)
    d_alpha = wx.sum() * r / alpha - sw3T @ (1.0 / (alpha + d.uT)) - sw4t @ (1.0 / (alpha + d.utx))
    d_a = wx @ (digamma(a + b) - digamma(a + b + ux)) + w4x.sum() / a
    d_b = (wx @ (digamma(b + ux) + digamma(a + b) - digamma(b) - digamma(a + b + ux))
           - w4x @ np.where(ux > 0, 1.0 / bx1_u, 0.0))
    grad = np.array([d_r, d_alpha, d_a, d_b])
    value = -(w @ ll) / d.n + penalizer * np.sum(params**2)
    return value, -grad / d.n + 2 * penalizer * params


def _hyp2f1_unique(r, a, b, alpha, x, T, t) -> np.ndarray:
    """``2F1(r+x, a-1; a+b+x-1; -t/(alpha+T))``, evaluated once per distinct ``(x, T, t)``.

    ``hyp2f1`` costs about a microsecond per call, and a million customers share a few
    thousand (x, T, t) combinations (x is a small integer, T one value per calendar day).
    """
    x, T, t = np.broadcast_arrays(x, T, t)
    if x.size < 2048:
        return hyp2f1(r + x, a - 1.0, a + b + x - 1.0, -t / (alpha + T))
    (ux, uT, ut), inverse, _ = unique_rows(x.ravel(), T.ravel(), t.ravel())
    values = hyp2f1(r + ux, a - 1.0, a + b + ux - 1.0, -ut / (alpha + uT))
    return values[inverse].reshape(x.shape)


class BetaGeoModel:
    """BG/NBD model: P(alive) and expected repeat purchases from frequency, recency and age.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty on the parameters added to the mean negative log-likelihood; a small value
        (e.g. 0.001) stabilises fits on few customers. 0 gives the maximum-likelihood fit.
    max_iter : int, default=1000
        Iteration limit of L-BFGS-B.
    tol : float, default=1e-12
        Relative tolerance on the objective.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha``, ``a``, ``b`` (``alpha`` in the time unit of the inputs).
    standard_errors_ : pandas.Series
        Asymptotic standard errors from the inverse Hessian of the negative log-likelihood.
    log_likelihood_ : float
        Total log-likelihood at ``params_`` (without the penalty).
    n_customers_ : int
    converged_ : bool
    fit_seconds_ : float

    Examples
    --------
    >>> from promolift.clv import simulate_bgnbd
    >>> sim = simulate_bgnbd(5000, r=0.25, alpha=4.0, a=0.8, b=2.5, T=39.0, random_state=0)
    >>> m = BetaGeoModel().fit(sim["frequency"], sim["recency"], sim["T"])
    >>> bool(abs(m.params_["r"] - 0.25) < 3 * m.standard_errors_["r"])
    True
    """

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 1000, tol: float = 1e-12) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, frequency, recency, T) -> BetaGeoModel:
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n,)
            Repeat purchases, time of the last purchase since the first, and age at the end
            of calibration (same time unit), e.g. columns of :func:`rfm_summary`.

        Returns
        -------
        BetaGeoModel
            ``self``, fitted.

        Raises
        ------
        DataError
            Invalid inputs (see :func:`check_rft`), or no customer with a repeat purchase.
        """
        check_positive("penalizer", self.penalizer, allow_zero=True)
        start = time.perf_counter()
        x, tx, T = check_rft(frequency, recency, T)
        if not (x > 0).any():
            raise DataError("no customer has a repeat purchase, so the BG/NBD model cannot be "
                            "fitted; use a longer calibration period.")
        (ux, utx, uT), w = compress(x, tx, T)
        data = _Data(ux, utx, uT, w)
        rate = x.sum() / T.sum()
        x0 = np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, 1.0])
        pen = float(self.penalizer)

        def fun(p):
            return _neg_ll_and_grad(p, data, pen)

        params, result = minimize_log_params(fun, x0, max_iter=self.max_iter, tol=self.tol)
        n = w.sum()
        ses = hessian_standard_errors(lambda p: fun(p)[1] * n, params)
        self.params_ = series(params, PARAMS)
        self.standard_errors_ = series(ses, PARAMS)
        self.log_likelihood_ = float(w @ _loglik_terms(params, data)[0])
        self.n_customers_ = len(x)
        self.converged_ = bool(result.success)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _p(self) -> tuple[float, float, float, float]:
        check_fitted(self)
        r, alpha, a, b = (float(v) for v in self.params_.to_numpy())
        if abs(a - 1.0) < 1e-7:  # the closed forms divide by a - 1; nudge off the removable point
            a = 1.0 + 1e-7
        return r, alpha, a, b

    def _log_odds_dead(self, x, tx, T) -> np.ndarray:
        r, alpha, a, b = self._p()
        repeat = x > 0
        bx1 = np.where(repeat, b + x - 1.0, 1.0)
        z = np.log(a) - np.log(bx1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(repeat, z, -np.inf)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(the customer is still alive at the end of calibration | x, t_x, T).

        Customers without repeat purchases get 1: in BG/NBD a customer can only drop out
        right after a repeat purchase.

        Examples
        --------
        >>> m = BetaGeoModel()
        >>> m.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
        >>> m.probability_alive([0, 2, 2], [0, 30.0, 5.0], [38, 38, 38]).round(3)
        array([1.   , 0.73 , 0.129])
        """
        x, tx, T = check_rft(frequency, recency, T)
        return expit(-self._log_odds_dead(x, tx, T))

    def expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected repeat purchases in ``(T, T + t]`` given ``(x, t_x, T)`` (conditional).

        Computed as ``(a+b+x-1)/(a-1) * (1 - 2F1(r+x, a-1; a+b+x-1; -t/(alpha+T))) * P(alive)``,
        the Pfaff-transformed form of FHL (2005) eq. 10, which stays finite for heavy buyers.

        Parameters
        ----------
        t : float or array-like
            Horizon in the model's time unit; broadcasts against the customers.
        frequency, recency, T : array-like of shape (n,)
        """
        r, alpha, a, b = self._p()
        x, tx, T = check_rft(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        if np.any(t < 0):
            raise DataError("the horizon t must be >= 0.")
        c = a + b + x - 1.0
        hyp = _hyp2f1_unique(r, a, b, alpha, x, T, t)
        p_alive = expit(-self._log_odds_dead(x, tx, T))
        return c / (a - 1.0) * (1.0 - hyp) * p_alive

    def probability_no_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """P(no repeat purchase in ``(T, T + t]`` | x, t_x, T).

        ``1 - P(alive) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x)``: dead customers never buy;
        an alive one has posterior rate ``Gamma(r+x, alpha+T)`` and cannot drop out before
        her next purchase. ``1 -`` this is the model's score for "buys again".
        """
        r, alpha, a, b = self._p()
        x, tx, T = check_rft(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        p_alive = expit(-self._log_odds_dead(x, tx, T))
        stay = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return 1.0 - p_alive + p_alive * stay

    def unconditional_expected_purchases(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases in the first ``t`` time units of a new customer.

        ``(a+b-1)/(a-1) * (1 - 2F1(r, a-1; a+b-1; -t/alpha))`` (FHL 2005 eq. 7, Pfaff form).

        Examples
        --------
        >>> m = BetaGeoModel()
        >>> m.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
        >>> m.unconditional_expected_purchases([0.0, 39.0, 78.0]).round(3)
        array([0.   , 1.197, 1.861])
        """
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=np.float64)
        if np.any(t < 0):
            raise DataError("the horizon t must be >= 0.")
        return (a + b - 1.0) / (a - 1.0) * (1.0 - hyp2f1(r, a - 1.0, a + b - 1.0, -t / alpha)) + 0.0

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"BetaGeoModel(penalizer={self.penalizer})"
        p = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return f"BetaGeoModel({p}; log-likelihood {self.log_likelihood_:.1f})"
