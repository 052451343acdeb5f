"""Make a plan: who gets which arm, what it is expected to earn and cost, with intervals.

The policy (which blend of models, how far shrunk) is chosen again for the plan's own
constraints from the bundle's cross-validated predictions, because the best policy at a 10%
contact cap is not the best with no cap. Totals come twice: as the model expects them, and as
cross-validation measured the same policy on held-out customers (doubly-robust estimate with a
95% interval), scaled to the number of customers planned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promolift.bundle import ModelBundle, OutOfFold, blend
from promolift.economics import Economics
from promolift.errors import DataError, did_you_mean
from promolift.evaluate.policy import policy_gain
from promolift.io import atomic_write_frame, atomic_write_json
from promolift.optimize import allocate
from promolift.selection import Constraints, candidates, select

__all__ = ["Plan", "make_plan", "segment_breakdown", "PLAN_COLUMNS"]

PLAN_COLUMNS = ["arm", "expected_incremental_profit", "expected_cost",
                "expected_incremental_conversions", "expected_incremental_revenue"]


@dataclass
class Plan:
    """The allocation table (one row per customer) and its summary (totals, intervals, λ)."""

    table: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def shadow_price(self) -> float:
        return self.summary["shadow_price"]

    @staticmethod
    def summary_path(path: str | Path) -> Path:
        """Where :meth:`save` puts the summary: ``plan.json`` beside ``plan.csv``, else ``NAME.json``."""
        path = Path(path)
        return path.with_name("plan.json") if path.stem == "plan" else path.with_suffix(".json")

    def save(self, path: str | Path) -> Path:
        """Write the table (``.csv`` or ``.parquet``) and its JSON summary beside it, atomically."""
        path = Path(path)
        atomic_write_frame(path, self.table)
        atomic_write_json(self.summary_path(path), self.summary)
        return path


def _arm_caps(bundle: ModelBundle, arm_caps: dict[str, int] | None) -> list[int | None] | None:
    if not arm_caps:
        return None
    arms = bundle.arms
    for name in arm_caps:
        if name not in arms[1:]:
            raise DataError(f"arm cap for unknown arm '{name}'.{did_you_mean(name, arms)} "
                            f"Arms: {', '.join(arms[1:])}.")
    return [None, *(arm_caps.get(a) for a in arms[1:])]


def validated_totals(oof: OutOfFold, economics: Economics, weights: dict[str, float],
                     constraints: Constraints, n: int, *, solver: str = "lagrangian") -> dict[str, dict]:
    """Cross-validated DR estimates (per customer, scaled to ``n``) of the policy's incremental
    profit, cost, conversions and revenue, with 95% intervals."""
    m = len(oof.treatment)
    value, cost = economics.value_cost(blend(oof.predictions, weights))
    arm = allocate(value, cost, method=solver, **constraints.absolute(m)).arm
    fitted = [k for k in oof.predictions if "@" not in k]
    mu_pred = blend(oof.predictions, {k: 1 / len(fitted) for k in fitted})
    t = oof.treatment
    spend, conv = economics.value_index, economics.conversion_index
    quantities = {
        "incremental_profit": (economics.realized_profit(oof.Y, t), economics.expected_profit(mu_pred)),
        "cost": (economics.realized_cost(oof.Y, t), economics.expected_cost(mu_pred)),
        "incremental_revenue": (oof.Y[:, spend], mu_pred[..., spend]),
    }
    if conv is not None:
        quantities["incremental_conversions"] = (oof.Y[:, conv], mu_pred[..., conv])
    out = {}
    for name, (reward, mu) in quantities.items():
        g = policy_gain(reward, t, arm, oof.propensity, mu=mu, method="dr")
        out[name] = {"estimate": n * g.estimate, "ci_low": n * g.ci_low, "ci_high": n * g.ci_high}
    out["contacts"] = {"estimate": n * float(np.mean(arm != 0))}
    return out


def segment_breakdown(table: pd.DataFrame, X: pd.DataFrame, columns: list[str],
                      control: str) -> list[dict[str, Any]]:
    """Plan totals per segment of each column: by value (categorical) or by quartile (numeric).

    Shows where the plan expects its profit, e.g. by churn segment and CLV band.
    """
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise DataError(f"plan.segments names column(s) {', '.join(missing)} that the customers do not have.")
    frame = table[["expected_incremental_profit", "expected_cost"]].assign(
        contacted=(table["arm"] != control).to_numpy())
    out = []
    for col in columns:
        raw = X[col]
        if pd.api.types.is_numeric_dtype(raw) and raw.nunique() > 8:
            raw = pd.qcut(raw, 4, duplicates="drop")  # quartile bands, e.g. "(12.3, 45.6]"
        agg = (frame.assign(segment=raw.astype("string").fillna("missing").to_numpy())
               .groupby("segment", sort=False)
               .agg(customers=("contacted", "size"), contacted=("contacted", "sum"),
                    expected_incremental_profit=("expected_incremental_profit", "sum"),
                    expected_cost=("expected_cost", "sum")))
        out += [{"column": col, "segment": str(seg), "customers": int(r.customers), "contacted": int(r.contacted),
                 "expected_incremental_profit": float(r.expected_incremental_profit),
                 "expected_cost": float(r.expected_cost)}
                for seg, r in agg.sort_index().iterrows()]
    return out


def make_plan(
    bundle: ModelBundle,
    X: pd.DataFrame,
    ids: np.ndarray,
    *,
    budget: float | None = None,
    max_contacts: int | None = None,
    arm_caps: dict[str, int] | None = None,
    min_roi: float | None = None,
    safety_margin: float = 0.0,
    solver: str = "lagrangian",
    reselect: bool = True,
    reasons: int = 0,
) -> Plan:
    """Allocate arms to customers to maximise expected incremental profit within the limits.

    Parameters
    ----------
    bundle : ModelBundle
    X : DataFrame
        Raw features of the customers to plan (the columns the bundle was trained on).
    ids : array
        Their ids, in the same order.
    budget : float, optional
        Limit on total expected promotion cost.
    max_contacts, arm_caps, min_roi : optional
        Limit on customers contacted, per-arm limits by arm name, minimum value/cost per offer.
    safety_margin : float, default=0
        Plan against ``budget × (1 − safety_margin)`` for users who must not overspend.
    solver : {"lagrangian", "exact"}
        Solver of the final allocation (choosing the policy always uses the fast Lagrangian one,
        which is within 0.05% of exact on these problems).
    reselect : bool, default=True
        Re-choose the policy for these constraints from the bundle's cross-validated predictions.
    reasons : int, default=0
        Add this many reason codes per customer (:func:`promolift.explain.reason_columns`):
        ``explained_arm`` and ``reason_r_feature``/``_value``/``_contribution`` (dollars of the
        arm's expected incremental profit; for customers left in control, of the best treated
        arm, i.e. why it was not worth it).

    Returns
    -------
    Plan
    """
    n = len(ids)
    if n == 0:
        raise DataError("no customers to plan")
    if not 0 <= safety_margin < 1:
        raise DataError(f"safety_margin must be in [0, 1), got {safety_margin}")
    economics = bundle.economics.for_customers(X)
    caps = _arm_caps(bundle, arm_caps)
    effective_budget = None if budget is None else budget * (1 - safety_margin)
    constraints = Constraints.for_population(n, budget=effective_budget, max_contacts=max_contacts,
                                             arm_caps=caps, min_roi=min_roi)
    selection, chosen, rule = None, "as trained", None
    weights = bundle.weights
    if reselect:
        cands = candidates(list(bundle.models), funnel=bundle.config.model.funnel_outcome)
        selection, best = select(bundle.oof, bundle.oof_economics, constraints, cands)
        chosen, weights, rule = best["candidate"], dict(best["weights"]), best["rule"]
    pred = bundle.predict(X, weights)
    value, cost = economics.value_cost(pred)
    alloc = allocate(value, cost, method=solver, **constraints.absolute(n))
    arm, rows = alloc.arm, np.arange(n)
    spend, conv = economics.value_index, economics.conversion_index
    lift = pred[rows, arm] - pred[:, 0]
    table = pd.DataFrame({
        bundle.config.data.id: ids,
        "arm": np.asarray(bundle.arms, dtype=object)[arm],
        "expected_incremental_profit": value[rows, arm],
        "expected_cost": cost[rows, arm],
        "expected_incremental_conversions": lift[:, conv] if conv is not None else 0.0,
        "expected_incremental_revenue": lift[:, spend],
    })
    if reasons > 0:
        from promolift.explain import reason_columns

        table = pd.concat([table, reason_columns(bundle, X, arm, weights=weights, top=reasons)], axis=1)
    counts = np.bincount(arm, minlength=len(bundle.arms))
    summary = {
        "bundle_version": bundle.version,
        "customers": n,
        "constraints": {"budget": budget, "safety_margin": safety_margin, "effective_budget": effective_budget,
                        "max_contacts": max_contacts, "arm_caps": arm_caps or {}, "min_roi": min_roi},
        "policy": {"candidate": chosen, "weights": weights, "rule": rule},
        "solver": alloc.method,
        "status": alloc.status,
        "shadow_price": float(alloc.shadow_price),
        "contact_price": float(alloc.contact_price),
        "arm_prices": {a: float(p) for a, p in zip(bundle.arms, alloc.arm_prices, strict=True)},
        "arms": {a: int(c) for a, c in zip(bundle.arms, counts, strict=True)},
        "expected": {c: float(table[c].sum()) for c in PLAN_COLUMNS[1:]},
        "validated": validated_totals(bundle.oof, bundle.oof_economics, weights, constraints, n),
        "selection": None if selection is None else json.loads(selection.to_json(orient="records")),
    }
    summary["expected"]["contacts"] = int(n - counts[0])
    segments = bundle.config.segment_columns(list(X.columns))
    if segments:
        summary["by_segment"] = segment_breakdown(table, X, segments, control=bundle.arms[0])
    return Plan(table=table, summary=summary)
