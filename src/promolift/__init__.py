"""promolift: which customer should get which promotion, and what will it do to profit.

The main steps are importable from here; submodules load on first use, so ``import promolift``
stays cheap::

    import promolift
    config = promolift.load_config("campaign.toml")
    bundle = promolift.train(config, promolift.load_campaign(None, config))
"""

from __future__ import annotations

import importlib
from typing import Any

from promolift._version import __version__

_EXPORTS = {
    "load_config": "promolift.config",
    "CampaignConfig": "promolift.config",
    "load_campaign": "promolift.data",
    "load_customers": "promolift.data",
    "data_quality": "promolift.data",
    "train": "promolift.train",
    "ModelBundle": "promolift.bundle",
    "make_plan": "promolift.plan",
    "Plan": "promolift.plan",
    "evaluate_bundle": "promolift.holdout",
    "allocate": "promolift.optimize",
    "make_model": "promolift.models",
    "Economics": "promolift.economics",
    "write_report": "promolift.report",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'promolift' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
