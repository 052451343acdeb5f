"""Multi-arm, multi-outcome response models: a constant baseline and three LightGBM
meta-learners (T, X and doubly robust).

All of them predict levels, not only differences: ``predict(X)[:, k, m]`` is the expected
outcome ``m`` under arm ``k`` (arm 0 = control), so economics can price every arm directly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from promolift.models.base import Interval, Options, ResponseModel, TrainingData
from promolift.models.lgbm import Component, LGBMSettings, fit_component, run_parallel

__all__ = ["ConstantModel", "DRLearner", "RelativeModel", "TLearner", "XLearner"]


@dataclass(frozen=True)
class _Cell:
    """One model to fit: rows (already sliced), target, and how to model it."""

    X: pd.DataFrame
    y: np.ndarray
    outcome_type: str
    hurdle: bool
    settings: LGBMSettings
    label: str


def _fit_cells(
    cells: list[_Cell], rng: np.random.Generator, n_jobs: int
) -> tuple[list[Component], list[str]]:
    """Fit independent cells in parallel; each gets its own child generator, so the result
    does not depend on thread scheduling. Returns the components and the fallback notes."""
    rngs = rng.spawn(len(cells))
    tasks = [
        partial(
            fit_component, c.X, c.y, outcome_type=c.outcome_type, hurdle=c.hurdle,
            settings=c.settings, rng=r, label=c.label,
        )
        for c, r in zip(cells, rngs, strict=True)
    ]
    results = run_parallel(tasks, n_jobs)
    return [comp for comp, _ in results], [note for _, notes in results for note in notes]


def _predict_cells(cells: list[list[Component]], X: np.ndarray, n_jobs: int) -> np.ndarray:
    """Stack component predictions into ``(n, len(cells), M)``."""
    flat = [component for row in cells for component in row]
    preds = run_parallel([partial(component.predict, X) for component in flat], n_jobs)
    return np.stack(preds, axis=1).reshape(len(X), len(cells), len(cells[0]))


def _grid(flat: list[Any], n_cols: int) -> list[list[Any]]:
    return [flat[i : i + n_cols] for i in range(0, len(flat), n_cols)]


class ConstantModel(ResponseModel):
    """Per-arm mean of every outcome: the "one arm for everybody" baseline.

    Every row gets the same prediction. With known ``propensity`` the means are
    inverse-propensity weighted (Hajek), so they stay unbiased under unequal assignment.

    Parameters
    ----------
    n_arms : int, default=None
        Number of arms K; ``None`` uses ``treatment.max() + 1``.

    Attributes
    ----------
    means_ : numpy.ndarray of shape (K, M)
        Mean of each outcome in each arm.

    See Also
    --------
    TLearner : Per-customer predictions.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import ConstantModel
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    >>> model = ConstantModel().fit(X, [1.0, 0.0, 1.0, 1.0], treatment=np.array([0, 0, 1, 1]))
    >>> model.predict(X).shape
    (4, 2, 1)
    >>> model.predict(X)[0, :, 0].tolist()
    [0.5, 1.0]
    """

    _kind: ClassVar[str] = "constant"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_arms": [None, Interval(Integral, 2, None)],
    }
    _model_attrs: ClassVar[tuple[str, ...]] = ("means_",)

    def __init__(self, *, n_arms: int | None = None) -> None:
        self.n_arms = n_arms

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        K = data.n_arms
        rows = np.arange(len(data.treatment))
        w = 1.0 / data.propensity[rows, data.treatment]
        onehot = np.zeros((len(rows), K))
        onehot[rows, data.treatment] = w
        means = (onehot.T @ data.Y) / onehot.sum(axis=0)[:, None]
        return {"means_": means}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.repeat(self.means_[None, :, :], len(X), axis=0)


class _LGBMLearner(ResponseModel):
    """Shared hyperparameters and outcome models (μ_k) of the LightGBM meta-learners."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_arms": [None, Interval(Integral, 2, None)],
        "spend_model": [Options(("hurdle", "direct"))],
        "balance_classes": [Options((False, True))],
        "n_estimators": [Interval(Integral, 1, None)],
        "learning_rate": [Interval(Real, 0, 1, closed="right")],
        "num_leaves": [Interval(Integral, 2, 131072)],
        "min_child_samples": [Interval(Integral, 1, None)],
        "early_stopping_rounds": [None, Interval(Integral, 1, None)],
        "validation_fraction": [Interval(Real, 0, 0.5, closed="right")],
        "n_jobs": [Interval(Integral, 1, None)],
        "random_state": [None, Interval(Integral, 0, 2**32 - 1)],
    }

    def __init__(
        self,
        *,
        n_arms: int | None = None,
        spend_model: str = "hurdle",
        balance_classes: bool = False,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        early_stopping_rounds: int | None = 30,
        validation_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int | None = 0,
    ) -> None:
        self.n_arms = n_arms
        self.spend_model = spend_model
        self.balance_classes = balance_classes
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _settings(self) -> LGBMSettings:
        return LGBMSettings(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            early_stopping_rounds=self.early_stopping_rounds,
            validation_fraction=self.validation_fraction,
            balance_classes=self.balance_classes,
        )

    def _hurdle_outcomes(self, data: TrainingData) -> np.ndarray:
        """Continuous, non-negative outcomes with >= 50% zeros (if spend_model="hurdle")."""
        Y = data.Y
        continuous = np.array([t == "continuous" for t in data.outcome_types])
        zero_inflated = ((Y == 0).mean(axis=0) >= 0.5) & (Y >= 0).all(axis=0)
        return continuous & zero_inflated & (self.spend_model == "hurdle")

    def _outcome_cells(
        self,
        data: TrainingData,
        *,
        hurdle: np.ndarray,
        include: np.ndarray | None = None,
        label: str = "",
    ) -> list[_Cell]:
        """T-learner stage, arm-major: the cell of (arm k, outcome m) is ``k * M + m``, fitted
        on the rows of arm k (restricted to ``include``)."""
        settings = self._settings()
        cells = []
        for k in range(data.n_arms):
            mask = data.treatment == k
            if include is not None:
                mask &= include
            rows = np.flatnonzero(mask)
            X = data.X.iloc[rows]
            cells.extend(
                _Cell(
                    X, data.Y[rows, m], data.outcome_types[m], bool(hurdle[m]), settings,
                    f"{label}arm {k}, outcome {m}",
                )
                for m in range(data.n_outcomes)
            )
        return cells


