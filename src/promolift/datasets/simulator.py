"""A promotion-campaign simulator whose true per-customer, per-arm responses are known.

Real experiment logs never show what a customer *would* have done under the arms she did not
get, so a model's uplift cannot be checked against them. :func:`make_campaign` draws a
randomized e-mail campaign from a known model and returns, next to the observed log, the true
expected visit, conversion and spend of every customer under every arm. Tests and benchmarks
use it to check that the response models recover the truth.

The generative model (all effects on the logit scale):

- control: ``P(visit)`` ~ 15%, ``P(conversion | visit)`` ~ 11% (conversion ~ 1.7%), spend given
  conversion lognormal with mean ~ $95, all depending on past spend (``history``), recency,
  recent web visits and channel;
- ``arm1`` (a product-line e-mail): raises visits strongly for ``preference = "mens"``, somewhat
  for ``"both"``, and *lowers* them for ``"womens"``; more for recent customers; raises
  conversion of ``"mens"`` visitors;
- ``arm2`` (a smaller, different pattern): raises visits of high-history customers, raises
  conversion on the web channel and lowers it on the phone channel, and lifts basket size 10%;
- arms 3+ (when ``n_arms > 3``): channel-driven patterns of decreasing size.

Missing values are masked *after* the outcomes are drawn: the truth depends on the real value,
the model sees NaN (as with real data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SimulatedCampaign", "campaign_config", "make_campaign"]

CHANNELS = ["web", "phone", "multichannel"]
PREFERENCES = ["mens", "womens", "both"]
OUTCOMES = ["visit", "conversion", "spend"]
OUTCOME_TYPES = ["binary", "binary", "continuous"]
NUMERIC_FEATURES = ["recency", "history", "web_visits", "tenure"]
CATEGORICAL_FEATURES = ["channel", "preference"]
_MISSABLE = ["history", "web_visits", "tenure"]
_SPEND_SIGMA = 0.6


@dataclass(frozen=True, eq=False)
class SimulatedCampaign:
    """A simulated randomized campaign and its known truth.

    Attributes
    ----------
    frame : pandas.DataFrame
        The observed log: ``customer_id``, ``treatment`` (arm name), the features (categorical
        ones as strings, numeric ones float64 with NaN for missing) and the outcomes
        ``visit`` (0/1), ``conversion`` (0/1, only after a visit) and ``spend`` (0 unless
        converted).
    true_outcomes : numpy.ndarray of shape (n, K, 3)
        True expected visit, conversion and spend of every customer under every arm.
    arms : list of str
        Arm names, control first: ``["control", "arm1", ...]``.
    outcomes : list of str
        ``["visit", "conversion", "spend"]``.
    outcome_types : list of str
        ``["binary", "binary", "continuous"]``.
    features : list of str
        Feature columns of ``frame``.
    categorical : list of str
        The categorical ones among ``features``.
    """

    frame: pd.DataFrame
    true_outcomes: np.ndarray
    arms: list[str]
    outcomes: list[str]
    outcome_types: list[str]
    features: list[str]
    categorical: list[str]

    def feature_frame(self) -> pd.DataFrame:
        """Features as a model expects them: float64 numeric and fixed-category columns."""
        X = self.frame[self.features].copy()
        for col, cats in (("channel", CHANNELS), ("preference", PREFERENCES)):
            X[col] = pd.Categorical(X[col], categories=cats)
        return X

    def treatment_codes(self) -> np.ndarray:
        """Arm codes 0..K-1 of ``frame.treatment`` (0 = control)."""
        return pd.Categorical(self.frame["treatment"], categories=self.arms).codes.astype(np.int64)

    def outcome_matrix(self) -> np.ndarray:
        """Observed outcomes as a float (n, 3) array, columns in :attr:`outcomes` order."""
        return self.frame[self.outcomes].to_numpy(dtype=np.float64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _arm_effects(
    arm: int, f: dict[str, np.ndarray]
) -> tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float]:
    """(visit logit shift, conversion logit shift, spend multiplier) of arm ``arm`` >= 1."""
    pref, channel, zh, recency = f["preference"], f["channel"], f["zhist"], f["recency"]
    if arm == 1:
        recent = 1.0 + 0.4 * (6.0 - recency) / 6.0  # 1.33 for recency 1, 0.6 for recency 12
        visit = np.select([pref == "mens", pref == "womens"], [0.9, -0.5], 0.3) * recent
        conv = np.where(pref == "mens", 0.3, 0.0)
        return visit, conv, 1.0
    if arm == 2:
        visit = 0.1 + 0.3 * np.clip(zh, -1.0, 2.0)
        conv = np.select([channel == "web", channel == "phone"], [0.4, -0.2], 0.1)
        return visit, conv, 1.1
    scale = 1.0 / (arm - 1)
    sign = 1.0 if arm % 2 else -1.0
    by_channel = [channel == "phone", channel == "web"]
    visit = scale * np.select(by_channel, [0.6 * sign, -0.2 * sign], 0.2)
    conv = scale * 0.2 * np.clip(zh, -1.0, 1.0)
    return visit, conv, 1.0


def make_campaign(
    n: int = 20000,
    *,
    n_arms: int = 3,
    random_state: int | None = 0,
    missing_rate: float = 0.02,
) -> SimulatedCampaign:
    """Simulate a randomized promotion campaign with known heterogeneous effects.

    Parameters
    ----------
    n : int, default=20000
        Number of customers.
    n_arms : int, default=3
        Number of arms including the control (>= 2).
    random_state : int or None, default=0
        Seed; the same seed gives the same campaign.
    missing_rate : float, default=0.02
        Share of values set to NaN in ``history``, ``web_visits`` and ``tenure``.

    Returns
    -------
    SimulatedCampaign
        The observed log and the true expected outcomes of every customer under every arm.

    Raises
    ------
    ValueError
        If ``n < 1``, ``n_arms < 2`` or ``missing_rate`` is not in [0, 1).

    See Also
    --------
    campaign_config : A ``campaign.toml``-shaped dict describing the simulated log.

    Examples
    --------
    >>> from promolift.datasets.simulator import make_campaign
    >>> sim = make_campaign(1000, random_state=1)
    >>> sim.frame.shape, sim.true_outcomes.shape
    ((1000, 11), (1000, 3, 3))
    >>> sim.arms
    ['control', 'arm1', 'arm2']
    """
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 1:
        raise ValueError(f"make_campaign: n must be an int >= 1; got {n!r}.")
    if not isinstance(n_arms, int | np.integer) or isinstance(n_arms, bool) or n_arms < 2:
        raise ValueError(
            f"make_campaign: n_arms must be an int >= 2 (control + 1 arm); got {n_arms!r}."
        )
    if not 0.0 <= missing_rate < 1.0:
        raise ValueError(f"make_campaign: missing_rate must be in [0, 1); got {missing_rate!r}.")
    rng = np.random.default_rng(random_state)
    n = int(n)
    K = int(n_arms)

    # -- customers ---------------------------------------------------------------------------
    recency = rng.integers(1, 13, size=n).astype(np.float64)
    history = np.round(np.exp(rng.normal(5.0, 0.8, size=n)), 2)
    web_visits = rng.poisson(2.0, size=n).astype(np.float64)
    tenure = np.round(rng.uniform(0.0, 10.0, size=n), 1)
    channel = np.asarray(CHANNELS, dtype=object)[rng.choice(3, size=n, p=[0.45, 0.40, 0.15])]
    preference = np.asarray(PREFERENCES, dtype=object)[rng.choice(3, size=n, p=[0.40, 0.45, 0.15])]
    zhist = (np.log(history) - 5.0) / 0.8
    feats = {"preference": preference, "channel": channel, "zhist": zhist, "recency": recency}

    # -- true responses under every arm ------------------------------------------------------
    visit_logit = (
        -1.9
        + 0.5 * zhist
        - 0.08 * (recency - 6.0)
        + 0.15 * (web_visits - 2.0)
        + 0.3 * (channel == "multichannel")
        + 0.05 * (tenure - 5.0)
    )
    conv_logit = -2.2 + 0.4 * zhist + 0.2 * (channel == "web")
    basket = 90.0 * np.exp(0.25 * np.clip(zhist, -2.0, 2.0))  # E[spend | conversion], control
    truth = np.empty((n, K, 3))
    log_basket = np.empty((n, K))
    for k in range(K):
        dv, dc, mult = (0.0, 0.0, 1.0) if k == 0 else _arm_effects(k, feats)
        p_visit = _sigmoid(visit_logit + dv)
        p_conv = p_visit * _sigmoid(conv_logit + dc)
        mean_spend = basket * mult
        truth[:, k] = np.column_stack([p_visit, p_conv, p_conv * mean_spend])
        log_basket[:, k] = np.log(mean_spend) - _SPEND_SIGMA**2 / 2.0

    # -- randomized assignment (equal shares) and observed outcomes --------------------------
    t = rng.permutation(np.arange(n) % K)
    rows = np.arange(n)
    p_visit = truth[rows, t, 0]
    p_conv_given_visit = truth[rows, t, 1] / p_visit
    visit = rng.random(n) < p_visit
    conversion = visit & (rng.random(n) < p_conv_given_visit)
    amount = np.exp(log_basket[rows, t] + _SPEND_SIGMA * rng.standard_normal(n))
    spend = np.where(conversion, np.round(amount, 2), 0.0)

    # -- mask features after the outcomes (the truth uses the real values) -------------------
    numeric = {"recency": recency, "history": history, "web_visits": web_visits, "tenure": tenure}
    for name in _MISSABLE:
        numeric[name] = np.where(rng.random(n) < missing_rate, np.nan, numeric[name])

    arms = ["control", *(f"arm{k}" for k in range(1, K))]
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(7).radd("C"),
            "treatment": np.asarray(arms, dtype=object)[t],
            **numeric,
            "channel": channel,
            "preference": preference,
            "visit": visit.astype(np.int64),
            "conversion": conversion.astype(np.int64),
            "spend": spend,
        }
    )
    frame["treatment"] = frame["treatment"].astype(str)
    frame["channel"] = frame["channel"].astype(str)
    frame["preference"] = frame["preference"].astype(str)
    return SimulatedCampaign(
        frame=frame,
        true_outcomes=truth,
        arms=arms,
        outcomes=list(OUTCOMES),
        outcome_types=list(OUTCOME_TYPES),
        features=NUMERIC_FEATURES + CATEGORICAL_FEATURES,
        categorical=list(CATEGORICAL_FEATURES),
    )


def campaign_config(sim: SimulatedCampaign) -> dict[str, Any]:
    """A ``campaign.toml``-shaped dict describing a simulated campaign.

    Every promotion arm costs 0.10 per contact; ``data.path`` is left out (the log is in memory).

    Parameters
    ----------
    sim : SimulatedCampaign
        From :func:`make_campaign`.

    Returns
    -------
    dict
        Sections ``data``, ``outcomes``, ``economics`` and ``arms``, ready for
        ``CampaignConfig.from_dict``.

    Examples
    --------
    >>> from promolift.datasets.simulator import campaign_config, make_campaign
    >>> cfg = campaign_config(make_campaign(100))
    >>> cfg["arms"]
    {'arm1': {'contact_cost': 0.1}, 'arm2': {'contact_cost': 0.1}}
    """
    return {
        "data": {
            "id": "customer_id",
            "treatment": "treatment",
            "control": sim.arms[0],
            "features": list(sim.features),
            "categorical": list(sim.categorical),
        },
        "outcomes": dict(zip(sim.outcomes, sim.outcome_types, strict=True)),
        "economics": {"value_outcome": "spend", "conversion_outcome": "conversion"},
        "arms": {name: {"contact_cost": 0.10} for name in sim.arms[1:]},
    }
