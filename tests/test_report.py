"""The HTML report: computed curves by their data, plots by their data, the page by its content."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promolift.bundle import ModelBundle, OutOfFold, blend
from promolift.config import CampaignConfig
from promolift.data.encode import FeatureEncoder
from promolift.data.quality import QualityReport
from promolift.economics import Economics
from promolift.evaluate.metrics import qini_curve, uplift_by_decile, uplift_report
from promolift.evaluate.policy import policy_gain
from promolift.evaluate.scores import outcome_scores
from promolift.plan import Plan
from promolift.report import curves, plots, render_report, write_report
from promolift.report import html as report_html
from promolift.selection import Constraints, candidates, score_candidates

EVIL_ARM = 'E-mail <script>alert("x")</script>'
DOLLAR_ARM = "coupon $5 off $50"
ARMS = ["control", EVIL_ARM, DOLLAR_ARM]
KINDS = ["constant", "t", "dr"]


def _config() -> CampaignConfig:
    return CampaignConfig.from_dict(
        {
            "data": {"control": "control", "features": ["x1", "x2"]},
            "outcomes": {"conversion": "binary", "spend": "continuous"},
            "economics": {
                "margin": 0.4,
                "value_outcome": "spend",
                "conversion_outcome": "conversion",
            },
            "arms": {
                EVIL_ARM: {"contact_cost": 0.3},
                DOLLAR_ARM: {"contact_cost": 0.1, "discount_rate": 0.1},
            },
            "model": {"kinds": KINDS, "n_folds": 2},
        }
    )


def _simulate(n: int, seed: int):
    """A randomized 3-arm log with known conversion probabilities; arm 1 works for x1 > 0 only."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    t = rng.integers(0, 3, size=n)
    p = np.empty((n, 3))
    p[:, 0] = 0.08 + 0.02 * (X["x2"] > 0)
    p[:, 1] = p[:, 0] + np.where(X["x1"] > 0, 0.12, -0.02)
    p[:, 2] = p[:, 0] + 0.02
    truth = np.stack([p, 40.0 * p], axis=-1)  # (n, K, [conversion, spend])
    conv = (rng.random(n) < p[np.arange(n), t]).astype(float)
    spend = conv * rng.gamma(4.0, 10.0, size=n)
    return X, t, np.column_stack([conv, spend]), truth, rng


def _bundle(n: int = 900, seed: int = 0, *, weights: dict | None = None) -> ModelBundle:
    cfg = _config()
    X, t, Y, truth, rng = _simulate(n, seed)
    constant = np.broadcast_to(
        np.stack([Y[t == k].mean(axis=0) for k in range(3)]), truth.shape
    ).copy()
    preds = {
        "constant": constant,
        "t": truth * np.exp(rng.normal(0, 0.15, size=truth.shape)),
        "dr": truth * np.exp(rng.normal(0, 0.3, size=truth.shape)),
    }
    oof = OutOfFold(predictions=preds, Y=Y, treatment=t, propensity=np.full((n, 3), 1 / 3))
    eco = Economics.from_config(cfg)
    table = score_candidates(oof, eco, Constraints(), candidates(KINDS))
    best = table.iloc[0]
    recs = lambda f: f.replace({np.nan: None}).to_dict(orient="records")  # noqa: E731
    metrics = {
        "n_rows": n,
        "n_folds": 2,
        "selection_unconstrained": recs(table),
        "chosen": {"candidate": best["candidate"], "weights": best["weights"]},
        "uplift": {
            k: recs(uplift_report(Y, p - p[:, :1], t, arms=ARMS, outcomes=["conversion", "spend"]))
            for k, p in preds.items()
            if k != "constant"
        },
        "outcome_scores": {
            k: recs(
                outcome_scores(
                    p,
                    Y,
                    t,
                    arms=ARMS,
                    outcomes=["conversion", "spend"],
                    outcome_types=["binary", "continuous"],
                )
            )
            for k, p in preds.items()
        },
        "quality": {
            "features": [
                {
                    "feature": "x1",
                    "type": "numeric",
                    "missing_share": 0.0,
                    "outlier_share": 0.0,
                    "distinct": n,
                }
            ],
            "arms": [
                {
                    "arm": a,
                    "rows": int((t == k).sum()),
                    "share": float((t == k).mean()),
                    "expected_share": 1 / 3,
                    "mean_spend": float(Y[t == k, 1].mean()),
                }
                for k, a in enumerate(ARMS)
            ],
            "srm_pvalue": 0.5,
        },
    }
    if weights is not None:
        metrics["chosen"] = {"candidate": "nobody" if not weights else "custom", "weights": weights}
    return ModelBundle(
        config=cfg,
        encoder=FeatureEncoder().fit(X),
        models={},
        weights=dict(best["weights"]) if weights is None else weights,
        oof=oof,
        calibration={k: np.ones((3, 2)) for k in KINDS},
        metrics=metrics,
        fingerprint="0123456789abcdef0123",
        version="20250101-abc",
        created="2025-01-01T00:00:00+00:00",
    )


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return _bundle()


