"""Simulators of the BG/NBD and Gamma-Gamma generative processes, for tests and benchmarks.

Real order logs never reveal a customer's true purchase rate or whether she has dropped out,
so model fits are checked by recovering known parameters from simulated customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from promolift.errors import DataError

__all__ = ["simulate_bgnbd", "simulate_order_log"]


def _check_params(**params: float) -> None:
    for name, value in params.items():
        if not (np.isfinite(value) and value > 0):
            raise DataError(f"{name} must be > 0, got {value!r}.")


def _draw(rng: np.random.Generator, n: int, r: float, alpha: float, a: float, b: float, length):
    """Rate, drop-out probability, repeat purchases and alive flag over ``length`` per customer."""
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = rng.beta(a, b, size=n)
    p = np.clip(p, 1e-12, 1.0)
    life = rng.geometric(p)  # the repeat purchase after which she drops out (1, 2, ...)
    n_points = rng.poisson(lam * length)
    x = np.minimum(life, n_points)
    return lam, p, x, n_points, n_points < life


def simulate_bgnbd(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Draw ``(frequency, recency, T)`` of ``n`` customers from the BG/NBD process.

    Parameters
    ----------
    n : int
        Number of customers.
    r, alpha, a, b : float
        BG/NBD parameters (``lambda ~ Gamma(r, alpha)``, ``p ~ Beta(a, b)``).
    T : float or array of shape (n,)
        Each customer's age at the end of observation (time since her first purchase).
    random_state : int, Generator or None, default=None

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``recency``, ``T`` and the truth: ``rate`` (lambda), ``dropout``
        (p) and ``alive`` (still alive at ``T``).

    Examples
    --------
    >>> sim = simulate_bgnbd(3, r=0.5, alpha=5.0, a=1.0, b=3.0, T=52.0, random_state=1)
    >>> list(sim.columns)
    ['frequency', 'recency', 'T', 'rate', 'dropout', 'alive']
    """
    _check_params(r=r, alpha=alpha, a=a, b=b)
    if n < 1:
        raise DataError(f"n must be >= 1, got {n}.")
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    if np.any(T <= 0):
        raise DataError("T must be > 0 for every customer.")
    lam, p, x, n_points, alive = _draw(rng, n, r, alpha, a, b, T)
    # Given N points of a Poisson process on (0, T], the x-th is T times the x-th of N uniform
    # order statistics ~ Beta(x, N - x + 1).
    repeat = x > 0
    recency = np.zeros(n)
    recency[repeat] = T[repeat] * rng.beta(x[repeat], n_points[repeat] - x[repeat] + 1)
    return pd.DataFrame({"frequency": x.astype(np.int64), "recency": recency, "T": T,
                         "rate": lam, "dropout": p, "alive": alive})


def simulate_order_log(
    n_customers: int,
    *,
    r: float = 0.243,
    alpha: float = 4.414,
    a: float = 0.793,
    b: float = 2.426,
    p: float = 6.25,
    q: float = 3.74,
    v: float = 15.44,
    start: str = "1997-01-01",
    acquisition_weeks: float = 12.0,
    total_weeks: float = 78.0,
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Simulate an order log: BG/NBD purchase timing and Gamma-Gamma order values.

    Customers make their first purchase uniformly over the first ``acquisition_weeks``; the
    log ends ``total_weeks`` after ``start``. The defaults are the published CDNOW estimates
    (weekly ``alpha``), so the log looks like CDNOW's (12-week cohort, 78 weeks).

    Parameters
    ----------
    n_customers : int
    r, alpha, a, b : float
        BG/NBD parameters, ``alpha`` per week.
    p, q, v : float
        Gamma-Gamma parameters of the order values.
    start : str, default="1997-01-01"
    acquisition_weeks, total_weeks : float
    random_state : int, Generator or None, default=None

    Returns
    -------
    pandas.DataFrame
        ``customer`` (str ``"c<number>"``), ``date`` (``datetime64[ns]``), ``value``
        (float, cents); one row per order, sorted by customer and date. Orders on the same
        day are *not* merged (as in a raw log).

    Examples
    --------
    >>> log = simulate_order_log(100, random_state=0)
    >>> int(log["customer"].nunique()), bool((log["value"] > 0).all())
    (100, True)
    """
    _check_params(r=r, alpha=alpha, a=a, b=b, p=p, q=q, v=v)
    if n_customers < 1 or not 0 < acquisition_weeks < total_weeks:
        raise DataError("need n_customers >= 1 and 0 < acquisition_weeks < total_weeks.")
    rng = np.random.default_rng(random_state)
    n = n_customers
    first = rng.uniform(0.0, acquisition_weeks, size=n)
    length = total_weeks - first
    _, _, x, n_points, _ = _draw(rng, n, r, alpha, a, b, length)
    # All N points uniform on (0, length]; the first x of them (sorted) are the repeat purchases.
    owner = np.repeat(np.arange(n), n_points)
    u = rng.random(len(owner)) * length[owner]
    order = np.lexsort((u, owner))
    owner, u = owner[order], u[order]
    group_start = np.r_[0, np.cumsum(n_points)[:-1]]
    rank = np.arange(len(owner)) - group_start[owner]
    keep = rank < x[owner]
    owner = np.r_[np.arange(n), owner[keep]]
    weeks = np.r_[first, first[owner[n:]] + u[keep]]
    nu = rng.gamma(q, 1.0 / v, size=n)
    value = np.round(rng.gamma(p, 1.0 / nu[owner]), 2)
    value = np.maximum(value, 0.01)
    date = np.datetime64(start, "D") + np.floor(weeks * 7.0).astype("timedelta64[D]")
    order = np.lexsort((date, owner))
    width = len(str(n))
    ids = np.char.add("c", np.char.zfill(np.arange(n).astype(str), width))
    return pd.DataFrame({"customer": ids[owner[order]], "date": date[order].astype("datetime64[ns]"),
                         "value": value[order]})
