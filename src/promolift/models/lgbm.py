"""LightGBM building blocks for the response models: fitted *components* that map ``X`` to one
expected outcome, and the functions that fit them.

A component is one of

- :class:`ConstantComponent` -- the same value for every row (fallback when a cell has too few
  rows or a single class),
- :class:`BoosterComponent` -- one LightGBM booster (binary log-loss or L2 regression),
- :class:`HurdleComponent` -- ``P(y > 0 | x) * E[y | y > 0, x]`` for zero-inflated spend.

Every component predicts a float64 vector and serialises to a JSON spec plus LightGBM model text
(never pickle), so a saved model is readable, diffable and safe to load. LightGBM is imported
lazily: importing :mod:`promolift.models` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import lightgbm as lgb

__all__ = [
    "BoosterComponent",
    "Component",
    "ConstantComponent",
    "HurdleComponent",
    "LGBMSettings",
    "component_from_spec",
    "fit_component",
    "run_parallel",
]

Objective = Literal["binary", "regression"]
T = TypeVar("T")


class ArtifactWriter(Protocol):
    """Where components put their LightGBM model text when a model is saved."""

    def add_text(self, stem: str, text: str) -> str:
        """Store ``text`` and return the file name it will have in the model directory."""
        ...


class ArtifactReader(Protocol):
    """Reads back what :class:`ArtifactWriter` stored (integrity-checked)."""

    def read_text(self, name: str) -> str:
        """Return the text of the file ``name`` of the model directory."""
        ...


@dataclass(frozen=True)
class LGBMSettings:
    """The LightGBM hyperparameters shared by every booster of one response model."""

    n_estimators: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    early_stopping_rounds: int | None = 30
    validation_fraction: float = 0.2
    balance_classes: bool = False

    def booster_params(self, objective: Objective, seed: int) -> dict[str, Any]:
        """LightGBM ``params`` for one booster (canonical names, so no alias warnings).

        Boosters are single-threaded; parallelism is across boosters (:func:`run_parallel`).
        """
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "num_threads": 1,
            "seed": seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }


class Component(Protocol):
    """A fitted map from features to one expected outcome."""

    kind: ClassVar[str]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected outcome per row, float64 of shape ``(n,)``."""
        ...

    def to_spec(self, writer: ArtifactWriter) -> dict[str, Any]:
        """JSON-able description; LightGBM text goes through ``writer``."""
        ...


@dataclass(frozen=True)
class ConstantComponent:
    """Predicts ``value`` for every row."""

    value: float
    kind: ClassVar[str] = "constant"

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.value, dtype=np.float64)

    def to_spec(self, writer: ArtifactWriter) -> dict[str, Any]:
        return {"type": self.kind, "value": float(self.value)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], reader: ArtifactReader) -> ConstantComponent:
        return cls(value=float(spec["value"]))


@dataclass(frozen=True)
class BoosterComponent:
    """One LightGBM booster, truncated at its best iteration.

    A binary booster trained with positives weighted by ``w`` (``balance_classes``) estimates
    the weighted odds ``w * p / (1 - p)``; :meth:`predict` divides the odds by ``odds_divisor``
    (``w``, fine-tuned at fit so that the mean predicted probability on the training rows equals
    the observed rate), which restores probabilities on the original class prior.
    """

    booster: lgb.Booster
    objective: Objective
    num_iteration: int
    odds_divisor: float = 1.0
    kind: ClassVar[str] = "booster"

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        # one thread: parallelism is across boosters (run_parallel); OpenMP threads for a few
        # rows cost far more than they save, above all on a busy machine
        pred = self.booster.predict(X, num_iteration=self.num_iteration, num_threads=1)
        pred = np.asarray(pred, dtype=np.float64)
        if self.objective == "binary" and self.odds_divisor != 1.0:
            pred = _divide_odds(pred, self.odds_divisor)
        return pred

    def to_spec(self, writer: ArtifactWriter) -> dict[str, Any]:
        text = self.booster.model_to_string(num_iteration=self.num_iteration)
        return {
            "type": self.kind,
            "file": writer.add_text("booster", text),
            "objective": self.objective,
            "num_iteration": int(self.num_iteration),
            "odds_divisor": float(self.odds_divisor),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any], reader: ArtifactReader) -> BoosterComponent:
        import lightgbm as lgb

        booster = lgb.Booster(model_str=reader.read_text(spec["file"]))
        return cls(
            booster=booster,
            objective=spec["objective"],
            num_iteration=int(spec["num_iteration"]),
            odds_divisor=float(spec["odds_divisor"]),
        )