def _plan_summary(bundle: ModelBundle) -> dict:
    return {
        "customers": 1000,
        "policy": {"candidate": "t", "weights": {"t": 1.0}},
        "solver": "lagrangian",
        "status": "optimal",
        "shadow_price": 0.8,
        "contact_price": 0.0,
        "arms": {"control": 600, EVIL_ARM: 300, DOLLAR_ARM: 100},
        "constraints": {
            "budget": 100.0,
            "safety_margin": 0.0,
            "effective_budget": 100.0,
            "max_contacts": None,
            "arm_caps": {},
            "min_roi": None,
        },
        "expected": {"expected_incremental_profit": 250.0, "expected_cost": 99.0, "contacts": 400},
        "validated": {
            "incremental_profit": {"estimate": 180.0, "ci_low": -20.0, "ci_high": 380.0},
            "contacts": {"estimate": 400.0},
        },
    }


EVALUATION = {
    "n_rows": 500,
    "policies": [
        {
            "policy": "promolift plan",
            "contact_share": 0.4,
            "ipw": 120.0,
            "ipw_low": -10.0,
            "ipw_high": 250.0,
            "dr": 110.0,
            "dr_low": 20.0,
            "dr_high": 200.0,
        },
        {
            "policy": f"everybody: {EVIL_ARM}",
            "contact_share": 1.0,
            "ipw": 40.0,
            "ipw_low": -90.0,
            "ipw_high": 170.0,
            "dr": 35.0,
            "dr_low": -60.0,
            "dr_high": 130.0,
        },
        {
            "policy": "nobody",
            "contact_share": 0.0,
            "ipw": 0.0,
            "ipw_low": 0.0,
            "ipw_high": 0.0,
            "dr": 0.0,
            "dr_low": 0.0,
            "dr_high": 0.0,
        },
    ],
    "chosen": {
        "promolift plan": {"candidate": "t shrunk 0.5", "weights": {"t": 0.5, "constant": 0.5}}
    },
    "uplift": [
        {
            "arm": EVIL_ARM,
            "outcome": "spend",
            "qini_auc": 0.2,
            "auuc": None,
            "uplift_at_k": 1.5,
            "n": 330,
        }
    ],
}


