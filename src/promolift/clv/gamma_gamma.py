"""The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV";
Colombo & Jiang 1999).

Each purchase of a customer has value ``z ~ Gamma(p, nu)``, and the customer's scale
``nu ~ Gamma(q, gamma)`` across customers, so the mean ``m`` of her ``x`` repeat purchases has
a closed-form likelihood. The model shrinks each customer's observed mean towards the
population mean, the more so the fewer purchases she made. It assumes spend is independent
of purchase frequency (check ``corr(frequency, monetary_value)`` is small).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from promolift.clv._fit import (
    as_array,
    check_fitted,
    check_positive,
    compress,
    hessian_standard_errors,
    minimize_log_params,
    same_length,
    series,
)
from promolift.errors import DataError

__all__ = ["GammaGammaModel"]

PARAMS = ("p", "q", "v")


def _check(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
    x, m = as_array(frequency, "frequency"), as_array(monetary_value, "monetary_value")
    same_length(frequency=x, monetary_value=m)
    for bad, rule in (((x < 0) | (x != np.round(x)), "frequency must be a whole number >= 0"),
                      (m < 0, "monetary_value must be >= 0")):
        if bad.any():
            pos = ", ".join(map(str, np.flatnonzero(bad)[:5]))
            raise DataError(f"{rule}; {int(bad.sum())} customer(s) break it (positions {pos}).")
    return x, m


def _prepare(x: np.ndarray, m: np.ndarray, w: np.ndarray) -> tuple:
    """Inputs plus what does not depend on the parameters (unique x, log m)."""
    ux, ix = np.unique(x, return_inverse=True)
    return x, m, w, ux, ix, np.log(m)


def _neg_ll_and_grad(params, data: tuple):
    """Mean negative log-likelihood, its gradient and the per-row log-likelihood.

    Terms in ``x`` alone (a few distinct integers) are evaluated on the unique values.
    """
    p, q, v = params
    x, m, w, ux, ix, log_m = data
    pux = p * ux
    g_u = gammaln(pux + q) - gammaln(pux) - gammaln(q) + pux * np.log(ux)
    dg_u = digamma(pux + q)
    log_vxm = np.log(v + x * m)
    px = p * x
    ll = g_u[ix] + q * np.log(v) + (px - 1.0) * log_m - (px + q) * log_vxm
    d_p = x * ((dg_u - digamma(pux) + np.log(ux))[ix] + log_m - log_vxm)
    d_q = (dg_u - digamma(q))[ix] + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    n = w.sum()
    grad = np.array([w @ d_p, w @ d_q, w @ d_v])
    return -(w @ ll) / n, -grad / n, ll


class GammaGammaModel:
    """Gamma-Gamma model: expected value of a customer's future purchases.

    Parameters
    ----------
    max_iter : int, default=1000
        Iteration limit of L-BFGS-B.
    tol : float, default=1e-12
        Relative tolerance on the objective.

    Attributes
    ----------
    params_ : pandas.Series
        ``p``, ``q``, ``v`` (``v`` is the scale called gamma in the paper).
    standard_errors_ : pandas.Series
    log_likelihood_ : float
    n_customers_ : int
        Customers used: those with ``frequency > 0`` and ``monetary_value > 0``.
    converged_ : bool
    fit_seconds_ : float

    Examples
    --------
    >>> m = GammaGammaModel()
    >>> m.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    >>> m.expected_spend([0, 1, 10], [0.0, 20.0, 20.0]).round(2)
    array([35.22, 24.64, 20.64])
    """

    def __init__(self, *, max_iter: int = 1000, tol: float = 1e-12) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, frequency, monetary_value) -> GammaGammaModel:
        """Fit on the customers with repeat purchases.

        Parameters
        ----------
        frequency : array-like of shape (n,)
            Repeat purchases; customers with 0 are ignored (their mean is undefined).
        monetary_value : array-like of shape (n,)
            Mean value of those repeat purchases; customers whose mean is 0 (only free
            orders) are ignored too, since the Gamma density is 0 there.

        Returns
        -------
        GammaGammaModel
            ``self``, fitted.

        Raises
        ------
        DataError
            Invalid inputs, or fewer than 3 customers with repeat purchases.
        """
        check_positive("max_iter", self.max_iter)
        start = time.perf_counter()
        x, m = _check(frequency, monetary_value)
        keep = (x > 0) & (m > 0)
        if keep.sum() < 3:
            raise DataError(f"only {int(keep.sum())} customer(s) have repeat purchases with a "
                            "positive value; the Gamma-Gamma spend model needs more. Use a longer "
                            "calibration period.")
        (ux, um), w = compress(x[keep], m[keep])
        mean, var = np.average(um, weights=w), np.average((um - np.average(um, weights=w))**2, weights=w)
        # Start near moments: q = 3 (finite mean and variance), p from the spread of the means.
        q0 = 3.0
        p0 = max(mean**2 / max(var, 1e-9), 0.5)
        v0 = mean * (q0 - 1.0) / p0
        x0 = np.array([p0, q0, max(v0, 1e-3)])

        data = _prepare(ux, um, w)

        def fun(p):
            value, grad, _ = _neg_ll_and_grad(p, data)
            return value, grad

        params, result = minimize_log_params(fun, x0, max_iter=self.max_iter, tol=self.tol)
        n = w.sum()
        self.params_ = series(params, PARAMS)
        self.standard_errors_ = series(hessian_standard_errors(lambda p: fun(p)[1] * n, params), PARAMS)
        self.log_likelihood_ = float(w @ _neg_ll_and_grad(params, data)[2])
        self.n_customers_ = int(keep.sum())
        self.converged_ = bool(result.success)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[value of a future purchase | x, m]: a weighted mean of the population mean
        ``p v / (q - 1)`` and the customer's own mean ``m``, weight ``p x / (p x + q - 1)``.

        Customers without repeat purchases get the population mean. Needs ``q > 1``.
        """
        check_fitted(self)
        p, q, v = (float(t) for t in self.params_.to_numpy())
        if q <= 1:
            raise DataError(f"the fitted q = {q:.3g} <= 1 means the population mean spend is "
                            "infinite; the spend data are too heavy-tailed for Gamma-Gamma.")
        x, m = _check(frequency, monetary_value)
        m = np.where(x > 0, m, 0.0)
        return (v + x * m) * p / (p * x + q - 1.0)

    def mean_spend(self) -> float:
        """Population mean spend per purchase, ``p v / (q - 1)``."""
        check_fitted(self)
        p, q, v = (float(t) for t in self.params_.to_numpy())
        return p * v / (q - 1.0) if q > 1 else float("inf")

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return "GammaGammaModel()"
        p = ", ".join(f"{k}={val:.4g}" for k, val in self.params_.items())
        return f"GammaGammaModel({p}; log-likelihood {self.log_likelihood_:.1f})"
