"""Data that ships with promolift: the Hillstrom e-mail experiment and a campaign simulator."""

from __future__ import annotations

import gzip
from importlib import resources

import pandas as pd

from promolift.config import CampaignConfig

__all__ = ["load_hillstrom", "hillstrom_config", "make_campaign", "SimulatedCampaign"]

HILLSTROM_SHA256 = "0e5893329d8b93cefecc571777672028290ab69865718020c78c7284f291aece"


def load_hillstrom() -> pd.DataFrame:
    """The Hillstrom MineThatData e-mail experiment (64,000 rows) with a ``customer_id`` column.

    Examples
    --------
    >>> df = load_hillstrom()
    >>> df.shape, sorted(df["segment"].unique())
    ((64000, 13), ['Mens E-Mail', 'No E-Mail', 'Womens E-Mail'])
    """
    with resources.files(__name__).joinpath("hillstrom.csv.gz").open("rb") as fh:
        frame = pd.read_csv(gzip.open(fh))
    frame.insert(0, "customer_id", range(1, len(frame) + 1))
    return frame


def hillstrom_config() -> CampaignConfig:
    """The campaign config for :func:`load_hillstrom`: $0.10 per e-mail, 30% margin."""
    import tomllib

    text = resources.files(__name__).joinpath("hillstrom.toml").read_text(encoding="utf-8")
    return CampaignConfig.from_dict(tomllib.loads(text), source="hillstrom.toml")


def __getattr__(name: str):
    if name in ("make_campaign", "SimulatedCampaign"):
        from promolift.datasets import simulator

        return getattr(simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
