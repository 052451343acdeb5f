"""BG/NBD and Gamma-Gamma: published CDNOW estimates, recovery of known parameters, formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from promolift.clv import (
    BetaGeoModel,
    GammaGammaModel,
    customer_value,
    fit_clv,
    load_transactions,
    rfm_summary,
    simulate_bgnbd,
    simulate_order_log,
)
from promolift.clv._fit import compress
from promolift.datasets import load_cdnow_sample
from promolift.errors import DataError, NotFittedError

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    tx = load_transactions(load_cdnow_sample(), customer_col="customer_id", date_col="date",
                           value_col="dollar_value")
    return rfm_summary(tx, calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def cdnow_bg(cdnow_summary) -> BetaGeoModel:
    s = cdnow_summary
    return BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])


def test_cdnow_sample_summary_matches_the_paper(cdnow_summary):
    s = cdnow_summary
    assert len(s) == 2357
    assert int((s["frequency"] > 0).sum()) == 946  # FHL 2005: 946 repeat buyers in the sample
    assert s["T"].max() == pytest.approx(38.857, abs=1e-3)  # 1997-01-01 .. 1997-09-30 = 272 days
    assert s["duration_holdout"].iloc[0] == pytest.approx(39.0)
    assert int(s["frequency_holdout"].sum()) == 1882


def test_bgnbd_reproduces_published_cdnow_estimates(cdnow_bg):
    """Fader, Hardie & Lee (2005): r=0.243, alpha=4.414, a=0.793, b=2.426, LL=-9582.4."""
    for name, value in PUBLISHED.items():
        assert round(cdnow_bg.params_[name], 3) == value, name
    assert round(cdnow_bg.log_likelihood_, 1) == -9582.4
    assert cdnow_bg.converged_
    se = cdnow_bg.standard_errors_
    assert (se > 0).all() and (se < cdnow_bg.params_).all()


def test_gamma_gamma_reproduces_published_cdnow_estimates(cdnow_summary):
    """FHL (2005) "RFM and CLV": p=6.25, q=3.74, gamma=15.44 on the 946 repeat buyers."""
    gg = GammaGammaModel().fit(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    assert gg.n_customers_ == 946
    assert round(gg.params_["p"], 2) == 6.25
    assert round(gg.params_["q"], 2) == 3.74
    assert round(gg.params_["v"], 2) == 15.44
    assert (gg.standard_errors_ > 0).all()


def test_cdnow_holdout_forecast(cdnow_summary, cdnow_bg):
    """Issue 5 baseline: actual 1,882, BG/NBD 1,653 (-12.2%), MAE 0.786, r 0.626."""
    s = cdnow_summary
    pred = cdnow_bg.expected_purchases(39.0, s["frequency"], s["recency"], s["T"])
    assert pred.sum() == pytest.approx(1653, abs=1.0)
    assert np.mean(np.abs(pred - s["frequency_holdout"])) == pytest.approx(0.786, abs=0.002)
    assert np.corrcoef(pred, s["frequency_holdout"])[0, 1] == pytest.approx(0.626, abs=0.001)


def test_fit_clv_table_and_summary(cdnow_summary):
    res = fit_clv(cdnow_summary, horizon=52, margin=0.3, discount_rate=0.1)
    t = res.table
    assert list(t.columns[:2]) == ["customer", "frequency"] and len(t) == 2357
    assert set(t["segment"].astype(str)) <= {"active", "at risk", "likely lost"}
    assert res.summary["holdout"]["actual"] == 1882
    assert sum(res.summary["segments"].values()) == 2357
    # CLV <= undiscounted margin x expected purchases x spend, and > 0.
    bound = 0.3 * t["expected_purchases"] * t["expected_spend"]
    assert (t["clv"] > 0).all() and (t["clv"] <= bound + 1e-9).all()
    assert (t["clv"] >= bound / 1.1 - 1e-9).all()  # discounting one year at 10% at most


def test_gradient_matches_finite_differences(cdnow_summary):
    from promolift.clv.bgnbd import _Data, _neg_ll_and_grad

    s = cdnow_summary
    (x, tx, T), w = compress(*(s[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    d = _Data(x, tx, T, w)
    p = np.array([0.3, 5.0, 0.9, 2.0])
    _, grad = _neg_ll_and_grad(p, d, 0.0)
    for j in range(4):
        h = 1e-6 * p[j]
        up, dn = p.copy(), p.copy()
        up[j] += h
        dn[j] -= h
        num = (_neg_ll_and_grad(up, d, 0.0)[0] - _neg_ll_and_grad(dn, d, 0.0)[0]) / (2 * h)
        assert grad[j] == pytest.approx(num, rel=1e-5, abs=1e-9)


def test_expected_purchases_pfaff_form_equals_paper_formula(cdnow_bg):
    r, alpha, a, b = cdnow_bg.params_.to_numpy()
    x = np.array([0.0, 1, 3, 7, 14])
    tx = np.array([0.0, 10, 30, 35, 38])
    T = np.full(5, 38.5)
    t = 39.0
    ours = cdnow_bg.expected_purchases(t, x, tx, T)
    z = t / (alpha + T + t)
    bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    denom = 1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)
    paper = (a + b + x - 1) / (a - 1) * bracket / denom  # FHL 2005 eq. (10)
    np.testing.assert_allclose(ours, paper, rtol=1e-8)


def test_probability_alive_hand_computed():
    m = BetaGeoModel()
    m.params_ = pd.Series(PUBLISHED)
    r, alpha, a, b = PUBLISHED.values()
    expected = 1 / (1 + a / (b + 2 - 1) * ((alpha + 38) / (alpha + 30)) ** (r + 2))
    assert m.probability_alive([2], [30.0], [38.0])[0] == pytest.approx(expected)
    assert m.probability_alive([0], [0.0], [38.0])[0] == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_bgnbd_recovers_known_parameters(seed):
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.7, "b": 2.5}
    rng = np.random.default_rng(seed)
    sim = simulate_bgnbd(20000, **truth, T=rng.uniform(20, 60, 20000), random_state=seed)
    m = BetaGeoModel().fit(sim["frequency"], sim["recency"], sim["T"])
    for name, value in truth.items():
        err = abs(m.params_[name] - value)
        assert err < 4 * m.standard_errors_[name], (name, m.params_[name], m.standard_errors_[name])
        assert err / value < 0.25, name
    # P(alive) is calibrated: the expected number alive matches the simulated truth.
    p = m.probability_alive(sim["frequency"], sim["recency"], sim["T"])
    assert p.sum() == pytest.approx(sim["alive"].sum(), rel=0.03)


def test_gamma_gamma_recovers_known_parameters():
    rng = np.random.default_rng(3)
    p, q, v = 4.0, 3.5, 20.0
    n = 8000
    x = rng.integers(1, 8, n)
    nu = rng.gamma(q, 1 / v, n)
    mean = rng.gamma(p * x, 1 / nu) / x  # mean of x Gamma(p, nu) spends
    gg = GammaGammaModel().fit(x, mean)
    for name, value in {"p": p, "q": q, "v": v}.items():
        assert abs(gg.params_[name] - value) < 4 * gg.standard_errors_[name], name
    # Shrinkage: expected spend lies between the customer's mean and the population mean.
    e = gg.expected_spend(x, mean)
    lo, hi = np.minimum(mean, gg.mean_spend()), np.maximum(mean, gg.mean_spend())
    assert ((e >= lo - 1e-9) & (e <= hi + 1e-9)).all()


def test_true_parameters_forecast_simulated_holdout():
    """With the true parameters, conditional expectations add up to the simulated holdout."""
    truth = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    log = simulate_order_log(30000, **truth, random_state=7)
    s = rfm_summary(log, calibration_end="1997-09-30", observation_end="1998-06-30")
    m = BetaGeoModel()
    m.params_ = pd.Series(truth)
    pred = m.expected_purchases(s["duration_holdout"], s["frequency"], s["recency"], s["T"])
    assert pred.sum() == pytest.approx(s["frequency_holdout"].sum(), rel=0.06)
    for lo, hi in ((0, 0), (1, 2), (3, 100)):
        rows = s["frequency"].between(lo, hi).to_numpy()
        assert pred[rows].mean() == pytest.approx(s["frequency_holdout"][rows].mean(), rel=0.12)
    # Unconditional E[X(t)] matches the calibration repeat purchases of the cohort.
    uncond = m.unconditional_expected_purchases(s["T"].to_numpy())
    assert uncond.sum() == pytest.approx(s["frequency"].sum(), rel=0.06)
    # 1 - P(no purchase) scores "buys again": its mean matches the share who did.
    p_buy = 1 - m.probability_no_purchases(39.0, s["frequency"], s["recency"], s["T"])
    assert p_buy.mean() == pytest.approx((s["frequency_holdout"] > 0).mean(), rel=0.08)


def test_clv_discounting_and_margin(cdnow_summary, cdnow_bg):
    gg = GammaGammaModel().fit(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    a = customer_value(cdnow_summary, cdnow_bg, gg, horizon=52, margin=1.0, discount_rate=0.0)
    b = customer_value(cdnow_summary, cdnow_bg, gg, horizon=52, margin=0.5, discount_rate=0.0)
    c = customer_value(cdnow_summary, cdnow_bg, gg, horizon=52, margin=1.0, discount_rate=0.2)
    # No discounting: CLV = E[purchases over the horizon] x E[spend] exactly.
    np.testing.assert_allclose(a["clv"], a["expected_purchases"] * a["expected_spend"], rtol=1e-9)
    np.testing.assert_allclose(b["clv"], 0.5 * a["clv"], rtol=1e-12)
    assert (c["clv"] < a["clv"]).all() and (c["clv"] > a["clv"] / 1.2).all()


def test_model_errors():
    with pytest.raises(NotFittedError, match="not fitted"):
        BetaGeoModel().probability_alive([1], [1.0], [2.0])
    with pytest.raises(DataError, match="recency must not exceed T"):
        BetaGeoModel().fit([1, 0], [5.0, 0.0], [4.0, 3.0])
    with pytest.raises(DataError, match="recency must be 0 when frequency is 0"):
        BetaGeoModel().fit([0, 1], [1.0, 1.0], [4.0, 3.0])
    with pytest.raises(DataError, match="different lengths"):
        BetaGeoModel().fit([0, 1], [0.0], [4.0, 3.0])
    with pytest.raises(DataError, match="no customer has a repeat purchase"):
        BetaGeoModel().fit([0, 0], [0.0, 0.0], [4.0, 3.0])
    with pytest.raises(DataError, match="missing or infinite"):
        BetaGeoModel().fit([0, np.nan], [0.0, 0.0], [4.0, 3.0])
    with pytest.raises(DataError, match="only 1 customer"):
        GammaGammaModel().fit([0, 1, 0], [0.0, 3.0, 0.0])


def test_unique_rows_inverse_and_counts():
    from promolift.clv._fit import unique_rows

    x = np.array([1.0, 0.0, 1.0, 2.0, 0.0, 1.0])
    T = np.array([5.0, 3.0, 5.0, 5.0, 3.0, 4.0])
    (ux, uT), inverse, counts = unique_rows(x, T)
    assert list(zip(ux, uT)) == [(1.0, 5.0), (0.0, 3.0), (2.0, 5.0), (1.0, 4.0)]
    np.testing.assert_array_equal(ux[inverse], x)
    np.testing.assert_array_equal(uT[inverse], T)
    assert counts.tolist() == [2.0, 2.0, 1.0, 1.0]