@pytest.fixture(scope="module")
def written(bundle, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "out" / "report.html"
    assert (
        write_report(
            path,
            bundle,
            evaluation=EVALUATION,
            plan=Plan(table=None, summary=_plan_summary(bundle)),
        )
        == path
    )
    return path


@pytest.fixture(scope="module")
def page(written) -> str:
    return written.read_text(encoding="utf-8")


def _section(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor}"
    return match.group(1)


# ------------------------------------------------------------------------------------ the page
def test_page_loads_nothing_from_the_network(page):
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(?:[a-z]+:)?//", page, re.I)
    assert not re.search(r"<(?:script|link|iframe|img)\b", page, re.I)
    assert "@import" not in page


@pytest.mark.parametrize(
    "anchor", ["confidence", "qini", "deciles", "budget", "allocation", "holdout"]
)
def test_every_plot_section_has_an_inline_svg(page, anchor):
    assert "<svg" in _section(page, anchor)


def test_svg_ids_are_unique_on_the_page(page):
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for ref in set(re.findall(r'(?:href="#|url\(#)([^")]+)', page)):
        assert ref in ids, ref


def test_config_text_is_escaped(page):
    assert "<script" not in page.lower()
    assert html.escape(EVIL_ARM) in page


def test_sections_show_the_given_plan_evaluation_and_quality(page, bundle):
    allocation = _section(page, "allocation")
    assert "Customers per arm in the plan" in allocation and "+250" not in allocation
    assert "0.8000" in allocation  # the shadow price
    holdout = _section(page, "holdout")
    assert "promolift plan" in holdout and "Ranking quality on the held-out customers" in holdout
    assert "t shrunk 0.5 (t 0.5 + constant 0.5)" in holdout
    quality = _section(page, "quality")
    assert "Sample-ratio check passed" in quality and "mean spend" in quality
    assert "<td>t</td>" in _section(page, "scores")
    assert bundle.fingerprint[:12] in _section(page, "campaign")
    assert bundle.fingerprint not in page


def test_bare_report_with_a_simple_policy_and_a_failed_randomization():
    """No plan, no evaluation, 'constant' chosen, a quality report whose SRM check fails."""
    bare = _bundle(400, seed=3, weights={"constant": 1.0})
    bare.metrics["chosen"]["candidate"] = "constant"
    bare.metrics.pop("quality")
    features = {"feature": "<b>age</b>", "type": "numeric", "missing_share": 0.5,
                "outlier_share": 0.01, "distinct": 40}  # fmt: skip
    arms = {
        "arm": ARMS,
        "rows": [80, 10, 10],
        "share": [0.8, 0.1, 0.1],
        "expected_share": [0.3] * 3,
    }
    q = QualityReport(n_rows=100, features=pd.DataFrame([features]), arms=pd.DataFrame(arms),
                      srm_pvalue=1e-9)  # fmt: skip
    text = render_report(bare, quality=q, title="Spring <sale>")
    assert "<title>Spring &lt;sale&gt;</title>" in text
    assert "No held-out evaluation was given" in _section(text, "holdout")
    assert "No plan was given" in _section(text, "allocation")
    quality = _section(text, "quality")
    assert "Sample-ratio mismatch" in quality
    assert "&lt;b&gt;age&lt;/b&gt;" in quality and "50% missing" in quality
    assert "No data-quality summary" in report_html._quality(None, bare)
    confidence = _section(text, "confidence")
    assert "The chosen policy is the simple one" in confidence
    assert "No model-based policy beat the simple policy" in confidence
    assert "treats every customer alike" in _section(text, "deciles")
    assert "<svg" in _section(text, "budget")


def test_curves_of_a_nobody_policy_use_the_best_model_candidate():
    nobody = _bundle(400, seed=2, weights={})
    name, weights, note = report_html._curve_policy(nobody)
    assert set(weights) - {"constant"} and "'nobody'" in note
    assert name == next(
        r["candidate"]
        for r in nobody.metrics["selection_unconstrained"]
        if set(r["weights"]) - {"constant"}
    )


def test_write_report_is_atomic(written, bundle, tmp_path, monkeypatch):
    assert written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in written.parent.iterdir()) == ["report.html"]  # no temp file left

    target = tmp_path / "report.html"
    target.write_text("previous")
    monkeypatch.setattr(report_html, "render_report", lambda *a, **k: "new")

    def crash(src, dst):
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            write_report(target, bundle)
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]
    assert write_report(target, bundle) == target
    assert target.read_text() == "new"


# ------------------------------------------------------------------------------------ curves
def test_profit_budget_curve_is_monotone_and_within_budget(bundle):
    curve = curves.profit_budget_curve(
        bundle.oof, bundle.economics, bundle.weights, arms=bundle.arms
    )
    pts = curve.points
    assert len(pts) == 12
    assert pts["budget_per_customer"].iloc[0] == 0
    assert np.all(np.diff(pts["expected_profit_per_1000"]) >= 0)
    assert np.all(pts["cost_per_customer"] <= pts["budget_per_customer"] * (1 + 1e-9) + 1e-12)
    assert pts["expected_profit_per_1000"].iloc[-1] > 0
    assert np.all(
        (pts["dr_low_per_1000"] <= pts["dr_profit_per_1000"])
        & (pts["dr_profit_per_1000"] <= pts["dr_high_per_1000"])
    )
    np.testing.assert_allclose(curve.mix.sum(axis=1), 1.0)
    assert list(curve.mix.columns) == ARMS
    # the unconstrained end is the chosen candidate's row of the selection table
    chosen = bundle.metrics["chosen"]["candidate"]
    row = next(r for r in bundle.metrics["selection_unconstrained"] if r["candidate"] == chosen)
    assert pts["dr_profit_per_1000"].iloc[-1] == pytest.approx(row["profit_per_1000"])
    assert pts["cost_per_customer"].iloc[-1] == pytest.approx(row["cost_per_customer"])


