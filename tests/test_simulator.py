"""The campaign simulator: realistic rates, consistent outcomes, and a truth that matches them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promolift.config import CampaignConfig
from promolift.datasets.simulator import SimulatedCampaign, campaign_config, make_campaign

VISIT, CONVERSION, SPEND = 0, 1, 2


@pytest.fixture(scope="module")
def sim() -> SimulatedCampaign:
    return make_campaign(20_000, random_state=0)


def test_frame_columns_and_dtypes(sim):
    frame = sim.frame
    assert list(frame.columns) == [
        "customer_id", "treatment", "recency", "history", "web_visits", "tenure",
        "channel", "preference", "visit", "conversion", "spend",
    ]
    assert frame["customer_id"].is_unique and frame["customer_id"].iloc[0] == "C0000001"
    for col in ["recency", "history", "web_visits", "tenure", "spend"]:
        assert frame[col].dtype == np.float64, col
    for col in ["treatment", "channel", "preference"]:
        assert pd.api.types.is_string_dtype(frame[col].dtype), col
    assert frame["visit"].isin([0, 1]).all() and frame["conversion"].isin([0, 1]).all()
    assert sim.arms == ["control", "arm1", "arm2"]
    assert sim.outcomes == ["visit", "conversion", "spend"]
    assert sim.outcome_types == ["binary", "binary", "continuous"]
    assert sim.features == ["recency", "history", "web_visits", "tenure", "channel", "preference"]
    assert sim.categorical == ["channel", "preference"]
    assert sim.true_outcomes.shape == (20_000, 3, 3)


def test_randomized_equal_shares(sim):
    counts = sim.frame["treatment"].value_counts()
    assert set(counts.index) == set(sim.arms)
    assert counts.max() - counts.min() <= 1
    # assignment is independent of the features
    by_arm = sim.frame.groupby("treatment")["history"].mean()
    assert by_arm.max() / by_arm.min() < 1.05


def test_realistic_rates(sim):
    control = sim.frame[sim.frame["treatment"] == "control"]
    assert 0.12 < control["visit"].mean() < 0.18
    assert 0.01 < control["conversion"].mean() < 0.03
    converted = sim.frame.loc[sim.frame["conversion"] == 1, "spend"]
    assert 80 < converted.mean() < 140
    assert (sim.frame["spend"] == 0).mean() > 0.95  # zero-inflated like real spend


def test_outcomes_are_nested(sim):
    f = sim.frame
    assert (f["conversion"] <= f["visit"]).all()
    assert ((f["spend"] > 0) == (f["conversion"] == 1)).all()
    truth = sim.true_outcomes
    assert (truth[:, :, CONVERSION] <= truth[:, :, VISIT]).all()
    assert (truth >= 0).all() and (truth[:, :, :2] <= 1).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_truth_matches_observed_outcomes(seed):
    """Per arm, the mean observed outcome is within 4 standard errors of the mean truth."""
    sim = make_campaign(20_000, random_state=seed)
    t, Y = sim.treatment_codes(), sim.outcome_matrix()
    rows = np.arange(len(t))
    assigned_truth = sim.true_outcomes[rows, t]
    for k in range(3):
        arm = t == k
        se = Y[arm].std(axis=0) / np.sqrt(arm.sum())
        gap = np.abs(Y[arm].mean(axis=0) - assigned_truth[arm].mean(axis=0))
        assert np.all(gap < 4 * se), (k, gap / se)


def test_effects_are_heterogeneous_and_known(sim):
    uplift = sim.true_outcomes[:, 1:] - sim.true_outcomes[:, :1]
    pref = sim.frame["preference"].to_numpy()
    # arm 1 helps "mens" customers and hurts "womens" ones
    assert uplift[pref == "mens", 0, VISIT].min() > 0
    assert uplift[pref == "womens", 0, VISIT].max() < 0
    assert uplift[pref == "mens", 0, SPEND].mean() > 2 * uplift[:, 0, SPEND].mean()
    # arm 2: smaller, different pattern (driven by history and channel, not preference)
    assert abs(uplift[:, 1, VISIT].mean()) < abs(uplift[:, 0, VISIT]).mean()
    assert np.corrcoef(uplift[:, 0, VISIT], uplift[:, 1, VISIT])[0, 1] < 0.3
    conv = pd.Series(uplift[:, 1, CONVERSION]).groupby(sim.frame["channel"]).mean()
    assert conv["web"] > conv["phone"]
    # each outcome's uplift varies materially across customers
    assert np.all(uplift.std(axis=0) > 0.5 * np.abs(uplift.mean(axis=0)))


def test_missing_values(sim):
    for col in ["history", "web_visits", "tenure"]:
        assert 0.01 < sim.frame[col].isna().mean() < 0.03, col
    complete = ["customer_id", "treatment", "recency", "channel", "preference"]
    assert not sim.frame[complete].isna().any().any()
    clean = make_campaign(2_000, missing_rate=0.0)
    assert not clean.frame.isna().any().any()


def test_reproducible_by_seed():
    a, b = make_campaign(500, random_state=3), make_campaign(500, random_state=3)
    c = make_campaign(500, random_state=4)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.true_outcomes, b.true_outcomes)
    assert not a.frame["history"].equals(c.frame["history"])


@pytest.mark.parametrize("n_arms", [2, 5])
def test_number_of_arms(n_arms):
    sim = make_campaign(1_000, n_arms=n_arms, random_state=1)
    assert sim.arms == ["control", *(f"arm{k}" for k in range(1, n_arms))]
    assert sim.true_outcomes.shape == (1_000, n_arms, 3)
    assert sorted(sim.frame["treatment"].unique()) == sorted(sim.arms)
    uplift = sim.true_outcomes[:, 1:] - sim.true_outcomes[:, :1]
    assert np.all(uplift[:, :, VISIT].std(axis=0) > 0)


def test_model_ready_views(sim):
    X = sim.feature_frame()
    assert list(X.columns) == sim.features
    assert X["channel"].cat.categories.tolist() == ["web", "phone", "multichannel"]
    assert X["preference"].cat.categories.tolist() == ["mens", "womens", "both"]
    assert X["history"].dtype == np.float64
    codes = sim.treatment_codes()
    assert codes.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(sim.arms)[codes], sim.frame["treatment"].to_numpy())
    np.testing.assert_array_equal(sim.outcome_matrix()[:, SPEND], sim.frame["spend"].to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be an int >= 1"),
        ({"n_arms": 1}, r"n_arms must be an int >= 2"),
        ({"missing_rate": 1.0}, r"missing_rate must be in \[0, 1\)"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_campaign(**{"n": 100, **kwargs})


def test_campaign_config_validates(sim):
    raw = campaign_config(sim)
    cfg = CampaignConfig.from_dict(raw)
    assert cfg.arm_names == sim.arms
    assert cfg.outcome_names == sim.outcomes
    assert cfg.outcomes == dict(zip(sim.outcomes, sim.outcome_types))
    assert cfg.data.features == sim.features and cfg.data.categorical == sim.categorical
    assert [a.contact_cost for a in cfg.arm_economics()] == [0.0, 0.10, 0.10]
    assert cfg.economics.value_outcome == "spend"
    assert cfg.economics.conversion_outcome == "conversion"
