"""Turn predicted outcomes into money: value and cost matrices per customer × arm.

For arm k (control = 0) with predicted outcomes ``pred[:, k]``:

* expected cost      ``c_k = contact_cost_k + cost_per_conversion_k · P(conv | k) + discount_rate_k · E[spend | k]``
* expected profit    ``p_k = margin · E[spend | k] − c_k``  (gross margin on spend, minus promotion cost)
* incremental value  ``v_k = p_k − p_0``  (what giving arm k instead of nothing earns)

With ``economics.conversion_value`` set (e.g. to a joined ``clv`` column), a conversion is also
worth the customer's expected future value: ``p_k += value_i · P(conv | k)``. That per-customer
value is bound to the customers being scored with :meth:`Economics.for_customers`.

The control arm costs nothing, so ``v_0 = c_0 = 0``. Nothing downstream knows which model made
the predictions: the optimizer sees only ``value`` and ``cost``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from promolift.config import CampaignConfig
from promolift.errors import DataError

__all__ = ["Economics"]


@dataclass(frozen=True)
class Economics:
    """Per-arm economics in arm order (control first).

    Examples
    --------
    >>> import numpy as np
    >>> eco = Economics(margin=0.3, contact_cost=np.array([0, .1]), cost_per_conversion=np.zeros(2),
    ...                 discount_rate=np.zeros(2), value_index=1, conversion_index=0)
    >>> pred = np.array([[[0.01, 1.0], [0.02, 2.0]]])   # 1 customer, 2 arms, (conversion, spend)
    >>> value, cost = eco.value_cost(pred)
    >>> value.round(3).tolist(), cost.round(3).tolist()
    ([[0.0, 0.2]], [[0.0, 0.1]])
    """

    margin: float
    contact_cost: np.ndarray
    cost_per_conversion: np.ndarray
    discount_rate: np.ndarray
    value_index: int
    conversion_index: int | None
    conversion_value_column: str | None = None
    conversion_value: np.ndarray | None = None  # (n,) future value per conversion, per customer

    @classmethod
    def from_config(cls, config: CampaignConfig) -> Economics:
        arms = config.arm_economics()
        outcomes = config.outcome_names
        conv = config.economics.conversion_outcome
        return cls(
            margin=config.economics.margin,
            contact_cost=np.array([a.contact_cost for a in arms], dtype=float),
            cost_per_conversion=np.array([a.cost_per_conversion for a in arms], dtype=float),
            discount_rate=np.array([a.discount_rate for a in arms], dtype=float),
            value_index=outcomes.index(config.economics.value_outcome),
            conversion_index=None if conv is None else outcomes.index(conv),
            conversion_value_column=config.economics.conversion_value,
        )

    def for_customers(self, X: pd.DataFrame) -> Economics:
        """These economics bound to the customers in ``X`` (their future value per conversion).

        Missing values count as 0 (no future value known) and negative ones are clipped at 0.
        Without ``conversion_value`` configured this returns ``self``.
        """
        col = self.conversion_value_column
        if col is None:
            return self
        if col not in X.columns:
            raise DataError(f"economics.conversion_value names column '{col}', which the customers do not "
                            "have. Join it with [[data.join]] (e.g. the table 'promolift clv' writes).")
        values = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=np.float64)
        return self.with_values(np.clip(np.nan_to_num(values, nan=0.0), 0.0, None))

    def with_values(self, conversion_value: np.ndarray | None) -> Economics:
        """These economics with per-customer conversion values (``None``: unbound)."""
        return replace(self, conversion_value=conversion_value)

    def _future(self, conversions: np.ndarray) -> np.ndarray:
        """Future value of the conversions (broadcast over arms), or 0."""
        if self.conversion_value is None:
            if self.conversion_value_column is not None:
                raise DataError("these economics value conversions by a per-customer column: bind the "
                                "customers first with Economics.for_customers(X)")
            return np.zeros(())
        cv = self.conversion_value
        if len(cv) != len(conversions):
            raise DataError(f"{len(cv)} conversion values for {len(conversions)} customers")
        return cv.reshape((-1,) + (1,) * (conversions.ndim - 1)) * conversions

    @property
    def n_arms(self) -> int:
        return len(self.contact_cost)

    def _conversions(self, outcomes: np.ndarray) -> np.ndarray:
        if self.conversion_index is None:
            return np.zeros(outcomes.shape[:-1])
        return outcomes[..., self.conversion_index]

    def expected_cost(self, pred: np.ndarray) -> np.ndarray:
        """Expected promotion cost, shape (n, K), from predictions of shape (n, K, M)."""
        cost = (self.contact_cost + self.cost_per_conversion * self._conversions(pred)
                + self.discount_rate * pred[..., self.value_index])
        cost[:, 0] = 0.0
        return cost

    def expected_profit(self, pred: np.ndarray) -> np.ndarray:
        """Expected profit under each arm (not incremental), shape (n, K)."""
        return (self.margin * pred[..., self.value_index] + self._future(self._conversions(pred))
                - self.expected_cost(pred))

    def value_cost(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Incremental profit and expected cost matrices, each (n, K); column 0 is zero."""
        profit = self.expected_profit(pred)
        return profit - profit[:, :1], self.expected_cost(pred)

    def realized_cost(self, Y: np.ndarray, treatment: np.ndarray) -> np.ndarray:
        """Promotion cost each logged row actually incurred under the arm it received, shape (n,)."""
        t = np.asarray(treatment)
        cost = (self.contact_cost[t] + self.cost_per_conversion[t] * self._conversions(Y)
                + self.discount_rate[t] * Y[:, self.value_index])
        return np.where(t == 0, 0.0, cost)

    def realized_profit(self, Y: np.ndarray, treatment: np.ndarray) -> np.ndarray:
        """Profit each logged row actually made under the arm it received, shape (n,).

        The reward for off-policy evaluation: the control rows earn margin on spend (plus the
        future value of a conversion, if configured), treated rows also pay the promotion cost.
        """
        return (self.margin * Y[:, self.value_index] + self._future(self._conversions(Y))
                - self.realized_cost(Y, treatment))