def test_profit_budget_curve_when_nothing_pays():
    b = _bundle(300, seed=1)
    curve = curves.profit_budget_curve(b.oof, b.economics, {}, arms=b.arms)
    assert len(curve.points) == 1
    assert curve.points["expected_profit_per_1000"].iloc[0] == 0
    assert curve.mix.iloc[0].tolist() == [1.0, 0.0, 0.0]


def test_qini_curves_match_the_metric_and_are_subsampled(bundle):
    oof = bundle.oof
    data = curves.qini_curves(oof, arm=1, outcome=1, max_points=50)
    assert set(data["curve"]) == {"t", "dr", "perfect", "random"}
    assert data.groupby("curve").size().max() <= 50
    keep = (oof.treatment == 0) | (oof.treatment == 1)
    pred = oof.predictions["t"][keep]
    x, v = qini_curve(
        oof.Y[keep, 1], pred[:, 1, 1] - pred[:, 0, 1], (oof.treatment[keep] == 1).astype(int)
    )
    t_curve = data[data["curve"] == "t"]
    np.testing.assert_allclose(np.interp(t_curve["n_targeted"], x, v), t_curve["value"])
    assert t_curve["n_targeted"].iloc[0] == 0 and t_curve["n_targeted"].iloc[-1] == keep.sum()
    assert t_curve["share"].iloc[-1] == 1.0
    ends = data.groupby("curve")["value"].last()
    np.testing.assert_allclose(
        ends.to_numpy(), ends.iloc[0]
    )  # every ranking ends at the same total
    random = data[data["curve"] == "random"]
    assert random["value"].tolist() == [0.0, pytest.approx(v[-1])]


def test_subsample_curve_keeps_ends_and_extremes():
    x = np.arange(2000)
    y = np.where(x == 777, 10.0, np.sin(x / 50))
    xs, ys = curves.subsample_curve(x, y, max_points=100)
    assert len(xs) <= 100 and xs[0] == 0 and xs[-1] == 1999 and 777 in xs
    assert np.all(np.diff(xs) > 0)
    np.testing.assert_array_equal(ys, y[xs])


def test_uplift_deciles_of_the_blend(bundle):
    oof = bundle.oof
    table = curves.uplift_deciles(oof, {"t": 0.5, "constant": 0.5}, arm=2, outcome=0)
    keep = (oof.treatment == 0) | (oof.treatment == 2)
    pred = blend(oof.predictions, {"t": 0.5, "constant": 0.5})[keep]
    expected = uplift_by_decile(
        oof.Y[keep, 0], pred[:, 2, 0] - pred[:, 0, 0], (oof.treatment[keep] == 2)
    )
    pd.testing.assert_frame_equal(table, expected)
    assert table["n_treated"].sum() + table["n_control"].sum() == keep.sum()


def test_selection_summary_pairs_the_chosen_plan_with_the_simple_one(bundle):
    table = pd.DataFrame(bundle.metrics["selection_unconstrained"])
    by = table.set_index("candidate")["profit_per_1000"]
    s = curves.selection_summary(bundle.oof, bundle.economics, table, "t")
    assert s.simple == ("constant" if by["constant"] > 0 else "nobody")
    assert s.simple_estimate == max(0.0, by["constant"])
    assert (s.chosen, s.challenger, s.chosen_estimate) == ("t", "t", by["t"])
    assert not s.chosen_is_simple
    # DR gains are linear in the per-row terms: the paired difference equals the difference of
    # the two estimates, but gets its own (narrower) interval
    assert s.difference == pytest.approx(s.chosen_estimate - s.simple_estimate)
    assert s.difference_low < s.difference < s.difference_high
    assert sum(s.simple_mix) == pytest.approx(1.0)

    c = curves.selection_summary(bundle.oof, bundle.economics, table, "constant")
    best_model = by.drop(["constant", "nobody"]).idxmax()
    assert c.chosen_is_simple and c.challenger == best_model
    assert c.difference == pytest.approx(by[best_model] - c.simple_estimate)
    with pytest.raises(KeyError, match="not in the candidate table"):
        curves.selection_summary(bundle.oof, bundle.economics, table, "missing")