class _EffectLearner(_LGBMLearner):
    """Learners with a second stage that regresses imputed effects (X) or pseudo-outcomes (DR)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_LGBMLearner._parameter_constraints,
        "effect_min_child_samples": [
            Interval(Integral, 1, None),
            Interval(Real, 0, 0.5, closed="neither"),
        ],
    }

    def __init__(
        self,
        *,
        n_arms: int | None = None,
        spend_model: str = "hurdle",
        balance_classes: bool = False,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        early_stopping_rounds: int | None = 30,
        validation_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int | None = 0,
        effect_min_child_samples: int | float = 0.1,
    ) -> None:
        super().__init__(
            n_arms=n_arms,
            spend_model=spend_model,
            balance_classes=balance_classes,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            early_stopping_rounds=early_stopping_rounds,
            validation_fraction=validation_fraction,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        self.effect_min_child_samples = effect_min_child_samples

    def _effect_cells(
        self, data: TrainingData, rows: np.ndarray, target: np.ndarray, *, label: str
    ) -> list[_Cell]:
        """L2 regressions of an imputed effect or pseudo-outcome ``target`` (len(rows), M) on X.

        The target is a noisy difference whose noise dwarfs the effect, so leaves are larger
        than in the outcome models: ``effect_min_child_samples`` (a count, or a fraction of
        ``rows``), never below ``min_child_samples``.
        """
        leaf = self.effect_min_child_samples
        if isinstance(leaf, float):
            leaf = math.ceil(leaf * len(rows))
        settings = dataclasses.replace(
            self._settings(), min_child_samples=max(self.min_child_samples, int(leaf))
        )
        X = data.X.iloc[rows]
        return [
            _Cell(X, target[:, m], "continuous", False, settings, f"{label}outcome {m}")
            for m in range(target.shape[1])
        ]

_LEARNER_PARAMS_DOC = """
    Parameters
    ----------
    n_arms : int, default=None
        Number of arms K; ``None`` uses ``treatment.max() + 1``.
    spend_model : {"hurdle", "direct"}, default="hurdle"
        How outcome models treat a continuous outcome with >= 50% zeros and no negative values
        (spend): ``"hurdle"`` models ``P(y > 0 | x, arm) * E[y | y > 0, x, arm]`` (a classifier
        on the arm's rows times a regressor on its positive rows, or a constant conditional mean
        when the arm has fewer than ``2 * min_child_samples`` positive rows -- see
        ``fallbacks_``); ``"direct"`` fits one L2 regressor.
    balance_classes : bool, default=False
        Weight the positives of binary outcomes by neg/pos and correct the predicted odds back
        to the original prior. The default (no reweighting) keeps probabilities calibrated.
    n_estimators : int, default=300
        Maximum boosting rounds per LightGBM model.
    learning_rate : float, default=0.05
        Boosting learning rate, in (0, 1].
    num_leaves : int, default=31
        Maximum leaves per tree.
    min_child_samples : int, default=50
        Minimum rows per leaf; a model with fewer than twice as many rows is a constant.
    early_stopping_rounds : int or None, default=30
        Stop when the validation loss has not improved for this many rounds and keep the best
        iteration (no refit). ``None`` trains ``n_estimators`` rounds on all rows.
    validation_fraction : float, default=0.2
        Share of each model's rows held out for early stopping (stratified on binary labels).
    n_jobs : int, default=2
        LightGBM models fitted (and predicted) side by side, each single-threaded. Across
        models this beats multi-threaded boosting on per-arm data and stays fast on a busy
        machine; results do not depend on it.
    random_state : int or None, default=0
        Seed of the validation splits, folds and LightGBM.
