"""Per-customer recency / frequency / monetary summary of an order log.

Conventions follow the published BG/NBD analysis of CDNOW (Fader, Hardie & Lee 2005) and
``lifetimes.utils.summary_data_from_transaction_data`` with day precision:

- orders of one customer on one day are one purchase occasion (values summed);
- ``frequency`` = number of *repeat* purchase occasions in the calibration period (the first
  purchase is not counted);
- ``recency`` = time of the last purchase minus time of the first (0 if no repeat);
- ``T`` = calibration end minus the first purchase (the customer's age);
- ``monetary_value`` = mean value of the repeat purchases (0 if ``frequency == 0``);
- times in weeks (days / 7) or days. An order *on* the calibration-end day belongs to the
  calibration period; the holdout is ``(calibration_end, observation_end]``.

Customers whose first order is after the calibration end cannot be scored (their age would
be negative). They are left out of the summary with a :class:`NewCustomersWarning` naming how
many there are, or raise a :class:`~promolift.errors.DataError` with
``new_customers="raise"``; ``summary.attrs["n_new_customers"]`` records the count.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from promolift.errors import DataError, PromoliftWarning

__all__ = ["rfm_summary", "NewCustomersWarning", "UNIT_DAYS"]

UNIT_DAYS = {"W": 7.0, "D": 1.0}
"""Days per time unit."""


class NewCustomersWarning(PromoliftWarning):
    """Customers whose first order is after the calibration end were left out."""


def _group(codes: np.ndarray, days: np.ndarray, values: np.ndarray):
    """Merge same-day orders and return per-occasion arrays sorted by (customer, day)."""
    order = np.lexsort((days, codes))
    codes, days, values = codes[order], days[order], values[order]
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    starts = np.flatnonzero(new)
    if len(starts) == len(codes):
        return codes, days, values
    summed = np.add.reduceat(values, starts) if len(starts) else values[:0]
    return codes[starts], days[starts], summed


def _as_day(value, name: str) -> np.datetime64:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"{name} {value!r} is not a date; use YYYY-MM-DD.") from None
    if ts is pd.NaT:
        raise DataError(f"{name} is empty; use YYYY-MM-DD.")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.normalize().date(), "D")


def _observation_end(value, cal_end: np.datetime64, last_day: int) -> np.datetime64:
    """``None`` -> no holdout, ``"last"`` -> the last order day (or the calibration end)."""
    if value is None:
        return cal_end
    if isinstance(value, str) and value == "last":
        return max(np.datetime64(last_day, "D"), cal_end)
    return _as_day(value, "observation_end")


def report_new_customers(n_new: int, examples, cal_end, policy: str) -> None:
    """Raise or warn (per ``new_customers``) about customers first seen after the calibration end."""
    msg = (f"{n_new:,} customer(s) have no order on or before calibration_end {cal_end} "
           f"(e.g. {', '.join(map(repr, examples))}); they cannot be scored by a model of repeat "
           "buying and are left out. Move the calibration end later to include them.")
    if policy == "raise":
        raise DataError(msg)
    if policy == "warn":
        warnings.warn(msg, NewCustomersWarning, stacklevel=3)


def rfm_summary(
    tx: pd.DataFrame,
    *,
    calibration_end=None,
    observation_end=None,
    unit: Literal["W", "D"] = "W",
    new_customers: Literal["warn", "drop", "raise"] = "warn",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, age ``T`` and mean repeat-order value.

    Parameters
    ----------
    tx : DataFrame
        Order log with columns ``customer``, ``date`` and ``value`` (as returned by
        :func:`load_transactions`); same-day orders are merged here too.
    calibration_end : date-like or None, default=None
        Last day of the calibration period; ``None`` = the last order date.
    observation_end : date-like, "last" or None, default=None
        Last day of the holdout period (``"last"``: the last order date). When later than
        ``calibration_end``, the holdout columns are added. Orders after it are ignored.
    unit : {"W", "D"}, default="W"
        Time unit of ``recency``, ``T`` and ``duration_holdout``: weeks or days.
    new_customers : {"warn", "drop", "raise"}, default="warn"
        What to do with customers whose first order is after ``calibration_end``: leave them
        out with a :class:`NewCustomersWarning`, leave them out silently, or raise.

    Returns
    -------
    pandas.DataFrame
        Index ``customer``; columns ``frequency`` (int), ``recency``, ``T``,
        ``monetary_value`` and, with a holdout, ``frequency_holdout`` (int, purchase
        occasions in the holdout), ``monetary_value_holdout`` (their mean value, 0 if none)
        and ``duration_holdout``. ``attrs`` holds ``calibration_end``, ``observation_end``,
        ``unit`` and ``n_new_customers``.

    Raises
    ------
    DataError
        Missing columns, an empty calibration period, ``observation_end`` before
        ``calibration_end``, or new customers with ``new_customers="raise"``.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": ["a", "a", "a", "b"],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15",
    ...                                            "2024-01-08"]),
    ...                    "value": [10.0, 20.0, 40.0, 5.0]})
    >>> rfm_summary(tx, calibration_end="2024-01-29")  # doctest: +NORMALIZE_WHITESPACE
              frequency  recency    T  monetary_value
    customer
    a                 2      2.0  4.0            30.0
    b                 0      0.0  3.0             0.0
    """
    if unit not in UNIT_DAYS:
        raise DataError(f"unit must be 'W' (weeks) or 'D' (days), got {unit!r}.")
    if new_customers not in ("warn", "drop", "raise"):
        raise DataError(f"new_customers must be 'warn', 'drop' or 'raise', got {new_customers!r}.")
    missing = [c for c in ("customer", "date", "value") if c not in tx.columns]
    if missing:
        raise DataError(f"the order log lacks column(s) {', '.join(missing)}; build it with "
                        "promolift.clv.load_transactions.")
    if tx.empty:
        raise DataError("the order log is empty: it needs one row per order.")
    scale = UNIT_DAYS[unit]
    codes, uniques = pd.factorize(tx["customer"], sort=True)
    days = tx["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    values = tx["value"].to_numpy(dtype=np.float64)
    cal_end = (np.datetime64(int(days.max()), "D") if calibration_end is None
               else _as_day(calibration_end, "calibration_end"))
    obs_end = _observation_end(observation_end, cal_end, int(days.max()))
    if obs_end < cal_end:
        raise DataError(f"observation_end {obs_end} is before calibration_end {cal_end}; the "
                        "holdout must come after the calibration period.")
    cal_day, obs_day = int(cal_end.astype(np.int64)), int(obs_end.astype(np.int64))

    in_cal = days <= cal_day
    if not in_cal.any():
        raise DataError(f"no orders on or before calibration_end {cal_end} (first order "
                        f"{np.datetime64(int(days.min()), 'D')}); choose a later calibration end.")
    c_codes, c_days, c_values = _group(codes[in_cal], days[in_cal], values[in_cal])
    starts = np.flatnonzero(np.r_[True, c_codes[1:] != c_codes[:-1]])
    ends = np.r_[starts[1:], len(c_codes)] - 1
    cust = c_codes[starts]
    n_occ = ends - starts + 1
    first, last = c_days[starts], c_days[ends]
    frequency = n_occ - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_sum = np.add.reduceat(c_values, starts) - c_values[starts]
        monetary = np.where(frequency > 0, repeat_sum / np.maximum(frequency, 1), 0.0)
    if np.isnan(values).all():
        monetary = np.full(len(cust), np.nan)
    summary = pd.DataFrame(
        {"frequency": frequency.astype(np.int64),
         "recency": (last - first) / scale,
         "T": (cal_day - first) / scale,
         "monetary_value": monetary},
        index=pd.Index(np.asarray(uniques)[cust], name="customer"),
    )

    seen = np.zeros(len(uniques), dtype=bool)
    seen[cust] = True
    later = np.zeros(len(uniques), dtype=bool)
    later[codes[(days > cal_day) & (days <= obs_day)]] = True
    new = later & ~seen
    n_new = int(new.sum())
    if n_new:
        report_new_customers(n_new, np.asarray(uniques)[new][:5], cal_end, new_customers)

    if obs_day > cal_day:
        in_ho = (days > cal_day) & (days <= obs_day) & seen[codes]
        h_codes, h_days, h_values = _group(codes[in_ho], days[in_ho], values[in_ho])
        pos = np.searchsorted(cust, h_codes)
        count = np.bincount(pos, minlength=len(cust))
        total = np.bincount(pos, weights=h_values, minlength=len(cust))
        with np.errstate(invalid="ignore", divide="ignore"):
            summary["frequency_holdout"] = count.astype(np.int64)
            summary["monetary_value_holdout"] = np.where(count > 0, total / np.maximum(count, 1), 0.0)
        summary["duration_holdout"] = (obs_day - cal_day) / scale
    summary.attrs.update(calibration_end=str(cal_end), observation_end=str(obs_end), unit=unit,
                         n_new_customers=n_new)
    return summary
