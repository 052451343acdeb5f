"""Supervised next-period models of repeat purchasing: LightGBM on order-history features.

When a log is long enough to hold out a period, a discriminative model can learn what the
probabilistic models assume: who comes back, how often and for how much. The design keeps the
prediction honest:

* :func:`order_features` describes each customer **as of a cutoff** from the orders on or before
  it only (RFM, inter-purchase gaps, order values, recent-window counts, trend), in weeks.
* :class:`SupervisedCLV` learns from the calibration log alone. Training rows are the features at
  earlier cutoffs ``c = calibration_end - horizon - k * step`` with labels from the orders in
  ``(c, c + horizon]``, so every label lies inside the calibration period; the fitted boosters are
  then applied to the features at ``calibration_end``. Nothing after ``calibration_end`` is read.
* Three boosters: ``P(buys again within horizon)`` (binary log-loss), the number of repeat
  purchases (Poisson) and the spend (Tweedie) over ``horizon`` weeks.
* A calibration period of ``n`` weeks cannot supply labels over an ``n``-week future, so a longer
  prediction horizon is reached by **extrapolation**: either per customer with the BG/NBD shape
  ``E[X(horizon_out)] / E[X(horizon)]`` (BG/NBD fitted on the calibration log, default) or
  linearly (``horizon_out / horizon``, a constant purchase rate).
* Optional stacking: BG/NBD's conditional expectation over ``horizon`` and ``P(alive)`` (fitted
  at each training cutoff on the orders up to it) as extra features, and optionally the BG/NBD
  expectation as the Poisson offset of the purchase-count booster (the booster then learns a
  multiplicative correction of BG/NBD).

LightGBM and the BG/NBD module are imported when a model is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from promolift.errors import ConfigError, DataError, NotFittedError

if TYPE_CHECKING:
    import lightgbm as lgb

__all__ = [
    "FEATURES",
    "SupervisedCLV",
    "next_period_labels",
    "order_features",
]

DAYS_PER_WEEK = 7.0
WINDOWS = (4, 13, 26)
FEATURES: tuple[str, ...] = (
    "frequency",
    "recency",
    "T",
    "weeks_since_last",
    "repeat_rate",
    "gap_mean",
    "gap_std",
    "gap_min",
    "gap_max",
    "gap_last",
    "overdue",
    "value_mean",
    "value_first",
    "value_last",
    "value_max",
    "value_min",
    "value_std",
    "value_total",
    *(f"orders_last_{w}w" for w in WINDOWS),
    *(f"spend_last_{w}w" for w in WINDOWS),
    "recent_share",
)
"""Names of the columns of :func:`order_features`, in order."""

BGNBD_FEATURES = ("bg_expected", "bg_p_alive")
TARGETS = ("buy", "purchases", "spend")


def _check_log(tx: pd.DataFrame) -> None:
    if not isinstance(tx, pd.DataFrame):
        raise DataError(
            f"the transaction log must be a pandas DataFrame, got {type(tx).__name__}; load it "
            "with promolift.clv.load_transactions(...)"
        )
    missing = sorted({"customer", "date", "value"} - set(tx.columns))
    if missing:
        raise DataError(
            f"the transaction log lacks column(s) {missing} (it has {list(tx.columns)}); load it "
            "with promolift.clv.load_transactions(...), which names them customer, date, value"
        )
    if not pd.api.types.is_datetime64_any_dtype(tx["date"]):
        raise DataError(
            f"column 'date' of the transaction log has dtype {tx['date'].dtype}, expected "
            "datetime64; convert it with pd.to_datetime or load the log with "
            "promolift.clv.load_transactions(...)"
        )
    if not pd.api.types.is_numeric_dtype(tx["value"]):
        raise DataError(
            f"column 'value' of the transaction log has dtype {tx['value'].dtype}, expected a "
            "number; convert it with pd.to_numeric"
        )
    bad = ~np.isfinite(tx["value"].to_numpy(float))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column 'value' of the transaction log has {int(bad.sum())} missing or infinite "
            f"value(s), first at row {row}; drop or fill those rows"
        )


def _orders(tx: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
    """Orders with ``start < date <= end``, same-day orders merged, sorted by customer and date."""
    keep = tx["date"] <= end
    if start is not None:
        keep &= tx["date"] > start
    d = tx.loc[keep, ["customer", "date", "value"]]
    d = d.groupby(["customer", "date"], sort=True, observed=True)["value"].sum()
    return d.reset_index()


def order_features(tx: pd.DataFrame, cutoff: str | pd.Timestamp) -> pd.DataFrame:
    """Describe every customer as of ``cutoff`` from the orders on or before it (in weeks).

    Orders after ``cutoff`` are never read, so features at a cutoff cannot leak the future.
    Orders on the same day are merged into one (as in the BG/NBD convention).

    Parameters
    ----------
    tx : DataFrame
        Transaction log with columns ``customer``, ``date`` (datetime64) and ``value``.
    cutoff : str or Timestamp
        The "now" of the features (inclusive).

    Returns
    -------
    DataFrame
        Indexed by ``customer`` (customers whose first order is on or before ``cutoff``), with
        the columns :data:`FEATURES`: ``frequency`` (repeat orders), ``recency`` (first to last
        order) and ``T`` (first order to cutoff) as in BG/NBD, ``weeks_since_last``,
        ``repeat_rate`` (repeat orders per week of age), inter-purchase gap statistics and
        ``overdue`` (weeks since last / mean gap), order-value statistics, orders and spend in
        the last 4, 13, 26 weeks and ``recent_share`` (share of repeat orders in the more recent
        half of the customer's life). Undefined statistics (no repeat order) are NaN.

    Raises
    ------
    DataError
        If the log lacks the columns or has non-datetime dates / non-finite values.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": [1, 1, 1, 2],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-02-26",
    ...                                            "2024-02-01"]),
    ...                    "value": [10.0, 20.0, 30.0, 5.0]})
    >>> f = order_features(tx, "2024-02-12")
    >>> f.loc[1, ["frequency", "recency", "T", "weeks_since_last", "gap_mean"]].tolist()
    [1.0, 2.0, 6.0, 4.0, 2.0]
    >>> f.loc[2, "value_first"], f.loc[2, "gap_mean"]
    (np.float64(5.0), np.float64(nan))
    """
    _check_log(tx)
    cutoff = pd.Timestamp(cutoff)
    d = _orders(tx, None, cutoff)
    cust = d["customer"].to_numpy()
    age = (cutoff - d["date"]).dt.days.to_numpy(float) / DAYS_PER_WEEK
    value = d["value"].to_numpy(float)
    first_row = np.r_[True, cust[1:] != cust[:-1]] if len(cust) else np.zeros(0, bool)
    gap = np.r_[np.nan, age[:-1] - age[1:]] if len(age) else np.zeros(0)
    gap[first_row] = np.nan
    rows = pd.DataFrame({"customer": cust, "age": age, "value": value, "gap": gap})
    g = rows.groupby("customer", sort=True)
    n = g.size()
    out = pd.DataFrame(index=n.index)
    T = g["age"].max()
    last = g["age"].min()
    out["frequency"] = (n - 1).astype(float)
    out["recency"] = T - last
    out["T"] = T
    out["weeks_since_last"] = last
    out["repeat_rate"] = out["frequency"] / np.maximum(T, 1.0 / DAYS_PER_WEEK)
    gaps = g["gap"]
    out["gap_mean"] = gaps.mean()
    out["gap_std"] = gaps.std(ddof=0)
    out["gap_min"] = gaps.min()
    out["gap_max"] = gaps.max()
    out["gap_last"] = gaps.last()
    out["overdue"] = last / out["gap_mean"]
    vals = g["value"]
    out["value_mean"] = vals.mean()
    out["value_first"] = vals.first()
    out["value_last"] = vals.last()
    out["value_max"] = vals.max()
    out["value_min"] = vals.min()
    out["value_std"] = vals.std(ddof=0)
    out["value_total"] = vals.sum()
    for w in WINDOWS:
        recent = rows["age"] < w
        out[f"orders_last_{w}w"] = recent.groupby(rows["customer"]).sum().astype(float)
        out[f"spend_last_{w}w"] = rows["value"].where(recent, 0.0).groupby(rows["customer"]).sum()
    half = rows["age"].to_numpy() < 0.5 * T.reindex(cust).to_numpy()
    recent_repeat = pd.Series(half & ~first_row, index=rows.index).groupby(rows["customer"]).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["recent_share"] = recent_repeat / out["frequency"].where(out["frequency"] > 0)
    out.index.name = "customer"
    return out[list(FEATURES)]


def next_period_labels(
    tx: pd.DataFrame,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    customers: Sequence[Any] | pd.Index,
) -> pd.DataFrame:
    """Purchases (same-day orders merged) and spend of ``customers`` in ``(start, end]``.

    Returns
    -------
    DataFrame
        Indexed like ``customers`` with ``purchases`` (float, 0 for no order), ``spend`` and
        ``buy`` (1.0 if at least one purchase).

    Examples
    --------
    >>> tx = pd.DataFrame({"customer": [1, 1, 1, 2],
    ...                    "date": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-01-15",
    ...                                            "2024-02-01"]),
    ...                    "value": [10.0, 20.0, 30.0, 5.0]})
    >>> next_period_labels(tx, "2024-01-01", "2024-01-31", [1, 2, 3])["purchases"].tolist()
    [1.0, 0.0, 0.0]
    """
    _check_log(tx)
    d = _orders(tx, pd.Timestamp(start), pd.Timestamp(end))
    g = d.groupby("customer", sort=False)
    idx = pd.Index(customers, name="customer")
    out = pd.DataFrame(index=idx)
    out["purchases"] = g.size().reindex(idx, fill_value=0).astype(float)
    out["spend"] = g["value"].sum().reindex(idx, fill_value=0.0).astype(float)
    out["buy"] = (out["purchases"] > 0).astype(float)
    return out


def _weeks(x: float) -> pd.Timedelta:
    return pd.Timedelta(days=float(x) * DAYS_PER_WEEK)


_CONSTRAINTS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "horizon": ((int, float), lambda v: v > 0),
    "n_cutoffs": (int, lambda v: v >= 1),
    "step": ((int, float, type(None)), lambda v: v is None or v > 0),
    "extrapolation": (str, lambda v: v in ("bgnbd", "linear")),
    "stacking": (str, lambda v: v in ("none", "features", "offset")),
    "n_estimators": (int, lambda v: v >= 1),
    "learning_rate": ((int, float), lambda v: 0 < v <= 1),
    "num_leaves": (int, lambda v: v >= 2),
    "min_child_samples": (int, lambda v: v >= 1),
    "random_state": (int, lambda v: True),
}
_RULES = {
    "horizon": "a positive number of weeks",
    "n_cutoffs": "an int >= 1",
    "step": "None or a positive number of weeks",
    "extrapolation": "'bgnbd' or 'linear'",
    "stacking": "'none', 'features' or 'offset'",
    "n_estimators": "an int >= 1",
    "learning_rate": "a float in (0, 1]",
    "num_leaves": "an int >= 2",
    "min_child_samples": "an int >= 1",
    "random_state": "an int",
}


class SupervisedCLV:
    """LightGBM models of next-period repeat purchasing, trained without leaking the future.

    Parameters
    ----------
    horizon : float, default=13.0
        Label window in weeks: the boosters learn purchases in the ``horizon`` weeks after a
        cutoff. Every training label must fit inside the calibration period, so ``horizon``
        must be shorter than it (with room for some history before the cutoff).
    n_cutoffs : int, default=1
        Training cutoffs stacked as rows: ``calibration_end - horizon - k * step``,
        ``k = 0..n_cutoffs-1``; cutoffs on or before the first order are dropped. Earlier
        cutoffs add rows but describe younger customers than the ones predicted.
    step : float, optional
        Weeks between training cutoffs; default ``horizon / 2``.
    extrapolation : {"bgnbd", "linear"}, default="bgnbd"
        How :meth:`predict` reaches a prediction horizon other than ``horizon``: scale each
        customer's prediction by BG/NBD's ``E[X(t)] / E[X(horizon)]`` (the BG/NBD fitted on
        the calibration log, so the decay of purchasing comes from the model of dropout) or
        by ``t / horizon`` (a constant purchase rate).
    stacking : {"none", "features", "offset"}, default="none"
        ``"features"`` adds BG/NBD's expected purchases over ``horizon`` and ``P(alive)`` as
        features (a BG/NBD is fitted at each cutoff on the orders up to it); ``"offset"``
        also uses ``log`` of that expectation as the offset of the purchase-count booster.
    n_estimators : int, default=600
        Maximum boosting rounds; the number used per target is chosen by 5-fold
        cross-validation over customers (early stopping), then the booster is refitted on all
        rows.
    learning_rate : float, default=0.03
    num_leaves : int, default=7
    min_child_samples : int, default=50
    random_state : int, default=0

    Attributes
    ----------
    calibration_end_ : Timestamp
    cutoffs_ : list of Timestamp
        Training cutoffs used.
    boosters_ : dict of str to lightgbm.Booster
        ``"buy"`` (binary), ``"purchases"`` (Poisson), ``"spend"`` (Tweedie).
    rounds_ : dict of str to int
        Boosting rounds chosen per target.
    base_scores_ : dict of str to float
        Constant log-scale term of the log-link boosters (added to their raw scores), set so
        that the training predictions sum to the training labels.
    bgnbd_ : BetaGeoModel or None
        BG/NBD fitted on the calibration log (for extrapolation and stacking), else None.
    feature_names_ : list of str
    n_train_rows_ : int

    See Also
    --------
    order_features : The features.
    promolift.clv.holdout.compare_holdout : Compare with BG/NBD on a holdout period.

    Examples
    --------
    >>> from promolift.clv.supervised import SupervisedCLV
    >>> model = SupervisedCLV(horizon=13).fit(tx, calibration_end="1997-09-30")  # doctest: +SKIP
    >>> model.predict(tx, horizon=39).head()                                     # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        horizon: float = 13.0,
        n_cutoffs: int = 1,
        step: float | None = None,
        extrapolation: Literal["bgnbd", "linear"] = "bgnbd",
        stacking: Literal["none", "features", "offset"] = "none",
        n_estimators: int = 600,
        learning_rate: float = 0.03,
        num_leaves: int = 7,
        min_child_samples: int = 50,
        random_state: int = 0,
    ) -> None:
        self.horizon = horizon
        self.n_cutoffs = n_cutoffs
        self.step = step
        self.extrapolation = extrapolation
        self.stacking = stacking
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, so that ``SupervisedCLV(**m.get_params())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in _CONSTRAINTS}

    # ------------------------------------------------------------------ fitting
    def _validate_params(self) -> None:
        problems = []
        for name, (types, ok) in _CONSTRAINTS.items():
            v = getattr(self, name)
            allowed = types if isinstance(types, tuple) else (types,)
            wrong_bool = isinstance(v, bool) and bool not in allowed
            if wrong_bool or not isinstance(v, types) or not ok(v):
                problems.append(f"{name} must be {_RULES[name]}, got {v!r}")
        if problems:
            raise ConfigError("SupervisedCLV: " + "; ".join(problems))

    def _cutoffs(self, tx: pd.DataFrame, end: pd.Timestamp) -> list[pd.Timestamp]:
        step = self.horizon / 2 if self.step is None else self.step
        first = tx["date"].min()
        cuts = [(end - _weeks(self.horizon + k * step)).normalize() for k in range(self.n_cutoffs)]
        cuts = [c for c in cuts if c > first]
        if not cuts:
            span = (end - first).days / DAYS_PER_WEEK
            raise DataError(
                f"the calibration period (first order {first.date()} to {end.date()}, "
                f"{span:.1f} weeks) is too short for a {self.horizon:g}-week label window: "
                f"pass a horizon below {span:.1f} weeks or a later calibration_end"
            )
        return cuts

    def _design(self, tx: pd.DataFrame, cutoff: pd.Timestamp, bg: Any | None) -> pd.DataFrame:
        X = order_features(tx, cutoff)
        if self.stacking != "none":
            rft = _rft(X)
            X["bg_expected"] = bg.expected_purchases(float(self.horizon), *rft)
            X["bg_p_alive"] = bg.probability_alive(*rft)
        return X

    def fit(self, tx: pd.DataFrame, *, calibration_end: str | pd.Timestamp) -> SupervisedCLV:
        """Learn from the orders on or before ``calibration_end`` (later orders are ignored).

        Parameters
        ----------
        tx : DataFrame
            Transaction log (``customer``, ``date``, ``value``), e.g. from
            :func:`promolift.clv.load_transactions`. It may include later orders: they are
            never read.
        calibration_end : str or Timestamp
            Last day of the calibration period (inclusive).

        Returns
        -------
        SupervisedCLV
            ``self``.

        Raises
        ------
        ConfigError
            If a hyperparameter is invalid.
        DataError
            If the log is malformed or too short for ``horizon``.
        """
        import lightgbm as lgb

        self._validate_params()
        _check_log(tx)
        end = pd.Timestamp(calibration_end)
        tx = tx.loc[tx["date"] <= end, ["customer", "date", "value"]]
        if tx.empty:
            raise DataError(f"the transaction log has no order on or before {end.date()}")
        cutoffs = self._cutoffs(tx, end)
        frames, labels, groups = [], [], []
        for c in cutoffs:
            bg = _fit_bgnbd(tx, c) if self.stacking != "none" else None
            X = self._design(tx, c, bg)
            y = next_period_labels(tx, c, c + _weeks(self.horizon), X.index)
            frames.append(X.reset_index(drop=True))
            labels.append(y.reset_index(drop=True))
            groups.append(X.index.to_numpy())
        X = pd.concat(frames, ignore_index=True)
        Y = pd.concat(labels, ignore_index=True)
        folds = _customer_folds(np.concatenate(groups), self.random_state)
        offset = _log_offset(X) if self.stacking == "offset" else None
        objectives: dict[str, tuple[dict[str, Any], np.ndarray | None]] = {
            "buy": ({"objective": "binary"}, None),
            "purchases": ({"objective": "poisson"}, offset),
            "spend": ({"objective": "tweedie", "tweedie_variance_power": 1.5}, None),
        }
        boosters: dict[str, lgb.Booster] = {}
        rounds: dict[str, int] = {}
        base: dict[str, float] = {}
        for target, (extra, offset_) in objectives.items():
            params = self._params(extra)
            y = Y[target].to_numpy(float)
            if np.ptp(y) == 0:
                raise DataError(
                    f"every training label of '{target}' is {y[0]:g} in the "
                    f"{self.horizon:g} weeks after the cutoff(s) "
                    f"{[str(c.date()) for c in cutoffs]}: the log has too few repeat purchases "
                    "to learn from; use a longer horizon or calibration period"
                )
            # Log-link boosters start from the log of the mean label (with the offset, if any).
            base[target] = 0.0 if target == "buy" else _log_mean_ratio(y, offset_)
            init = None if target == "buy" else base[target] + (0.0 if offset_ is None else offset_)
            if init is not None:
                init = np.broadcast_to(init, y.shape).astype(float)
            rounds[target] = self._rounds(lgb, params, X, y, init, folds)
            data = lgb.Dataset(X, label=y, init_score=init)
            boosters[target] = lgb.train(params, data, num_boost_round=rounds[target])
            if init is not None:
                # Tweedie's likelihood does not preserve totals (Poisson's does): rescale so
                # the training predictions sum to the training labels.
                fitted = np.exp(boosters[target].predict(X, raw_score=True) + init)
                base[target] += float(np.log(max(y.sum(), 1e-12) / fitted.sum()))
        self.calibration_end_ = end
        self.cutoffs_ = cutoffs
        self.boosters_ = boosters
        self.rounds_ = rounds
        self.base_scores_ = base
        self.feature_names_ = list(X.columns)
        self.n_train_rows_ = len(X)
        uses_bg = self.stacking != "none" or self.extrapolation == "bgnbd"
        self.bgnbd_ = _fit_bgnbd(tx, end) if uses_bg else None
        return self

    def _params(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {
            **extra,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "num_threads": 1,
            "seed": self.random_state,
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    def _rounds(
        self,
        lgb: Any,
        params: dict[str, Any],
        X: pd.DataFrame,
        y: np.ndarray,
        init: np.ndarray | None,
        folds: list[tuple[np.ndarray, np.ndarray]],
    ) -> int:
        """Boosting rounds chosen by early stopping in cross-validation over customers."""
        if len(folds) < 2:
            return self.n_estimators
        result = lgb.cv(
            params,
            lgb.Dataset(X, label=y, init_score=init),
            num_boost_round=self.n_estimators,
            folds=folds,
            callbacks=[lgb.early_stopping(30, first_metric_only=True, verbose=False)],
        )
        return max(1, len(next(iter(result.values()))))

    # ------------------------------------------------------------------ predicting
    def predict(self, tx: pd.DataFrame, *, horizon: float | None = None) -> pd.DataFrame:
        """Predict each customer's next ``horizon`` weeks after ``calibration_end_``.

        Parameters
        ----------
        tx : DataFrame
            Transaction log; only orders on or before ``calibration_end_`` are read.
        horizon : float, optional
            Prediction horizon in weeks; default the training ``horizon``. Other horizons
            are reached by ``extrapolation``.

        Returns
        -------
        DataFrame
            Indexed by ``customer``: ``p_buy`` (probability of at least one purchase within
            the *training* ``horizon``; a ranking score for "buys again"),
            ``expected_purchases`` and ``expected_spend`` over ``horizon`` weeks (means: for
            totals and CLV) and ``median_purchases`` (the median of a negative binomial
            around ``expected_purchases`` shaped like BG/NBD's predictive distribution: the
            point forecast for absolute error).

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.
        """
        if not hasattr(self, "boosters_"):
            raise NotFittedError(
                "SupervisedCLV is not fitted yet: call fit(tx, calibration_end=...) first"
            )
        _check_log(tx)
        out_h = float(self.horizon if horizon is None else horizon)
        if not out_h > 0:
            raise ConfigError(f"horizon must be a positive number of weeks, got {horizon!r}")
        X = self._design(tx, self.calibration_end_, self.bgnbd_)
        offset = _log_offset(X) if self.stacking == "offset" else 0.0
        base = self.base_scores_
        p = self.boosters_["buy"].predict(X)
        raw_n = self.boosters_["purchases"].predict(X, raw_score=True)
        n = np.exp(raw_n + base["purchases"] + offset)
        s = np.exp(self.boosters_["spend"].predict(X, raw_score=True) + base["spend"])
        scale = self._scale(X, out_h)
        expected = n * scale
        return pd.DataFrame(
            {"p_buy": p, "expected_purchases": expected, "expected_spend": s * scale,
             "median_purchases": self._median(tx, X, expected, out_h)},
            index=X.index,
        )

    def _median(self, tx: pd.DataFrame, X: pd.DataFrame, expected: np.ndarray, horizon: float) -> np.ndarray:
        """Median of a negative binomial around ``expected`` with, per customer, the shape of
        BG/NBD's predictive distribution over ``horizon`` (its over-dispersion, i.e. its mass
        at zero): the point forecast for absolute error."""
        from promolift.clv.forecast import bgnbd_dispersion, negbin_cdf, quantile_from_cdf

        bg = self.bgnbd_ if self.bgnbd_ is not None else _fit_bgnbd(tx, self.calibration_end_)
        shape = bgnbd_dispersion(bg, horizon, *_rft(X))
        return quantile_from_cdf(negbin_cdf(expected, shape), 0.5).astype(np.float64)

    def _scale(self, X: pd.DataFrame, horizon: float) -> np.ndarray | float:
        if horizon == float(self.horizon):
            return 1.0
        if self.extrapolation == "linear":
            return horizon / float(self.horizon)
        rft = _rft(X)
        short = np.asarray(self.bgnbd_.expected_purchases(float(self.horizon), *rft), float)
        long = np.asarray(self.bgnbd_.expected_purchases(horizon, *rft), float)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = long / short
        return np.where(np.isfinite(ratio) & (short > 0), ratio, horizon / float(self.horizon))


# ---------------------------------------------------------------------- helpers
MIN_AGE_WEEKS = 0.5 / DAYS_PER_WEEK


def _rft(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD inputs from :func:`order_features`; a customer first seen on the cutoff day gets
    half a day of age (BG/NBD needs ``T > 0``)."""
    return (
        X["frequency"].to_numpy(float),
        X["recency"].to_numpy(float),
        np.maximum(X["T"].to_numpy(float), MIN_AGE_WEEKS),
    )


def _fit_bgnbd(tx: pd.DataFrame, cutoff: pd.Timestamp) -> Any:
    """BG/NBD fitted on the customers seen before ``cutoff`` (orders up to it)."""
    from promolift.clv.bgnbd import BetaGeoModel

    f = order_features(tx, cutoff)
    f = f[f["T"] > 0]
    return BetaGeoModel().fit(f["frequency"], f["recency"], f["T"])


def _log_offset(X: pd.DataFrame) -> np.ndarray:
    return np.log(np.maximum(X["bg_expected"].to_numpy(float), 1e-6))


def _log_mean_ratio(y: np.ndarray, log_offset: np.ndarray | None) -> float:
    """``log(sum y / sum exp(offset))``: the constant that makes a log-link model's total right."""
    denom = len(y) if log_offset is None else float(np.exp(log_offset).sum())
    return float(np.log(max(float(y.sum()), 1e-12) / denom))


def _customer_folds(
    customers: np.ndarray, seed: int, n_folds: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over customers (a customer's rows at several cutoffs stay in one fold)."""
    codes, uniques = pd.factorize(customers)
    if len(uniques) < 2 * n_folds:
        return []
    fold_of = np.random.default_rng(seed).permutation(len(uniques)) % n_folds
    row_fold = fold_of[codes]
    rows = np.arange(len(customers))
    return [(rows[row_fold != k], rows[row_fold == k]) for k in range(n_folds)]
