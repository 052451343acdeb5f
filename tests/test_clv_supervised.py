"""Supervised CLV models (LightGBM) and the holdout comparison with BG/NBD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promolift.clv.holdout import (
    auc_score,
    bgnbd_predictions,
    compare_holdout,
    holdout_comparison,
    holdout_metrics,
)
from promolift.clv.supervised import (
    FEATURES,
    SupervisedCLV,
    next_period_labels,
    order_features,
)
from promolift.errors import ConfigError, DataError, NotFittedError

CAL, OBS = "1997-09-30", "1998-06-30"


def _log(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer", "date", "value"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    from promolift.clv import load_transactions
    from promolift.datasets import load_cdnow_sample

    return load_transactions(
        load_cdnow_sample(), customer_col="customer_id", date_col="date", value_col="dollar_value"
    )


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    from promolift.clv.simulate import simulate_order_log

    return simulate_order_log(3000, random_state=7)


# ----------------------------------------------------------------------------- features
def test_order_features_hand_computed():
    tx = _log(
        [
            ("a", "2024-01-01", 10.0),
            ("a", "2024-01-15", 20.0),
            ("a", "2024-01-15", 5.0),  # same day: merged into one order of 25
            ("a", "2024-02-05", 30.0),
            ("b", "2024-02-19", 7.0),
            ("c", "2024-03-04", 1.0),  # after the cutoff: unknown yet
        ]
    )
    f = order_features(tx, "2024-02-26")
    assert list(f.columns) == list(FEATURES)
    assert list(f.index) == ["a", "b"]
    a = f.loc["a"]
    # orders at 8, 6 and 3 weeks before the cutoff; gaps 2 and 3 weeks
    assert (a["frequency"], a["recency"], a["T"], a["weeks_since_last"]) == (2, 5, 8, 3)
    assert a["gap_mean"] == 2.5 and a["gap_min"] == 2 and a["gap_max"] == 3 and a["gap_last"] == 3
    assert a["gap_std"] == pytest.approx(0.5)
    assert a["overdue"] == pytest.approx(3 / 2.5)
    assert a["repeat_rate"] == pytest.approx(2 / 8)
    assert (a["value_first"], a["value_last"], a["value_max"], a["value_total"]) == (10, 30, 30, 65)
    assert a["orders_last_4w"] == 1 and a["orders_last_13w"] == 3
    assert a["spend_last_4w"] == 30 and a["spend_last_13w"] == 65
    # the more recent half of a's 8 weeks (< 4 weeks ago) holds 1 of 2 repeat orders
    assert a["recent_share"] == 0.5
    b = f.loc["b"]
    assert b["frequency"] == 0 and b["T"] == 1 and np.isnan(b["gap_mean"])
    assert np.isnan(b["recent_share"])


def test_features_at_cutoff_ignore_later_orders(cdnow):
    """No leakage: altering, adding or removing orders after the cutoff changes nothing."""
    cutoff = pd.Timestamp("1997-06-30")
    before = order_features(cdnow, cutoff)
    rng = np.random.default_rng(0)
    late = cdnow["date"] > cutoff
    altered = cdnow.copy()
    altered.loc[late, "value"] = rng.uniform(1, 500, late.sum())
    extra = cdnow.loc[late].sample(300, random_state=1).assign(
        date=lambda d: d["date"] + pd.Timedelta(days=3)
    )
    altered = pd.concat([altered.loc[~late | (rng.random(len(cdnow)) < 0.5)], extra])
    pd.testing.assert_frame_equal(order_features(altered, cutoff), before)


def test_next_period_labels_window_is_half_open():
    tx = _log([("a", "2024-01-01", 1.0), ("a", "2024-01-08", 2.0), ("a", "2024-01-15", 4.0),
               ("a", "2024-01-15", 8.0), ("b", "2024-01-20", 16.0)])
    y = next_period_labels(tx, "2024-01-01", "2024-01-15", ["a", "b", "z"])
    assert y["purchases"].tolist() == [2.0, 0.0, 0.0]
    assert y["spend"].tolist() == [14.0, 0.0, 0.0]
    assert y["buy"].tolist() == [1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- model
def test_supervised_beats_naive_rate_on_simulated_log(simulated):
    """On a log from a known process (BG/NBD timing), the boosted model must beat each
    customer's own past rate extrapolated over the holdout, and get the total roughly right."""
    model = SupervisedCLV(horizon=13, n_estimators=200, learning_rate=0.05)
    model.fit(simulated, calibration_end=CAL)
    pred = model.predict(simulated, horizon=39)
    f = order_features(simulated, CAL)
    actual = next_period_labels(simulated, CAL, OBS, f.index)
    y = actual["purchases"].to_numpy()
    naive = (f["frequency"] / f["T"] * 39).to_numpy()
    p = pred.reindex(f.index)["expected_purchases"].to_numpy()
    mae, mae_naive = np.abs(p - y).mean(), np.abs(naive - y).mean()
    assert mae < 0.85 * mae_naive, (mae, mae_naive)
    assert abs(p.sum() / y.sum() - 1) < 0.2
    assert auc_score(y > 0, pred.reindex(f.index)["p_buy"].to_numpy()) > 0.65
    assert model.cutoffs_ == [pd.Timestamp("1997-07-01")]
    assert all(1 <= r <= 200 for r in model.rounds_.values())