"""

_EFFECT_PARAMS_DOC = """    effect_min_child_samples : int or float, default=0.1
        Minimum rows per leaf of the effect (second-stage) models, as a count or, if a float
        in (0, 0.5), a fraction of that model's rows; never below ``min_child_samples``. The
        imputed effects and pseudo-outcomes are far noisier than the effect itself, so these
        leaves must average many rows.
"""


class TLearner(_LGBMLearner):
    __doc__ = (
        """T-learner: one LightGBM model per arm and outcome, fitted on that arm's rows.

    ``predict(X)[:, k, m]`` is the arm-k model of outcome m.
    """
        + _LEARNER_PARAMS_DOC
        + """
    Attributes
    ----------
    mu_ : list of list of Component
        ``mu_[k][m]``: the model of outcome m on the rows of arm k.
    hurdle_outcomes_ : numpy.ndarray of bool, shape (M,)
        Outcomes modelled as a hurdle.
    fallbacks_ : list of str
        Models replaced by constants (too few rows, a single class, too few positive rows).

    See Also
    --------
    XLearner, DRLearner : Learners that model the effect directly.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import TLearner
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=2000)})
    >>> t = rng.integers(0, 2, size=2000)
    >>> y = (rng.random(2000) < 0.2 + 0.2 * t * (X["x"] > 0)).astype(float)
    >>> model = TLearner(n_estimators=50).fit(X, y, treatment=t)
    >>> uplift = model.predict(X)[:, 1, 0] - model.predict(X)[:, 0, 0]
    >>> bool(uplift[X["x"] > 0].mean() > uplift[X["x"] <= 0].mean())
    True
    """
    )

    _kind: ClassVar[str] = "t"
    _model_attrs: ClassVar[tuple[str, ...]] = ("mu_", "hurdle_outcomes_", "fallbacks_")

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        rng = np.random.default_rng(self.random_state)
        hurdle = self._hurdle_outcomes(data)
        mu, notes = _fit_cells(self._outcome_cells(data, hurdle=hurdle), rng, self.n_jobs)
        return {"mu_": _grid(mu, data.n_outcomes), "hurdle_outcomes_": hurdle, "fallbacks_": notes}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return _predict_cells(self.mu_, X, self.n_jobs)


class RelativeModel(_LGBMLearner):
    __doc__ = (
        """Relative-effect model: every arm multiplies the customer's expected outcome by the
    same factor, ``μ_k(x) = base(x) · r_k``.

    ``base`` is one LightGBM model per outcome fitted on the rows of *all* arms (three times the
    data of a per-arm model, and none of the noise of a per-customer difference); ``r_k`` is
    arm k's mean outcome relative to the assignment-weighted mean over arms (inverse-propensity
    weighted). Under randomization the pooled model estimates ``Σ_j e_j μ_j(x)``, so the levels
    are exact when effects are proportional. It ranks customers by how much they are expected
    to buy anyway -- a strong, low-variance target for shrinking the per-customer learners.
    """
        + _LEARNER_PARAMS_DOC
        + """
    Attributes
    ----------
    mu_ : list of list of Component
        ``mu_[0][m]``: the pooled model of outcome m.
    factors_ : numpy.ndarray of shape (K, M)
        ``r_k`` per arm and outcome.
    means_ : numpy.ndarray of shape (K, M)
        Mean outcome per arm (inverse-propensity weighted); :meth:`per_unit` divides by one.
    hurdle_outcomes_ : numpy.ndarray of bool, shape (M,)
    fallbacks_ : list of str

    See Also
    --------
    ConstantModel : The same effect for everybody, in absolute terms.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import RelativeModel
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.uniform(size=3000)})
    >>> t = rng.integers(0, 2, size=3000)
    >>> y = rng.poisson(X["x"] * (1 + t)).astype(float)     # the arm doubles the outcome
    >>> model = RelativeModel(n_estimators=50).fit(X, y, treatment=t)
    >>> ratio = model.factors_[1, 0] / model.factors_[0, 0]
    >>> bool(1.8 < ratio < 2.2)
    True
    """
    )

    _kind: ClassVar[str] = "relative"
    _model_attrs: ClassVar[tuple[str, ...]] = ("mu_", "factors_", "means_", "hurdle_outcomes_", "fallbacks_")

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        rng = np.random.default_rng(self.random_state)
        hurdle = self._hurdle_outcomes(data)
        settings = self._settings()
        cells = [
            _Cell(data.X, data.Y[:, m], data.outcome_types[m], bool(hurdle[m]), settings, f"pooled, outcome {m}")
            for m in range(data.n_outcomes)
        ]
        mu, notes = _fit_cells(cells, rng, self.n_jobs)
        means = ConstantModel()._fit(data)["means_"]
        shares = data.propensity.mean(axis=0)
        pooled = shares @ means
        factors = np.divide(means, pooled, out=np.ones_like(means), where=pooled != 0)
        return {"mu_": [mu], "factors_": factors, "means_": means, "hurdle_outcomes_": hurdle, "fallbacks_": notes}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return _predict_cells(self.mu_, X, self.n_jobs) * self.factors_[None]

    def per_unit(self, outcome: int) -> np.ndarray:
        """(K, M) mean of every outcome per unit of ``outcome`` in each arm, e.g. spend per visit."""
        self._check_is_fitted()
        return per_unit(self.means_, outcome)


def per_unit(means: np.ndarray, outcome: int) -> np.ndarray:
    """(K, M) ratio of each arm's mean outcomes to its mean of ``outcome`` (0 where that is 0)."""
    means = np.asarray(means, dtype=np.float64)
    unit = means[:, [outcome]]
    return np.divide(means, unit, out=np.zeros_like(means), where=unit > 0)


