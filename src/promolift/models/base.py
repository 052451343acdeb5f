"""The response-model contract shared by every model kind.

A response model predicts, for every customer, every arm (control = arm 0 included) and every
outcome, the expected value of the outcome: ``predict(X)`` has shape ``(n, K, M)`` and the uplift
of arm ``k`` is ``pred[:, k] - pred[:, 0]``.

This module holds what all kinds share: hyperparameter validation (one table per class), input
validation (:class:`TrainingData`), the fitted-state bookkeeping, and saving/loading without
pickle (``model.json`` + LightGBM model text, integrity-checked).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from promolift._version import __version__
from promolift.errors import (
    BundleError,
    BundleVersionWarning,
    DataError,
    NotFittedError,
    did_you_mean,
)
from promolift.data.encode import category_codes
from promolift.io import atomic_write_bytes
from promolift.models.lgbm import (
    BoosterComponent,
    ConstantComponent,
    HurdleComponent,
    component_from_spec,
)

__all__ = [
    "Interval",
    "Options",
    "ResponseModel",
    "TrainingData",
    "load_model_from",
]

OutcomeType = Literal["binary", "continuous"]
OUTCOME_TYPES: tuple[str, ...] = ("binary", "continuous")

MANIFEST = "model.json"
FORMAT = "promolift-response-model"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Hyperparameter constraints (one table per class, checked on entry to fit)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``kind`` is ``Integral`` or ``Real`` (``bool`` is never a number here)."""

    kind: type
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_) or not isinstance(value, self.kind):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        name = "an int" if self.kind is Integral else "a float"
        lo = "-inf" if self.left is None else f"{self.left}"
        hi = "inf" if self.right is None else f"{self.right}"
        lb = "[" if self.closed in ("left", "both") and self.left is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        return f"{name} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


_Constraint = Interval | Options | None


def _describe(constraints: list[_Constraint]) -> str:
    parts = ["None" if c is None else str(c) for c in constraints]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _validate_params(estimator: BaseEstimator) -> None:
    """Check every hyperparameter against the class's ``_parameter_constraints`` table.

    Raises
    ------
    ValueError
        Naming the parameter, what it must be and what it got.
    """
    table: dict[str, list[_Constraint]] = type(estimator)._parameter_constraints
    for name, value in estimator.get_params(deep=False).items():
        constraints = table[name]
        ok = any(
            (value is None) if c is None else c.accepts(value)
            for c in constraints
        )
        if not ok:
            raise ValueError(
                f"{type(estimator).__name__}: parameter '{name}' must be "
                f"{_describe(constraints)}; got {value!r} ({type(value).__name__})."
            )


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """Validated training inputs: what every model's ``_fit`` receives."""

    X: pd.DataFrame
    Y: np.ndarray  # (n, M) float64
    treatment: np.ndarray  # (n,) int64 arm codes, 0 = control
    propensity: np.ndarray  # (n, K) float64 assignment probabilities
    outcome_types: tuple[OutcomeType, ...]
    n_arms: int

    @property
    def n_outcomes(self) -> int:
        return self.Y.shape[1]


def _check_frame(X: Any) -> None:
    if not isinstance(X, pd.DataFrame):
        raise DataError(
            f"X must be a pandas DataFrame (one column per feature); got {type(X).__name__}. "
            "Wrap an array with pd.DataFrame(array, columns=names) and give categorical "
            "columns the 'category' dtype."
        )
    if X.shape[0] == 0:
        raise DataError("X has 0 rows; at least one row is required.")
    bad_names = [c for c in X.columns if not isinstance(c, str)]
    if bad_names:
        raise DataError(
            f"X column names must be strings; got {bad_names[:5]!r}. "
            "Rename them, e.g. X.columns = X.columns.astype(str)."
        )
    dupes = sorted(set(X.columns[X.columns.duplicated()]))
    if dupes:
        raise DataError(f"X has duplicated column(s) {dupes}; each feature must appear once.")


