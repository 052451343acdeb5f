"""Explanations: additivity, hand-computable Shapley values, simulator truth, every model kind,
reason codes, global importance, the plan CLI and the report section."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from promolift.bundle import ModelBundle
from promolift.cli import app
from promolift.config import CampaignConfig
from promolift.data import load_campaign
from promolift.data.encode import FeatureEncoder
from promolift.datasets.simulator import campaign_config, make_campaign
from promolift.errors import BundleError, ConfigError, DataError
from promolift.explain import (
    BACKGROUND_KEY,
    Reason,
    background_sample,
    contributions,
    explain,
    global_importance,
    reason_codes,
    reason_columns,
    stored_background,
    tree_supported,
)
from promolift.report import html as report_html
from promolift.report import markup
from promolift.train import train

FAST_MODEL = {
    "kinds": ["constant", "relative", "t", "x", "dr"],
    "n_folds": 2,
    "n_estimators": 40,
    "learning_rate": 0.1,
    "min_child_samples": 30,
    "funnel_outcome": "visit",
}
BLENDS = [
    None,
    {"t": 1.0},
    {"x": 1.0},
    {"dr": 0.5, "constant": 0.5},
    {"relative": 1.0},
    {"t@visit": 0.6, "dr": 0.4},
    {"relative@visit": 0.7, "x": 0.3},
]


@pytest.fixture(scope="module")
def sim():
    return make_campaign(6000, random_state=3)


@pytest.fixture(scope="module")
def config(sim):
    raw = campaign_config(sim)
    raw["model"] = FAST_MODEL
    return CampaignConfig.from_dict(raw)


@pytest.fixture(scope="module")
def data(sim, config):
    return load_campaign(sim.frame, config)


@pytest.fixture(scope="module")
def bundle(config, data):
    return train(config, data.subset(np.arange(4500)))


@pytest.fixture(scope="module")
def customers(data):
    return data.X.iloc[4500:]


def _value(bundle, X, weights=None):
    return bundle.economics.value_cost(bundle.predict(X, weights))[0]


# ------------------------------------------------------------------------------ background
def test_background_is_stored_and_survives_save_and_load(bundle, data, tmp_path):
    bg = stored_background(bundle.metrics)
    assert bg is not None and len(bg) == 200 and list(bg.columns) == bundle.encoder.columns_
    assert bg["history"].dtype == np.float64 and bg["channel"].dtype == object
    # the stored rows are real training rows (raw values, not encoded)
    train_x = data.X.iloc[:4500]
    assert set(bg["history"].dropna()) <= set(train_x["history"].dropna())
    assert set(bg["channel"].dropna()) <= set(train_x["channel"].dropna())
    bundle.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m")
    pd.testing.assert_frame_equal(stored_background(loaded.metrics), bg)
    json.dumps(loaded.metrics[BACKGROUND_KEY])  # JSON-able by construction


def test_background_sample_keeps_missing_values_and_text():
    X = pd.DataFrame({"n": [1.0, np.nan, 3.0], "c": ["a", None, "b"], "flag": [True, False, True]})
    bg = background_sample(X, size=10)
    assert bg["numeric"] == ["n"] and len(bg["rows"]) == 3
    frame = stored_background({BACKGROUND_KEY: bg})
    assert frame["n"].isna().sum() == 1 and frame["c"].isna().sum() == 1
    assert set(frame["flag"]) == {"True", "False"}


# ------------------------------------------------------------------------------ additivity
@pytest.mark.parametrize("weights", BLENDS, ids=str)
def test_shapley_is_exactly_additive_and_explains_the_bundle_value(bundle, customers, weights):
    X = customers.iloc[:6]
    ex = explain(bundle, X, weights=weights, method="shapley", n_background=8)
    value = _value(bundle, X, weights)
    np.testing.assert_allclose(ex.value, value[np.arange(6), ex.arm], atol=1e-12)
    np.testing.assert_allclose(ex.contributions.sum(axis=1), ex.value - ex.reference, atol=1e-9)
    # default arm: the best treated arm
    np.testing.assert_array_equal(ex.arm, 1 + value[:, 1:].argmax(axis=1))
    assert list(ex.contributions.columns) == bundle.encoder.columns_
    assert ex.contributions.index.equals(X.index)


@pytest.mark.parametrize("weights", BLENDS, ids=str)
def test_tree_is_additive_and_reproduces_the_bundle_value(bundle, customers, weights):
    X = customers.iloc[:300]
    ex = explain(bundle, X, weights=weights, method="tree")
    value = _value(bundle, X, weights)
    np.testing.assert_allclose(ex.value, value[np.arange(300), ex.arm], atol=1e-10)
    np.testing.assert_allclose(ex.contributions.sum(axis=1), ex.value - ex.reference, atol=1e-9)
    assert ex.method == "tree" and np.ptp(ex.reference[ex.arm == 1]) == 0  # one reference per arm


def test_tree_agrees_with_exact_shapley(bundle, customers):
    X = customers.iloc[:120]
    tree = explain(bundle, X, weights={"dr": 1.0}, method="tree").contributions.to_numpy()
    exact = explain(
        bundle, X, weights={"dr": 1.0}, method="shapley", n_background=32
    ).contributions.to_numpy()
    rho = np.nanmean([spearmanr(a, b).statistic for a, b in zip(tree, exact, strict=True)])
    top3 = np.mean(
        [
            len(set(np.argsort(-abs(a))[:3]) & set(np.argsort(-abs(b))[:3])) / 3
            for a, b in zip(tree, exact, strict=True)
        ]
    )
    assert rho > 0.6 and top3 > 0.6, (rho, top3)
    # global importance: same top feature, close magnitudes
    gt, ge = np.abs(tree).mean(axis=0), np.abs(exact).mean(axis=0)
    assert gt.argmax() == ge.argmax()
    assert spearmanr(gt, ge).statistic > 0.7


# ------------------------------------------------------------------------------ hand-computable
class _AdditiveModel:
    """Spend under arm 1 = 100 + 20·x0 − 10·x1 + 30·[c == "b"]; control spends 100: an
    additive profit whose Shapley values are known in closed form."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``X``: the bundle's encoded matrix, columns x0, x1, (noise x2, ...,) then c as its
        category's index (a = 0, b = 1)."""
        n = len(X)
        lift = 20 * X[:, 0] - 10 * X[:, 1] + 30 * (X[:, -1] == 1)
        pred = np.zeros((n, 2, 2))
        pred[:, :, 1] = 100.0
        pred[:, 1, 1] += lift
        pred[:, :, 0] = 0.1
        return pred


