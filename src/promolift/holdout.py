"""Evaluate a trained bundle on held-out randomized data, against the simple policies.

The question a marketer asks is "would this plan have beaten e-mailing everybody, or nobody?".
On a randomized held-out log that has an unbiased answer: the off-policy value of each policy,
by inverse propensity weighting (IPW) and doubly-robust (DR) estimators, with 95% intervals.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from promolift.bundle import ModelBundle, blend
from promolift.data.load import CampaignData
from promolift.errors import DataError
from promolift.evaluate.metrics import uplift_report
from promolift.evaluate.policy import policy_gain
from promolift.evaluate.scores import outcome_scores
from promolift.plan import make_plan
from promolift.train import arm_propensity

__all__ = ["evaluate_bundle", "policy_table"]


def policy_table(
    policies: dict[str, np.ndarray],
    data: CampaignData,
    reward: np.ndarray,
    mu: np.ndarray,
    propensity: np.ndarray,
) -> pd.DataFrame:
    """IPW and DR incremental value per 1,000 customers of each policy (arm per row) vs nobody."""
    rows = []
    for name, arm in policies.items():
        row: dict[str, Any] = {"policy": name, "contact_share": float(np.mean(arm != 0))}
        for method in ("ipw", "dr"):
            g = policy_gain(reward, data.treatment, arm, propensity, mu=mu, method=method)
            row |= {method: 1000 * g.estimate, f"{method}_low": 1000 * g.ci_low,
                    f"{method}_high": 1000 * g.ci_high}
        rows.append(row)
    return pd.DataFrame(rows)


def arm_uplift(data: CampaignData, *, z: float = 1.96) -> pd.DataFrame:
    """Observed average uplift of each arm over the control (difference in means, 95% CI)."""
    rows = []
    control = data.treatment == 0
    for k, arm in enumerate(data.arms[1:], start=1):
        treated = data.treatment == k
        for m, outcome in enumerate(data.outcomes):
            a, b = data.Y[treated, m], data.Y[control, m]
            diff = a.mean() - b.mean()
            se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
            rows.append({"arm": arm, "outcome": outcome, "uplift": diff, "ci_low": diff - z * se,
                         "ci_high": diff + z * se})
    return pd.DataFrame(rows)


def simple_policies(data: CampaignData, contact_share: float, *, random_state: int = 0) -> dict[str, np.ndarray]:
    """Nobody, each arm for everybody, and a random ``contact_share`` given a random arm."""
    n, rng = len(data), np.random.default_rng(random_state)
    out = {"nobody": np.zeros(n, dtype=np.int64)}
    for k, arm in enumerate(data.arms[1:], start=1):
        out[f"everybody: {arm}"] = np.full(n, k, dtype=np.int64)
    chosen = rng.random(n) < contact_share
    out[f"random {contact_share:.0%}"] = np.where(chosen, rng.integers(1, data.n_arms, n), 0)
    return out


def evaluate_bundle(
    bundle: ModelBundle,
    data: CampaignData,
    *,
    max_contacts_share: float | None = 0.3,
    budget: float | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """Score ``bundle`` on the held-out log ``data``.

    Returns a JSON-able dict: ``policies`` (records of policy, contact_share, ipw, ipw_low,
    ipw_high, dr, dr_low, dr_high — incremental profit per 1,000 customers relative to
    contacting nobody), ``arm_uplift`` (observed average uplift per arm × outcome with 95% CI),
    ``uplift`` (Qini AUC, AUUC, uplift@30% per model × arm × outcome; model "chosen" is the
    chosen blend), ``outcome_scores`` (AUC, log-loss, RMSE per arm × outcome), ``n_rows``.
    """
    if list(data.arms) != bundle.arms:
        raise DataError(f"{data.source}: arms {list(data.arms)} differ from the bundle's {bundle.arms}. "
                        "Evaluate on a log of the same campaign (same arms and control).")
    economics = bundle.economics.for_customers(data.X)
    chosen_kinds = [k for k, w in bundle.weights.items() if w > 0]
    preds = bundle.predict_kinds(data.X, list(dict.fromkeys([*bundle.models, *chosen_kinds])))
    pred = blend(preds, bundle.weights)
    reward = economics.realized_profit(data.Y, data.treatment)
    mu = economics.expected_profit(pred)
    propensity = arm_propensity(data)
    plans = {"promolift plan": make_plan(bundle, data.X, data.ids)}
    if max_contacts_share is not None:
        k = int(max_contacts_share * len(data))
        plans[f"promolift plan, ≤{max_contacts_share:.0%} contacted"] = make_plan(
            bundle, data.X, data.ids, max_contacts=k)
    if budget is not None:
        plans[f"promolift plan, budget {budget:,.0f}"] = make_plan(bundle, data.X, data.ids, budget=budget)
    arm_index = {a: i for i, a in enumerate(bundle.arms)}
    policies = {name: p.table["arm"].map(arm_index).to_numpy() for name, p in plans.items()}
    policies |= simple_policies(data, max_contacts_share or 0.3, random_state=random_state)
    table = policy_table(policies, data, reward, mu, propensity)
    ranking = {"chosen": pred} | {k: preds[k] for k in bundle.models if k != "constant"}
    uplift = pd.concat(
        [uplift_report(data.Y, p - p[:, :1], data.treatment, arms=list(data.arms),
                       outcomes=list(data.outcomes)).assign(model=name) for name, p in ranking.items()],
        ignore_index=True)
    return {
        "n_rows": len(data),
        "policies": table.to_dict(orient="records"),
        "chosen": {name: p.summary["policy"] for name, p in plans.items()},
        "arm_uplift": arm_uplift(data).to_dict(orient="records"),
        "uplift": uplift.to_dict(orient="records"),
        "outcome_scores": outcome_scores(pred, data.Y, data.treatment, arms=list(data.arms),
                                         outcomes=list(data.outcomes),
                                         outcome_types=list(data.outcome_types)).to_dict(orient="records"),
    }
