"""Response models: recovery of a known truth, the fit/predict contract, validation, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils import estimator_checks

import promolift.models as models
from promolift.datasets.simulator import make_campaign
from promolift.errors import BundleError, BundleVersionWarning, DataError, NotFittedError
from promolift.models import (
    MODEL_KINDS,
    DeepModel,
    RelativeModel,
    ConstantModel,
    DRLearner,
    TLearner,
    XLearner,
    load_model,
    make_model,
)
from promolift.models.lgbm import BoosterComponent, HurdleComponent

LEARNERS = ["t", "x", "dr"]
ALL_KINDS = ["constant", "relative", *LEARNERS]
VISIT, CONVERSION, SPEND = 0, 1, 2
FAST = {"n_estimators": 20, "min_child_samples": 20}  # hyperparameters for contract tests


def _fit_kind(kind, X, Y, t, **params):
    if kind == "constant":
        return ConstantModel().fit(X, Y, treatment=t)
    return make_model(kind, **{**FAST, **params}).fit(X, Y, treatment=t)


# --------------------------------------------------------------------------------------------
# Fixtures: one large campaign fitted once per kind (recovery tests), one small for the contract
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def campaign():
    """30k customers to learn from, and 10k fresh customers whose truth we know."""
    train = make_campaign(30_000, random_state=0)
    test = make_campaign(10_000, random_state=1)
    return train, test


@pytest.fixture(scope="module")
def fitted(campaign):
    """Each kind fitted once on the 30k campaign with its default hyperparameters."""
    train, _ = campaign
    X, t, Y = train.feature_frame(), train.treatment_codes(), train.outcome_matrix()
    return {kind: make_model(kind).fit(X, Y, treatment=t) for kind in ALL_KINDS}


@pytest.fixture(scope="module")
def predictions(campaign, fitted):
    """kind -> (predictions on the training customers, on the fresh customers)."""
    train, test = campaign
    Xtr, Xte = train.feature_frame(), test.feature_frame()
    return {kind: (model.predict(Xtr), model.predict(Xte)) for kind, model in fitted.items()}


@pytest.fixture(scope="module")
def small():
    sim = make_campaign(3_000, random_state=7)
    return sim.feature_frame(), sim.outcome_matrix(), sim.treatment_codes()


@pytest.fixture(scope="module")
def small_fitted(small):
    X, Y, t = small
    return {kind: _fit_kind(kind, X, Y, t) for kind in ALL_KINDS}


def _uplift(pred):
    return pred[:, 1:] - pred[:, :1]


# --------------------------------------------------------------------------------------------
# Recovery of the simulator's truth
# --------------------------------------------------------------------------------------------

# Minimum Pearson correlation between predicted and true uplift (fresh customers), per outcome,
# for both promotion arms. Set with margin below the minimum over simulator seeds 0-5 at n=30k
# (T: visit .41, conversion .27, spend .40; X: .84, .32, .59; DR: .72, .49, .57).
MIN_CORRELATION = {
    "t": {VISIT: 0.30, CONVERSION: 0.20, SPEND: 0.30},
    "x": {VISIT: 0.70, CONVERSION: 0.25, SPEND: 0.45},
    "dr": {VISIT: 0.60, CONVERSION: 0.35, SPEND: 0.45},
}


@pytest.mark.parametrize("kind", LEARNERS)
def test_learner_uplift_correlates_with_truth(kind, campaign, predictions):
    _, test = campaign
    pred_up = _uplift(predictions[kind][1])
    true_up = _uplift(test.true_outcomes)
    for m, threshold in MIN_CORRELATION[kind].items():
        for k in range(pred_up.shape[1]):
            r = np.corrcoef(pred_up[:, k, m], true_up[:, k, m])[0, 1]
            assert r > threshold, f"{kind}: arm {k + 1}, outcome {test.outcomes[m]}: r={r:.3f}"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_average_uplift_matches_truth(kind, campaign, predictions):
    """ATE on the training customers within 4 standard errors of the true ATE, and close to
    the difference in means (the unbiased estimate a randomized experiment gives)."""
    train, _ = campaign
    t, Y = train.treatment_codes(), train.outcome_matrix()
    ate = _uplift(predictions[kind][0]).mean(axis=0)  # (K-1, M)
    true_ate = _uplift(train.true_outcomes).mean(axis=0)
    means = np.array([Y[t == k].mean(axis=0) for k in range(3)])
    se = np.sqrt(np.array([Y[t == k].var(axis=0) / (t == k).sum() for k in range(3)]))
    se_diff = np.sqrt(se[1:] ** 2 + se[:1] ** 2)
    assert np.all(np.abs(ate - true_ate) < 4 * se_diff), (ate, true_ate, se_diff)
    assert np.all(np.abs(ate - (means[1:] - means[:1])) < 1.5 * se_diff)


def test_effect_learners_beat_constant(campaign, predictions):
    """X and DR: uplift RMSE against the truth clearly better than "same uplift for everybody"
    on average over arms x {conversion, spend}, and never worse beyond noise (5%) in any cell.
    (DR's conversion uplift of the weaker arm is the noisiest cell: IPW pseudo-outcomes of a
    2% outcome at n=30k; it is at 1.02x the constant's RMSE here.)"""
    _, test = campaign
    true_up = _uplift(test.true_outcomes)

    def rmse(kind):
        err = _uplift(predictions[kind][1]) - true_up
        return np.sqrt((err**2).mean(axis=0))[:, [CONVERSION, SPEND]]

    baseline = rmse("constant")
    for kind in ("x", "dr"):
        ratio = rmse(kind) / baseline
        assert ratio.mean() < 0.9, (kind, ratio)
        assert ratio.max() < 1.05, (kind, ratio)


def test_constant_model_predicts_arm_means(campaign, predictions):
    train, _ = campaign
    t, Y = train.treatment_codes(), train.outcome_matrix()
    pred = predictions["constant"][1]
    expected = np.array([Y[t == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(pred, np.broadcast_to(expected, pred.shape))


def test_constant_model_weights_by_known_propensity():
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    t = np.array([0, 0, 1, 1])
    e = np.array([[0.5, 0.5], [0.25, 0.75], [0.5, 0.5], [0.8, 0.2]])
    model = ConstantModel().fit(X, [1.0, 3.0, 2.0, 4.0], treatment=t, propensity=e)
    # control: (1/.5 + 3/.25) / (1/.5 + 1/.25) = 14/6; arm 1: (2/.5 + 4/.2) / (1/.5 + 1/.2) = 24/7
    np.testing.assert_allclose(model.predict(X)[0, :, 0], [14 / 6, 24 / 7])


# --------------------------------------------------------------------------------------------
# Zero-inflated spend: hurdle vs direct
# --------------------------------------------------------------------------------------------


def test_hurdle_and_direct_spend_models(campaign, fitted, predictions):
    train, test = campaign
    X, t, Y = train.feature_frame(), train.treatment_codes(), train.outcome_matrix()
    hurdle = fitted["t"]
    direct = TLearner(spend_model="direct").fit(X, Y, treatment=t)
    assert hurdle.hurdle_outcomes_.tolist() == [False, False, True]
    assert direct.hurdle_outcomes_.tolist() == [False, False, False]
    assert all(isinstance(arm[SPEND], HurdleComponent) for arm in hurdle.mu_)
    assert all(isinstance(arm[SPEND], BoosterComponent) for arm in direct.mu_)

    truth = test.true_outcomes[:, :, SPEND]
    const = predictions["constant"][1][:, :, SPEND]
    rmse_const = np.sqrt(((const - truth) ** 2).mean())
    direct_spend = direct.predict(test.feature_frame())[:, :, SPEND]
    for spend in (predictions["t"][1][:, :, SPEND], direct_spend):
        assert spend.min() >= 0.0
        assert np.sqrt(((spend - truth) ** 2).mean()) < rmse_const


def test_hurdle_falls_back_to_constant_amount_with_few_positive_rows(small):
    X, Y, t = small  # ~1.5% of 1,000 rows per arm convert: < 2 x 50 positive rows
    model = TLearner(n_estimators=20).fit(X, Y, treatment=t)
    amounts = [arm[SPEND].amount for arm in model.mu_]
    assert all(type(a).__name__ == "ConstantComponent" for a in amounts)
    assert any("positive rows" in note and "outcome 2" in note for note in model.fallbacks_)
    assert np.isfinite(model.predict(X)).all()


# --------------------------------------------------------------------------------------------
# Class imbalance
# --------------------------------------------------------------------------------------------


def test_balance_classes_keeps_probabilities_calibrated():
    train = make_campaign(10_000, random_state=2)
    X, t, Y = train.feature_frame(), train.treatment_codes(), train.outcome_matrix()
    model = TLearner(balance_classes=True, n_estimators=100).fit(X, Y, treatment=t)
    conv = model.mu_[0][CONVERSION]
    assert conv.odds_divisor > 10  # positives were up-weighted (~50x)
    pred = model.predict(X)
    for k in range(3):
        rows = t == k
        for m in (VISIT, CONVERSION):
            observed = Y[rows, m].mean()
            assert pred[rows, k, m].mean() == pytest.approx(observed, rel=0.02)


# --------------------------------------------------------------------------------------------
# The fit / predict contract
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_predict_shape_and_ranges(kind, small, small_fitted):
    X, Y, t = small
    model = small_fitted[kind]
    pred = model.predict(X.iloc[:17])
    assert pred.shape == (17, 3, 3)
    assert pred.dtype == np.float64
    assert model.n_arms_ == 3
    assert model.outcome_types_ == ["binary", "binary", "continuous"]
    assert model.feature_names_in_.tolist() == list(X.columns)
    assert (pred[:, :, :2] >= 0).all() and (pred[:, :, :2] <= 1).all()
    assert (pred[:, :, SPEND] >= 0).all()


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_predict_before_fit_raises(kind, small, tmp_path):
    X, _, _ = small
    model = make_model(kind)
    message = f"This {type(model).__name__} instance is not fitted yet"
    with pytest.raises(NotFittedError, match=message):
        model.predict(X)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.save(tmp_path)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_predict_missing_column_names_it(kind, small, small_fitted):
    X, _, _ = small
    message = r"missing 2 feature column\(s\) seen in fit: 'history', 'preference'"
    with pytest.raises(DataError, match=message):
        small_fitted[kind].predict(X.drop(columns=["preference", "history"]))


def test_predict_column_order_extra_columns_and_strings(small, small_fitted):
    X, _, _ = small
    model = small_fitted["x"]
    expected = model.predict(X)
    shuffled = X[X.columns[::-1]].assign(customer_id="c")
    shuffled["channel"] = shuffled["channel"].astype(str)  # e.g. from a JSON payload
    shuffled["preference"] = shuffled["preference"].cat.reorder_categories(
        ["both", "womens", "mens"]
    )
    np.testing.assert_array_equal(model.predict(shuffled), expected)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_predict_on_encoded_matrix_equals_frame(kind, small, small_fitted):
    """The serving path (encoded float matrix) predicts exactly what the DataFrame path does."""
    from promolift.data import FeatureEncoder

    X, _, _ = small
    model = small_fitted[kind]
    enc = FeatureEncoder.from_dict({"columns": list(X.columns), "categories": model.categories_,
                                    "numeric": [c for c in X.columns if c not in model.categories_]})
    rows = X.iloc[:40]
    np.testing.assert_allclose(model.predict(enc.matrix(rows)), model.predict(rows), rtol=1e-12)
    with pytest.raises(DataError, match=r"encoded feature matrix of shape \(n >= 1, "):
        model.predict(enc.matrix(rows)[:, :-1])


def test_predict_unseen_category_is_missing_not_error(small, small_fitted):
    X, _, _ = small
    model = small_fitted["t"]
    unseen = X.iloc[:5].assign(channel=["fax"] * 5)
    no_channel = pd.Categorical([None] * 5, categories=["web", "phone", "multichannel"])
    missing = X.iloc[:5].assign(channel=no_channel)
    np.testing.assert_array_equal(model.predict(unseen), model.predict(missing))


def test_predict_dtype_mismatch(small, small_fitted):
    X, _, _ = small
    with pytest.raises(DataError, match="'channel' is categorical in fit but float64 here"):
        small_fitted["t"].predict(X.assign(channel=1.5))
    with pytest.raises(DataError, match="'history' is numeric in fit but str here"):
        small_fitted["t"].predict(X.assign(history="a lot"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, Y, t: (X.values, Y, t), "X must be a pandas DataFrame"),
        (
            lambda X, Y, t: (X.assign(channel=X["channel"].astype(str)), Y, t),
            r"'channel' \(str\) are neither",
        ),
        (lambda X, Y, t: (X, Y, t.astype(float)), "treatment must be integer arm codes"),
        (lambda X, Y, t: (X, Y, t[:-1]), r"treatment has shape \(2999,\), but X has 3000 rows"),
        (lambda X, Y, t: (X, Y, np.where(t == 2, -1, t)), "negative code -1"),
        (lambda X, Y, t: (X, Y[:, :2] * np.nan, t), "Y has 6000 missing or infinite value"),
        (lambda X, Y, t: (X, Y[:10], t), r"Y has shape \(10, 3\), but X has 3000 rows"),
        (lambda X, Y, t: (X, Y, np.zeros_like(t)), "only arm 0"),
    ],
)
def test_fit_rejects_bad_input(change, message, small):
    X, Y, t = change(*small)
    with pytest.raises(DataError, match=message):
        TLearner(**FAST).fit(X, Y, treatment=t)


def test_fit_rejects_bad_outcome_types_and_propensity(small):
    X, Y, t = small
    model = ConstantModel()
    with pytest.raises(DataError, match="outcome_types has 2 entries but Y has 3"):
        model.fit(X, Y, treatment=t, outcome_types=["binary", "binary"])
    with pytest.raises(DataError, match="outcome 2 is declared 'binary'"):
        model.fit(X, Y, treatment=t, outcome_types=["binary", "binary", "binary"])
    with pytest.raises(DataError, match="Did you mean 'binary'"):
        model.fit(X, Y, treatment=t, outcome_types=["binary", "binray", "continuous"])
    with pytest.raises(DataError, match="propensity rows must sum to 1; row 0"):
        model.fit(X, Y, treatment=t, propensity=np.full((len(t), 3), 0.3))
    with pytest.raises(DataError, match=r"propensity has shape \(3000, 2\); expected"):
        model.fit(X, Y, treatment=t, propensity=np.full((len(t), 2), 0.5))
    with pytest.raises(DataError, match=r"arm code\(s\) \[3\] have no training rows"):
        ConstantModel(n_arms=4).fit(X, Y, treatment=t)


def test_outcome_types_are_inferred_and_1d_outcome_accepted(small):
    X, Y, t = small
    model = ConstantModel().fit(X, Y, treatment=t)
    assert model.outcome_types_ == ["binary", "binary", "continuous"]
    single = ConstantModel().fit(X, Y[:, SPEND], treatment=t)
    assert single.predict(X).shape == (len(X), 3, 1)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"learning_rate": 0},
            r"parameter 'learning_rate' must be a float in the range \(0, 1\]; got 0",
        ),
        ({"spend_model": "hurdel"}, "parameter 'spend_model' must be one of 'hurdle', 'direct'"),
        ({"balance_classes": 1}, "parameter 'balance_classes' must be one of False, True; got 1"),
        ({"early_stopping_rounds": 0}, "parameter 'early_stopping_rounds' must be None or an int"),
        ({"n_estimators": 2.5}, "parameter 'n_estimators' must be an int"),
    ],
)
def test_invalid_hyperparameters_fail_on_fit(params, message, small):
    X, Y, t = small
    model = TLearner(**params)  # constructing never validates (scikit-learn convention)
    with pytest.raises(ValueError, match=message):
        model.fit(X, Y, treatment=t)