class XLearner(_EffectLearner):
    __doc__ = (
        """X-learner (Künzel et al. 2019) for several arms, each against the control.

    Stage 1 fits T-learner outcome models μ_k. For each promotion arm k, the imputed effects
    ``D1 = Y - μ_0(X)`` on arm-k rows and ``D0 = μ_k(X) - Y`` on control rows are regressed on X
    (τ1_k, τ0_k) and combined as ``τ_k = g τ0_k + (1 - g) τ1_k`` with ``g = e_k / (e_k + e_0)``
    (mean assignment probabilities). Levels: ``pred[:, 0] = μ_0(x)``,
    ``pred[:, k] = μ_0(x) + τ_k(x)``, clipped to [0, 1] for binary outcomes and at 0 for
    non-negative ones.
    """
        + _LEARNER_PARAMS_DOC
        + _EFFECT_PARAMS_DOC
        + """
    Attributes
    ----------
    mu_control_ : list of Component
        μ_0 per outcome.
    tau_treated_ : list of list of Component
        ``tau_treated_[k - 1][m]``: τ1 of arm k (fitted on arm-k rows).
    tau_control_ : list of list of Component
        ``tau_control_[k - 1][m]``: τ0 of arm k (fitted on control rows).
    weights_ : numpy.ndarray of shape (K - 1,)
        g of each promotion arm.
    hurdle_outcomes_ : numpy.ndarray of bool, shape (M,)
        Outcomes whose μ models are hurdles.
    fallbacks_ : list of str
        Models replaced by constants.

    See Also
    --------
    TLearner, DRLearner

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import XLearner
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=3000)})
    >>> t = rng.integers(0, 3, size=3000)  # control and two promotions
    >>> y = (rng.random(3000) < 0.2 + 0.2 * (t == 1) * (X["x"] > 0)).astype(float)
    >>> pred = XLearner(n_estimators=50).fit(X, y, treatment=t).predict(X)
    >>> pred.shape
    (3000, 3, 1)
    >>> uplift = pred[:, 1, 0] - pred[:, 0, 0]
    >>> bool(uplift[X["x"] > 0].mean() > uplift[X["x"] <= 0].mean() + 0.1)
    True
    """
    )

    _kind: ClassVar[str] = "x"
    _model_attrs: ClassVar[tuple[str, ...]] = (
        "mu_control_",
        "tau_treated_",
        "tau_control_",
        "weights_",
        "hurdle_outcomes_",
        "fallbacks_",
    )

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        rng = np.random.default_rng(self.random_state)
        K, M = data.n_arms, data.n_outcomes
        hurdle = self._hurdle_outcomes(data)
        flat, notes = _fit_cells(self._outcome_cells(data, hurdle=hurdle), rng, self.n_jobs)
        mu = _grid(flat, M)
        control = np.flatnonzero(data.treatment == 0)
        treated = np.flatnonzero(data.treatment != 0)
        mu0 = np.empty((len(data.treatment), M))  # μ_0 where it imputes: the treated rows
        mu0[treated] = _predict_cells(mu[:1], data.X.iloc[treated], self.n_jobs)[:, 0]
        mu_on_control = _predict_cells(mu[1:], data.X.iloc[control], self.n_jobs)  # μ_1..μ_K-1
        cells = []
        for k in range(1, K):
            rows = np.flatnonzero(data.treatment == k)
            d1 = data.Y[rows] - mu0[rows]  # observed minus imputed control outcome
            d0 = mu_on_control[:, k - 1] - data.Y[control]  # imputed arm-k outcome minus observed
            cells += self._effect_cells(data, rows, d1, label=f"tau1 arm {k}, ")
            cells += self._effect_cells(data, control, d0, label=f"tau0 arm {k}, ")
        tau, tau_notes = _fit_cells(cells, rng, self.n_jobs)
        pairs = _grid(tau, 2 * M)  # per arm: M tau1 then M tau0
        shares = data.propensity.mean(axis=0)
        return {
            "mu_control_": mu[0],
            "tau_treated_": [pair[:M] for pair in pairs],
            "tau_control_": [pair[M:] for pair in pairs],
            "weights_": shares[1:] / (shares[1:] + shares[0]),
            "hurdle_outcomes_": hurdle,
            "fallbacks_": notes + tau_notes,
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        K1 = len(self.tau_treated_)
        cells = [self.mu_control_, *self.tau_treated_, *self.tau_control_]
        preds = _predict_cells(cells, X, self.n_jobs)
        base, tau1, tau0 = preds[:, :1], preds[:, 1 : 1 + K1], preds[:, 1 + K1 :]
        g = np.asarray(self.weights_, dtype=np.float64)[None, :, None]
        return np.concatenate([base, base + g * tau0 + (1.0 - g) * tau1], axis=1)


class DRLearner(_EffectLearner):
    __doc__ = (
        """Doubly robust (DR) learner (Kennedy 2023) for several arms, each against the control.

    Cross-fitting over ``n_folds`` folds (stratified by arm) gives out-of-fold outcome
    predictions μ_k for every row; the pseudo-outcome
    ``φ_k = μ_k - μ_0 + 1[T=k](Y - μ_k)/e_k - 1[T=0](Y - μ_0)/e_0`` is regressed on X to get
    τ_k. Levels: ``pred[:, 0] = μ_0(x)`` (average of the fold models),
    ``pred[:, k] = μ_0(x) + τ_k(x)``, clipped like the X-learner's.
    """
        + _LEARNER_PARAMS_DOC
        + _EFFECT_PARAMS_DOC
        + """    n_folds : int, default=3
        Cross-fitting folds.

    Attributes
    ----------
    mu_control_folds_ : list of list of Component
        ``mu_control_folds_[f][m]``: μ_0 fitted without fold f.
    tau_ : list of list of Component
        ``tau_[k - 1][m]``: regression of the pseudo-outcome of arm k.
    hurdle_outcomes_ : numpy.ndarray of bool, shape (M,)
        Outcomes whose μ models are hurdles.
    fallbacks_ : list of str
        Models replaced by constants.

    See Also
    --------
    TLearner, XLearner

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import DRLearner
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=3000)})
    >>> t = rng.integers(0, 2, size=3000)
    >>> y = (rng.random(3000) < 0.2 + 0.2 * t * (X["x"] > 0)).astype(float)
    >>> model = DRLearner(n_estimators=50, n_folds=2).fit(X, y, treatment=t)
    >>> uplift = model.predict(X)[:, 1, 0] - model.predict(X)[:, 0, 0]
    >>> bool(uplift[X["x"] > 0].mean() > uplift[X["x"] <= 0].mean() + 0.1)
    True
    """
    )

    _kind: ClassVar[str] = "dr"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_EffectLearner._parameter_constraints,
        "n_folds": [Interval(Integral, 2, 20)],
    }
    _model_attrs: ClassVar[tuple[str, ...]] = (
        "mu_control_folds_",
        "tau_",
        "hurdle_outcomes_",
        "fallbacks_",
    )

    def __init__(
        self,
        *,
        n_arms: int | None = None,
        spend_model: str = "hurdle",
        balance_classes: bool = False,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        early_stopping_rounds: int | None = 30,
        validation_fraction: float = 0.2,
        n_jobs: int = 2,
        random_state: int | None = 0,
        effect_min_child_samples: int | float = 0.1,
        n_folds: int = 3,
    ) -> None:
        super().__init__(
            n_arms=n_arms,
            spend_model=spend_model,
            balance_classes=balance_classes,
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=num_leaves,
            min_child_samples=min_child_samples,
            early_stopping_rounds=early_stopping_rounds,
            validation_fraction=validation_fraction,
            n_jobs=n_jobs,
            random_state=random_state,
            effect_min_child_samples=effect_min_child_samples,
        )
        self.n_folds = n_folds

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        rng = np.random.default_rng(self.random_state)
        hurdle = self._hurdle_outcomes(data)
        n, K, M = data.Y.shape[0], data.n_arms, data.n_outcomes
        fold = np.empty(n, dtype=np.int64)
        for k in range(K):  # folds stratified by arm
            rows = rng.permutation(np.flatnonzero(data.treatment == k))
            fold[rows] = np.arange(len(rows)) % self.n_folds
        cells = []
        for f in range(self.n_folds):
            cells += self._outcome_cells(
                data, hurdle=hurdle, include=fold != f, label=f"fold {f}, "
            )
        flat, notes = _fit_cells(cells, rng, self.n_jobs)
        per_fold = [_grid(flat[f * K * M : (f + 1) * K * M], M) for f in range(self.n_folds)]
        mu_oof = np.empty((n, K, M))
        for f, mu in enumerate(per_fold):
            held = np.flatnonzero(fold == f)
            mu_oof[held] = _predict_cells(mu, data.X.iloc[held], self.n_jobs)
        resid = data.Y[:, None, :] - mu_oof  # (n, K, M)
        onehot = np.zeros((n, K))
        onehot[np.arange(n), data.treatment] = 1.0
        ipw = (onehot / data.propensity)[:, :, None] * resid  # 1[T=k] (Y - μ_k) / e_k
        phi = (mu_oof[:, 1:] - mu_oof[:, :1]) + ipw[:, 1:] - ipw[:, :1]  # (n, K-1, M)
        everyone = np.arange(n)
        cells = []
        for k in range(1, K):
            cells += self._effect_cells(data, everyone, phi[:, k - 1], label=f"tau arm {k}, ")
        tau, tau_notes = _fit_cells(cells, rng, self.n_jobs)
        return {
            "mu_control_folds_": [mu[0] for mu in per_fold],
            "tau_": _grid(tau, M),
            "hurdle_outcomes_": hurdle,
            "fallbacks_": notes + tau_notes,
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        n_folds = len(self.mu_control_folds_)
        preds = _predict_cells([*self.mu_control_folds_, *self.tau_], X, self.n_jobs)
        base = preds[:, :n_folds].mean(axis=1, keepdims=True)
        return np.concatenate([base, base + preds[:, n_folds:]], axis=1)