@dataclass(frozen=True)
class HurdleComponent:
    """``P(y > 0 | x) * E[y | y > 0, x]``: a classifier on all rows times a regressor on the
    positive rows (or a constant conditional mean when there are too few of them)."""

    positive: Component
    amount: Component
    kind: ClassVar[str] = "hurdle"

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.positive.predict(X) * self.amount.predict(X)

    def to_spec(self, writer: ArtifactWriter) -> dict[str, Any]:
        return {
            "type": self.kind,
            "positive": self.positive.to_spec(writer),
            "amount": self.amount.to_spec(writer),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any], reader: ArtifactReader) -> HurdleComponent:
        return cls(
            positive=component_from_spec(spec["positive"], reader),
            amount=component_from_spec(spec["amount"], reader),
        )


_COMPONENT_TYPES: dict[str, Any] = {
    ConstantComponent.kind: ConstantComponent,
    BoosterComponent.kind: BoosterComponent,
    HurdleComponent.kind: HurdleComponent,
}


def component_from_spec(spec: dict[str, Any], reader: ArtifactReader) -> Component:
    """Rebuild a component from :meth:`Component.to_spec` output (closed set of types)."""
    kind = spec.get("type")
    if kind not in _COMPONENT_TYPES:
        raise ValueError(
            f"unknown component type {kind!r} in model.json; expected one of "
            f"{sorted(_COMPONENT_TYPES)}. The file was written by another promolift or is corrupt."
        )
    return _COMPONENT_TYPES[kind].from_spec(spec, reader)