def test_treatment_is_keyword_only(small):
    X, Y, t = small
    with pytest.raises(TypeError):
        ConstantModel().fit(X, Y, t)  # type: ignore[misc]


def test_same_seed_same_model_any_n_jobs(small):
    X, Y, t = small
    a = XLearner(**FAST, n_jobs=1).fit(X, Y, treatment=t).predict(X)
    b = XLearner(**FAST, n_jobs=2).fit(X, Y, treatment=t).predict(X)
    c = XLearner(**FAST, n_jobs=2, random_state=1).fit(X, Y, treatment=t).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_known_propensity_equal_to_shares_changes_nothing(small):
    X, Y, t = small
    shares = np.bincount(t) / len(t)
    a = DRLearner(**FAST).fit(X, Y, treatment=t).predict(X)
    b = DRLearner(**FAST).fit(X, Y, treatment=t, propensity=np.tile(shares, (len(t), 1))).predict(X)
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# scikit-learn conventions
# --------------------------------------------------------------------------------------------

SKLEARN_CHECKS = [
    estimator_checks.check_no_attributes_set_in_init,
    estimator_checks.check_parameters_default_constructible,
    estimator_checks.check_get_params_invariance,
    estimator_checks.check_set_params,
    estimator_checks.check_estimator_cloneable,
    estimator_checks.check_estimator_repr,
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
]


