"""Assemble the report: one self-contained HTML file (inline CSS and SVG, no network).

Sections, in order: the campaign, how sure we are of the chosen policy, Qini curves, uplift by
decile, profit against budget, the allocation mix (and the plan, if given), the held-out
evaluation (if given), data quality and the outcome models' scores. Numbers come from
:mod:`promolift.report.curves`, figures from :mod:`promolift.report.plots`; every piece of text
that comes from data or config is HTML-escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from promolift._version import __version__
from promolift.report import curves, markup, plots

if TYPE_CHECKING:

    from promolift.bundle import ModelBundle
    from promolift.data.quality import QualityReport
    from promolift.plan import Plan

__all__ = ["render_report", "write_report"]

SOLVER = "lagrangian"


# ------------------------------------------------------------------------------------ formatting
def _signed(v: object) -> str:
    return markup.num(v, signed=True)


def _ci(low: object, high: object) -> str:
    return f"95% CI {_signed(low)} to {_signed(high)}"


def _pct(v: object, digits: int = 1) -> str:
    return "–" if markup.missing(v) else f"{100 * float(v):.{digits}f}%"  # type: ignore[arg-type]


def _pvalue(v: object) -> str:
    return "–" if markup.missing(v) else f"{float(v):.3g}"  # type: ignore[arg-type]


def _weights(w: object) -> str:
    if not isinstance(w, Mapping) or not any(float(x) > 0 for x in w.values()):
        return "–"
    return " + ".join(f"{k} {float(x):.3g}" for k, x in w.items() if float(x) > 0)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict(orient="records")


def _flatten(
    by_kind: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """``{kind: records}`` (bundle metrics) or plain records, as records with a ``kind`` key."""
    if not by_kind:
        return []
    if isinstance(by_kind, Mapping):
        return [{"kind": kind, **rec} for kind, recs in by_kind.items() for rec in recs]
    return [dict(rec) for rec in by_kind]


# ------------------------------------------------------------------------------------ figures
def _grid(n: int, *, per_row: int = 3) -> tuple[int, int]:
    cols = min(n, per_row)
    return math.ceil(n / cols), cols


# ------------------------------------------------------------------------------------ sections
def _outcome_indices(bundle: ModelBundle) -> list[int]:
    eco = bundle.economics
    out = [eco.value_index]
    if eco.conversion_index is not None and eco.conversion_index != eco.value_index:
        out.append(eco.conversion_index)
    return out


def _curve_policy(bundle: ModelBundle) -> tuple[str, dict[str, float], str | None]:
    """The blend the curves are drawn for: the chosen one if it ranks customers, else (nobody or
    the same arm for everybody) the best candidate that uses a model, with a note saying so."""
    chosen = str(bundle.metrics.get("chosen", {}).get("candidate", "as trained"))
    weights = {k: float(w) for k, w in bundle.weights.items() if float(w) > 0}
    if set(weights) - {"constant"}:
        return chosen, weights, None
    for rec in bundle.metrics.get("selection_unconstrained", []):
        w = {k: float(x) for k, x in (rec.get("weights") or {}).items() if float(x) > 0}
        if set(w) - {"constant"}:
            note = (
                f"The chosen policy, '{chosen}', treats every customer alike, so it has no ranking "
                f"to show: the curves below are for the best candidate that uses a model, "
                f"'{rec['candidate']}', for reference."
            )
            return str(rec["candidate"]), w, note
    kinds = list(bundle.oof.predictions)
    note = f"The chosen policy is '{chosen}'; the curves below show the equal blend of all kinds."
    return "equal blend", {k: 1.0 / len(kinds) for k in kinds}, note


def _header(bundle: ModelBundle, title: str) -> tuple[str, str]:
    cfg = bundle.config
    eco = cfg.economics
    arm_rows = [
        {
            "arm": name + (" (control)" if j == 0 and name.lower() != "control" else ""),
            "contact_cost": a.contact_cost,
            "cost_per_conversion": a.cost_per_conversion,
            "discount_rate": a.discount_rate,
        }
        for j, (name, a) in enumerate(zip(bundle.arms, cfg.arm_economics(), strict=True))
    ]
    arms = markup.table(
        arm_rows,
        [
            ("arm", "arm", str),
            ("contact_cost", "cost per contact", markup.num),
            ("cost_per_conversion", "cost per conversion", markup.num),
            ("discount_rate", "discount (share of spend)", _pct),
        ],
    )
    outcomes = ", ".join(f"{name} ({kind})" for name, kind in cfg.outcomes.items())
    rows = bundle.metrics.get("n_rows", len(bundle.oof.treatment))
    facts = markup.facts(
        [
            ("outcomes", outcomes),
            ("money outcome", eco.value_outcome),
            ("conversion outcome", eco.conversion_outcome or "–"),
            ("gross margin on spend", _pct(eco.margin)),
            ("training rows", markup.num(int(rows))),
            ("cross-validation folds", str(bundle.metrics.get("n_folds", cfg.model.n_folds))),
            ("model kinds", ", ".join(bundle.oof.predictions)),
            (
                "chosen policy",
                f"{bundle.metrics.get('chosen', {}).get('candidate', '–')} "
                f"({_weights(bundle.weights)})",
            ),
            ("bundle version", bundle.version or "not saved"),
            ("created", bundle.created or "–"),
            ("data fingerprint", (bundle.fingerprint or "–")[:12]),
        ]
    )
    arm_list = " · ".join(markup.escape(a) for a in bundle.arms)
    top = f'<header><h1>{markup.escape(title)}</h1><p class="sub">Arms: {arm_list}</p></header>'
    return top, markup.section(
        "campaign", "1. The campaign", facts + "<h3>Arms and their costs</h3>" + arms
    )


def _simple_description(s: curves.SelectionSummary, arms: Sequence[str]) -> str:
    treated = [(share, arm) for share, arm in zip(s.simple_mix[1:], arms[1:], strict=True) if share]
    if not treated:
        return "contacting nobody"
    share, arm = max(treated)
    if len(treated) == 1 and share > 0.999:
        return f"'{arm}' for everybody ('{s.simple}')"
    return f"the same arm for everybody ('{s.simple}', {_pct(1 - s.simple_mix[0], 0)} contacted)"


def _selection_text(s: curves.SelectionSummary, arms: Sequence[str]) -> tuple[str, str, str]:
    """The plain-language paragraph, the verdict and its tone (good / warn)."""
    simple = _simple_description(s, arms)
    if s.chosen_is_simple:
        text = (
            f"The chosen policy is the simple one, {simple}: it earns "
            f"{_signed(s.chosen_estimate)} per 1,000 customers ({_ci(s.chosen_low, s.chosen_high)})"
            " in cross-validation."
        )
        if s.challenger is not None:
            text += (
                f" The best policy that uses the models, '{s.challenger}', earns "
                f"{_signed(s.challenger_estimate)}; difference on the same customers: "
                f"{_signed(s.difference)} ({_ci(s.difference_low, s.difference_high)})."
            )
        verdict = (
            "No model-based policy beat the simple policy in cross-validation, so the simple "
            "policy was chosen: the models' rankings do not yet pay for themselves."
        )
        return text, verdict, "warn"
    text = (
        f"The chosen policy, '{s.chosen}', earns {_signed(s.chosen_estimate)} per 1,000 "
        f"customers ({_ci(s.chosen_low, s.chosen_high)}) in cross-validation. The best simple "
        f"policy, {simple}, earns {_signed(s.simple_estimate)}. Difference on the same "
        f"customers: {_signed(s.difference)} ({_ci(s.difference_low, s.difference_high)})."
    )
    if s.difference_is_clear and not s.interval_includes_simple:
        verdict, tone = (
            "The models clearly beat the simple policy: the interval of the difference lies "
            "above zero.",
            "good",
        )
    elif s.difference_is_clear:
        verdict, tone = (
            "The difference is above zero, but the chosen policy's own interval still includes "
            "the simple policy's estimate: the gain is real but small against the uncertainty.",
            "warn",
        )
    else:
        verdict, tone = (
            "The interval of the difference includes zero: cross-validation cannot tell the "
            "chosen policy from the simple one, so do not count on the difference.",
            "warn",
        )
    if s.chosen_low <= 0:
        verdict += " The chosen policy's own interval includes zero: the campaign may not pay."
    return text, verdict, tone


def _selection(bundle: ModelBundle, page: markup.Page) -> str:
    title = "2. How sure are we"
    records = bundle.metrics.get("selection_unconstrained")
    if not records:
        return markup.section("confidence", title, markup.note("The bundle holds no candidate table."))
    table = pd.DataFrame(records)
    chosen = str(bundle.metrics.get("chosen", {}).get("candidate", table.iloc[0]["candidate"]))
    s = curves.selection_summary(bundle.oof, bundle.oof_economics, table, chosen, solver=SOLVER)
    text, verdict, tone = _selection_text(s, bundle.arms)
    fig, axes = plots.new_figure(figsize=(10.0, 0.28 * len(table) + 1.1))
    plots.plot_candidates(table, chosen=chosen, ax=axes[0, 0])
    columns: list[markup.Column] = [
        ("candidate", "candidate", str),
        ("weights", "blend", _weights),
        ("profit_per_1000", "profit per 1,000", _signed),
        ("ci_low", "95% CI low", _signed),
        ("ci_high", "95% CI high", _signed),
        ("contact_share", "contacted", _pct),
        ("cost_per_customer", "cost per 1,000", lambda v: markup.num(1000 * v)),
    ]
    body = (
        markup.paragraph(text)
        + markup.note(verdict, tone)
        + markup.paragraph(
            "Every candidate's plan was made on cross-validated predictions (customers scored by "
            "models that never saw them) and valued on what those customers actually did, with "
            "the doubly-robust estimator. Profit is incremental: relative to contacting nobody."
        )
        + page.figure(
            fig,
            "Cross-validated incremental profit per 1,000 customers of each candidate policy, "
            "with 95% intervals (chosen in dark blue, simple policies in grey).",
        )
        + markup.table(records, columns, highlight=lambda r: r.get("candidate") == chosen)
    )
    return markup.section("confidence", title, body)


def _qini(bundle: ModelBundle, page: markup.Page) -> str:
    oof, arms, outcomes = bundle.oof, bundle.arms, bundle.outcomes
    body = [
        markup.paragraph(
            "Customers are ranked by predicted uplift, best first; a Qini curve shows the "
            "incremental outcome gained by treating the top share of them (treated minus "
            "control, scaled to the treated group). Higher is better; the dotted line is random "
            "targeting and the dashed line the best possible ranking. Computed on "
            "cross-validated predictions."
        )
    ]
    kinds = [k for k in oof.predictions if k != "constant"]
    if not kinds:
        body.append(
            markup.note(
                "Only the constant model was fitted: it ranks everybody alike, so there is "
                "no curve."
            )
        )
    else:
        for m in _outcome_indices(bundle):
            nrows, ncols = _grid(len(arms) - 1)
            fig, axes = plots.new_figure(nrows, ncols, figsize=(4.8 * ncols + 0.4, 3.6 * nrows))
            for j, ax in enumerate(axes.flat):
                if j >= len(arms) - 1:
                    ax.set_visible(False)
                    continue
                data = curves.qini_curves(oof, arm=j + 1, outcome=m, kinds=kinds)
                plots.plot_qini(
                    data,
                    title=f"{arms[j + 1]} vs {arms[0]}",
                    ylabel=f"incremental {outcomes[m]}",
                    ax=ax,
                )
            body.append(page.figure(fig, f"Qini curves for {outcomes[m]}, one panel per arm."))
    recs = _flatten(bundle.metrics.get("uplift"))
    if recs:
        body.append(
            markup.paragraph(
                "Qini AUC is normalised: 0 is random targeting, 1 the best possible ranking. "
                "Uplift@30% is the observed uplift among the 30% ranked highest."
            )
        )
        body.append(
            markup.table(
                recs,
                [
                    ("kind", "model", str),
                    ("arm", "arm", str),
                    ("outcome", "outcome", str),
                    ("qini_auc", "Qini AUC", lambda v: markup.num(v, digits=3)),
                    ("auuc", "AUUC", lambda v: markup.num(v, digits=3)),
                    ("uplift_at_k", "uplift@30%", lambda v: markup.num(v, digits=4)),
                    ("n", "rows", markup.num),
                ],
            )
        )
    return markup.section("qini", "3. Ranking quality: Qini curves", "".join(body))


def _deciles(
    bundle: ModelBundle, page: markup.Page, name: str, weights: Mapping[str, float], note: str | None
) -> str:
    oof, arms, outcomes = bundle.oof, bundle.arms, bundle.outcomes
    body = [
        markup.paragraph(
            f"Customers of each arm and the control are split into ten equal groups by the "
            f"predicted uplift of '{name}' ({_weights(weights)}). Bars: mean predicted uplift; "
            "points: the observed difference between treated and control customers in the "
            "group, with its 95% interval. A useful model's points fall from left to right and "
            "follow the bars."
        )
    ]
    if note:
        body.append(markup.note(note))
    if set(weights) == {"constant"}:
        body.append(
            markup.note(
                "This policy predicts the same uplift for everybody, so its deciles are "
                "arbitrary splits and should look flat."
            )
        )
    for m in _outcome_indices(bundle):
        nrows, ncols = _grid(len(arms) - 1)
        fig, axes = plots.new_figure(nrows, ncols, figsize=(4.8 * ncols + 0.4, 3.6 * nrows))
        for j, ax in enumerate(axes.flat):
            if j >= len(arms) - 1:
                ax.set_visible(False)
                continue
            table = curves.uplift_deciles(oof, weights, arm=j + 1, outcome=m)
            plots.plot_uplift_deciles(
                table, title=f"{arms[j + 1]} vs {arms[0]}", ylabel=f"uplift in {outcomes[m]}", ax=ax
            )
        body.append(
            page.figure(
                fig, f"Predicted and observed uplift in {outcomes[m]} by decile, one panel per arm."
            )
        )
    return markup.section("deciles", "4. Calibration: uplift by decile", "".join(body))


def _budget(
    bundle: ModelBundle, page: markup.Page, name: str, weights: Mapping[str, float], note: str | None
) -> tuple[str, curves.BudgetCurve]:
    curve = curves.profit_budget_curve(
        bundle.oof, bundle.oof_economics, weights, arms=bundle.arms, solver=SOLVER
    )
    pts = curve.points
    last = pts.iloc[-1]
    text = (
        f"Without a budget limit, '{name}' spends {markup.num(1000 * last['cost_per_customer'])} per "
        f"1,000 customers, contacts {_pct(last['contact_share'])} of them, and the model expects "
        f"{_signed(last['expected_profit_per_1000'])} per 1,000; cross-validation measures "
        f"{_signed(last['dr_profit_per_1000'])} "
        f"({_ci(last['dr_low_per_1000'], last['dr_high_per_1000'])})."
    )
    body = [markup.paragraph(text)]
    if note:
        body.append(markup.note(note))
    over = pts["expected_profit_per_1000"] > pts["dr_high_per_1000"]
    if over.any():
        body.append(
            markup.note(
                "At some budgets the model expects more than the upper end of the cross-validated "
                "interval: its predictions are optimistic; trust the orange line.",
                "warn",
            )
        )
    if len(pts) > 1:
        fig, axes = plots.new_figure(figsize=(10.0, 4.2))
        plots.plot_profit_budget(pts, ax=axes[0, 0])
        body.append(
            page.figure(
                fig,
                "Incremental profit against budget, both per 1,000 customers: the model's "
                "expectation (blue) and the cross-validated estimate with its 95% band.",
            )
        )
    else:
        body.append(markup.note("The plan spends nothing at any budget, so there is no curve to draw."))
    body.append(
        markup.table(
            _records(pts),
            [
                ("budget_per_customer", "budget per 1,000", lambda v: markup.num(1000 * v)),
                ("cost_per_customer", "planned cost per 1,000", lambda v: markup.num(1000 * v)),
                ("contact_share", "contacted", _pct),
                ("expected_profit_per_1000", "model expects", _signed),
                ("dr_profit_per_1000", "cross-validated", _signed),
                ("dr_low_per_1000", "95% CI low", _signed),
                ("dr_high_per_1000", "95% CI high", _signed),
                ("shadow_price", "shadow price λ", lambda v: markup.num(v, digits=3)),
            ],
        )
    )
    return markup.section("budget", "5. Profit against budget", "".join(body)), curve


def _plan(plan: Plan | None, curve: curves.BudgetCurve, page: markup.Page) -> str:
    body = []
    if plan is not None:
        s = plan.summary
        counts = {str(a): int(c) for a, c in s.get("arms", {}).items()}
        policy = s.get("policy", {})
        body.append(
            markup.paragraph(
                f"The plan covers {markup.num(int(s.get('customers', sum(counts.values()))))} customers "
                f"with the policy '{policy.get('candidate', '–')}' "
                f"({_weights(policy.get('weights'))}), "
                f"solver {s.get('solver', '–')} ({s.get('status', '–')})."
            )
        )
        if counts:
            fig, axes = plots.new_figure(figsize=(8.0, 0.45 * len(counts) + 1.0))
            plots.plot_plan_arms(counts, ax=axes[0, 0])
            body.append(page.figure(fig, "Customers per arm in the plan."))
        expected, validated = s.get("expected", {}), s.get("validated", {})
        rows = []
        for label, ekey, vkey in (
            ("incremental profit", "expected_incremental_profit", "incremental_profit"),
            ("promotion cost", "expected_cost", "cost"),
            ("incremental revenue", "expected_incremental_revenue", "incremental_revenue"),
            (
                "incremental conversions",
                "expected_incremental_conversions",
                "incremental_conversions",
            ),
            ("contacts", "contacts", "contacts"),
        ):
            if ekey not in expected and vkey not in validated:
                continue
            v = validated.get(vkey, {})
            rows.append(
                {
                    "quantity": label,
                    "expected": expected.get(ekey),
                    "estimate": v.get("estimate"),
                    "ci_low": v.get("ci_low"),
                    "ci_high": v.get("ci_high"),
                }
            )
        body.append(
            markup.table(
                rows,
                [
                    ("quantity", "total", str),
                    ("expected", "model expects", markup.num),
                    ("estimate", "cross-validated", markup.num),
                    ("ci_low", "95% CI low", markup.num),
                    ("ci_high", "95% CI high", markup.num),
                ],
            )
        )
        cons = s.get("constraints", {})
        caps = cons.get("arm_caps") or {}
        body.append(
            markup.facts(
                [
                    ("budget", markup.num(cons.get("budget"))),
                    ("safety margin", _pct(cons.get("safety_margin"))),
                    ("budget planned against", markup.num(cons.get("effective_budget"))),
                    ("max contacts", markup.num(cons.get("max_contacts"))),
                    ("arm caps", ", ".join(f"{a}: {markup.num(c)}" for a, c in caps.items()) or "–"),
                    ("minimum ROI", markup.num(cons.get("min_roi"))),
                    ("shadow price λ of the budget", markup.num(s.get("shadow_price"), digits=4)),
                    ("price of a contact", markup.num(s.get("contact_price"), digits=4)),
                ]
            )
        )
        body.append(
            markup.paragraph(
                "λ is what one more unit of budget would earn: the plan gives each customer "
                "the arm with the largest value − λ × cost, if positive. The online service "
                "reuses it."
            )
        )
        if s.get("by_segment"):
            body.append(markup.paragraph("Where the plan expects its incremental profit, by customer segment "
                           "(categorical columns by value, numeric ones such as CLV by quartile):"))
            body.append(markup.table(s["by_segment"], [
                ("column", "column", str), ("segment", "segment", str),
                ("customers", "customers", markup.num), ("contacted", "contacted", markup.num),
                ("expected_incremental_profit", "expected incremental profit", _signed),
                ("expected_cost", "expected cost", markup.num)]))
    else:
        body.append(
            markup.note("No plan was given to the report; below is the mix along the budget grid.")
        )
    if len(curve.mix) > 1:
        fig, axes = plots.new_figure(figsize=(10.0, 3.4))
        plots.plot_allocation_mix(curve.mix, ax=axes[0, 0])
        body.append(
            page.figure(
                fig,
                "Share of customers given each arm as the budget grows "
                "(cross-validated predictions, same grid as section 5).",
            )
        )
    return markup.section("allocation", "6. Allocation mix", "".join(body))


def _evaluation(evaluation: Mapping[str, Any] | None, page: markup.Page) -> str:
    if not evaluation:
        return markup.section(
            "holdout",
            "7. Held-out evaluation",
            markup.note("No held-out evaluation was given to the report."),
        )
    policies = list(evaluation.get("policies", []))
    body = []
    if evaluation.get("n_rows"):
        body.append(
            markup.paragraph(
                f"Each policy is valued on {markup.num(int(evaluation['n_rows']))} held-out customers "
                "the models never saw, as incremental profit per 1,000 customers relative to "
                "contacting nobody, with inverse-propensity (IPW) and doubly-robust (DR) "
                "estimates and 95% intervals."
            )
        )
    if policies:
        frame = pd.DataFrame(policies)
        fig, axes = plots.new_figure(figsize=(10.0, 0.45 * len(frame) + 1.3))
        plots.plot_policy_values(frame, ax=axes[0, 0])
        body.append(
            page.figure(
                fig, "Held-out incremental profit per 1,000 customers of each policy (95% CI)."
            )
        )
        body.append(
            markup.table(
                policies,
                [
                    ("policy", "policy", str),
                    ("contact_share", "contacted", _pct),
                    ("ipw", "IPW", _signed),
                    ("ipw_low", "IPW low", _signed),
                    ("ipw_high", "IPW high", _signed),
                    ("dr", "DR", _signed),
                    ("dr_low", "DR low", _signed),
                    ("dr_high", "DR high", _signed),
                ],
            )
        )
    chosen = evaluation.get("chosen")
    if isinstance(chosen, Mapping) and chosen:
        body.append(
            markup.facts(
                (f"policy of '{plan}'", f"{p.get('candidate', '–')} ({_weights(p.get('weights'))})")
                for plan, p in chosen.items()
                if isinstance(p, Mapping)
            )
        )
    recs = _flatten(evaluation.get("uplift"))
    if recs:
        key = next((k for k in ("model", "kind") if k in recs[0]), None)
        cols: list[markup.Column] = [(key, "model", str)] if key else []
        cols += [
            ("arm", "arm", str),
            ("outcome", "outcome", str),
            ("qini_auc", "Qini AUC", lambda v: markup.num(v, digits=3)),
            ("auuc", "AUUC", lambda v: markup.num(v, digits=3)),
            ("uplift_at_k", "uplift@30%", lambda v: markup.num(v, digits=4)),
            ("n", "rows", markup.num),
        ]
        body.append(
            "<h3>Ranking quality on the held-out customers</h3>"
            + markup.paragraph(
                "Qini AUC, AUUC and uplift@30% of the bundle's predictions on the held-out "
                "customers (0 = no better than random; a policy that treats everybody alike "
                "scores 0 by construction)."
            )
            + markup.table(recs, cols)
        )
    return markup.section(
        "holdout", "7. Held-out evaluation", "".join(body) or markup.note("The evaluation is empty.")
    )


def _quality_report(quality: QualityReport | None, bundle: ModelBundle) -> QualityReport | None:
    if quality is not None:
        return quality
    raw = bundle.metrics.get("quality")
    if not raw:
        return None
    from promolift.data.quality import QualityReport

    arms = pd.DataFrame(raw.get("arms", []))
    return QualityReport(
        n_rows=int(arms["rows"].sum()) if "rows" in arms else 0,
        features=pd.DataFrame(
            raw.get("features", []),
            columns=["feature", "type", "missing_share", "outlier_share", "distinct"],
        ),
        arms=arms,
        srm_pvalue=float(raw.get("srm_pvalue", float("nan"))),
    )


def _quality(quality: QualityReport | None, bundle: ModelBundle) -> str:
    q = _quality_report(quality, bundle)
    if q is None:
        return markup.section(
            "quality", "8. Data quality", markup.note("No data-quality summary is available.")
        )
    from promolift.data.quality import SRM_ALPHA

    if markup.missing(q.srm_pvalue):
        srm = markup.note("The sample-ratio test could not be computed.", "warn")
    elif q.srm_ok:
        srm = markup.note(
            f"Sample-ratio check passed (p = {_pvalue(q.srm_pvalue)} ≥ {SRM_ALPHA:g}): the arm "
            "counts fit the expected shares, as a working randomization should.",
            "good",
        )
    else:
        srm = markup.note(
            f"Sample-ratio mismatch (p = {_pvalue(q.srm_pvalue)} < {SRM_ALPHA:g}): the arm counts "
            "are unlikely under the expected shares. Check the randomization before trusting "
            "any uplift in this report.",
            "bad",
        )
    warnings = [w for w in q.warnings() if not w.startswith("sample-ratio")]
    body = [srm] + [markup.note(w, "warn") for w in warnings]
    arms = _records(q.arms)
    arm_cols: list[markup.Column] = [
        ("arm", "arm", str),
        ("rows", "rows", markup.num),
        ("share", "share", _pct),
        ("expected_share", "expected share", _pct),
    ]
    arm_cols += [
        (c, f"mean {c.removeprefix('mean_')}", lambda v: markup.num(v, digits=4))
        for c in q.arms.columns
        if c.startswith("mean_")
    ]
    body.append("<h3>Arms</h3>" + markup.table(arms, arm_cols))
    body.append(
        "<h3>Features</h3>"
        + markup.table(
            _records(q.features),
            [
                ("feature", "feature", str),
                ("type", "type", str),
                ("missing_share", "missing", _pct),
                ("outlier_share", "outliers (3×IQR)", _pct),
                ("distinct", "distinct values", markup.num),
            ],
        )
    )
    return markup.section("quality", "8. Data quality", "".join(body))


def _scores(bundle: ModelBundle) -> str:
    recs = _flatten(bundle.metrics.get("outcome_scores"))
    if not recs:
        return markup.section("scores", "9. Outcome models", markup.note("The bundle holds no outcome scores."))
    body = markup.paragraph(
        "How well each model predicts the outcome levels on each arm's own customers "
        "(cross-validated). AUC and log-loss are for yes/no outcomes, RMSE for all; mean "
        "predicted against mean observed shows calibration."
    ) + markup.table(
        recs,
        [
            ("kind", "model", str),
            ("arm", "arm", str),
            ("outcome", "outcome", str),
            ("n", "rows", markup.num),
            ("auc", "AUC", lambda v: markup.num(v, digits=3)),
            ("log_loss", "log-loss", lambda v: markup.num(v, digits=4)),
            ("rmse", "RMSE", lambda v: markup.num(v, digits=3)),
            ("mean_predicted", "mean predicted", lambda v: markup.num(v, digits=4)),
            ("mean_observed", "mean observed", lambda v: markup.num(v, digits=4)),
        ],
    )
    return markup.section("scores", "9. Outcome models", body)


def _drivers(bundle: ModelBundle, page: markup.Page, name: str, weights: Mapping[str, float]) -> str:
    """Global importance (promolift.explain) of the policy the curves are drawn for."""
    from promolift.errors import PromoliftError
    from promolift.explain import global_importance, stored_background, tree_supported

    title = "10. What drives the uplift"
    background = stored_background(bundle.metrics)
    if background is None or not bundle.models:
        return markup.section("drivers", title, markup.note(
            "The bundle keeps no background sample of customers to explain; re-train it with "
            "this promolift to see which features drive the uplift."))
    try:
        tree = tree_supported(bundle, dict(weights))
        table = global_importance(bundle, background, weights=dict(weights), max_rows=200 if tree else 48)
    except PromoliftError as exc:
        return markup.section("drivers", title, markup.note(f"Could not explain this policy: {exc}"))
    if not (table["mean_abs_contribution"] > 0).any():
        return markup.section("drivers", title, markup.note(
            f"'{name}' gives every customer the same expected profit: no feature drives it."))
    first = table.iloc[0]
    method = ("LightGBM's TreeSHAP carried to dollars" if table.attrs["method"] == "tree"
              else "exact Shapley values against the stored background customers")
    text = (
        f"Which customer features move the expected incremental profit of each customer's best "
        f"promotion under '{name}', in dollars per customer, averaged over "
        f"{table.attrs['n_rows']:,} training customers kept in the bundle ({method}). "
        f"'{first['feature']}' matters most: it moves a customer's expected profit by "
        f"${markup.num(first['mean_abs_contribution'], digits=3)} on average ({_pct(first['share'])} of "
        "all attributions). These explain the model's predictions, not what changing a feature "
        "would cause; 'promolift plan --reasons 3' gives the same per customer."
    )
    fig, axes = plots.new_figure(figsize=(8.0, 0.38 * len(table) + 1.3))
    plots.plot_importance(table, ax=axes[0, 0])
    body = markup.paragraph(text) + page.figure(
        fig,
        "Mean absolute contribution of each feature to the expected incremental profit (bars) "
        "and its signed mean (labels: + raises profit on average).",
    ) + markup.table(
        _records(table),
        [
            ("feature", "feature", str),
            ("mean_abs_contribution", "mean |contribution|", lambda v: markup.num(v, digits=4)),
            ("mean_contribution", "mean contribution", lambda v: markup.num(v, signed=True, digits=4)),
            ("share", "share", _pct),
        ],
    )
    return markup.section("drivers", title, body)


_TOC = (
    ("campaign", "Campaign"),
    ("confidence", "How sure are we"),
    ("qini", "Qini curves"),
    ("deciles", "Uplift by decile"),
    ("budget", "Profit vs budget"),
    ("allocation", "Allocation mix"),
    ("holdout", "Held-out evaluation"),
    ("quality", "Data quality"),
    ("scores", "Outcome models"),
    ("drivers", "What drives the uplift"),
)


def render_report(
    bundle: ModelBundle,
    *,
    evaluation: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    quality: QualityReport | None = None,
    title: str | None = None,
) -> str:
    """Render the report of a trained bundle as one self-contained HTML page.

    Parameters
    ----------
    bundle : ModelBundle
        A trained bundle (its cross-validated predictions drive every curve).
    evaluation : dict, optional
        Held-out results (``promolift.holdout.evaluate_bundle``): ``policies`` records and
        optionally ``uplift`` records.
    plan : Plan, optional
        A plan whose summary (arms, totals, intervals, λ, constraints) is shown.
    quality : QualityReport, optional
        Data-quality summary; defaults to ``bundle.metrics["quality"]`` when present.
    title : str, optional
        Page title; default "Promotion uplift report".

    Returns
    -------
    str
        The HTML. It loads nothing from the network: CSS and SVG figures are inline.

    See Also
    --------
    write_report : Render and write to a file atomically.
    """
    title = title or "Promotion uplift report"
    page = markup.Page()
    name, weights, note = _curve_policy(bundle)
    budget_html, curve = _budget(bundle, page, name, weights, note)
    top, campaign = _header(bundle, title)
    sections = [
        campaign,
        _selection(bundle, page),
        _qini(bundle, page),
        _deciles(bundle, page, name, weights, note),
        budget_html,
        _plan(plan, curve, page),
        _evaluation(evaluation, page),
        _quality(quality, bundle),
        _scores(bundle),
        _drivers(bundle, page, name, weights),
    ]
    nav = "<nav>" + "".join(f'<a href="#{a}">{markup.escape(t)}</a>' for a, t in _TOC) + "</nav>"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    libs = ", ".join(f"{k} {v}" for k, v in bundle.libraries.items())
    footer = (
        f"<footer>Generated by promolift {markup.escape(__version__)} on {markup.escape(now)}. Bundle trained with "
        f"{markup.escape(libs)}. All figures are computed on cross-validated (out-of-fold) predictions unless "
        "marked held-out.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{markup.escape(title)}</title><style>{markup.CSS}</style></head><body><main>"
        + top
        + nav
        + "".join(sections)
        + footer
        + "</main></body></html>\n"
    )


def write_report(
    path: str | Path,
    bundle: ModelBundle,
    *,
    evaluation: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
    quality: QualityReport | None = None,
    title: str | None = None,
) -> Path:
    """Render the report (see :func:`render_report`) and write it to ``path`` atomically.

    Returns
    -------
    Path
        ``path``; an interrupted write leaves any previous file there untouched.
    """
    from promolift.io import atomic_write_text

    text = render_report(bundle, evaluation=evaluation, plan=plan, quality=quality, title=title)
    return atomic_write_text(path, text)