def test_predictions_ignore_holdout_orders(cdnow):
    """Fit and predict read nothing after the calibration end."""
    params = dict(horizon=13, n_estimators=60, learning_rate=0.1, extrapolation="linear")
    calib = cdnow[cdnow["date"] <= CAL]
    scrambled = cdnow.copy()
    late = scrambled["date"] > CAL
    scrambled.loc[late, "value"] = 1.0
    scrambled.loc[late, "customer"] = scrambled.loc[late, "customer"].sample(
        frac=1.0, random_state=0).to_numpy()
    fitted = SupervisedCLV(**params).fit(calib, calibration_end=CAL)
    a = fitted.predict(calib, horizon=39)
    b = SupervisedCLV(**params).fit(scrambled, calibration_end=CAL).predict(scrambled, horizon=39)
    pd.testing.assert_frame_equal(a, b)
    # linear extrapolation: 39 weeks = 3 x the 13-week label window
    short = fitted.predict(cdnow)
    np.testing.assert_allclose(a["expected_purchases"], 3 * short["expected_purchases"])


def test_bad_input_errors(cdnow):
    with pytest.raises(DataError, match=r"lacks column\(s\) \['value'\]"):
        SupervisedCLV().fit(cdnow.drop(columns="value"), calibration_end=CAL)
    with pytest.raises(DataError, match="too short for a 40-week label window"):
        SupervisedCLV(horizon=40).fit(cdnow, calibration_end=CAL)
    with pytest.raises(ConfigError, match="extrapolation must be 'bgnbd' or 'linear', got 'x'"):
        SupervisedCLV(extrapolation="x").fit(cdnow, calibration_end=CAL)
    with pytest.raises(ConfigError, match="n_cutoffs must be an int >= 1, got True"):
        SupervisedCLV(n_cutoffs=True).fit(cdnow, calibration_end=CAL)
    with pytest.raises(NotFittedError, match="call fit"):
        SupervisedCLV().predict(cdnow)
    bad = cdnow.assign(date=cdnow["date"].dt.strftime("%Y-%m-%d"))
    with pytest.raises(DataError, match="expected datetime64"):
        order_features(bad, CAL)