@pytest.mark.parametrize("check", SKLEARN_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_sklearn_conventions(kind, check):
    cls = MODEL_KINDS[kind]
    check(cls.__name__, cls())


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_clone_keeps_params_drops_fit(kind, small_fitted):
    model = small_fitted[kind]
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "n_arms_")
    with pytest.raises(NotFittedError):
        copy.predict(pd.DataFrame())


def test_get_params_lists_every_hyperparameter():
    assert DRLearner(n_folds=5, spend_model="direct").get_params() == {
        "n_arms": None,
        "spend_model": "direct",
        "balance_classes": False,
        "n_estimators": 300,
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_child_samples": 50,
        "early_stopping_rounds": 30,
        "validation_fraction": 0.2,
        "n_jobs": 2,
        "random_state": 0,
        "effect_min_child_samples": 0.1,
        "n_folds": 5,
    }


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


def test_registry_and_public_names():
    assert MODEL_KINDS == {"constant": ConstantModel, "relative": RelativeModel, "t": TLearner,
                           "x": XLearner, "dr": DRLearner, "deep": DeepModel}
    assert all(isinstance(name, str) and hasattr(models, name) for name in models.__all__)
    assert isinstance(make_model("x", n_estimators=7), XLearner)
    assert make_model("x", n_estimators=7).n_estimators == 7