def _as_float_column(col: pd.Series) -> np.ndarray:
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def _validate_fit_features(X: Any) -> tuple[pd.DataFrame, dict[str, list[Any]]]:
    """Numeric columns -> float64, ``category`` columns kept; anything else is an error."""
    _check_frame(X)
    if X.shape[1] == 0:
        raise DataError("X has no columns; pass at least one feature.")
    converted: dict[str, Any] = {}
    categories: dict[str, list[Any]] = {}
    bad = []
    for name in X.columns:
        col = X[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            categories[name] = col.cat.categories.tolist()
            converted[name] = col.array  # no index alignment (duplicate labels are fine)
        elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            converted[name] = _as_float_column(col)
        else:
            bad.append(f"'{name}' ({col.dtype})")
    if bad:
        raise DataError(
            f"X column(s) {', '.join(bad)} are neither numeric nor categorical. Give categorical "
            "features the pandas 'category' dtype, e.g. X[col] = X[col].astype('category'), "
            "and numeric ones a float dtype."
        )
    return pd.DataFrame(converted, index=X.index, columns=list(X.columns)), categories


def _validate_outcomes(
    Y: Any, n: int, outcome_types: Sequence[str] | None
) -> tuple[np.ndarray, tuple[OutcomeType, ...]]:
    try:
        Y = np.asarray(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"Y must be a numeric (n, M) array of outcomes: {exc}") from None
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or Y.shape[0] != n or Y.shape[1] == 0:
        raise DataError(
            f"Y has shape {Y.shape}, but X has {n} rows; expected ({n}, M) with M >= 1."
        )
    bad = ~np.isfinite(Y)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"Y has {int(bad.sum())} missing or infinite value(s), first at row {row}, outcome "
            f"column {col}. Drop those rows or fill them (e.g. spend = 0 for no purchase)."
        )
    M = Y.shape[1]
    is01 = [bool(np.isin(Y[:, m], (0.0, 1.0)).all()) for m in range(M)]
    if outcome_types is None:
        types = tuple("binary" if b else "continuous" for b in is01)
    else:
        types = tuple(outcome_types)
        if len(types) != M:
            raise DataError(f"outcome_types has {len(types)} entries but Y has {M} column(s).")
        for m, t in enumerate(types):
            if t not in OUTCOME_TYPES:
                raise DataError(
                    f"outcome_types[{m}] = {t!r}; must be 'binary' or 'continuous'."
                    f"{did_you_mean(str(t), OUTCOME_TYPES)}"
                )
            if t == "binary" and not is01[m]:
                raise DataError(
                    f"outcome {m} is declared 'binary' but has values other than 0 and 1 "
                    f"(e.g. {Y[~np.isin(Y[:, m], (0.0, 1.0)), m][0]!r}); declare it 'continuous'."
                )
    return Y, types  # type: ignore[return-value]


def _validate_treatment(treatment: Any, n: int, n_arms: int | None) -> tuple[np.ndarray, int]:
    t = np.asarray(treatment)
    if t.ndim != 1 or t.shape[0] != n:
        raise DataError(f"treatment has shape {t.shape}, but X has {n} rows; expected ({n},).")
    if t.dtype.kind not in "iu":
        raise DataError(
            f"treatment must be integer arm codes 0..K-1 (0 = control); got dtype {t.dtype}. "
            "Map arm names to codes first, e.g. pd.Categorical(names, categories=arms).codes."
        )
    t = t.astype(np.int64)
    if (t < 0).any():
        raise DataError(
            f"treatment has negative code {int(t.min())}; codes are 0..K-1 (0 = control)."
        )
    K = int(t.max()) + 1 if n_arms is None else n_arms
    if t.max() >= K:
        raise DataError(
            f"treatment has code {int(t.max())}, but n_arms={K}; codes must be < n_arms."
        )
    if K < 2:
        raise DataError(
            "treatment has only arm 0; a response model needs the control and at least one "
            "promotion arm."
        )
    counts = np.bincount(t, minlength=K)
    empty = np.flatnonzero(counts == 0).tolist()
    if empty:
        raise DataError(
            f"arm code(s) {empty} have no training rows; every arm 0..{K - 1} needs rows "
            "(or set n_arms to the number of arms actually present)."
        )
    return t, K


