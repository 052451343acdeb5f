"""CLV figures and a self-contained HTML page: compute the data, then draw it.

* :func:`cumulative_repeat_purchases` — actual repeat purchases per week against BG/NBD's
  expectation, summed over cohorts by first-purchase day (Fader, Hardie & Lee 2005, fig. 3);
  drawn by :func:`plot_cumulative_repeat_purchases` with the calibration end marked.
* :func:`purchases_by_frequency` — mean holdout purchases, actual and predicted, by calibration
  frequency 0..7+ (FHL 2005, fig. 4); drawn by :func:`plot_purchases_by_frequency`.
* :func:`clv_histogram` — the distribution of a CLV column; :func:`plot_clv_histogram`.

:func:`render_clv_report` assembles them (inline SVG, inline CSS, no network) with the
report helpers of :mod:`promolift.report`; :func:`write_clv_report` writes it atomically.
matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promolift.errors import DataError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from promolift.clv.pipeline import ClvResult

__all__ = [
    "clv_histogram",
    "cumulative_repeat_purchases",
    "plot_clv_histogram",
    "plot_cumulative_repeat_purchases",
    "plot_purchases_by_frequency",
    "purchases_by_frequency",
    "render_clv_report",
    "write_clv_report",
]

DAYS_PER_WEEK = 7.0


# ---------------------------------------------------------------------------------- compute
def cumulative_repeat_purchases(
    tx: pd.DataFrame,
    bgnbd: Any,
    *,
    calibration_end: str | pd.Timestamp,
    end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Weekly actual and BG/NBD-expected repeat purchases of the customers acquired by
    ``calibration_end``, from the first order to ``end``.

    The expectation sums ``n_s * E[X(t - s)]`` over cohorts ``s`` (customers whose first order
    is on day ``s``), with BG/NBD's unconditional ``E[X(t)]`` (weeks). Repeat purchases are
    every order day of a customer after her first.

    Parameters
    ----------
    tx : DataFrame
        Order log (``customer``, ``date``, ``value``).
    bgnbd : BetaGeoModel
        Fitted on the calibration period in weeks.
    calibration_end : str or Timestamp
        Customers first seen after it are left out; it is marked on the plot.
    end : str or Timestamp, optional
        Last day shown; default the last order of the log.

    Returns
    -------
    DataFrame
        One row per week ``week`` (1, 2, ...; week k ends ``7k`` days after the first order
        day): ``actual``, ``expected``, ``cumulative_actual``, ``cumulative_expected``.
        ``attrs["calibration_week"]`` is the calibration end in weeks.

    Examples
    --------
    >>> class Linear:  # one purchase per week, for illustration
    ...     def unconditional_expected_purchases(self, t):
    ...         return np.asarray(t, float)
    >>> tx = pd.DataFrame({"customer": [1, 1, 2],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-01-08"]),
    ...                    "value": 1.0})
    >>> c = cumulative_repeat_purchases(tx, Linear(), calibration_end="2024-01-14")
    >>> c[["week", "actual", "cumulative_expected"]].values.tolist()
    [[1.0, 0.0, 1.0], [2.0, 1.0, 3.0]]
    """
    _need(tx, ("customer", "date"), "the transaction log")
    cal = pd.Timestamp(calibration_end)
    days = tx[["customer", "date"]].drop_duplicates()
    first = days.groupby("customer")["date"].transform("min")
    days = days.loc[first <= cal]
    first = first.loc[days.index]
    if days.empty:
        raise DataError(f"no customer has an order on or before {cal.date()}")
    start = first.min()
    stop = pd.Timestamp(end) if end is not None else days["date"].max()
    n_weeks = max(1, int(np.ceil(((stop - start).days + 1) / DAYS_PER_WEEK)))
    repeat = days.loc[days["date"] > first, "date"]
    week_of = ((repeat - start).dt.days.to_numpy() // int(DAYS_PER_WEEK)).astype(int)
    week_of = week_of[week_of < n_weeks]
    actual = np.bincount(week_of, minlength=n_weeks).astype(float)
    first_day = (days.groupby("customer")["date"].min() - start).dt.days.to_numpy()
    cohort_day, cohort_size = np.unique(first_day, return_counts=True)
    ends = np.arange(1, n_weeks + 1) * DAYS_PER_WEEK  # day at the end of each week
    age = np.clip(ends[None, :] - cohort_day[:, None], 0.0, None) / DAYS_PER_WEEK
    cum = np.asarray(bgnbd.unconditional_expected_purchases(age.ravel()), float).reshape(age.shape)
    cumulative_expected = cohort_size @ cum
    expected = np.diff(np.r_[0.0, cumulative_expected])
    out = pd.DataFrame(
        {
            "week": np.arange(1, n_weeks + 1, dtype=float),
            "actual": actual,
            "expected": expected,
            "cumulative_actual": np.cumsum(actual),
            "cumulative_expected": cumulative_expected,
        }
    )
    out.attrs["calibration_week"] = ((cal - start).days + 1) / DAYS_PER_WEEK
    return out


def purchases_by_frequency(
    frequency: Any,
    actual: Any,
    predicted: Mapping[str, Any],
    *,
    max_frequency: int = 7,
) -> pd.DataFrame:
    """Mean holdout purchases, actual and per model, by calibration frequency ``0..max+``.

    Parameters
    ----------
    frequency : array-like of shape (n,)
        Calibration-period repeat purchases.
    actual : array-like of shape (n,)
        Holdout repeat purchases.
    predicted : dict of str to array-like of shape (n,)
        Each model's expected holdout purchases.
    max_frequency : int, default=7
        The last group holds every frequency from it up (labelled ``"7+"``).

    Returns
    -------
    DataFrame
        Columns ``frequency`` (label), ``customers``, ``actual`` and one column per model
        (group means).

    Examples
    --------
    >>> purchases_by_frequency([0, 0, 1, 9], [0, 1, 2, 4], {"m": [0.5, 0.5, 1, 3]},
    ...                        max_frequency=2)
      frequency  customers  actual    m
    0         0          2     0.5  0.5
    1         1          1     2.0  1.0
    2        2+          1     4.0  3.0
    """
    f = np.asarray(frequency, dtype=np.float64)
    groups = np.minimum(f, max_frequency).astype(int)
    cols = {"actual": np.asarray(actual, dtype=np.float64)}
    cols |= {name: np.asarray(v, dtype=np.float64) for name, v in predicted.items()}
    for name, v in cols.items():
        if len(v) != len(f):
            raise DataError(
                f"'{name}' has {len(v)} values but frequency has {len(f)}: pass one per customer"
            )
    frame = pd.DataFrame({"group": groups, **cols})
    g = frame.groupby("group")
    out = g.mean()
    out.insert(0, "customers", g.size())
    out = out.reindex(range(max_frequency + 1)).dropna(subset=["customers"])
    out["customers"] = out["customers"].astype(int)
    labels = [f"{k}+" if k == max_frequency else str(k) for k in out.index]
    out.insert(0, "frequency", labels)
    return out.reset_index(drop=True)


def clv_histogram(values: Any, *, bins: int = 30, clip_quantile: float = 0.99) -> pd.DataFrame:
    """Histogram of CLV values; values above the ``clip_quantile`` fall in the last bin.

    Returns
    -------
    DataFrame
        ``left``, ``right``, ``count`` per bin (counts sum to the number of finite values);
        ``attrs["clipped"]`` is how many values were above the last edge.

    Examples
    --------
    >>> h = clv_histogram([0.0, 1.0, 2.0, 3.0, 100.0], bins=3, clip_quantile=0.75)
    >>> h["count"].tolist(), h.attrs["clipped"]
    ([1, 1, 3], 1)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise DataError("the CLV column has no finite value to plot")
    if not 0 < clip_quantile <= 1:
        raise DataError(f"clip_quantile must be in (0, 1], got {clip_quantile}")
    top = float(np.quantile(v, clip_quantile))
    low = float(min(v.min(), 0.0))
    if top <= low:
        top = low + 1.0
    edges = np.linspace(low, top, bins + 1)
    counts, _ = np.histogram(np.clip(v, low, top), bins=edges)
    out = pd.DataFrame({"left": edges[:-1], "right": edges[1:], "count": counts})
    out.attrs["clipped"] = int((v > top).sum())
    return out


# ---------------------------------------------------------------------------------- draw
def plot_cumulative_repeat_purchases(curve: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Cumulative repeat purchases, actual (solid) and BG/NBD expected (dashed), per week,
    with the calibration end as a vertical line."""
    from promolift.report import plots

    ax = plots._axes(ax, (8.0, 3.8))
    ax.plot(curve["week"], curve["cumulative_actual"], color="#24292f", linewidth=1.6,
            label="actual")
    ax.plot(curve["week"], curve["cumulative_expected"], color=plots.ACCENT, linewidth=1.6,
            linestyle="--", label="BG/NBD expected")
    cal = curve.attrs.get("calibration_week")
    if cal is not None:
        ax.axvline(cal, color=plots.MUTED, linewidth=1.0, linestyle=":")
        ax.annotate("calibration end", (cal, 0), xytext=(4, 4), textcoords="offset points",
                    fontsize=8, color=plots.MUTED)
    ax.set_xlabel("week", fontsize=9)
    ax.set_ylabel("cumulative repeat purchases", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    plots._style(ax, grid_axis="both")
    return ax


def plot_purchases_by_frequency(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Mean holdout purchases by calibration frequency: actual and each model's expectation."""
    from promolift.report import plots

    ax = plots._axes(ax, (6.5, 3.8))
    x = np.arange(len(table))
    ax.plot(x, table["actual"], color="#24292f", marker="o", linewidth=1.6, label="actual")
    models = [c for c in table.columns if c not in ("frequency", "customers", "actual")]
    for i, name in enumerate(models):
        ax.plot(x, table[name], color=plots.PALETTE[i % len(plots.PALETTE)], marker="s",
                markersize=3.5, linestyle="--", linewidth=1.4, label=plots.plain(name))
    ax.set_xticks(x, [str(v) for v in table["frequency"]])
    ax.set_xlabel("repeat purchases in the calibration period", fontsize=9)
    ax.set_ylabel("mean purchases in the holdout", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    plots._style(ax)
    return ax


def plot_clv_histogram(hist: pd.DataFrame, *, label: str = "CLV", ax: Axes | None = None) -> Axes:
    """Bars of :func:`clv_histogram` (the last bar holds the clipped tail)."""
    from promolift.report import plots

    ax = plots._axes(ax, (6.5, 3.8))
    ax.bar(hist["left"], hist["count"], width=hist["right"] - hist["left"], align="edge",
           color=plots.LIGHT, edgecolor="white", linewidth=0.5)
    clipped = hist.attrs.get("clipped", 0)
    xlabel = plots.plain(label) + (f" (last bar includes {clipped:,} larger values)"
                                   if clipped else "")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel("customers", fontsize=9)
    plots._style(ax)
    return ax


# ---------------------------------------------------------------------------------- page
def _need(frame: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def render_clv_report(
    result: ClvResult,
    *,
    transactions: pd.DataFrame | None = None,
    comparison: pd.DataFrame | None = None,
    supervised: Mapping[str, Any] | None = None,
    clv_column: str = "clv",
    title: str | None = None,
) -> str:
    """Render the CLV report of a :class:`~promolift.clv.pipeline.ClvResult` as one offline
    HTML page.

    Parameters
    ----------
    result : ClvResult
        From :func:`promolift.clv.fit_clv` (its table, BG/NBD and summary).
    transactions : DataFrame, optional
        The order log: needed for the cumulative-purchases figure (skipped without it).
    comparison : DataFrame, optional
        :func:`promolift.clv.holdout.compare_holdout` table, shown as a table.
    supervised : dict of str to array-like, optional
        Other models' expected holdout purchases per customer (aligned with
        ``result.table``), added to the by-frequency figure.
    clv_column : str, default="clv"
        Column of ``result.table`` for the CLV histogram.
    title : str, optional

    Returns
    -------
    str
        The HTML, with inline CSS and SVG and no external URL.
    """
    from promolift._version import __version__
    from promolift.report import plots
    from promolift.report import markup

    table = result.table
    info = result.summary or {}
    title = title or "Customer lifetime value report"
    page = markup.Page()
    sections = []
    params = getattr(result.bgnbd, "params_", None)
    facts = [
        ("customers", markup.num(int(len(table)))),
        ("calibration end", _e_str(info.get("calibration_end"))),
        ("holdout end", _e_str(info.get("observation_end"))),
        ("time unit", str(info.get("unit", "W"))),
    ]
    if params is not None:
        facts.append(("BG/NBD", ", ".join(f"{k} = {float(v):.3f}" for k, v in params.items())))
    sections.append(markup.section("clv-summary", "Summary", markup.facts(facts)))

    cal = info.get("calibration_end")
    if transactions is not None and cal is not None:
        curve = cumulative_repeat_purchases(
            transactions, result.bgnbd, calibration_end=cal, end=info.get("observation_end")
        )
        fig, axes = plots.new_figure(figsize=(9.0, 3.8))
        plot_cumulative_repeat_purchases(curve, ax=axes[0, 0])
        body = page.figure(
            fig,
            "Cumulative repeat purchases per week: actual against BG/NBD's expectation summed "
            "over the cohorts of first-purchase days; the dotted line is the calibration end.",
        )
    else:
        body = markup.note("Pass the order log (transactions=...) to draw this figure.")
    sections.append(markup.section("clv-tracking", "1. Repeat purchases over time", body))

    if "frequency_holdout" in table.columns and "expected_purchases_holdout" in table.columns:
        predicted = {"BG/NBD": table["expected_purchases_holdout"]}
        predicted |= dict(supervised or {})
        by_freq = purchases_by_frequency(table["frequency"], table["frequency_holdout"], predicted)
        fig, axes = plots.new_figure(figsize=(7.0, 3.8))
        plot_purchases_by_frequency(by_freq, ax=axes[0, 0])
        body = page.figure(
            fig, "Mean purchases in the holdout period by repeat purchases in the calibration "
            "period (the last group is 7 or more)."
        ) + markup.table(
            by_freq.to_dict(orient="records"),
            [("frequency", "calibration frequency", str), ("customers", "customers", markup.num)]
            + [(c, c, lambda v: markup.num(v, digits=3)) for c in by_freq.columns[2:]],
        )
    else:
        body = markup.note("No holdout period: fit with an observation end after the calibration end.")
    sections.append(markup.section("clv-holdout", "2. Holdout purchases by frequency", body))

    if comparison is not None and len(comparison):
        cols = [("model", "model", str)] + [
            (c, c.replace("_", " "), lambda v: markup.num(v, digits=3))
            for c in comparison.columns
            if c != "model"
        ]
        sections.append(
            markup.section(
                "clv-compare",
                "3. Model comparison on the holdout",
                markup.paragraph("Every model was fitted on the calibration period only.")
                + markup.table(comparison.to_dict(orient="records"), cols),
            )
        )

    if clv_column in table.columns:
        hist = clv_histogram(table[clv_column])
        fig, axes = plots.new_figure(figsize=(7.0, 3.8))
        plot_clv_histogram(hist, label=clv_column, ax=axes[0, 0])
        v = table[clv_column].to_numpy(np.float64)
        body = page.figure(fig, f"Distribution of '{clv_column}' over customers.") + markup.facts(
            [
                ("total", markup.num(float(np.nansum(v)))),
                ("mean", markup.num(float(np.nanmean(v)))),
                ("median", markup.num(float(np.nanmedian(v)))),
                ("top 10% share", f"{100 * _top_share(v, 0.1):.1f}%"),
            ]
        )
    else:
        body = markup.note(f"The table has no '{clv_column}' column (no order values?).")
    sections.append(markup.section("clv-distribution", "4. CLV distribution", body))

    now = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{markup.escape(title)}</title><style>{markup.CSS}</style></head><body><main>"
        f"<header><h1>{markup.escape(title)}</h1></header>"
        + "".join(sections)
        + f"<footer>Generated by promolift {markup.escape(__version__)} on {markup.escape(now)}.</footer>"
        + "</main></body></html>\n"
    )


def write_clv_report(result: ClvResult, path: str | Path, **kwargs: Any) -> Path:
    """Render :func:`render_clv_report` (same keyword arguments) and write it atomically.

    Returns
    -------
    Path
        ``path``; an interrupted write leaves any previous file untouched.
    """
    from promolift.io import atomic_write_text

    return atomic_write_text(path, render_clv_report(result, **kwargs))


def _e_str(v: object) -> str:
    if v is None:
        return "–"
    try:
        return str(pd.Timestamp(v).date())
    except (TypeError, ValueError):
        return str(v)


def _top_share(v: np.ndarray, share: float) -> float:
    v = np.sort(v[np.isfinite(v)])[::-1]
    total = v.sum()
    k = max(1, int(np.ceil(share * len(v))))
    return float(v[:k].sum() / total) if total > 0 else float("nan")
