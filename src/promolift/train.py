"""Train a campaign: cross-validate every model kind, choose the policy, fit, bundle.

One function, :func:`train`, used by the CLI, the Python API and the benchmarks alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from promolift.bundle import ModelBundle, OutOfFold, funnel_per_unit, with_derived
from promolift.config import CampaignConfig
from promolift.data.encode import FeatureEncoder
from promolift.data.load import CampaignData, load_campaign
from promolift.economics import Economics
from promolift.evaluate.metrics import uplift_report
from promolift.evaluate.scores import outcome_scores
from promolift.explain import BACKGROUND_KEY, background_sample
from promolift.models import make_model
from promolift.selection import Constraints, candidates, select

__all__ = ["train", "cross_validate", "fitted_kinds", "stratification_label", "arm_propensity"]

CALIBRATION_RANGE = (0.5, 2.0)


def stratification_label(data: CampaignData, config: CampaignConfig) -> np.ndarray:
    """Arm × converted, the label that splits and folds are stratified by."""
    conv = config.economics.conversion_outcome or config.economics.value_outcome
    positive = data.Y[:, config.outcome_names.index(conv)] > 0
    return data.treatment.astype(np.int64) * 2 + positive


def arm_propensity(data: CampaignData) -> np.ndarray:
    """Assignment probabilities (n, K): the logged ones, or the arm shares (randomized design)."""
    if data.propensity is not None:
        return data.propensity
    shares = np.bincount(data.treatment, minlength=data.n_arms) / len(data)
    return np.broadcast_to(shares, (len(data), data.n_arms)).copy()


def model_params(config: CampaignConfig, kind: str) -> dict:
    """Hyperparameters ``train`` gives model ``kind`` under ``config``.

    The deep network chains the conversion through the configured funnel outcome
    (``P(conversion) = P(visit) · P(conversion | visit)``) when both are set.
    """
    m = config.model
    if kind == "constant":
        return {}
    if kind == "deep":
        conv = config.economics.conversion_outcome
        chain = None
        if config.funnel is not None and conv is not None:
            chain = (config.funnel[0], config.outcome_names.index(conv))
        return {"random_state": m.random_state, "chain": chain}
    return {"n_estimators": m.n_estimators, "learning_rate": m.learning_rate, "num_leaves": m.num_leaves,
            "min_child_samples": m.min_child_samples, "spend_model": m.spend_model,
            "random_state": m.random_state}


def fitted_kinds(config: CampaignConfig) -> list[str]:
    """The model kinds ``train`` fits: the configured ones, ``constant`` always included."""
    return list(dict.fromkeys(["constant", *config.model.kinds]))


def cross_validate(
    config: CampaignConfig,
    data: CampaignData,
    Xe: pd.DataFrame,
    *,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Out-of-fold predictions (n, K, M) of every configured kind, folds stratified by arm × conversion."""
    kinds = fitted_kinds(config)
    folds = StratifiedKFold(config.model.n_folds, shuffle=True, random_state=config.model.random_state)
    shape = (len(data), data.n_arms, len(data.outcomes))
    oof = {k: np.empty(shape) for k in kinds}
    propensity = arm_propensity(data)
    for i, (tr, te) in enumerate(folds.split(np.zeros(len(data)), stratification_label(data, config))):
        for kind in kinds:
            model = make_model(kind, **model_params(config, kind))
            model.fit(Xe.iloc[tr], data.Y[tr], treatment=data.treatment[tr],
                      outcome_types=data.outcome_types, propensity=propensity[tr])
            oof[kind][te] = model.predict(Xe.iloc[te])
            if on_step:
                on_step(f"fold {i + 1}/{config.model.n_folds}: {kind}")
    return oof


def calibration_factors(pred: np.ndarray, Y: np.ndarray, treatment: np.ndarray) -> np.ndarray:
    """Per arm × outcome ratio of observed to predicted totals on the arm's own rows, clipped.

    Expected cost drives the budget, so predicted outcome levels must add up to what happens.
    """
    K = pred.shape[1]
    factors = np.ones((K, Y.shape[1]))
    for k in range(K):
        rows = treatment == k
        predicted = pred[rows, k].sum(axis=0)
        ok = predicted > 0
        factors[k, ok] = Y[rows].sum(axis=0)[ok] / predicted[ok]
    return np.clip(factors, *CALIBRATION_RANGE)


def train(
    config: CampaignConfig,
    data: CampaignData | None = None,
    *,
    on_step: Callable[[str], None] | None = None,
) -> ModelBundle:
    """Fit every configured model kind, choose the policy by cross-validated profit, and bundle.

    Parameters
    ----------
    config : CampaignConfig
    data : CampaignData, optional
        Defaults to ``load_campaign(config.data.path, config)``.
    on_step : callable, optional
        Called with a short label after each model fit (drives progress bars).

    Returns
    -------
    ModelBundle
        Not yet saved: call ``bundle.save(path)``.
    """
    if data is None:
        data = load_campaign(None, config)
    encoder = FeatureEncoder(categorical=config.data.categorical).fit(data.X)
    Xe = encoder.transform(data.X, source=data.source)
    propensity = arm_propensity(data)

    raw_oof = cross_validate(config, data, Xe, on_step=on_step)
    calibration = {k: calibration_factors(p, data.Y, data.treatment) for k, p in raw_oof.items()}
    economics = Economics.from_config(config).for_customers(data.X)

    models = {}
    for kind in fitted_kinds(config):
        models[kind] = make_model(kind, **model_params(config, kind)).fit(
            Xe, data.Y, treatment=data.treatment, outcome_types=data.outcome_types, propensity=propensity)
        if on_step:
            on_step(f"final fit: {kind}")
    # relative@funnel uses the arms' mean outcomes per funnel unit: the training data's, as served
    oof = OutOfFold(predictions=with_derived({k: p * calibration[k] for k, p in raw_oof.items()}, config.funnel,
                                             funnel_per_unit(models, config)),
                    Y=data.Y, treatment=data.treatment, propensity=propensity,
                    conversion_value=economics.conversion_value)

    cands = candidates(list(models), funnel=config.model.funnel_outcome)
    table, best = select(oof, economics, Constraints(), cands)
    metrics = {
        "n_rows": len(data),
        "n_folds": config.model.n_folds,
        "selection_unconstrained": _records(table),
        "chosen": {"candidate": best["candidate"], "weights": best["weights"]},
        "uplift": {k: _records(uplift_report(data.Y, p - p[:, :1], data.treatment, arms=list(data.arms),
                                             outcomes=list(data.outcomes)))
                   for k, p in oof.predictions.items() if k != "constant" and "@" not in k},
        "outcome_scores": {k: _records(outcome_scores(p, data.Y, data.treatment, arms=list(data.arms),
                                                       outcomes=list(data.outcomes),
                                                       outcome_types=list(data.outcome_types)))
                           for k, p in oof.predictions.items() if "@" not in k},
        # reference customers for explanations (promolift.explain): raw features only, no ids
        BACKGROUND_KEY: background_sample(data.X, random_state=config.model.random_state),
    }
    return ModelBundle(
        config=config, encoder=encoder, models=models, weights=dict(best["weights"]), oof=oof,
        calibration=calibration, metrics=metrics, fingerprint=data.fingerprint,
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.replace({np.nan: None}).to_dict(orient="records")
