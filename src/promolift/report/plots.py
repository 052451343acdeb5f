"""Draw the report's figures from data computed by :mod:`promolift.report.curves`.

Every function takes its data and an optional ``ax``; without one it makes a new
:class:`matplotlib.figure.Figure` (never pyplot, so no global figure state and no GUI
backend) and returns the Axes it drew on. Colours and sizes are set per call: global
``rcParams`` and styles are never touched. matplotlib is imported only when a function runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "new_figure",
    "plot_allocation_mix",
    "plot_candidates",
    "plot_importance",
    "plot_plan_arms",
    "plot_policy_values",
    "plot_profit_budget",
    "plot_qini",
    "plot_uplift_deciles",
]

ACCENT = "#1f6feb"
MUTED = "#8c959f"
LIGHT = "#a5c8f5"
GOOD = "#2da44e"
WARN = "#cf6a00"
KIND_COLORS = {"t": "#1f6feb", "x": "#8250df", "dr": "#cf222e", "relative": "#1a7f37", "constant": "#8c959f"}
PALETTE = ("#1f6feb", "#cf6a00", "#2da44e", "#8250df", "#cf222e", "#1b7c83", "#bf3989", "#6e7781")
CONTROL_COLOR = "#d0d7de"


def plain(text: object) -> str:
    """``text`` as matplotlib should show it literally (``$`` would start mathtext)."""
    return str(text).replace("$", r"\$")


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] = (8.0, 4.0), **subplot_kw: Any
) -> tuple[Figure, np.ndarray]:
    """A pyplot-free Figure with a grid of Axes (always returned as a 2-D array)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    return new_figure(figsize=figsize)[1][0, 0]


def _style(ax: Axes, *, grid_axis: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid_axis, color="#eaeef2", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=8.5)


def plot_candidates(
    table: pd.DataFrame, *, chosen: str | None = None, ax: Axes | None = None
) -> Axes:
    """Horizontal bars of each candidate's cross-validated profit per 1,000 with 95% intervals.

    ``table`` has columns ``candidate``, ``profit_per_1000``, ``ci_low``, ``ci_high`` (the
    order is kept, first at the top). The chosen candidate is highlighted, the simple policies
    (``nobody``, ``constant``) are grey.
    """
    ax = _axes(ax, (8.0, 0.3 * len(table) + 1.2))
    names = [str(c) for c in table["candidate"]]
    y = np.arange(len(table))[::-1]
    est = table["profit_per_1000"].to_numpy(float)
    err = np.vstack([est - table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float) - est])
    colors = [
        ACCENT if c == chosen else MUTED if c in ("nobody", "constant") else LIGHT for c in names
    ]
    ax.barh(y, est, color=colors, height=0.65)
    ax.errorbar(
        est, y, xerr=np.nan_to_num(err), fmt="none", ecolor="#24292f", elinewidth=0.9, capsize=2.5
    )
    ax.axvline(0, color="#24292f", linewidth=0.8)
    ax.set_yticks(y, [plain(n) + ("  (chosen)" if n == chosen else "") for n in names])
    ax.set_xlabel("incremental profit per 1,000 customers (cross-validated, 95% CI)", fontsize=9)
    ax.set_ylim(-0.7, len(table) - 0.3)
    _style(ax, grid_axis="x")
    return ax


