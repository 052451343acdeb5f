"""Customer lifetime value and churn from order logs: BG/NBD + Gamma-Gamma.

Read an order log, summarise it per customer, fit the purchase-count and spend models, and
score every customer::

    from promolift.clv import (load_transactions, rfm_summary, BetaGeoModel,
                               GammaGammaModel, customer_value)
    tx = load_transactions("orders.csv", customer_col="customer_id", date_col="date",
                           value_col="amount")
    s = rfm_summary(tx, calibration_end="2024-06-30")
    bg = BetaGeoModel().fit(s["frequency"], s["recency"], s["T"])
    gg = GammaGammaModel().fit(s["frequency"], s["monetary_value"])
    table = customer_value(s, bg, gg, horizon=52, margin=0.3)

Submodules load on first use, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_transactions": "promolift.clv.transactions",
    "read_order_file": "promolift.clv.transactions",
    "CDNOW_COLUMNS": "promolift.clv.transactions",
    "rfm_summary": "promolift.clv.summary",
    "NewCustomersWarning": "promolift.clv.summary",
    "summarize_file": "promolift.clv.sql",
    "BetaGeoModel": "promolift.clv.bgnbd",
    "GammaGammaModel": "promolift.clv.gamma_gamma",
    "customer_value": "promolift.clv.value",
    "churn_segment": "promolift.clv.value",
    "discounted_purchases": "promolift.clv.value",
    "SEGMENT_THRESHOLDS": "promolift.clv.value",
    "simulate_bgnbd": "promolift.clv.simulate",
    "simulate_order_log": "promolift.clv.simulate",
    "fit_clv": "promolift.clv.pipeline",
    "ClvResult": "promolift.clv.pipeline",
    "load_cdnow_sample": "promolift.datasets",
    "SupervisedCLV": "promolift.clv.supervised",
    "order_features": "promolift.clv.supervised",
    "holdout_comparison": "promolift.clv.holdout",
    "compare_holdout": "promolift.clv.holdout",
    "render_clv_report": "promolift.clv.report",
    "write_clv_report": "promolift.clv.report",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'promolift.clv' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