def test_make_model_unknown_kind_and_parameter():
    message = (
        "unknown model kind 'drr'; choose one of 'constant', 'relative', 't', 'x', 'dr', 'deep'. Did you mean 'dr'"
    )
    with pytest.raises(ValueError, match=message):
        make_model("drr")
    message = r"has no parameter\(s\) \['n_fold'\].*Did you mean 'n_folds'\?"
    with pytest.raises(ValueError, match=message):
        make_model("dr", n_fold=3)


# --------------------------------------------------------------------------------------------
# Save / load
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_save_load_round_trip_is_exact(kind, small, small_fitted, tmp_path):
    X, _, _ = small
    model = small_fitted[kind]
    model.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    manifest = json.loads((tmp_path / "model.json").read_text())
    assert manifest["kind"] == kind
    assert manifest["params"] == model.get_params()
    assert sorted(f["name"] for f in manifest["files"]) + ["model.json"] == files
    assert all(name.endswith((".txt", ".json")) for name in files)  # no pickle anywhere

    loaded = load_model(tmp_path)
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # LightGBM's pandas category mapping survives the text round trip: reordered categories
    # and plain strings give the same predictions.
    other = X.assign(
        channel=X["channel"].cat.reorder_categories(["multichannel", "phone", "web"]),
        preference=X["preference"].astype(str),
    )
    np.testing.assert_array_equal(loaded.predict(other), model.predict(X))