def test_reference_mu_matches_the_selection_estimates(bundle):
    eco = bundle.economics
    mu = curves.reference_mu(bundle.oof, eco)
    reward = eco.realized_profit(bundle.oof.Y, bundle.oof.treatment)
    g = policy_gain(reward, bundle.oof.treatment, 1, bundle.oof.propensity, mu=mu, method="dr")
    assert np.isfinite(g.estimate) and mu.shape == (len(reward), 3)


# ------------------------------------------------------------------------------------ plots
def test_plots_draw_their_data(bundle):
    curve = curves.profit_budget_curve(
        bundle.oof, bundle.economics, bundle.weights, arms=bundle.arms
    )
    ax = plots.plot_profit_budget(curve.points)
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(
        lines["model's expectation"].get_ydata(), curve.points["expected_profit_per_1000"]
    )
    np.testing.assert_allclose(
        lines["model's expectation"].get_xdata(), 1000 * curve.points["budget_per_customer"]
    )

    ax = plots.plot_allocation_mix(curve.mix)
    heights = np.array([p.get_height() for p in ax.patches]).reshape(len(ARMS), -1)
    np.testing.assert_allclose(heights.sum(axis=0), 100.0)

    qini = curves.qini_curves(bundle.oof, arm=1, outcome=0)
    ax = plots.plot_qini(qini, title=DOLLAR_ARM)
    assert ax.get_title(loc="left") == r"coupon \$5 off \$50"
    drawn = {line.get_label().split(" ")[0]: line for line in ax.get_lines()}
    assert {"t", "dr", "perfect", "random"} <= set(drawn)
    t_curve = qini[qini["curve"] == "t"]
    np.testing.assert_allclose(
        drawn["t"].get_xydata(), np.column_stack([100 * t_curve["share"], t_curve["value"]])
    )

    ax = plots.plot_candidates(pd.DataFrame(bundle.metrics["selection_unconstrained"]), chosen="t")
    assert [p.get_width() for p in ax.patches] == pytest.approx(
        [r["profit_per_1000"] for r in bundle.metrics["selection_unconstrained"]]
    )

    ax = plots.plot_plan_arms({"control": 5, "a": 3})
    assert [p.get_width() for p in ax.patches] == [5, 3]

    ax = plots.plot_policy_values(pd.DataFrame(EVALUATION["policies"]))
    assert len(ax.get_yticklabels()) == 3


def test_plots_draw_on_a_given_axes_and_leave_global_state_alone(bundle):
    import matplotlib

    before = dict(matplotlib.rcParams)
    fig, axes = plots.new_figure(1, 2)
    table = curves.uplift_deciles(bundle.oof, bundle.weights, arm=1, outcome=0)
    assert plots.plot_uplift_deciles(table, ax=axes[0, 1]) is axes[0, 1]
    assert [p.get_height() for p in axes[0, 1].patches] == pytest.approx(
        table["predicted_uplift"].tolist()
    )
    assert dict(matplotlib.rcParams) == before
    import sys

    assert (
        "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()
    )


# ------------------------------------------------------------------------------------ real pipeline
@pytest.mark.slow
def test_report_of_a_really_trained_bundle(tmp_path: Path):
    from promolift.data import load_campaign
    from promolift.datasets.simulator import campaign_config, make_campaign
    from promolift.train import train

    sim = make_campaign(4000, random_state=0)
    raw = campaign_config(sim)
    raw.setdefault("model", {}).update({"n_estimators": 40, "n_folds": 3})
    cfg = CampaignConfig.from_dict(raw)
    b = train(cfg, load_campaign(sim.frame, cfg))
    path = write_report(tmp_path / "report.html", b)
    text = path.read_text(encoding="utf-8")
    assert text.count("<svg") >= 6


def test_qini_plot_cuts_off_a_perfect_curve_that_dwarfs_the_models():
    share = np.linspace(0, 1, 11)
    data = pd.concat(
        [
            pd.DataFrame({"curve": "t", "share": share, "value": 10 * share}),
            pd.DataFrame(
                {"curve": "perfect", "share": share, "value": np.where(share < 1, 500.0, 10.0)}
            ),
            pd.DataFrame({"curve": "random", "share": [0.0, 1.0], "value": [0.0, 10.0]}),
        ]
    )
    ax = plots.plot_qini(data)
    assert ax.get_ylim()[1] < 20
    assert any("peaks at 500, off scale" in line.get_label() for line in ax.get_lines())


def test_importing_the_report_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, promolift.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
