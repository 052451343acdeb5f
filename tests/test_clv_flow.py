"""CLV in the promotion flow: joined as features, valued in the economics, broken down in the plan."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from promolift.bundle import ModelBundle
from promolift.cli import app
from promolift.config import CampaignConfig, load_config
from promolift.data import load_campaign, load_customers
from promolift.datasets.simulator import campaign_config, make_campaign
from promolift.economics import Economics
from promolift.errors import ConfigError, DataError
from promolift.plan import make_plan, segment_breakdown
from promolift.train import train

FAST_MODEL = {"kinds": ["constant", "t"], "n_folds": 2, "n_estimators": 40, "learning_rate": 0.1,
              "min_child_samples": 30}


def _clv_table(ids, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p_alive = rng.uniform(0, 1, len(ids))
    return pd.DataFrame({
        "customer": ids,
        "clv": np.round(rng.lognormal(3.0, 1.0, len(ids)), 2),
        "p_alive": p_alive,
        "segment": np.where(p_alive > 0.7, "active", np.where(p_alive > 0.3, "at risk", "likely lost")),
    })


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A simulated log, a CLV table for 90% of its customers and a campaign.toml joining them."""
    root = tmp_path_factory.mktemp("clvflow")
    sim = make_campaign(5000, random_state=3)
    sim.frame.to_csv(root / "log.csv", index=False)
    clv = _clv_table(sim.frame["customer_id"].to_numpy()[:4500])
    clv.to_parquet(root / "clv.parquet")
    raw = campaign_config(sim)
    lines = ["[data]", 'path = "log.csv"', f'features = {json.dumps(raw["data"]["features"])}',
             f'categorical = {json.dumps(raw["data"]["categorical"])}',
             "[[data.join]]", 'path = "clv.parquet"', 'columns = ["clv", "p_alive", "segment"]',
             "[outcomes]", 'visit = "binary"', 'conversion = "binary"', 'spend = "continuous"',
             "[economics]", 'conversion_value = "clv"',
             "[arms.arm1]", "contact_cost = 0.1", "[arms.arm2]", "contact_cost = 0.1",
             "[model]", *(f"{k} = {json.dumps(v)}" for k, v in FAST_MODEL.items())]
    (root / "campaign.toml").write_text("\n".join(lines) + "\n")
    return root, sim, clv


def test_join_adds_features_matched_by_id_as_text(campaign):
    root, sim, clv = campaign
    cfg = load_config(root / "campaign.toml")
    assert cfg.data.join[0].path == (root / "clv.parquet").resolve()
    data = load_campaign(None, cfg)
    assert list(data.X.columns[-3:]) == ["clv", "p_alive", "segment"]
    np.testing.assert_allclose(data.X["clv"].to_numpy()[:4500], clv["clv"].to_numpy())
    assert data.X["clv"].iloc[4500:].isna().all()  # customers without a CLV: missing, not dropped


def test_join_errors_name_the_file_and_fix(campaign, tmp_path):
    root, sim, clv = campaign
    cfg = load_config(root / "campaign.toml")
    dup = pd.concat([clv, clv.iloc[[7]]])
    dup.to_parquet(tmp_path / "dup.parquet")
    bad = cfg.model_copy(update={"data": cfg.data.model_copy(update={"join": [
        cfg.data.join[0].model_copy(update={"path": tmp_path / "dup.parquet"})]})})
    with pytest.raises(DataError, match=r"dup\.parquet: column 'customer' .* repeats id 'C0000008'"):
        load_campaign(None, bad)
    clv.assign(customer="X" + clv["customer"]).to_parquet(tmp_path / "other.parquet")
    other = bad.model_copy(update={"data": bad.data.model_copy(update={"join": [
        bad.data.join[0].model_copy(update={"path": tmp_path / "other.parquet"})]})})
    with pytest.raises(DataError, match="no customer id in column 'customer_id' appears in"):
        load_campaign(None, other)
    (tmp_path / "c.toml").write_text('[[data.join]]\npath = "x.parquet"\ncolums = ["clv"]\n[arms.a]\n')
    with pytest.raises(ConfigError, match=r"data\.join\.0\.colums: unknown key\. Did you mean 'columns'"):
        load_config(tmp_path / "c.toml")


