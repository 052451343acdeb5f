"""End to end on simulated data: train -> bundle -> plan / evaluate / report, and the CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from promolift.bundle import ModelBundle
from promolift.cli import app
from promolift.config import CampaignConfig
from promolift.data import load_campaign
from promolift.datasets.simulator import campaign_config, make_campaign
from promolift.errors import BundleError, BundleVersionWarning
from promolift.holdout import evaluate_bundle
from promolift.plan import PLAN_COLUMNS, make_plan
from promolift.train import train

FAST_MODEL = {"kinds": ["constant", "relative", "t", "x", "dr"], "n_folds": 2, "n_estimators": 40,
              "learning_rate": 0.1, "min_child_samples": 30}


@pytest.fixture(scope="module")
def sim():
    return make_campaign(6000, random_state=1)


@pytest.fixture(scope="module")
def config(sim):
    raw = campaign_config(sim)
    raw["model"] = FAST_MODEL
    raw["arms"]["arm2"]["discount_rate"] = 0.05
    return CampaignConfig.from_dict(raw)


@pytest.fixture(scope="module")
def data(sim, config):
    return load_campaign(sim.frame, config)


@pytest.fixture(scope="module")
def bundle(config, data):
    return train(config, data.subset(np.arange(4000)))


@pytest.fixture(scope="module")
def saved(bundle, tmp_path_factory):
    path = tmp_path_factory.mktemp("b") / "model"
    bundle.save(path)
    return path


def test_bundle_round_trip_predicts_identically(bundle, saved, data):
    loaded = ModelBundle.load(saved)
    X = data.X.iloc[4000:]
    np.testing.assert_array_equal(loaded.predict(X), bundle.predict(X))
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["arms"] == ["control", "arm1", "arm2"]
    assert manifest["data_fingerprint"] == data.fingerprint
    assert {"numpy", "lightgbm", "promolift"} <= set(manifest["libraries"])
    table = pd.DataFrame(manifest["metrics"]["selection_unconstrained"])
    chosen = table.set_index("candidate").loc[manifest["metrics"]["chosen"]["candidate"]]
    best = table.iloc[0]
    # one-standard-error rule: within one (paired) SE of the best, and nothing simpler is
    assert chosen["profit_per_1000"] >= best["profit_per_1000"] - chosen["stderr_vs_best"]
    near = table[table["profit_per_1000"] >= best["profit_per_1000"] - table["stderr_vs_best"]]
    assert chosen["complexity"] == near["complexity"].min()


def test_selection_table_is_sorted_and_includes_simple_policies(bundle):
    table = pd.DataFrame(bundle.metrics["selection_unconstrained"])
    assert {"nobody", "constant", "relative", "t", "x", "dr", "blend"} <= set(table["candidate"])
    assert (np.diff(table["profit_per_1000"]) <= 1e-9).all()
    assert table.loc[table.candidate == "nobody", "profit_per_1000"].item() == 0


def test_tampered_bundle_is_refused(saved, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(saved, copy)
    booster = next((copy / "models").rglob("*.txt"))
    booster.write_text(booster.read_text().replace("tree", "trie", 1))
    with pytest.raises(BundleError, match="does not match its checksum"):
        ModelBundle.load(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not a model bundle"):
        ModelBundle.load(copy)


def test_version_mismatch_warns(saved, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(saved, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["libraries"]["lightgbm"] = "0.0.1"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(BundleVersionWarning, match=r"lightgbm 0\.0\.1"):
        ModelBundle.load(copy)


def test_interrupted_save_leaves_previous_bundle(bundle, saved, monkeypatch):
    before = (saved / "manifest.json").read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("promolift.bundle.np.savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        bundle.save(saved)
    assert (saved / "manifest.json").read_text() == before
    assert [p.name for p in saved.parent.iterdir()] == ["model"]


@pytest.mark.parametrize("budget_share", [0.02, 0.05])
def test_plan_respects_budget_and_reports(bundle, data, budget_share):
    X, ids = data.X.iloc[4000:], data.ids[4000:]
    budget = budget_share * len(ids)
    plan = make_plan(bundle, X, ids, budget=budget, max_contacts=300)
    t = plan.table
    assert list(t.columns) == ["customer_id", *PLAN_COLUMNS] and len(t) == len(ids)
    assert t["expected_cost"].sum() <= budget + 1e-9
    assert (t["arm"] != "control").sum() <= 300
    assert (t.loc[t.arm == "control", PLAN_COLUMNS[1:]] == 0).all().all()
    s = plan.summary
    assert s["shadow_price"] >= 0 and sum(s["arms"].values()) == len(ids)
    v = s["validated"]["incremental_profit"]
    assert v["ci_low"] <= v["estimate"] <= v["ci_high"]


def test_safety_margin_and_arm_caps(bundle, data):
    X, ids = data.X.iloc[4000:], data.ids[4000:]
    plan = make_plan(bundle, X, ids, budget=100, safety_margin=0.2, arm_caps={"arm1": 50})
    assert plan.table["expected_cost"].sum() <= 80 + 1e-9
    assert (plan.table["arm"] == "arm1").sum() <= 50
    with pytest.raises(ValueError, match=r"unknown arm 'arm3'"):
        make_plan(bundle, X, ids, arm_caps={"arm3": 5})


def test_plan_against_truth(bundle, sim, data):
    """Judged by the simulator's true effects: the plan never loses to the best simple policy
    (one arm for everybody), and the best model-based candidate earns over half the oracle's
    profit. (On 4,000 rows the one-SE rule may keep the simple policy: that is its job.)"""
    from promolift.bundle import blend
    from promolift.economics import Economics
    from promolift.optimize import allocate
    from promolift.selection import candidates

    rows = np.arange(4000, 6000)
    eco = Economics.from_config(bundle.config)
    true_value, _ = eco.value_cost(sim.true_outcomes[rows])
    plan = make_plan(bundle, data.X.iloc[rows], data.ids[rows])
    arm = plan.table["arm"].map({a: i for i, a in enumerate(bundle.arms)}).to_numpy()
    earned = true_value[np.arange(len(rows)), arm].sum()
    best_single_arm = true_value.sum(axis=0).max()
    oracle = np.maximum(true_value.max(axis=1), 0).sum()
    assert earned >= 0.95 * best_single_arm
    preds = bundle.predict_kinds(data.X.iloc[rows])
    model_based = [c for c in candidates(list(bundle.models)) if c.complexity >= 3]
    best_model = max(
        true_value[np.arange(len(rows)), allocate(*eco.value_cost(blend(preds, c.weights))).arm].sum()
        for c in model_based
    )
    assert best_model > 0.5 * oracle


def test_evaluate_bundle_on_holdout(bundle, data):
    result = evaluate_bundle(bundle, data.subset(np.arange(4000, 6000)))
    names = [r["policy"] for r in result["policies"]]
    assert names[0] == "promolift plan" and "nobody" in names and "everybody: arm1" in names
    nobody = next(r for r in result["policies"] if r["policy"] == "nobody")
    assert nobody["ipw"] == 0 and nobody["dr"] == 0
    assert {r["arm"] for r in result["uplift"]} == {"arm1", "arm2"}


runner = CliRunner()


def test_every_command_has_help_with_example():
    for cmd in ("demo", "validate", "train", "evaluate", "plan", "report"):
        result = runner.invoke(app, [cmd, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example: promolift " + cmd in result.output


def test_cli_flow(sim, config, tmp_path):
    sim.frame.iloc[:4000].to_csv(tmp_path / "train.csv", index=False)
    sim.frame.iloc[4000:].drop(columns=["visit", "conversion", "spend", "treatment"]).to_parquet(
        tmp_path / "customers.parquet", index=False)
    sim.frame.iloc[4000:].to_csv(tmp_path / "holdout.csv", index=False)
    raw = config.to_toml_dict()
    raw["data"]["path"] = "train.csv"
    (tmp_path / "campaign.toml").write_text(_to_toml(raw))

    r = runner.invoke(app, ["validate", str(tmp_path / "train.csv"), "--config", str(tmp_path / "campaign.toml")])
    assert r.exit_code == 0, r.output
    assert "valid" in r.output
    r = runner.invoke(app, ["train", str(tmp_path / "campaign.toml"), "--out", str(tmp_path / "model")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(tmp_path / "model"), str(tmp_path / "holdout.csv"),
                            "--out", str(tmp_path / "ev.json")])
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())  # the capped plan says which rule chose it
    assert "by cross-validated profit (default" in said and "unless beaten by 2 paired standard errors)" in said
    r = runner.invoke(app, ["plan", str(tmp_path / "model"), str(tmp_path / "customers.parquet"),
                            "--budget", "50", "--arm-cap", "arm1=100", "--out", str(tmp_path / "plan.csv")])
    assert r.exit_code == 0, r.output
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert len(plan) == 2000 and plan["expected_cost"].sum() <= 50 + 1e-6
    assert json.loads((tmp_path / "plan.json").read_text())["customers"] == 2000
    r = runner.invoke(app, ["report", str(tmp_path / "model"), "--evaluation", str(tmp_path / "ev.json"),
                            "--plan", str(tmp_path / "plan.json"), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_cli_errors_are_one_clear_line(tmp_path, sim):
    bad = sim.frame.iloc[:500].rename(columns={"spend": "spnd"})
    bad.to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "c.toml").write_text(_to_toml(campaign_config(sim)))
    r = runner.invoke(app, ["validate", str(tmp_path / "bad.csv"), "--config", str(tmp_path / "c.toml")])
    assert r.exit_code == 2
    assert "Did you mean 'spnd'?" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["plan", str(tmp_path), str(tmp_path / "bad.csv")])
    assert r.exit_code == 2 and "not a model bundle" in r.output


def _to_toml(raw: dict) -> str:
    """Minimal TOML writer for the config dicts used here."""
    def val(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines = []
    for section, body in raw.items():
        if section == "arms":
            for arm, eco in body.items():
                lines.append(f'[arms."{arm}"]')
                lines += [f"{k} = {val(v)}" for k, v in eco.items()]
            continue
        lines.append(f"[{section}]")
        for k, v in body.items():
            if isinstance(v, dict):
                lines.append(f"{k} = {{ " + ", ".join(f'"{a}" = {val(b)}' for a, b in v.items()) + " }")
            else:
                lines.append(f"{k} = {val(v)}")
    return "\n".join(lines) + "\n"


def test_one_standard_error_rule_prefers_simpler_candidates():
    from promolift.selection import choose

    table = pd.DataFrame({
        "candidate": ["dr", "relative", "constant", "nobody"],
        "profit_per_1000": [50.0, 45.0, 20.0, 0.0],
        "stderr_vs_best": [0.0, 10.0, 10.0, 30.0],
        "complexity": [6, 2, 1, 0],
    })
    assert choose(table)["candidate"] == "relative"      # within 1 SE of dr, simpler
    table.loc[1, "profit_per_1000"] = 39.0
    assert choose(table)["candidate"] == "dr"            # nothing simpler is within 1 SE


def test_arm_uplift_by_hand():
    from promolift.holdout import arm_uplift

    cfg = CampaignConfig.from_dict({"outcomes": {"spend": "continuous"}, "economics": {"conversion_outcome": None},
                                    "arms": {"a": {"contact_cost": 0.1}}})
    frame = pd.DataFrame({"customer_id": range(4), "treatment": ["control", "control", "a", "a"],
                          "x": [1.0, 2.0, 3.0, 4.0], "spend": [0.0, 2.0, 1.0, 5.0]})
    table = arm_uplift(load_campaign(frame, cfg, min_rows_per_arm=2))
    # treated mean 3, control mean 1; se = sqrt(8/2 + 2/2) = sqrt(5)
    row = table.iloc[0]
    assert row["uplift"] == pytest.approx(2.0)
    assert row["ci_high"] - row["uplift"] == pytest.approx(1.96 * np.sqrt(5))


def test_top_level_api_is_lazy_and_complete():
    import subprocess
    import sys

    import promolift

    for name in promolift.__all__:
        assert getattr(promolift, name) is not None
    code = "import sys, promolift; print(any(m in sys.modules for m in ('lightgbm', 'sklearn', 'matplotlib')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_version_flag():
    from promolift import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_through_funnel_by_hand():
    from promolift.bundle import through_funnel

    # one customer, arms (control, a), outcomes (visit, spend)
    pred = np.array([[[0.10, 1.0], [0.30, 9.0]]])
    relative = np.array([[[0.20, 4.0], [0.25, 5.0]]])      # spend per visit = 4.0 / 0.20 = 20
    out = through_funnel(pred, relative, funnel=0)
    # visit untouched; spend uplift = (0.30 - 0.10) * 20 = 4 on top of the control's 1.0
    np.testing.assert_allclose(out, [[[0.10, 1.0], [0.30, 5.0]]])


def test_funnel_outcome_must_be_binary_and_upstream():
    from promolift.errors import ConfigError

    base = {"outcomes": {"visit": "binary", "conversion": "binary", "spend": "continuous"},
            "arms": {"a": {"contact_cost": 0.1}}}
    CampaignConfig.from_dict(base | {"model": {"funnel_outcome": "visit"}})
    for bad in ("spend", "conversion", "vist"):
        with pytest.raises(ConfigError, match="funnel_outcome"):
            CampaignConfig.from_dict(base | {"model": {"funnel_outcome": bad}})


def test_chained_candidates_are_scored(sim, data):
    raw = campaign_config(sim)
    raw["model"] = FAST_MODEL | {"funnel_outcome": "visit"}
    cfg = CampaignConfig.from_dict(raw)
    b = train(cfg, load_campaign(sim.frame.iloc[:3000], cfg))
    names = {r["candidate"] for r in b.metrics["selection_unconstrained"]}
    assert {"t via visit", "blend via visit shrunk 50% to relative"} <= names
    X = data.X.iloc[4000:4100]
    chained = b.predict_kinds(X, ["x@visit"])["x@visit"]
    plain = b.predict_kinds(X, ["x", "relative"])
    from promolift.bundle import through_funnel

    np.testing.assert_allclose(chained, through_funnel(plain["x"], plain["relative"], 0))


def test_deep_kind_trains_bundles_and_round_trips(sim, tmp_path):
    pytest.importorskip("torch")
    raw = campaign_config(sim)
    raw["model"] = {"kinds": ["constant", "relative", "deep"], "n_folds": 2}
    cfg = CampaignConfig.from_dict(raw)
    data = load_campaign(sim.frame.iloc[:2500], cfg)
    b = train(cfg, data)
    assert "deep" in b.models and {"deep", "deep shrunk 50% to relative"} <= {
        r["candidate"] for r in b.metrics["selection_unconstrained"]}
    b.save(tmp_path / "m")
    np.testing.assert_array_equal(ModelBundle.load(tmp_path / "m").predict_kinds(data.X, ["deep"])["deep"],
                                  b.predict_kinds(data.X, ["deep"])["deep"])