def _additive_bundle(n_noise: int = 0) -> tuple[ModelBundle, pd.DataFrame]:
    rng = np.random.default_rng(0)
    cols = {f"x{j}": rng.normal(size=40) for j in range(2 + n_noise)}
    X = pd.DataFrame(cols | {"c": rng.choice(["a", "b"], size=40)})
    cfg = CampaignConfig.from_dict(
        {
            "data": {"control": "control", "features": list(X.columns)},
            "outcomes": {"conversion": "binary", "spend": "continuous"},
            "economics": {
                "margin": 0.3,
                "value_outcome": "spend",
                "conversion_outcome": "conversion",
            },
            "arms": {"mail": {"contact_cost": 0.5}},
        }
    )
    bundle = ModelBundle(
        config=cfg,
        encoder=FeatureEncoder().fit(X),
        models={"t": _AdditiveModel()},
        weights={"t": 1.0},
        oof=None,
        calibration={"t": np.ones((2, 2))},
        metrics={BACKGROUND_KEY: background_sample(X, size=40)},
    )
    return bundle, X


@pytest.mark.parametrize("n_noise", [0, 10], ids=["exact", "permutations"])
def test_additive_model_gives_per_feature_effect_differences(n_noise):
    bundle, X = _additive_bundle(n_noise)
    bg = stored_background(bundle.metrics)
    ex = explain(bundle, X.iloc[:5], n_background=40)  # auto -> shapley (not a LightGBM kind)
    assert ex.method == "shapley"
    c = ex.contributions
    np.testing.assert_allclose(c["x0"], 0.3 * 20 * (X["x0"].iloc[:5] - bg["x0"].mean()), atol=1e-9)
    np.testing.assert_allclose(c["x1"], -0.3 * 10 * (X["x1"].iloc[:5] - bg["x1"].mean()), atol=1e-9)
    np.testing.assert_allclose(
        c["c"], 0.3 * 30 * ((X["c"].iloc[:5] == "b") - (bg["c"] == "b").mean()), atol=1e-9
    )
    noise = [f"x{j}" for j in range(2, 2 + n_noise)]
    assert np.abs(c[noise].to_numpy()).max(initial=0.0) < 1e-9
    # reference = mean profit over the background; value = the customer's own profit
    lift_bg = 20 * bg["x0"] - 10 * bg["x1"] + 30 * (bg["c"] == "b")
    np.testing.assert_allclose(ex.reference, 0.3 * lift_bg.mean() - 0.5, atol=1e-9)


