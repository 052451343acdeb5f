"""Shared maximum-likelihood machinery: input checks, log-scale L-BFGS-B, Hessian SEs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from promolift.errors import DataError, NotFittedError

def as_array(x, name: str) -> np.ndarray:
    """A float64 1-d view of ``x``; non-finite values are a :class:`DataError`."""
    arr = np.atleast_1d(np.asarray(x, dtype=np.float64))
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{name} has {int(bad.sum())} missing or infinite value(s) (first at "
                        f"position {int(np.flatnonzero(bad)[0])}); drop those customers.")
    return arr


def same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise DataError(f"inputs have different lengths: {desc}. Pass one value per customer.")
    return next(iter(lengths.values()))


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    ok = value >= 0 if allow_zero else value > 0
    if not (np.isfinite(value) and ok):
        bound = ">= 0" if allow_zero else "> 0"
        raise DataError(f"{name} must be a finite number {bound}, got {value!r}.")
    return float(value)


def unique_rows(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Unique rows of the given equal-length columns, the inverse index and the counts.

    Hash-based (``pandas.factorize``), so linear in the rows; unique rows come in order of
    first appearance.
    """
    codes, _ = pd.factorize(columns[0])
    for col in columns[1:]:  # loop over the 2-3 columns, not rows
        more, uniq = pd.factorize(col)
        codes, _ = pd.factorize(codes.astype(np.int64) * len(uniq) + more)
    # factorize numbers rows by first appearance, so a row is the first of its kind exactly
    # where its code exceeds every earlier code.
    previous_max = np.maximum.accumulate(np.r_[-1, codes[:-1]])
    first = np.flatnonzero(codes > previous_max)
    counts = np.bincount(codes, minlength=len(first)).astype(np.float64)
    return tuple(np.asarray(c)[first] for c in columns), codes.astype(np.intp), counts


def compress(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Unique rows of the given columns and their counts (the likelihood is a weighted sum)."""
    unique, _, counts = unique_rows(*columns)
    return unique, counts


def minimize_log_params(
    neg_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    bound: float = 20.0,
):
    """L-BFGS-B over log-parameters; ``neg_ll_and_grad`` takes and differentiates natural params."""

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(theta)
        value, grad = neg_ll_and_grad(params)
        return value, grad * params  # chain rule: d/dlog(p) = p * d/dp

    # L-BFGS-B's tiny BLAS calls are 10-50x slower when OpenBLAS spins up threads on a busy
    # machine; one thread is always fastest for a 3-4 parameter problem.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(objective, np.log(x0), jac=True, method="L-BFGS-B",
                          bounds=[(-bound, bound)] * len(x0),
                          options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-8})
    return np.exp(result.x), result


def hessian_standard_errors(grad: Callable[[np.ndarray], np.ndarray], params: np.ndarray) -> np.ndarray:
    """Standard errors from the inverse of a central-difference Hessian of the negative LL.

    ``grad`` is the gradient of the *total* negative log-likelihood in natural parameters.
    NaN where the Hessian is singular or not positive definite (a flat or boundary optimum).
    """
    k = len(params)
    H = np.empty((k, k))
    for j in range(k):  # loop over parameters (4), not customers
        h = 1e-5 * max(abs(params[j]), 1e-3)
        up, down = params.copy(), params.copy()
        up[j] += h
        down[j] -= h
        H[:, j] = (grad(up) - grad(down)) / (2 * h)
    H = (H + H.T) / 2
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.full(k, np.nan)
    diag = np.diag(cov)
    return np.where(diag > 0, np.sqrt(np.abs(diag)), np.nan)


def check_fitted(model, attr: str = "params_") -> None:
    if not hasattr(model, attr):
        raise NotFittedError(f"this {type(model).__name__} is not fitted yet; call fit(...) first.")


def series(values: np.ndarray, names: tuple[str, ...]) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.float64), index=list(names), dtype=np.float64)
