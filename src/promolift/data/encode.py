"""Turn raw feature columns into what the response models read.

Numeric columns become float64 (missing stays NaN: LightGBM and the network handle it);
text, boolean and declared-categorical columns become pandas ``category`` columns with the
categories fixed at fit time, so a value never seen in training becomes missing, not a new code.
The fitted state is plain JSON: it is the feature schema stored in a model bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from promolift.errors import DataError, NotFittedError

__all__ = ["FeatureEncoder", "category_codes"]

MAX_CATEGORIES = 1000


def category_codes(values: Any, categories: list[Any]) -> np.ndarray:
    """Index of each value in ``categories`` as float64, NaN where missing or not among them.

    A ``category`` series is recoded by value, so its own category order does not matter.

    >>> category_codes(pd.Series(["b", None, "z"]), ["a", "b"]).tolist()
    [1.0, nan, nan]
    """
    index = pd.Index(categories)
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        remap = np.append(index.get_indexer(values.cat.categories), -1)  # code -1 stays -1
        codes = remap[np.asarray(values.cat.codes)]
    else:
        codes = index.get_indexer(values)
    return np.where(codes < 0, np.nan, codes.astype(np.float64))


def _text(v: Any) -> str | None:
    """A raw value as the text its category is named by (``None`` when missing)."""
    return None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)


class FeatureEncoder:
    """Learn which columns are numeric or categorical and encode frames consistently.

    Parameters
    ----------
    categorical : list of str, default=()
        Columns to treat as categorical even if they hold numbers (e.g. a zip code).

    Examples
    --------
    >>> import pandas as pd
    >>> enc = FeatureEncoder().fit(pd.DataFrame({"age": [30, None], "channel": ["Web", "Phone"]}))
    >>> enc.numeric_, list(enc.categories_)
    (['age'], ['channel'])
    >>> enc.transform(pd.DataFrame({"age": [41], "channel": ["Fax"]}))["channel"].isna().item()
    True
    """

    def __init__(self, *, categorical: tuple[str, ...] | list[str] = ()) -> None:
        self.categorical = categorical

    def fit(self, X: pd.DataFrame) -> FeatureEncoder:
        forced = set(self.categorical)
        self.__dict__.pop("_index", None)  # category look-ups of a previous fit
        self.columns_: list[str] = list(map(str, X.columns))
        self.numeric_: list[str] = []
        self.categories_: dict[str, list[str]] = {}
        for col in self.columns_:
            s = X[col]
            if col not in forced and (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)):
                self.numeric_.append(col)
                continue
            values = s.dropna().astype(str).unique()
            if len(values) > MAX_CATEGORIES:
                raise DataError(
                    f"feature column '{col}' has {len(values)} distinct text values (over {MAX_CATEGORIES}): "
                    "it looks like an id or free text. Drop it from data.features, or make it numeric."
                )
            self.categories_[col] = sorted(values)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "columns_"):
            raise NotFittedError("FeatureEncoder is not fitted yet: call fit(X) first.")

    def transform(self, X: pd.DataFrame, *, source: str = "<frame>") -> pd.DataFrame:
        """Encode ``X`` for fitting; raises :class:`DataError` naming missing or non-numeric columns."""
        self._check_columns(X, source)
        out: dict[str, Any] = {col: self._numeric(X[col], col, source) for col in self.numeric_}
        for col, cats in self.categories_.items():
            s = X[col]
            text = s.astype(str)
            out[col] = pd.Categorical(text.where(s.notna() & text.isin(cats)), categories=cats)
        return pd.DataFrame(out, columns=self.columns_)

    def matrix(self, X: pd.DataFrame | Mapping[str, Any], *, source: str = "<frame>") -> np.ndarray:
        """Encode ``X`` for predicting: one float64 matrix ``(n, len(columns_))``.

        Numeric columns as numbers, categorical ones as the index of the value in the fitted
        categories; NaN for missing and unseen values. This is what the response models read
        when predicting (LightGBM treats the codes exactly as the ``category`` columns of
        :meth:`transform`), without building a DataFrame. ``X`` may also be a mapping of column
        name to values, e.g. the columns of a few JSON records.

        Examples
        --------
        >>> enc = FeatureEncoder().fit(pd.DataFrame({"age": [30.0, None], "channel": ["Web", "Phone"]}))
        >>> enc.matrix({"age": [41, None], "channel": ["Web", "Fax"]}).tolist()
        [[41.0, 1.0], [nan, nan]]
        """
        self._check_columns(X, source)
        n = len(X) if isinstance(X, pd.DataFrame) else len(next(iter(X.values()), ()))
        out = np.empty((n, len(self.columns_)), dtype=np.float64)
        kinds = set(self.numeric_)
        for j, col in enumerate(self.columns_):
            values = X[col]
            series = isinstance(values, pd.Series)
            if col in kinds:
                out[:, j] = self._numeric(values, col, source)
            elif n <= 64 and not (series and isinstance(values.dtype, pd.CategoricalDtype)):
                index = self._category_index(col)  # a few records: dict look-ups beat pandas
                out[:, j] = [index.get(_text(v), np.nan) for v in
                             (values.to_numpy(dtype=object) if series else values)]
            else:
                s = values if series else pd.Series(values, copy=False)
                out[:, j] = category_codes(s if isinstance(s.dtype, pd.CategoricalDtype)
                                           else s.astype(str).where(s.notna()), self.categories_[col])
        return out

    def _check_columns(self, X: pd.DataFrame | Mapping[str, Any], source: str) -> None:
        self._check_fitted()
        missing = [c for c in self.columns_ if c not in X]
        if missing:
            raise DataError(f"{source}: missing feature column(s) the model was trained on: "
                            f"{', '.join(missing)}. Add them (values may be empty).")

    def _category_index(self, col: str) -> dict[str, float]:
        cache = self.__dict__.setdefault("_index", {})
        if col not in cache:
            cache[col] = {v: float(i) for i, v in enumerate(self.categories_[col])}
        return cache[col]

    @staticmethod
    def _numeric(raw: Any, col: str, source: str) -> np.ndarray:
        """``raw`` as float64 (missing -> NaN); a :class:`DataError` naming the first non-number."""
        if isinstance(raw, np.ndarray) and raw.dtype.kind == "f":
            return raw.astype(np.float64, copy=False)
        if isinstance(raw, pd.Series) and pd.api.types.is_numeric_dtype(raw.dtype) and not (
                pd.api.types.is_bool_dtype(raw.dtype)):
            return raw.to_numpy(dtype=np.float64, na_value=np.nan)
        raw = pd.Series(raw, copy=False)
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        bad = values.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(f"{source}: feature '{col}' must be numeric but has {raw[bad].iloc[0]!r} at "
                            f"data row {row} ({int(bad.sum())} such rows). Fix the values or list "
                            "the column under data.categorical.")
        return values.to_numpy()

    def fit_transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict[str, Any]:
        """The feature schema as JSON-able data."""
        self._check_fitted()
        return {"columns": self.columns_, "numeric": self.numeric_, "categories": self.categories_}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureEncoder:
        enc = cls(categorical=tuple(state["categories"]))
        enc.columns_ = list(state["columns"])
        enc.numeric_ = list(state["numeric"])
        enc.categories_ = {k: list(v) for k, v in state["categories"].items()}
        return enc