def test_reason_codes_of_the_additive_model_name_the_largest_effect():
    bundle, _ = _additive_bundle()
    x = pd.DataFrame({"x0": [3.0], "x1": [0.0], "c": ["a"]})
    (reasons,) = reason_codes(bundle, x, top=2)
    assert [r.feature for r in reasons] == ["x0", "c"]
    assert (
        reasons[0] == Reason("x0", 3.0, reasons[0].contribution, "+")
        and reasons[0].contribution > 15
    )
    assert reasons[1].direction == "-" and reasons[1].value == "a"
    json.dumps([r.to_dict() for r in reasons])


# ------------------------------------------------------------------------------ simulator truth
class _SimulatorTruth:
    """The simulator's true expected outcomes as a response model (the generative formulas of
    promolift.datasets.simulator, on encoded features): explanations of it must find the true
    effect modifiers."""

    def __init__(self, encoder: FeatureEncoder) -> None:
        self.encoder = encoder

    def predict(self, M: np.ndarray) -> np.ndarray:
        from promolift.datasets.simulator import _arm_effects, _sigmoid

        X = pd.DataFrame(M, columns=self.encoder.columns_)  # the bundle's encoded matrix, decoded
        for col, cats in self.encoder.categories_.items():
            X[col] = pd.Categorical.from_codes(np.nan_to_num(M[:, self.encoder.columns_.index(col)],
                                                             nan=-1).astype(int), categories=cats)
        zh = np.nan_to_num((np.log(X["history"].to_numpy(dtype=float)) - 5.0) / 0.8)
        rec, wv = (
            X["recency"].to_numpy(dtype=float),
            np.nan_to_num(X["web_visits"].to_numpy(dtype=float), nan=2.0),
        )
        ten = np.nan_to_num(X["tenure"].to_numpy(dtype=float), nan=5.0)
        ch, pref = X["channel"].astype(object).to_numpy(), X["preference"].astype(object).to_numpy()
        visit = (
            -1.9
            + 0.5 * zh
            - 0.08 * (rec - 6)
            + 0.15 * (wv - 2)
            + 0.3 * (ch == "multichannel")
            + 0.05 * (ten - 5)
        )
        conv = -2.2 + 0.4 * zh + 0.2 * (ch == "web")
        basket = 90.0 * np.exp(0.25 * np.clip(zh, -2.0, 2.0))
        feats = {"preference": pref, "channel": ch, "zhist": zh, "recency": rec}
        out = np.empty((len(X), 3, 3))
        for k in range(3):
            dv, dc, mult = (0.0, 0.0, 1.0) if k == 0 else _arm_effects(k, feats)
            pv = _sigmoid(visit + dv)
            pc = pv * _sigmoid(conv + dc)
            out[:, k] = np.column_stack([pv, pc, pc * basket * mult])
        return out


def test_simulator_truth_effect_modifiers_rank_top(bundle, sim, customers):
    """Explaining the true response: arm1's profit is driven by preference (visit logit +0.9
    mens, -0.5 womens), arm2's by history (visits) and channel (conversion); tenure and
    web_visits only move the baseline."""
    oracle = dataclasses.replace(
        bundle,
        models={"t": _SimulatorTruth(bundle.encoder)},
        weights={"t": 1.0},
        calibration={"t": np.ones((3, 3))},
    )
    X = customers.iloc[:60]
    ok = X.notna().all(axis=1).to_numpy()
    truth = sim.true_outcomes[4500:4560]
    np.testing.assert_allclose(
        oracle.predict(X)[ok], truth[ok], rtol=1e-9
    )  # the oracle is the truth
    pref, channel = X["preference"].to_numpy(), X["channel"].to_numpy()
    arm1 = explain(oracle, X, 1, n_background=16)
    g1 = arm1.contributions.abs().mean().sort_values(ascending=False)
    assert g1.index[0] == "preference", g1
    c = arm1.contributions["preference"].to_numpy()
    assert c[pref == "mens"].min() > 0 > c[pref == "womens"].max()
    arm2 = explain(oracle, X, 2, n_background=16)
    g2 = arm2.contributions.abs().mean().sort_values(ascending=False)
    assert set(g2.index[:2]) == {"history", "channel"}, g2
    assert max(g1["tenure"], g1["web_visits"]) < g1["preference"] / 2
    assert max(g2["tenure"], g2["web_visits"], g2["preference"]) < min(g2["history"], g2["channel"])
    c = arm2.contributions["channel"].to_numpy()
    assert c[channel == "web"].mean() > 0 > c[channel == "phone"].mean()