def _validation_split(
    y: np.ndarray, *, stratify: bool, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, valid)``; stratified on the 0/1 label so rare positives are in both."""
    if stratify:
        groups = [np.flatnonzero(y == 0), np.flatnonzero(y != 0)]
    else:
        groups = [np.arange(len(y))]
    valid = []
    for rows in groups:
        if len(rows) < 2:
            continue
        n_valid = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        valid.append(rng.choice(rows, size=n_valid, replace=False))
    mask = np.zeros(len(y), dtype=bool)
    if valid:
        mask[np.concatenate(valid)] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def fit_booster(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    objective: Objective,
    settings: LGBMSettings,
    rng: np.random.Generator,
) -> BoosterComponent:
    """Fit one booster with early stopping on a held-out split (no refit: best iteration kept)."""
    import lightgbm as lgb

    binary = objective == "binary"
    weight = None
    positive_weight = 1.0  # class weight of the positives
    if binary and settings.balance_classes:
        n_pos = float(np.sum(y))
        positive_weight = (len(y) - n_pos) / n_pos
        weight = np.where(y > 0, positive_weight, 1.0)
    params = settings.booster_params(objective, seed=int(rng.integers(2**31 - 1)))
    early = settings.early_stopping_rounds
    train_idx, valid_idx = (np.arange(len(y)), np.array([], dtype=np.intp))
    if early is not None:
        train_idx, valid_idx = _validation_split(
            y, stratify=binary, fraction=settings.validation_fraction, rng=rng
        )
    if len(valid_idx) == 0:
        early = None
        train_idx = np.arange(len(y))

    def subset(rows: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        return X.iloc[rows], y[rows], (None if weight is None else weight[rows])

    Xt, yt, wt = subset(train_idx)
    train_set = lgb.Dataset(Xt, label=yt, weight=wt, free_raw_data=True)
    if early is None:
        booster = lgb.train(params, train_set, num_boost_round=settings.n_estimators)
        num_iteration = booster.current_iteration()
    else:
        Xv, yv, wv = subset(valid_idx)
        valid_set = lgb.Dataset(Xv, label=yv, weight=wv, reference=train_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=settings.n_estimators,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(early, first_metric_only=True, verbose=False)],
        )
        num_iteration = booster.best_iteration or booster.current_iteration()
    odds_divisor = 1.0
    if weight is not None:
        weighted_p = booster.predict(X, num_iteration=num_iteration)
        odds_divisor = _calibrated_divisor(weighted_p, float(np.mean(y)), positive_weight)
    return BoosterComponent(
        booster=booster,
        objective=objective,
        num_iteration=int(num_iteration),
        odds_divisor=odds_divisor,
    )


def _divide_odds(p: np.ndarray, divisor: float) -> np.ndarray:
    """Probability whose odds are ``p / (1 - p) / divisor``."""
    return p / (p + divisor * (1.0 - p))


def _calibrated_divisor(weighted_p: np.ndarray, rate: float, weight: float) -> float:
    """The odds divisor that makes the mean corrected probability equal ``rate``.

    Dividing the odds by the class weight ``w`` is exact for a model that has converged; an
    early-stopped (shrunk) model needs a slightly different divisor to be calibrated in the
    large. The mean corrected probability decreases in the divisor, so bisect on its log
    around ``log w``.
    """
    lo, hi = np.log(weight) - 10.0, np.log(weight) + 10.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.mean(_divide_odds(weighted_p, np.exp(mid))) > rate:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def _fit_cell(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    objective: Objective,
    settings: LGBMSettings,
    rng: np.random.Generator,
    label: str,
    notes: list[str],
) -> Component:
    """A booster, or a constant (noted in ``notes``) when ``y`` is constant or has too few rows."""
    mean = float(np.mean(y)) if len(y) else 0.0
    min_rows = 2 * settings.min_child_samples
    if len(y) < min_rows:
        notes.append(
            f"{label}: {len(y)} rows < {min_rows} (2 x min_child_samples); constant {mean:.6g}"
        )
        return ConstantComponent(mean)
    if np.all(y == y[0]):
        notes.append(f"{label}: every value is {y[0]:.6g}; constant")
        return ConstantComponent(mean)
    return fit_booster(X, y, objective=objective, settings=settings, rng=rng)


def fit_component(
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    outcome_type: Literal["binary", "continuous"],
    hurdle: bool,
    settings: LGBMSettings,
    rng: np.random.Generator,
    label: str,
) -> tuple[Component, list[str]]:
    """Fit the component for one outcome on the rows given.

    Parameters
    ----------
    X : pandas.DataFrame
        Features of the rows to learn from.
    y : numpy.ndarray of shape (n,)
        The outcome.
    outcome_type : {"binary", "continuous"}
        Binary outcomes get a log-loss classifier, continuous ones an L2 regressor.
    hurdle : bool
        For a continuous, non-negative, zero-inflated outcome: model ``P(y > 0)`` with a
        classifier on all rows times ``E[y | y > 0]`` from a regressor on the positive rows.
        With fewer than ``2 * min_child_samples`` positive rows the conditional mean is a constant.
    settings : LGBMSettings
        LightGBM hyperparameters.
    rng : numpy.random.Generator
        Source of the validation splits and LightGBM seeds.
    label : str
        Human-readable name of this cell (arm and outcome), used in the notes.

    Returns
    -------
    component : Component
        The fitted component.
    notes : list of str
        Fallbacks taken (the models expose them as ``fallbacks_``).
    """
    notes: list[str] = []
    if outcome_type == "binary" or not hurdle:
        objective: Objective = "binary" if outcome_type == "binary" else "regression"
        fitted = _fit_cell(
            X, y, objective=objective, settings=settings, rng=rng, label=label, notes=notes
        )
        return fitted, notes
    is_pos = (y > 0).astype(np.float64)
    positive = _fit_cell(
        X, is_pos, objective="binary", settings=settings, rng=rng, label=f"{label} P(>0)",
        notes=notes,
    )
    pos_rows = np.flatnonzero(is_pos)
    amount = _fit_cell(
        X.iloc[pos_rows],
        y[pos_rows],
        objective="regression",
        settings=settings,
        rng=rng,
        label=f"{label} E[y|y>0] on positive rows",
        notes=notes,
    )
    return HurdleComponent(positive=positive, amount=amount), notes


def run_parallel(tasks: Sequence[Callable[[], T]], n_jobs: int) -> list[T]:
    """Run independent tasks on ``n_jobs`` threads; results in task order.

    LightGBM releases the GIL while it trains and predicts, so single-threaded boosters run
    side by side. On per-arm data this is faster than multi-threaded boosting (no per-iteration
    thread barrier) and it degrades gracefully on a busy machine, where OpenMP spin-waiting can
    make multi-threaded boosting many times slower.
    """
    if n_jobs <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=min(n_jobs, len(tasks))) as pool:
        return list(pool.map(lambda task: task(), tasks))

