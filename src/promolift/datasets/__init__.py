"""Data that ships with promolift: the Hillstrom e-mail experiment and a campaign simulator."""

from __future__ import annotations

import gzip
from importlib import resources

import pandas as pd

from promolift.config import CampaignConfig

__all__ = ["load_hillstrom", "hillstrom_config", "load_cdnow_sample", "make_campaign", "SimulatedCampaign"]

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


CDNOW_SAMPLE_SHA256 = "5284e04fb565eeadc9a2cee8c5d5d181ae1253ce134b678a633cfe594a6f6148"


def load_cdnow_sample() -> pd.DataFrame:
    """The CDNOW 1/10 sample order log: 6,919 orders of 2,357 customers, 1997-01 to 1998-06.

    The customers who first bought at CDNOW in the first quarter of 1997, as used by Fader,
    Hardie & Lee (2005) for BG/NBD and Gamma-Gamma. Columns ``customer_id`` (int), ``date``
    (int ``YYYYMMDD``), ``number_of_cds`` and ``dollar_value``; one row per order line, so a
    customer can have several rows on one day. Read it with
    ``promolift.clv.load_transactions(df, customer_col="customer_id", date_col="date",
    value_col="dollar_value")``.

    Examples
    --------
    >>> df = load_cdnow_sample()
    >>> df.shape, int(df["customer_id"].nunique())
    ((6919, 4), 2357)
    """
    with resources.files(__name__).joinpath("cdnow_sample.csv.gz").open("rb") as fh:
        return pd.read_csv(gzip.open(fh))


def __getattr__(name: str):
    if name in ("make_campaign", "SimulatedCampaign"):
        from promolift.datasets import simulator

        return getattr(simulator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