def test_booster_text_keeps_pandas_categories(small_fitted, tmp_path):
    small_fitted["t"].save(tmp_path)
    text = next(tmp_path.glob("booster_*.txt")).read_text()
    categories = '[["web", "phone", "multichannel"], ["mens", "womens", "both"]]'
    assert f"pandas_categorical:{categories}" in text


def test_save_needs_an_existing_empty_directory(small_fitted, tmp_path):
    model = small_fitted["constant"]
    with pytest.raises(BundleError, match="not an existing directory"):
        model.save(tmp_path / "nope")
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(BundleError, match="directory is not empty"):
        model.save(tmp_path)


def test_load_warns_on_version_and_rejects_class_mismatch(small_fitted, tmp_path):
    small_fitted["constant"].save(tmp_path)
    path = tmp_path / "model.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "promolift_version": "0.0.1"}))
    with pytest.warns(BundleVersionWarning, match="saved by promolift 0.0.1"):
        load_model(tmp_path)
    path.write_text(json.dumps({**manifest, "class": "TLearner"}))
    with pytest.raises(BundleError, match="kind 'constant' is ConstantModel in this promolift"):
        load_model(tmp_path)


def test_load_rejects_missing_corrupt_and_unknown(small_fitted, tmp_path):
    with pytest.raises(BundleError, match="no model.json"):
        load_model(tmp_path)
    small_fitted["t"].save(tmp_path)
    booster = next(tmp_path.glob("booster_*.txt"))
    booster.write_text(booster.read_text().replace("num_leaves", "num_leafs", 1))
    with pytest.raises(BundleError, match="SHA-256 does not match"):
        load_model(tmp_path)
    manifest = json.loads((tmp_path / "model.json").read_text())
    manifest["kind"] = "xx"
    (tmp_path / "model.json").write_text(json.dumps(manifest))
    message = "unknown model kind 'xx'; known kinds: constant, deep, dr, relative, t, x. Did you mean 'x'"
    with pytest.raises(BundleError, match=message):
        load_model(tmp_path)


def test_relative_model_recovers_proportional_effects():
    """When every arm multiplies the outcome, the relative model recovers levels and ratios."""
    rng = np.random.default_rng(3)
    n = 12000
    X = pd.DataFrame({"x": rng.uniform(0, 2, n), "z": rng.normal(size=n)})
    t = rng.integers(0, 3, n)
    ratio = np.array([1.0, 1.5, 0.8])
    base = np.exp(X["x"].to_numpy())
    y = rng.poisson(base * ratio[t]).astype(float)
    model = RelativeModel(n_estimators=100).fit(X, y, treatment=t)
    pred = model.predict(X)[:, :, 0]
    truth = base[:, None] * ratio[None]
    np.testing.assert_allclose(model.factors_[:, 0] / model.factors_[0, 0], ratio, rtol=0.06)
    assert np.corrcoef(pred[:, 1] - pred[:, 0], truth[:, 1] - truth[:, 0])[0, 1] > 0.9