def _validate_propensity(propensity: Any, treatment: np.ndarray, K: int) -> np.ndarray:
    n = treatment.shape[0]
    if propensity is None:
        shares = np.bincount(treatment, minlength=K) / n
        return np.broadcast_to(shares, (n, K))
    e = np.asarray(propensity, dtype=np.float64)
    if e.shape != (n, K):
        raise DataError(f"propensity has shape {e.shape}; expected (n, K) = ({n}, {K}).")
    bad = ~np.isfinite(e) | (e <= 0) | (e > 1)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"propensity[{row}, {col}] = {e[row, col]!r}; every assignment probability must be "
            "in (0, 1]."
        )
    sums = e.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
    if off.size:
        raise DataError(
            f"propensity rows must sum to 1; row {off[0]} sums to {sums[off[0]]!r} "
            f"({off.size} row(s) off)."
        )
    return e


def validate_training_data(
    X: Any,
    Y: Any,
    treatment: Any,
    outcome_types: Sequence[str] | None,
    propensity: Any,
    n_arms: int | None,
) -> tuple[TrainingData, dict[str, list[Any]]]:
    """Validate ``fit`` inputs; returns the data and the categories of categorical columns."""
    Xv, categories = _validate_fit_features(X)
    n = Xv.shape[0]
    Yv, types = _validate_outcomes(Y, n, outcome_types)
    t, K = _validate_treatment(treatment, n, n_arms)
    e = _validate_propensity(propensity, t, K)
    data = TrainingData(X=Xv, Y=Yv, treatment=t, propensity=e, outcome_types=types, n_arms=K)
    return data, categories


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------


