"""Turn raw feature columns into what the response models read.

Numeric columns become float64 (missing stays NaN: LightGBM and the network handle it);
text, boolean and declared-categorical columns become pandas ``category`` columns with the
categories fixed at fit time, so a value never seen in training becomes missing, not a new code.
The fitted state is plain JSON: it is the feature schema stored in a model bundle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from promolift.errors import DataError, NotFittedError

__all__ = ["FeatureEncoder"]

MAX_CATEGORIES = 1000


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
        """Encode ``X``; raises :class:`DataError` naming missing or non-numeric columns."""
        self._check_fitted()
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise DataError(f"{source}: missing feature column(s) the model was trained on: "
                            f"{', '.join(missing)}. Add them (values may be empty).")
        out = {}
        for col in self.numeric_:
            raw = X[col]
            values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
            bad = values.isna().to_numpy() & raw.notna().to_numpy()
            if bad.any():
                row = int(np.flatnonzero(bad)[0]) + 1
                raise DataError(f"{source}: feature '{col}' must be numeric but has {raw[bad].iloc[0]!r} at "
                                f"data row {row} ({int(bad.sum())} such rows). Fix the values or list "
                                "the column under data.categorical.")
            out[col] = values.to_numpy()
        for col, cats in self.categories_.items():
            s = X[col]
            text = s.astype(str)
            out[col] = pd.Categorical(text.where(s.notna() & text.isin(cats)), categories=cats)
        return pd.DataFrame(out, columns=self.columns_)

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