@pytest.mark.slow
def test_fitted_bundle_finds_the_simulator_effect_modifiers():
    sim = make_campaign(40000, random_state=5)
    raw = campaign_config(sim)
    raw["model"] = {"kinds": ["constant", "t", "dr"], "n_folds": 2}
    cfg = CampaignConfig.from_dict(raw)
    data = load_campaign(sim.frame, cfg)
    fitted = train(cfg, data.subset(np.arange(36000)))
    X = data.X.iloc[36000:38000]
    g1 = (
        explain(fitted, X, 1, weights={"dr": 1.0})
        .contributions.abs()
        .mean()
        .sort_values(ascending=False)
    )
    g2 = (
        explain(fitted, X, 2, weights={"dr": 1.0})
        .contributions.abs()
        .mean()
        .sort_values(ascending=False)
    )
    assert g1.index[0] == "preference", g1
    assert "history" in g2.index[:2], g2


@pytest.mark.parametrize("method", ["tree", "shapley"])
def test_explain_reuses_the_callers_encoded_matrix(bundle, customers, method):
    X = customers.iloc[:5]
    weights = {"t": 1.0}
    own = explain(bundle, X, weights=weights, method=method)
    given = explain(bundle, X, weights=weights, method=method, encoded=bundle.encoder.matrix(X))
    pd.testing.assert_frame_equal(own.contributions, given.contributions)
    with pytest.raises(DataError, match="bundle.encoder.matrix"):
        explain(bundle, X, weights=weights, method=method, encoded=bundle.encoder.matrix(X)[:2])


# ------------------------------------------------------------------------------ reason codes
def test_reason_codes_for_one_customer(bundle, customers):
    x = customers.iloc[[7]]
    (reasons,) = reason_codes(bundle, x, top=3)
    ex = explain(bundle, x)
    c = ex.contributions.iloc[0]
    assert [r.feature for r in reasons] == list(c.abs().sort_values(ascending=False).index[:3])
    for r in reasons:
        assert r.contribution == pytest.approx(c[r.feature])
        assert r.direction == ("+" if r.contribution > 0 else "-")
        raw = x[r.feature].iloc[0]
        assert r.value == (None if pd.isna(raw) else raw)
    json.dumps([r.to_dict() for r in reasons])


def test_control_arm_explains_the_best_treated_arm(bundle, customers):
    X = customers.iloc[:20]
    value = _value(bundle, X)
    arm = np.zeros(20, dtype=int)
    arm[:5] = 2
    ex = explain(bundle, X, arm)
    np.testing.assert_array_equal(ex.arm[:5], 2)
    np.testing.assert_array_equal(ex.arm[5:], 1 + value[5:, 1:].argmax(axis=1))
    assert (explain(bundle, X, 1).arm == 1).all()  # a scalar arm applies to everybody


def test_bad_input_gets_clear_errors(bundle, customers):
    X = customers.iloc[:3]
    with pytest.raises(DataError, match="missing feature column.*'history'"):
        explain(bundle, X.drop(columns="history"))
    with pytest.raises(DataError, match="arm index 5 is out of range: the bundle has 3 arms"):
        explain(bundle, X, np.array([1, 5, 0]))
    with pytest.raises(DataError, match=r"one integer arm index per customer \(shape \(3,\)\)"):
        explain(bundle, X, np.array([1, 2]))
    with pytest.raises(
        ConfigError, match="method must be 'auto', 'tree' or 'shapley'.*Did you mean 'tree'"
    ):
        explain(bundle, X, method="trees")
    with pytest.raises(ConfigError, match="does not hold. Did you mean 'dr'"):
        explain(bundle, X, weights={"drr": 1.0})
    with pytest.raises(ConfigError, match="top must be an integer >= 1"):
        reason_codes(bundle, X, top=0)
    with pytest.raises(DataError, match="no rows"):
        explain(bundle, X.iloc[:0])


def test_old_bundle_without_background(bundle, customers):
    old = dataclasses.replace(
        bundle, metrics={k: v for k, v in bundle.metrics.items() if k != BACKGROUND_KEY}
    )
    with pytest.raises(BundleError, match="keeps no background sample.*promolift train"):
        explain(old, customers.iloc[:1], method="shapley")
    assert explain(old, customers.iloc[:1]).method == "tree"  # tree needs no background
    ex = explain(
        old, customers.iloc[:60], method="shapley", n_background=4
    )  # X is its own background
    np.testing.assert_allclose(ex.contributions.sum(axis=1), ex.value - ex.reference, atol=1e-9)


