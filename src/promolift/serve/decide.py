"""The per-customer decision rule, shared with the offline plan.

A plan made by the Lagrangian solver comes with prices: λ per dollar of budget, μ per contact and
ν_k per customer on a capped arm. At those prices every customer gets

    ``argmax_k value[i, k] − λ·cost[i, k] − μ − ν_k`` over arms eligible under ``min_roi``,

or control when no adjusted value is positive. :func:`decide` applies that rule with the very
code the solver uses (:func:`promolift.optimize.assign_at_prices`), so an online decision equals the
plan's for every customer except the few the solver's greedy fill upgraded at the price threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promolift.errors import ConfigError

__all__ = ["Prices", "decide"]


@dataclass(frozen=True)
class Prices:
    """Prices of the plan's constraints and its eligibility rule.

    Attributes
    ----------
    shadow_price : float
        λ, per dollar of expected cost.
    contact_price : float
        μ, per contacted customer.
    arm_prices : numpy.ndarray
        ``(K,)`` ν_k per customer given arm k (0 for control).
    min_roi : float or None
        Arm k is eligible for customer i only if ``value >= min_roi * cost``.
    """

    shadow_price: float = 0.0
    contact_price: float = 0.0
    arm_prices: np.ndarray | None = None
    min_roi: float | None = None

    def to_dict(self, arms: list[str]) -> dict[str, Any]:
        nu = np.zeros(len(arms)) if self.arm_prices is None else self.arm_prices
        return {"shadow_price": self.shadow_price, "contact_price": self.contact_price,
                "arm_prices": dict(zip(arms, map(float, nu), strict=True)), "min_roi": self.min_roi}

    @classmethod
    def from_plan(cls, summary: dict[str, Any], arms: list[str], *, source: str = "plan.json") -> Prices:
        """Read the prices from a plan summary (``plan.json``).

        Raises
        ------
        ConfigError
            If the summary lacks the prices, or prices arm caps it cannot attribute to arms.
        """
        missing = [k for k in ("shadow_price", "contact_price", "constraints") if k not in summary]
        if missing:
            raise ConfigError(f"{source}: not a plan summary (missing {', '.join(missing)}). "
                              "Give the plan.json written by 'promolift plan'.")
        caps = summary["constraints"].get("arm_caps") or {}
        prices = summary.get("arm_prices")
        if prices is None and caps:
            raise ConfigError(f"{source}: the plan caps arms ({', '.join(caps)}) but has no "
                              "'arm_prices'; re-run 'promolift plan' with this promolift version.")
        nu = np.zeros(len(arms))
        for name, price in (prices or {}).items():
            if name not in arms:
                raise ConfigError(f"{source}: arm_prices names arm '{name}' that the model does not "
                                  f"have (arms: {', '.join(arms)}). Is it the plan of another model?")
            nu[arms.index(name)] = float(price)
        return cls(shadow_price=float(summary["shadow_price"]),
                   contact_price=float(summary["contact_price"]), arm_prices=nu,
                   min_roi=summary["constraints"].get("min_roi"))


def read_plan_summary(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Load ``plan.json`` given the file, the table beside it or their directory."""
    path = Path(path)
    if path.is_dir():
        path = path / "plan.json"
    elif path.suffix.lower() != ".json":
        from promolift.plan import Plan

        path = Plan.summary_path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: plan summary not found. Give the plan.json written by "
                          "'promolift plan MODEL_DIR CUSTOMERS --out plan.csv' (or its directory).")
    try:
        return json.loads(path.read_text()), path
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}). Re-run 'promolift plan'.") from None


def decide(value: np.ndarray, cost: np.ndarray, prices: Prices, *, control: int = 0) -> np.ndarray:
    """Best arm per customer at the plan's prices (control when nothing is worth it).

    Parameters
    ----------
    value, cost : numpy.ndarray of shape (n, K)
        Expected incremental profit and expected cost (from :meth:`Economics.value_cost`).
    prices : Prices
    control : int, default=0

    Returns
    -------
    numpy.ndarray of shape (n,)
        Arm index per customer.

    Examples
    --------
    >>> import numpy as np
    >>> value = np.array([[0.0, 5.0, 9.0], [0.0, 4.0, 6.0], [0.0, -1.0, 3.0]])
    >>> cost = np.array([[0.0, 1.0, 4.0], [0.0, 1.0, 3.0], [0.0, 1.0, 2.0]])
    >>> decide(value, cost, Prices()).tolist()
    [2, 2, 2]
    >>> decide(value, cost, Prices(shadow_price=2.0)).tolist()
    [1, 1, 0]
    >>> decide(value, cost, Prices(min_roi=2.5)).tolist()  # arm 2 is eligible nowhere
    [1, 1, 0]
    """
    from promolift.optimize import assign_at_prices

    return assign_at_prices(value, cost, shadow_price=prices.shadow_price, contact_price=prices.contact_price,
                            arm_prices=prices.arm_prices, min_roi=prices.min_roi, control=control)