class ResponseModel(BaseEstimator):
    """Base class of every response model (not used directly).

    Subclasses declare ``_kind``, ``_parameter_constraints``, ``_model_attrs`` (their own fitted
    attributes) and implement ``_fit(data) -> dict`` and ``_predict(X) -> (n, K, M)``.

    Attributes
    ----------
    n_arms_ : int
        Number of arms K (arm 0 is the control).
    outcome_types_ : list of str
        ``"binary"`` or ``"continuous"`` per outcome.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : numpy.ndarray of str
        Feature names seen in fit; ``predict`` selects these columns (extra columns are ignored).
    categories_ : dict of str to list
        Categories of each categorical feature; a string column given to ``predict`` is mapped
        onto them (unseen values become missing).
    arm_shares_ : numpy.ndarray of shape (K,)
        Mean assignment probability of each arm in the training data.
    nonnegative_ : numpy.ndarray of bool, shape (M,)
        Outcomes whose training values were all >= 0; their predictions are clipped at 0
        (binary outcomes are clipped to [0, 1]).
    """

    _kind: ClassVar[str]
    _parameter_constraints: ClassVar[dict[str, list[_Constraint]]]
    _model_attrs: ClassVar[tuple[str, ...]] = ()
    _base_attrs: ClassVar[tuple[str, ...]] = (
        "n_arms_",
        "outcome_types_",
        "n_features_in_",
        "feature_names_in_",
        "categories_",
        "arm_shares_",
        "nonnegative_",
    )

    # -- public API --------------------------------------------------------------------------

    def fit(
        self,
        X: pd.DataFrame,
        Y: Any,
        *,
        treatment: Any,
        outcome_types: Sequence[str] | None = None,
        propensity: Any = None,
    ) -> ResponseModel:
        """Fit the model on a randomized (or known-propensity) promotion experiment.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n, p)
            Features: float64 numeric columns (NaN = missing) and ``category`` columns.
        Y : array-like of shape (n, M) or (n,)
            Outcomes, one column per outcome.
        treatment : array-like of int, shape (n,)
            Arm code of each row, 0..K-1; arm 0 is the control.
        outcome_types : sequence of {"binary", "continuous"}, default=None
            Type of each outcome; ``None`` infers binary for 0/1 columns, else continuous.
        propensity : array-like of shape (n, K), default=None
            Known assignment probabilities; ``None`` uses the arm shares of the data
            (a randomized experiment).

        Returns
        -------
        self : ResponseModel
            The fitted model.

        Raises
        ------
        ValueError
            If a hyperparameter is invalid.
        promolift.errors.DataError
            If the inputs are malformed (the message says which and how to fix it).
        """
        _validate_params(self)
        data, categories = validate_training_data(
            X, Y, treatment, outcome_types, propensity, getattr(self, "n_arms", None)
        )
        fitted: dict[str, Any] = {
            "n_arms_": data.n_arms,
            "outcome_types_": list(data.outcome_types),
            "n_features_in_": data.X.shape[1],
            "feature_names_in_": np.asarray(data.X.columns, dtype=object),
            "categories_": categories,
            "arm_shares_": data.propensity.mean(axis=0),
            "nonnegative_": (data.Y >= 0).all(axis=0),
        }
        fitted.update(self._fit(data))
        for name, value in fitted.items():  # set all at once: a failed fit leaves no half state
            setattr(self, name, value)
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Expected value of every outcome for every row under every arm.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n, p), or numpy.ndarray
            Features with (at least) the columns seen in fit; extra columns are ignored. Or the
            encoded float matrix (:meth:`FeatureEncoder.matrix
            <promolift.data.FeatureEncoder.matrix>`: columns in ``feature_names_in_`` order,
            categorical values as their index in ``categories_``, NaN for missing), which skips
            the DataFrame conversion (the serving path).

        Returns
        -------
        numpy.ndarray of shape (n, K, M)
            ``pred[i, k, m]`` = E[outcome m | customer i gets arm k]; arm 0 is the control, so
            the uplift of arm k is ``pred[:, k] - pred[:, 0]``.

        Raises
        ------
        promolift.errors.NotFittedError
            If the model is not fitted.
        promolift.errors.DataError
            If a fitted column is missing or has an incompatible dtype.
        """
        self._check_is_fitted()
        Xv = self._check_matrix(X) if isinstance(X, np.ndarray) else self._validate_predict_features(X)
        pred = self._predict(Xv)
        binary = np.array([t == "binary" for t in self.outcome_types_])
        lower = np.where(binary | self.nonnegative_, 0.0, -np.inf)
        upper = np.where(binary, 1.0, np.inf)
        return np.clip(pred, lower, upper)

    def save(self, directory: str | Path) -> None:
        """Write the fitted model into an existing, empty directory (no pickle).

        Writes LightGBM boosters as model text files and, last, ``model.json`` (kind,
        hyperparameters, fitted values and the SHA-256 of every file). Each file is written to a
        temporary name and renamed, so an interrupted save never leaves a loadable half model.

        Parameters
        ----------
        directory : str or pathlib.Path
            An existing, empty directory.

        Raises
        ------
        promolift.errors.NotFittedError
            If the model is not fitted.
        promolift.errors.BundleError
            If the directory does not exist or is not empty.

        See Also
        --------
        promolift.models.load_model : Read it back.
        """
        self._check_is_fitted()
        directory = Path(directory)
        if not directory.is_dir():
            raise BundleError(f"{directory}: not an existing directory; create it first (mkdir).")
        if any(directory.iterdir()):
            raise BundleError(
                f"{directory}: directory is not empty; save into a new empty directory so no "
                "stale files mix with this model."
            )
        writer = _DirectoryWriter(directory)
        try:
            fitted = {name: _encode(getattr(self, name), writer) for name in self._fitted_attrs()}
            import lightgbm

            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": self._kind,
                "class": type(self).__name__,
                "promolift_version": __version__,
                "lightgbm_version": lightgbm.__version__,
                "params": self.get_params(deep=False),
                "fitted": fitted,
                "artifacts": self._save_artifacts(writer),
                "files": writer.files,
            }
            writer.write(MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"), record=False)
        except BaseException:
            writer.remove_all()
            raise

    # -- hooks for subclasses ----------------------------------------------------------------

    def _fit(self, data: TrainingData) -> dict[str, Any]:
        raise NotImplementedError

    def _predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _save_artifacts(self, writer: _DirectoryWriter) -> dict[str, Any]:
        """Write binary files beside ``model.json`` (checksummed); return their JSON spec."""
        return {}

    def _load_artifacts(self, artifacts: dict[str, Any], reader: _DirectoryReader) -> None:
        """Read back what :meth:`_save_artifacts` wrote (after the fitted values are set)."""
        if artifacts:
            raise BundleError(
                f"{reader.directory}: model.json lists artifacts {sorted(artifacts)} that "
                f"{type(self).__name__} does not use; the file is corrupt or was edited."
            )

    # -- helpers -----------------------------------------------------------------------------

    @classmethod
    def _fitted_attrs(cls) -> tuple[str, ...]:
        return cls._base_attrs + cls._model_attrs

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, name) for name in self._fitted_attrs())

    def _check_is_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "training data before using this model."
            )

    def _check_matrix(self, X: np.ndarray) -> np.ndarray:
        if X.ndim != 2 or X.shape[1] != len(self.feature_names_in_) or X.shape[0] == 0:
            raise DataError(f"X must be the encoded feature matrix of shape (n >= 1, "
                            f"{len(self.feature_names_in_)}); got shape {X.shape}. Pass a DataFrame of "
                            "the raw features, or encode it with the bundle's FeatureEncoder.matrix.")
        return X.astype(np.float64, copy=False)

    def _validate_predict_features(self, X: Any) -> np.ndarray:
        """``X`` as the encoded float matrix (see :meth:`predict`)."""
        _check_frame(X)
        names = list(self.feature_names_in_)
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise DataError(
                f"X is missing {len(missing)} feature column(s) seen in fit: "
                f"{', '.join(repr(c) for c in sorted(missing))}. Add them (NaN is allowed for "
                "missing values)."
            )
        out = np.empty((len(X), len(names)), dtype=np.float64)
        bad = []
        for j, name in enumerate(names):
            col = X[name]
            cats = self.categories_.get(name)
            if cats is not None:
                if not (isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col.dtype)
                        or col.dtype == object or (pd.api.types.is_numeric_dtype(col.dtype)
                                                   and not col.notna().any())):
                    bad.append(f"'{name}' is categorical in fit but {col.dtype} here")
                    continue
                out[:, j] = category_codes(col, cats)  # unseen values become missing
            elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
                out[:, j] = _as_float_column(col)
            else:
                bad.append(f"'{name}' is numeric in fit but {col.dtype} here")
        if bad:
            raise DataError(
                f"X column dtype mismatch: {'; '.join(bad)}. Use the dtypes of the training data."
            )
        return out

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        tags.target_tags.multi_output = True
        return tags


# --------------------------------------------------------------------------------------------
# Saving and loading (JSON + LightGBM text, never pickle)
# --------------------------------------------------------------------------------------------


class _DirectoryWriter:
    """Writes files atomically (temp name + ``os.replace``) and records their SHA-256."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: list[dict[str, Any]] = []
        self._written: list[Path] = []

    def add_text(self, stem: str, text: str) -> str:
        name = f"{stem}_{len(self.files):03d}.txt"
        self.write(name, text.encode("utf-8"))
        return name

    def write(self, name: str, data: bytes, *, record: bool = True) -> None:
        self._written.append(atomic_write_bytes(self.directory / name, data))
        if record:
            self.files.append(
                {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            )

    def remove_all(self) -> None:
        for path in self._written:
            path.unlink(missing_ok=True)


class _DirectoryReader:
    """Reads the files listed in ``model.json``, checking their SHA-256."""

    def __init__(self, directory: Path, files: list[dict[str, Any]]) -> None:
        self.directory = directory
        self.digests = {f["name"]: f["sha256"] for f in files}

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode("utf-8")

    def read_bytes(self, name: str) -> bytes:
        if name not in self.digests:
            raise BundleError(
                f"{self.directory}: model.json refers to {name!r} but does not list it."
            )
        path = self.directory / name
        if not path.is_file():
            raise BundleError(f"{path}: file listed in model.json is missing; re-save the model.")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.digests[name]:
            raise BundleError(
                f"{path}: SHA-256 does not match model.json; the file is corrupt or was edited."
            )
        return data


_COMPONENT_CLASSES = (ConstantComponent, BoosterComponent, HurdleComponent)


def _encode(value: Any, writer: _DirectoryWriter) -> Any:
    if isinstance(value, _COMPONENT_CLASSES):
        return {"__component__": value.to_spec(writer)}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): _encode(v, writer) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, writer) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any, reader: _DirectoryReader) -> Any:
    if isinstance(value, dict):
        if "__component__" in value:
            return component_from_spec(value["__component__"], reader)
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _decode(v, reader) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, reader) for v in value]
    return value


