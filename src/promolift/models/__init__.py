"""Response models: for every customer, arm (control = arm 0) and outcome, the expected outcome.

Every kind shares one interface::

    model = make_model("x", n_estimators=200).fit(X, Y, treatment=t)
    pred = model.predict(X_new)          # (n, K, M); uplift of arm k = pred[:, k] - pred[:, 0]
    model.save(empty_directory)          # model.json + LightGBM text, no pickle
    same = load_model(empty_directory)

Kinds are chosen by short name from the closed registry :data:`MODEL_KINDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promolift.errors import did_you_mean
from promolift.models.base import ResponseModel, load_model_from
from promolift.models.deep import DeepModel
from promolift.models.learners import ConstantModel, DRLearner, RelativeModel, TLearner, XLearner

__all__ = [
    "MODEL_KINDS",
    "ConstantModel",
    "DRLearner",
    "DeepModel",
    "RelativeModel",
    "ResponseModel",
    "TLearner",
    "XLearner",
    "load_model",
    "make_model",
]

MODEL_KINDS: dict[str, type[ResponseModel]] = {
    "constant": ConstantModel,
    "relative": RelativeModel,
    "t": TLearner,
    "x": XLearner,
    "dr": DRLearner,
    "deep": DeepModel,
}
"""Short name -> response model class (the only classes :func:`load_model` will build)."""


def make_model(kind: str, **params: Any) -> ResponseModel:
    """Build an unfitted response model by its short name.

    Parameters
    ----------
    kind : {"constant", "relative", "t", "x", "dr", "deep"}
        The model kind.
    **params
        Hyperparameters of that kind (see its class).

    Returns
    -------
    ResponseModel
        The unfitted model.

    Raises
    ------
    ValueError
        If ``kind`` is unknown (the message lists the choices) or a parameter does not exist.

    Examples
    --------
    >>> from promolift.models import make_model
    >>> make_model("dr", n_folds=2)
    DRLearner(n_folds=2)
    >>> make_model("xlearner")
    Traceback (most recent call last):
    ...
    ValueError: unknown model kind 'xlearner'; choose one of 'constant', 'relative', 't', 'x', 'dr', 'deep'.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"unknown model kind {kind!r}; choose one of "
            f"{', '.join(repr(k) for k in MODEL_KINDS)}.{did_you_mean(str(kind), MODEL_KINDS)}"
        )
    cls = MODEL_KINDS[kind]
    try:
        return cls(**params)
    except TypeError:
        valid = sorted(cls().get_params(deep=False))
        unknown = sorted(set(params) - set(valid))
        hints = "".join(did_you_mean(name, valid) for name in unknown)
        raise ValueError(
            f"model kind {kind!r} ({cls.__name__}) has no parameter(s) {unknown}; valid "
            f"parameters: {', '.join(valid)}.{hints}"
        ) from None


def load_model(directory: str | Path) -> ResponseModel:
    """Load a model written by :meth:`ResponseModel.save`.

    Reads ``model.json``, looks its kind up in :data:`MODEL_KINDS` (never imports arbitrary
    code), checks the SHA-256 of every file and rebuilds the LightGBM boosters from text.

    Parameters
    ----------
    directory : str or pathlib.Path
        The directory given to ``save``.

    Returns
    -------
    ResponseModel
        The fitted model; its predictions equal the saved model's.

    Raises
    ------
    promolift.errors.BundleError
        If the directory holds no valid model or a file fails its integrity check.

    Warns
    -----
    promolift.errors.BundleVersionWarning
        If the model was saved by another promolift version.

    See Also
    --------
    ResponseModel.save : Write a fitted model.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np, pandas as pd
    >>> from promolift.models import ConstantModel, load_model
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    >>> model = ConstantModel().fit(X, [1.0, 0.0, 1.0, 1.0], treatment=np.array([0, 0, 1, 1]))
    >>> with tempfile.TemporaryDirectory() as directory:
    ...     model.save(directory)
    ...     same = load_model(directory)
    >>> bool(np.array_equal(same.predict(X), model.predict(X)))
    True
    """
    return load_model_from(directory, MODEL_KINDS)
