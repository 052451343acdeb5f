"""Input checks shared by the evaluation modules."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from promolift.errors import DataError


def finite_float_array(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """``values`` as a float64 array; :class:`DataError` if not numeric or not finite."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric; could not convert it to numbers ({exc}).") from exc
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
        raise DataError(f"{name} contains NaN or infinite values (first at position {bad}); "
                        "drop or impute those rows first.")
    return arr