# ----------------------------------------------------------------------------- metrics
def test_holdout_metrics_hand_computed():
    actual = pd.DataFrame(
        {"purchases": [0.0, 1.0, 3.0, 0.0], "spend": [0.0, 10.0, 50.0, 0.0]},
        index=["a", "b", "c", "d"],
    )
    pred = pd.DataFrame(
        {
            "expected_purchases": [0.5, 0.5, 2.0, 1.0],
            "p_buy": [0.2, 0.6, 0.9, 0.6],
            "expected_spend": [5.0, 5.0, 40.0, 10.0],
        },
        index=["d", "b", "c", "a"],  # any order: aligned by customer
    )
    m = holdout_metrics(actual, pred)
    # aligned predictions a..d: 1.0, 0.5, 2.0, 0.5; errors 1, -0.5, -1, 0.5
    assert m["actual_purchases"] == 4 and m["predicted_purchases"] == 4
    assert m["purchases_error_pct"] == 0
    assert m["mae"] == pytest.approx(0.75)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0.25 + 1 + 0.25) / 4))
    assert m["pearson_r"] == pytest.approx(np.corrcoef([1, 0.5, 2, 0.5], [0, 1, 3, 0])[0, 1])
    # buyers b, c score 0.6, 0.9; non-buyers a, d score 0.6, 0.2: pairs 1 + .5 + 1 + 1 of 4
    assert m["auc_buy"] == pytest.approx(3.5 / 4)
    assert m["predicted_spend"] == 60 and m["spend_error_pct"] == 0
    assert m["spend_mae"] == pytest.approx((10 + 5 + 10 + 5) / 4)


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.random(500) < 0.3
    s = np.round(rng.random(500) + 0.5 * y, 1)  # many ties
    assert auc_score(y, s) == pytest.approx(roc_auc_score(y, s))


def test_holdout_metrics_missing_customers():
    actual = pd.DataFrame({"purchases": [1.0, 0.0]}, index=["a", "b"])
    pred = pd.DataFrame({"expected_purchases": [1.0]}, index=["a"])
    with pytest.raises(DataError, match=r"lacks 1 holdout customer\(s\), e.g. \['b'\]"):
        compare_holdout(actual, {"m": pred})


def test_bgnbd_row_reproduces_published_holdout(cdnow):
    """On the CDNOW 1/10 sample the BG/NBD row gives the published 1,882 actual vs ~1,653."""
    res = holdout_comparison(cdnow, calibration_end=CAL, observation_end=OBS, models={})
    row = res.table.set_index("model").loc["bgnbd"]
    assert row["customers"] == 2357
    assert row["actual_purchases"] == 1882
    assert row["predicted_purchases"] == pytest.approx(1653, abs=2)
    assert row["mae"] == pytest.approx(0.786, abs=0.002)
    assert row["pearson_r"] == pytest.approx(0.626, abs=0.002)
    assert 0.7 < row["auc_buy"] < 0.85
    assert res.horizon == 39
    # P(buy) = 1 - P(no purchase) is consistent with the expectation: never above it
    p = res.predictions["bgnbd"]
    assert (p["p_buy"] <= p["expected_purchases"] + 1e-9).all()


def test_bgnbd_buy_probability_by_simulation():
    """1 - P(X(t)=0) against Monte Carlo draws from the BG/NBD posterior of one customer."""
    from promolift.clv.bgnbd import BetaGeoModel

    bg = BetaGeoModel()
    bg.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    x, tx, T, t = 2.0, 30.0, 38.0, 39.0
    summary = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    p_buy = bgnbd_predictions(bg, summary, t)["p_buy"].iloc[0]
    rng = np.random.default_rng(0)
    n = 400_000
    p_alive = bg.probability_alive([x], [tx], [T])[0]
    alive = rng.random(n) < p_alive
    lam = rng.gamma(0.243 + x, 1.0 / (4.414 + T), n)
    buys = alive & (rng.random(n) < 1 - np.exp(-lam * t))
    assert p_buy == pytest.approx(buys.mean(), abs=0.004)


@pytest.mark.slow
def test_supervised_on_cdnow_sample(cdnow):
    res = holdout_comparison(cdnow, calibration_end=CAL, observation_end=OBS)
    table = res.table.set_index("model")
    for name in ("lightgbm", "lightgbm + bgnbd offset"):
        row = table.loc[name]
        assert abs(row["purchases_error_pct"]) < 15
        assert row["auc_buy"] > 0.74
        assert row["pearson_r"] > 0.5
