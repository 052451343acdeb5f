"""Predictive distributions and quantile point forecasts (promolift.clv.forecast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from promolift.clv import BetaGeoModel, load_transactions
from promolift.clv.forecast import (
    bgnbd_dispersion,
    bgnbd_pmf,
    bgnbd_quantile,
    inner_split_level,
    level_for_total,
    negbin_cdf,
    poisson_cdf,
    quantile_from_cdf,
)
from promolift.datasets import load_cdnow_sample
from promolift.errors import DataError

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def bg() -> BetaGeoModel:
    m = BetaGeoModel()
    m.params_ = pd.Series(PUBLISHED)
    return m


@pytest.fixture(scope="module")
def customers():
    rng = np.random.default_rng(3)
    n = 3000
    T = rng.uniform(20.0, 60.0, n)
    x = rng.poisson(rng.gamma(0.5, 3.0, n)).astype(float)
    tx = np.where(x > 0, rng.uniform(0.0, 1.0, n) * T, 0.0)
    return x, tx, T


@pytest.mark.parametrize("t", [0.0, 5.0, 39.0, 78.0])
def test_bgnbd_pmf_is_a_distribution_with_the_models_mean(bg, customers, t):
    x, tx, T = customers
    pmf = bgnbd_pmf(bg, t, x, tx, T)
    assert (pmf >= 0).all()
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0, atol=1e-8)
    mean = pmf @ np.arange(pmf.shape[1])
    np.testing.assert_allclose(mean, bg.expected_purchases(t, x, tx, T), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(pmf[:, 0], bg.probability_no_purchases(t, x, tx, T), atol=1e-12)


def test_bgnbd_pmf_matches_simulated_future_purchases(bg):
    """Monte Carlo of the BG/NBD story for customers with x = 3, t_x = 20, T = 30."""
    x, tx, T, t = 3.0, 20.0, 30.0, 39.0
    r, alpha, a, b = PUBLISHED.values()
    rng = np.random.default_rng(0)
    n = 400_000
    alive = rng.random(n) < bg.probability_alive([x], [tx], [T])[0]
    lam = rng.gamma(r + x, 1.0 / (alpha + T), n)
    p = rng.beta(a, b + x, n)
    counts = np.zeros(n, dtype=np.int64)
    clock = np.zeros(n)
    active = alive.copy()
    while active.any():  # loop over successive purchases, vectorised over customers
        clock[active] += rng.exponential(1.0 / lam[active])
        buys = active & (clock <= t)
        counts[buys] += 1
        active = buys & (rng.random(n) >= p)
    simulated = np.bincount(counts, minlength=6)[:6] / n
    exact = bgnbd_pmf(bg, t, [x], [tx], [T], max_count=5)[0]
    np.testing.assert_allclose(simulated, exact, atol=3e-3)


def test_quantiles_of_a_known_distribution():
    # Poisson(1): F(0) = 0.3679, F(1) = 0.7358, F(2) = 0.9197, F(3) = 0.9810.
    cdf = poisson_cdf([1.0, 0.0, 3.0])
    assert quantile_from_cdf(cdf, 0.3).tolist() == [0, 0, 2]
    assert quantile_from_cdf(cdf, 0.5).tolist() == [1, 0, 3]
    assert quantile_from_cdf(cdf, 0.8).tolist() == [2, 0, 4]
    np.testing.assert_allclose(cdf[0, :4], [0.367879, 0.735759, 0.919699, 0.981012], atol=1e-6)
    # Geometric with mean 1 (negative binomial, shape 1): F(k) = 1 - 2^-(k+1).
    np.testing.assert_allclose(negbin_cdf([1.0], 1.0)[0, :4], [0.5, 0.75, 0.875, 0.9375])
    # A huge shape is Poisson.
    np.testing.assert_allclose(negbin_cdf([1.0], 1e9, max_count=5), poisson_cdf([1.0], max_count=5),
                               atol=1e-6)
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        quantile_from_cdf(cdf, 1.0)


def test_bgnbd_quantile_agrees_with_its_cdf(bg, customers):
    x, tx, T = customers
    cdf = np.cumsum(bgnbd_pmf(bg, 39.0, x, tx, T), axis=1)
    for tau in (0.2, 0.5, 0.9):
        np.testing.assert_array_equal(bgnbd_quantile(bg, 39.0, tau, x, tx, T),
                                      quantile_from_cdf(cdf, tau))
    # A customer with no repeat purchase in 38 weeks most likely buys nothing: median 0.
    assert bgnbd_quantile(bg, 39.0, 0.5, [0.0], [0.0], [38.0]).tolist() == [0]


def test_bgnbd_dispersion_recovers_the_negative_binomial_of_an_immortal_customer():
    """With b huge nobody drops out: X(t) is NB(r + x, (alpha+T)/(alpha+T+t)) exactly."""
    m = BetaGeoModel()
    m.params_ = pd.Series({"r": 0.5, "alpha": 5.0, "a": 1e-6, "b": 1e6})
    shape = bgnbd_dispersion(m, 10.0, [2.0, 0.0], [8.0, 0.0], [20.0, 20.0])
    np.testing.assert_allclose(shape, [2.5, 0.5], rtol=1e-4)


@pytest.mark.parametrize("target", [0, 1, 137, 1000])
def test_level_for_total_hits_the_target(target):
    rng = np.random.default_rng(7)
    cdf = poisson_cdf(rng.gamma(0.6, 1.5, 2000))
    tau = level_for_total(cdf, target)
    assert 0 < tau < 1
    assert quantile_from_cdf(cdf, tau).sum() == target
    # The total rises with the level.
    totals = [quantile_from_cdf(cdf, t).sum() for t in (0.1, 0.5, 0.9)]
    assert totals == sorted(totals)


def test_inner_split_level_reads_no_order_after_the_calibration_end():
    tx = load_transactions(load_cdnow_sample(), customer_col="customer_id", date_col="date",
                           value_col="dollar_value")
    cal = pd.Timestamp("1997-09-30")
    info = inner_split_level(tx, cal, 13.0)
    assert info["inner_cutoff"] == "1997-07-01"
    assert info["quantile_total"] == info["actual"]  # the level matches the inner window's total
    later = tx["date"] > cal
    scrambled = tx.copy()
    rng = np.random.default_rng(0)
    scrambled.loc[later, "customer"] = rng.permutation(scrambled.loc[later, "customer"].to_numpy())
    scrambled.loc[later, "value"] = rng.permutation(scrambled.loc[later, "value"].to_numpy()) * 3
    extra = pd.DataFrame({"customer": tx["customer"].iloc[:500].to_numpy(),
                          "date": pd.Timestamp("1998-01-15"), "value": 1.0})
    assert inner_split_level(pd.concat([scrambled, extra], ignore_index=True), cal, 13.0) == info


def test_median_forecast_beats_the_mean_and_zero_on_mae_for_cdnow():
    """The point of the median: lower absolute error than the mean, and than predicting 0."""
    from promolift.clv import fit_clv, rfm_summary
    from promolift.clv.holdout import bgnbd_predictions, holdout_metrics

    tx = load_transactions(load_cdnow_sample(), customer_col="customer_id", date_col="date",
                           value_col="dollar_value")
    summary = rfm_summary(tx, calibration_end="1997-09-30", observation_end="1998-06-30")
    res = fit_clv(summary)
    h = res.summary["holdout"]
    assert h["median"]["mae"] < h["mae"]
    zero_mae = float(summary["frequency_holdout"].mean())
    assert h["median"]["mae"] < zero_mae
    assert h["median"]["predicted"] < h["predicted"]  # the median's total is low by design
    table = res.table.set_index("customer")
    assert (table["median_purchases"] >= 0).all() and (table["median_purchases"] % 1 == 0).all()
    actual = summary[["frequency_holdout"]].rename(columns={"frequency_holdout": "purchases"})
    m = holdout_metrics(actual, bgnbd_predictions(res.bgnbd, summary, 39.0))
    assert m["median_mae"] == pytest.approx(h["median"]["mae"])