def load_model_from(
    directory: str | Path, kinds: Mapping[str, type[ResponseModel]]
) -> ResponseModel:
    """Rebuild a model saved with :meth:`ResponseModel.save`, looking its kind up in ``kinds``.

    Raises
    ------
    promolift.errors.BundleError
        If ``model.json`` is missing, malformed, of an unknown kind, or a file fails its check.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"{directory}: no {MANIFEST}; this is not a saved promolift model (or its save was "
            "interrupted). Save one with model.save(directory)."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid JSON ({exc}); the file is corrupt.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a promolift response model (format is not {FORMAT!r}).")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version {manifest.get('format_version')} is newer than this "
            f"promolift ({__version__}) reads; upgrade promolift."
        )
    kind = manifest.get("kind")
    if kind not in kinds:
        raise BundleError(
            f"{path}: unknown model kind {kind!r}; known kinds: {', '.join(sorted(kinds))}."
            f"{did_you_mean(str(kind), kinds)}"
        )
    if manifest.get("promolift_version") != __version__:
        warnings.warn(
            f"{path}: saved by promolift {manifest.get('promolift_version')}, loading with "
            f"{__version__}; predictions may differ. Re-train to silence this warning.",
            BundleVersionWarning,
            stacklevel=3,
        )
    cls = kinds[kind]
    if manifest.get("class") != cls.__name__:
        raise BundleError(
            f"{path}: kind {kind!r} is {cls.__name__} in this promolift, but the file was "
            f"written by class {manifest.get('class')!r}; re-train and save the model again."
        )
    try:
        model = cls(**manifest["params"])
        _validate_params(model)
    except (TypeError, ValueError, KeyError) as exc:
        raise BundleError(f"{path}: invalid hyperparameters for kind {kind!r}: {exc}") from None
    reader = _DirectoryReader(directory, manifest.get("files", []))
    fitted = manifest.get("fitted", {})
    missing = [name for name in cls._fitted_attrs() if name not in fitted]
    if missing:
        raise BundleError(f"{path}: fitted value(s) {missing} missing; the file is corrupt.")
    for name in cls._fitted_attrs():
        setattr(model, name, _decode(fitted[name], reader))
    artifacts = manifest.get("artifacts", {})
    if not isinstance(artifacts, dict):
        raise BundleError(f"{path}: 'artifacts' must be a mapping; the file is corrupt.")
    model._load_artifacts(artifacts, reader)
    return model