def plot_qini(
    curves: pd.DataFrame,
    *,
    title: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Qini curves (``curve``, ``share``, ``value``): models in colour, perfect and random grey.

    The perfect ranking is often many times higher than any model; it is then cut off at the top
    (its legend entry gives the peak) rather than flattening the curves that matter.
    """
    ax = _axes(ax, (5.0, 3.6))
    kinds = [c for c in dict.fromkeys(curves["curve"]) if c not in ("perfect", "random")]
    others = curves.loc[curves["curve"] != "perfect", "value"]
    perfect = curves.loc[curves["curve"] == "perfect", "value"]
    ylim = None
    perfect_label = "perfect"
    if len(others) and len(perfect):
        low, high = min(others.min(), 0.0), max(others.max(), 0.0)
        span = (high - low) or 1.0
        if perfect.max() > high + 0.6 * span:
            ylim = (low - 0.05 * span, high + 0.12 * span)
            perfect_label = f"perfect (peaks at {_short(perfect.max())}, off scale)"
    for name in ("perfect", "random"):
        part = curves[curves["curve"] == name]
        if len(part):
            ax.plot(
                100 * part["share"],
                part["value"],
                color=MUTED,
                linestyle="--" if name == "perfect" else ":",
                linewidth=1.2,
                label=perfect_label if name == "perfect" else name,
            )
    for i, kind in enumerate(kinds):
        part = curves[curves["curve"] == kind]
        ax.plot(
            100 * part["share"],
            part["value"],
            linewidth=1.6,
            label=plain(kind),
            color=KIND_COLORS.get(kind, PALETTE[i % len(PALETTE)]),
        )
    ax.axhline(0, color="#24292f", linewidth=0.6)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlim(0, 100)
    ax.set_xlabel("customers targeted, best-ranked first (%)", fontsize=8.5)
    ax.set_ylabel(ylabel or "incremental outcome (Qini)", fontsize=8.5)
    if title:
        ax.set_title(plain(title), fontsize=10, loc="left")
    ax.legend(fontsize=7.5, frameon=False, loc="best")
    _style(ax, grid_axis="both")
    return ax


def _short(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def plot_uplift_deciles(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    ylabel: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Predicted uplift per decile as bars, observed uplift as points with 95% error bars."""
    ax = _axes(ax, (5.0, 3.6))
    x = table["decile"].to_numpy()
    ax.bar(x, table["predicted_uplift"], width=0.7, color=LIGHT, label="predicted")
    obs = table["observed_uplift"].to_numpy(float)
    se = table["observed_se"].to_numpy(float)
    ax.errorbar(
        x,
        obs,
        yerr=np.nan_to_num(1.96 * se),
        fmt="o",
        color=WARN,
        markersize=4,
        elinewidth=1,
        capsize=2.5,
        label="observed (95% CI)",
    )
    ax.axhline(0, color="#24292f", linewidth=0.6)
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted uplift (1 = highest)", fontsize=8.5)
    ax.set_ylabel(ylabel or "uplift (treated − control)", fontsize=8.5)
    if title:
        ax.set_title(plain(title), fontsize=10, loc="left")
    ax.legend(fontsize=7.5, frameon=False)
    _style(ax)
    return ax


def plot_profit_budget(points: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Profit per 1,000 customers against the budget per 1,000: the model's expectation and the
    cross-validated doubly-robust estimate with its 95% band."""
    ax = _axes(ax, (8.0, 4.0))
    x = 1000 * points["budget_per_customer"].to_numpy(float)
    ax.fill_between(
        x,
        points["dr_low_per_1000"],
        points["dr_high_per_1000"],
        color=WARN,
        alpha=0.15,
        linewidth=0,
        label="cross-validated 95% CI",
    )
    ax.plot(
        x,
        points["dr_profit_per_1000"],
        color=WARN,
        marker="o",
        markersize=3.5,
        linewidth=1.6,
        label="cross-validated estimate (doubly robust)",
    )
    ax.plot(
        x,
        points["expected_profit_per_1000"],
        color=ACCENT,
        marker="o",
        markersize=3.5,
        linewidth=1.6,
        label="model's expectation",
    )
    ax.axhline(0, color="#24292f", linewidth=0.6)
    ax.set_xlabel("promotion budget per 1,000 customers", fontsize=9)
    ax.set_ylabel("incremental profit per 1,000 customers", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="best")
    _style(ax, grid_axis="both")
    return ax


def plot_allocation_mix(mix: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Stacked share of customers per arm (columns, control first) at each budget (index)."""
    ax = _axes(ax, (8.0, 3.4))
    x = 1000 * mix.index.to_numpy(float)
    width = 0.8 * (np.min(np.diff(x)) if len(x) > 1 and np.ptp(x) > 0 else 1.0)
    bottom = np.zeros(len(mix))
    for j, arm in enumerate(mix.columns):
        share = 100 * mix[arm].to_numpy(float)
        color = CONTROL_COLOR if j == 0 else PALETTE[(j - 1) % len(PALETTE)]
        label = plain(arm) + (" (nothing)" if j == 0 else "")
        ax.bar(x, share, bottom=bottom, width=width, color=color, label=label)
        bottom += share
    ax.set_ylim(0, 100)
    ax.set_xlabel("promotion budget per 1,000 customers", fontsize=9)
    ax.set_ylabel("customers (%)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax)
    return ax


def plot_plan_arms(counts: Mapping[str, int], *, ax: Axes | None = None) -> Axes:
    """Customers per arm in a plan, as labelled horizontal bars (control first, at the top)."""
    ax = _axes(ax, (7.0, 0.45 * len(counts) + 1.0))
    names = list(counts)
    values = np.array([counts[a] for a in names], dtype=float)
    y = np.arange(len(names))[::-1]
    colors = [
        CONTROL_COLOR if j == 0 else PALETTE[(j - 1) % len(PALETTE)] for j in range(len(names))
    ]
    ax.barh(y, values, color=colors, height=0.6)
    total = values.sum() or 1.0
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f"  {int(v):,} ({v / total:.0%})", va="center", fontsize=8.5)
    ax.set_yticks(y, [plain(a) + (" (nothing)" if j == 0 else "") for j, a in enumerate(names)])
    ax.set_xlim(0, values.max() * 1.3 if values.max() > 0 else 1)
    ax.set_xlabel("customers", fontsize=9)
    _style(ax, grid_axis="x")
    return ax


def plot_policy_values(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Dot-and-whisker chart of held-out policy values per 1,000: IPW and DR with 95% CIs.

    ``table`` has columns ``policy``, ``ipw``, ``ipw_low``, ``ipw_high``, ``dr``, ``dr_low``,
    ``dr_high`` (``dr`` columns may be missing or NaN).
    """
    ax = _axes(ax, (8.0, 0.45 * len(table) + 1.3))
    y = np.arange(len(table))[::-1].astype(float)
    for offset, col, color, label in (
        (0.15, "ipw", MUTED, "IPW"),
        (-0.15, "dr", WARN, "doubly robust"),
    ):
        if col not in table or table[col].isna().all():
            continue
        est = table[col].to_numpy(float)
        err = np.vstack(
            [est - table[f"{col}_low"].to_numpy(float), table[f"{col}_high"].to_numpy(float) - est]
        )
        ax.errorbar(
            est,
            y + offset,
            xerr=np.nan_to_num(err),
            fmt="o",
            color=color,
            markersize=5,
            elinewidth=1.2,
            capsize=3,
            label=f"{label} (95% CI)",
        )
    ax.axvline(0, color="#24292f", linewidth=0.8)
    ax.set_yticks(y, [plain(p) for p in table["policy"]])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.set_xlabel("incremental profit per 1,000 customers (held out)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax, grid_axis="x")
    return ax


def plot_importance(table: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Mean absolute dollar contribution per feature (``promolift.explain.global_importance``)
    as horizontal bars, largest at the top, labelled with the signed mean."""
    ax = _axes(ax, (7.0, 0.38 * len(table) + 1.2))
    values = table["mean_abs_contribution"].to_numpy(float)
    signed = table["mean_contribution"].to_numpy(float)
    y = np.arange(len(table))[::-1]
    ax.barh(y, values, color=ACCENT, height=0.6)
    for yi, v, m in zip(y, values, signed, strict=True):
        ax.text(v, yi, plain(f"  mean {m:+.3f}"), va="center", fontsize=8, color=MUTED)
    ax.set_yticks(y, [plain(f) for f in table["feature"]])
    top = values.max() if len(values) and values.max() > 0 else 1.0
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel(plain("mean |contribution| to expected incremental profit ($ per customer)"), fontsize=9)
    _style(ax, grid_axis="x")
    return ax
