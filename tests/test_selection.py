"""Choosing the policy: candidate scoring and the per-constraint choice."""

import numpy as np
import pandas as pd



def _table(names, weights, contributions):
    mean = contributions.mean(axis=0) * 1000
    order = np.argsort(-mean, kind="stable")
    table = pd.DataFrame({"candidate": np.asarray(names)[order], "profit_per_1000": mean[order],
                          "weights": [weights[i] for i in order], "complexity": 1})
    return table, contributions[:, order]


def test_score_candidates_returns_contributions_in_table_order():
    from promolift.bundle import OutOfFold
    from promolift.economics import Economics
    from promolift.selection import Constraints, candidates, score_candidates

    rng = np.random.default_rng(2)
    n, K = 3000, 3
    t = rng.integers(0, K, n)
    spend = rng.exponential(5, n) * (rng.random(n) < 0.1 + 0.05 * t)
    Y = np.column_stack([(spend > 0).astype(float), spend])
    level = np.array([0.1, 0.15, 0.2])[None, :, None] * np.array([1.0, 5.0])[None, None, :]
    noisy = level * rng.uniform(0.5, 1.5, (n, 1, 1))
    preds = {"constant": np.broadcast_to(level, (n, K, 2)).copy(), "relative": noisy, "t": noisy[:, ::-1] * 1.0}
    oof = OutOfFold(predictions=preds, Y=Y, treatment=t, propensity=np.full((n, K), 1 / K))
    eco = Economics(margin=0.3, contact_cost=np.array([0.0, 0.1, 0.1]), cost_per_conversion=np.zeros(K),
                    discount_rate=np.zeros(K), value_index=1, conversion_index=0)
    table, contrib = score_candidates(oof, eco, Constraints(contact_share=0.3),
                                      candidates(list(preds)), return_contributions=True)
    assert contrib.shape == (n, len(table))
    nobody = int(np.flatnonzero(table["candidate"] == "nobody")[0])
    gain = 1000 * (contrib - contrib[:, [nobody]]).mean(axis=0)
    np.testing.assert_allclose(gain, table["profit_per_1000"], atol=1e-9)
    assert table["contact_share"].max() <= 0.3 + 1e-9


def test_anchored_choice_keeps_the_default_unless_clearly_beaten():
    from promolift.selection import choose_anchored

    rng = np.random.default_rng(3)
    noise = rng.normal(size=(4000, 1))
    own = rng.normal(size=(4000, 3))
    # "dr" is 1.3 SE better than the anchor: not enough; then 4 SE better: it wins
    se = np.sqrt(2) / np.sqrt(4000)
    for lead, winner in ((0.0, "relative via visit"), (4 * se, "dr")):
        contrib = noise + own + np.array([0.0, lead, -0.5])
        contrib[:, 0] = contrib[:, 0] - contrib[:, 0].mean()
        contrib[:, 1] = contrib[:, 1] - contrib[:, 1].mean() + lead
        table, c = _table(["relative via visit", "dr", "nobody"], [{"relative@visit": 1.0}, {"dr": 1.0}, {}],
                          contrib)
        assert choose_anchored(table, c, "relative via visit", z=2.0)["candidate"] == winner


def test_anchor_only_for_binding_constraints():
    from promolift.selection import Constraints, anchor_for, candidates

    cands = candidates(["constant", "relative", "t"], funnel="visit")
    assert "relative via visit" in [c.name for c in cands]
    assert anchor_for(cands, Constraints()) is None
    assert anchor_for(cands, Constraints(min_roi=0.5)) is None
    assert anchor_for(cands, Constraints(contact_share=0.3)) == "relative via visit"
    assert anchor_for(cands, Constraints(budget_per_customer=0.02)) == "relative via visit"
    assert anchor_for(candidates(["constant", "relative", "t"]), Constraints(contact_share=0.3)) == "relative"
    assert anchor_for(candidates(["constant", "t"]), Constraints(contact_share=0.3)) is None


def test_relative_via_funnel_is_served_and_survives_a_round_trip(tmp_path):
    from promolift.bundle import ModelBundle
    from promolift.config import CampaignConfig
    from promolift.data import load_campaign
    from promolift.datasets.simulator import campaign_config, make_campaign
    from promolift.plan import make_plan
    from promolift.train import train

    sim = make_campaign(3000, random_state=4)
    raw = campaign_config(sim)
    raw["model"] = {"kinds": ["constant", "relative", "t"], "n_folds": 2, "n_estimators": 30,
                    "min_child_samples": 30, "funnel_outcome": "visit"}
    cfg = CampaignConfig.from_dict(raw)
    data = load_campaign(sim.frame, cfg)
    b = train(cfg, data)
    f = cfg.funnel[0]
    X = data.X.iloc[:50]
    pred = b.predict_kinds(X, ["relative@visit", "relative"])
    rel = b.models["relative"]
    # funnel outcome untouched; every other outcome = P(funnel) × the arm's mean per funnel unit
    np.testing.assert_allclose(pred["relative@visit"][..., f], pred["relative"][..., f])
    np.testing.assert_allclose(pred["relative@visit"], pred["relative"][..., [f]] * rel.per_unit(f)[None])
    means = np.stack([data.Y[data.treatment == k].mean(axis=0) for k in range(data.n_arms)])
    np.testing.assert_allclose(rel.means_, means, rtol=1e-9)
    assert "relative@visit" in b.oof.predictions
    b.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.oof.predictions["relative@visit"], b.oof.predictions["relative@visit"])
    capped = make_plan(loaded, X, data.ids[:50], max_contacts=10)
    assert capped.summary["policy"]["rule"].startswith("default 'relative via visit'")
    assert (capped.table["arm"] != cfg.data.control).sum() <= 10
    free = make_plan(loaded, X, data.ids[:50])
    assert free.summary["policy"]["rule"] == "one standard error"


def test_constraints_bind_only_with_a_budget_or_a_cap():
    from promolift.selection import Constraints

    assert not Constraints().binding
    assert not Constraints(min_roi=1.0).binding
    assert not Constraints(arm_cap_shares=(None, None)).binding
    assert Constraints(budget_per_customer=0.1).binding
    assert Constraints(contact_share=0.3).binding
    assert Constraints(arm_cap_shares=(None, 0.2)).binding