# ------------------------------------------------------------------------------ global importance
def test_global_importance_is_sorted_and_adds_up(bundle, customers):
    table = global_importance(bundle, customers, max_rows=300)
    assert list(table.columns) == ["feature", "mean_abs_contribution", "mean_contribution", "share"]
    assert (np.diff(table["mean_abs_contribution"]) <= 0).all()
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.attrs == {"method": "tree", "n_rows": 300}
    default = global_importance(bundle)  # over the stored background
    assert default.attrs["n_rows"] == 200 and set(default["feature"]) == set(
        bundle.encoder.columns_
    )
    c = contributions(bundle, customers.iloc[:50])
    assert c.shape == (50, len(bundle.encoder.columns_))


# ------------------------------------------------------------------------------ deep network
def test_deep_bundle_and_a_blend_with_it_use_exact_shapley(bundle, data, customers):
    pytest.importorskip("torch")
    from promolift.models.deep import DeepModel

    rows = np.arange(600)
    Xe = bundle.encoder.transform(data.X.iloc[rows])
    deep = DeepModel(
        max_epochs=1, batch_size=256, d_token=8, n_layers=1, n_heads=1, random_state=0
    ).fit(Xe, data.Y[rows], treatment=data.treatment[rows], outcome_types=data.outcome_types)
    both = dataclasses.replace(
        bundle,
        models=bundle.models | {"deep": deep},
        calibration=bundle.calibration | {"deep": np.ones((3, 3))},
    )
    X = customers.iloc[:2]
    for weights in ({"deep": 1.0}, {"deep": 0.5, "t@visit": 0.5}):
        assert not tree_supported(both, weights)
        ex = explain(both, X, weights=weights, n_background=3)
        assert ex.method == "shapley"
        np.testing.assert_allclose(  # float32 network: rounding depends on the batch (dollars)
            ex.value, _value(both, X, weights)[np.arange(2), ex.arm], atol=1e-6
        )
        np.testing.assert_allclose(ex.contributions.sum(axis=1), ex.value - ex.reference, atol=1e-9)
    with pytest.raises(ConfigError, match="method='tree' needs LightGBM-based kinds.*deep"):
        explain(both, X, weights={"deep": 1.0}, method="tree")


# ------------------------------------------------------------------------------ plan and report
def test_plan_cli_writes_reason_columns(bundle, data, tmp_path):
    model = tmp_path / "model"
    bundle.save(model)
    frame = data.X.iloc[4500:5100].copy()
    frame.insert(0, "customer_id", data.ids[4500:5100])
    frame.to_csv(tmp_path / "customers.csv", index=False)
    out = tmp_path / "plan.csv"
    result = CliRunner().invoke(
        app,
        [
            "plan",
            str(model),
            str(tmp_path / "customers.csv"),
            "--budget",
            "20",
            "--reasons",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    plan = pd.read_csv(out)
    for col in (
        "explained_arm",
        "reason_1_feature",
        "reason_1_value",
        "reason_1_contribution",
        "reason_2_feature",
        "reason_2_contribution",
    ):
        assert col in plan.columns
    assert "reason_3_feature" not in plan.columns
    assert (plan["explained_arm"] != "control").all()
    treated = plan["arm"] != "control"
    assert treated.any() and (plan.loc[treated, "explained_arm"] == plan.loc[treated, "arm"]).all()
    assert (plan["reason_1_contribution"].abs() >= plan["reason_2_contribution"].abs()).all()
    assert set(plan["reason_1_feature"]) <= set(bundle.encoder.columns_)
    # the reasons explain the plan's own (re-selected) policy
    summary = json.loads((tmp_path / "plan.json").read_text())
    cols = reason_columns(
        bundle, frame, np.zeros(len(frame), dtype=int), weights=summary["policy"]["weights"], top=2
    )
    pd.testing.assert_series_equal(
        cols["reason_1_contribution"][~treated.to_numpy()].reset_index(drop=True),
        plan.loc[~treated, "reason_1_contribution"].reset_index(drop=True),
        check_names=False,
        rtol=1e-6,
    )


def test_report_section_shows_what_drives_the_uplift(bundle):
    name, weights, _ = report_html._curve_policy(bundle)
    section = report_html._drivers(bundle, markup.Page(), name, weights)
    assert '<section id="drivers">' in section and "<svg" in section
    top = global_importance(bundle, weights=weights, max_rows=200)["feature"].iloc[0]
    assert f"&#x27;{top}&#x27; matters most" in section
    bare = dataclasses.replace(bundle, metrics={})
    assert "keeps no background sample" in report_html._drivers(
        bare, markup.Page(), name, weights
    )