def test_conversion_value_economics_by_hand():
    cfg = CampaignConfig.from_dict({"outcomes": {"conversion": "binary", "spend": "continuous"},
                                    "economics": {"margin": 0.5, "conversion_value": "clv"},
                                    "arms": {"mail": {"contact_cost": 1.0}}})
    eco = Economics.from_config(cfg)
    pred = np.array([[[0.1, 10.0], [0.3, 12.0]], [[0.1, 10.0], [0.3, 12.0]]])
    with pytest.raises(DataError, match="bind the customers first"):
        eco.value_cost(pred)
    bound = eco.for_customers(pd.DataFrame({"clv": [100.0, np.nan]}))
    value, cost = bound.value_cost(pred)
    # margin·Δspend − cost + clv·Δconv: 0.5·2 − 1 + 100·0.2 = 20; the missing CLV counts as 0.
    np.testing.assert_allclose(value[:, 1], [20.0, 0.0])
    np.testing.assert_allclose(cost[:, 1], [1.0, 1.0])
    Y = np.array([[1.0, 30.0], [1.0, 30.0]])
    np.testing.assert_allclose(bound.realized_profit(Y, np.array([0, 1])), [0.5 * 30 + 100, 0.5 * 30 - 1])
    with pytest.raises(DataError, match="'clv', which the customers do not have"):
        eco.for_customers(pd.DataFrame({"x": [1.0]}))


@pytest.fixture(scope="module")
def bundle(campaign):
    root, _, _ = campaign
    cfg = load_config(root / "campaign.toml")
    return train(cfg, load_campaign(None, cfg))


def test_future_value_steers_the_plan_to_valuable_customers(bundle, campaign):
    _, sim, _ = campaign
    ids, X = load_customers(sim.frame, id_column="customer_id", features=bundle.encoder.columns_,
                            join=bundle.config.data.join)
    assert bundle.oof.conversion_value is not None and bundle.oof.conversion_value.max() > 0
    # The same T-learner, valuing conversions by CLV or by the order alone (no re-selection:
    # the random CLVs of this test carry no signal a policy could be validated on).
    t_only = replace(bundle, weights={"t": 1.0})
    plain = replace(t_only, config=bundle.config.model_copy(update={
        "economics": bundle.config.economics.model_copy(update={"conversion_value": None})}))
    budget = 0.1 * 0.2 * len(ids)  # enough for about a fifth of the customers
    clv = X["clv"].fillna(0).to_numpy()
    with_clv = make_plan(t_only, X, ids, budget=budget, reselect=False).table["arm"].to_numpy() != "control"
    by_order = make_plan(plain, X, ids, budget=budget, reselect=False).table["arm"].to_numpy() != "control"
    assert with_clv.sum() > 100 and by_order.sum() > 100
    assert clv[with_clv].mean() > 1.1 * clv[by_order].mean()  # measured 32.6 vs 26.6


def test_plan_breaks_profit_down_by_segment_and_clv_band(bundle, campaign):
    _, sim, _ = campaign
    ids, X = load_customers(sim.frame, id_column="customer_id", features=bundle.encoder.columns_,
                            join=bundle.config.data.join)
    plan = make_plan(bundle, X, ids, budget=100.0)
    rows = pd.DataFrame(plan.summary["by_segment"])
    assert set(rows["column"]) == {"segment", "clv"}
    assert set(rows.loc[rows["column"] == "segment", "segment"]) == {"active", "at risk", "likely lost", "missing"}
    assert (rows["column"] == "clv").sum() == 5  # four quartile bands and the customers without CLV
    for _, g in rows.groupby("column"):
        assert g["customers"].sum() == len(ids)
        assert g["expected_incremental_profit"].sum() == pytest.approx(
            plan.table["expected_incremental_profit"].sum())
        assert g["contacted"].sum() == plan.summary["expected"]["contacts"]
    with pytest.raises(DataError, match="plan.segments names column"):
        segment_breakdown(plan.table, X, ["nope"], control="control")


def test_bundle_keeps_conversion_values_and_cli_plan_joins(bundle, campaign, tmp_path):
    _, sim, _ = campaign
    bundle.save(tmp_path / "model")
    loaded = ModelBundle.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.oof.conversion_value, bundle.oof.conversion_value)
    sim.frame.drop(columns=["visit", "conversion", "spend"]).to_csv(tmp_path / "customers.csv", index=False)
    result = CliRunner().invoke(app, ["plan", str(tmp_path / "model"), str(tmp_path / "customers.csv"),
                                      "--budget", "50", "--out", str(tmp_path / "plan.csv")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "plan.json").read_text())
    assert {r["column"] for r in summary["by_segment"]} == {"segment", "clv"}


def test_reason_codes_with_conversion_value_add_up(bundle, campaign):
    from dataclasses import replace as _replace

    from promolift.explain import explain

    _, sim, _ = campaign
    ids, X = load_customers(sim.frame.iloc[:5], id_column="customer_id", features=bundle.encoder.columns_,
                            join=bundle.config.data.join)
    b = _replace(bundle, weights={"t": 1.0})
    e = explain(b, X, weights={"t": 1.0})
    assert e.method == "shapley"
    value = b.economics.for_customers(X).value_cost(b.predict(X))[0][np.arange(len(X)), e.arm]
    np.testing.assert_allclose(e.contributions.sum(axis=1).to_numpy() + e.reference, value, atol=1e-6)
