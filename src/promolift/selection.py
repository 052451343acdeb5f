"""Choose the policy by cross-validated profit, simple policies included.

A *candidate* is a weighted blend of the fitted model kinds. ``constant`` (the average effect of
each arm, the same for everybody) and ``relative`` (the same relative effect for everybody) are
kinds too, so "shrink the DR-learner half-way to the average effect" is the candidate
``{"dr": 0.5, "constant": 0.5}``, "men's e-mail for everybody"
is what ``{"constant": 1}`` plans when that arm pays, and "nobody" is scored alongside. Each
candidate's plan is made on the out-of-fold predictions under the user's constraints and valued
with the doubly-robust estimator on the logged outcomes; the best estimate wins. Noisy uplift
estimates are thereby shrunk exactly as far as held-out profit says they should be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from promolift.bundle import OutOfFold, blend
from promolift.economics import Economics
from promolift.evaluate.policy import per_row_contributions, policy_gain
from promolift.optimize import allocate

__all__ = ["Constraints", "Candidate", "anchor_for", "candidates", "choose", "choose_anchored",
           "score_candidates", "select"]

SHRINKAGE = (0.75, 0.5, 0.25)
ANCHOR_Z = 2.0
"""Paired standard errors by which a candidate must beat a constrained plan's default policy."""
LEARNERS = ("t", "x", "dr", "deep")
TARGETS = ("constant", "relative")
"""Simple models the learners are shrunk towards: the same absolute effect for everybody, and
the same relative effect for everybody (uplift proportional to what the customer buys anyway)."""


@dataclass(frozen=True)
class Constraints:
    """Plan constraints expressed per customer, so they transfer between populations.

    ``budget_per_customer`` is the budget divided by the number of customers planned;
    ``contact_share`` and ``arm_cap_shares`` likewise.
    """

    budget_per_customer: float | None = None
    contact_share: float | None = None
    arm_cap_shares: tuple[float | None, ...] | None = None
    min_roi: float | None = None

    @classmethod
    def for_population(
        cls,
        n: int,
        *,
        budget: float | None = None,
        max_contacts: int | None = None,
        arm_caps: list[int | None] | None = None,
        min_roi: float | None = None,
    ) -> Constraints:
        return cls(
            budget_per_customer=None if budget is None else budget / n,
            contact_share=None if max_contacts is None else max_contacts / n,
            arm_cap_shares=None if arm_caps is None else tuple(None if c is None else c / n for c in arm_caps),
            min_roi=min_roi,
        )

    @property
    def binding(self) -> bool:
        """Whether a budget, contact cap or arm cap limits the plan (``min_roi`` only filters)."""
        return (self.budget_per_customer is not None or self.contact_share is not None
                or any(c is not None for c in self.arm_cap_shares or ()))

    def absolute(self, n: int) -> dict:
        """Keyword arguments for :func:`promolift.optimize.allocate` on ``n`` customers."""
        return {
            "budget": None if self.budget_per_customer is None else self.budget_per_customer * n,
            "max_contacts": None if self.contact_share is None else int(np.floor(self.contact_share * n)),
            "arm_caps": None if self.arm_cap_shares is None
            else [None if s is None else int(np.floor(s * n)) for s in self.arm_cap_shares],
            "min_roi": self.min_roi,
        }


@dataclass(frozen=True)
class Candidate:
    """A blend of model kinds; ``complexity`` orders candidates for the one-standard-error rule
    (0 nobody, 1 constant, 2 relative, 3–5 a learner shrunk 75/50/25%, 6 a learner alone)."""

    name: str
    weights: dict[str, float]
    complexity: int


def candidates(kinds: list[str], funnel: str | None = None) -> list[Candidate]:
    """The candidate blends for the fitted ``kinds``: nobody, each simple target alone, and
    every learner (and their equal blend) alone and shrunk 25/50/75% towards each target.

    With a ``funnel`` outcome (and the relative model), each learner also appears with its
    uplift routed through the funnel (derived kind ``"t@visit"``, see
    :func:`promolift.bundle.through_funnel`), alone and shrunk 50% towards ``relative``.
    """
    learners = [k for k in kinds if k in LEARNERS]
    targets = [k for k in TARGETS if k in kinds]
    bases: list[tuple[str, dict[str, float]]] = [(k, {k: 1.0}) for k in learners]
    if len(learners) > 1:
        bases.append(("blend", {k: 1.0 / len(learners) for k in learners}))
    chained = []
    if funnel is not None and "relative" in kinds:
        for name, w in bases:
            via = {f"{k}@{funnel}": v for k, v in w.items()}
            chained.append(Candidate(f"{name} via {funnel}", via, 3 + len(SHRINKAGE)))
            chained.append(Candidate(f"{name} via {funnel} shrunk 50% to relative",
                                     {k: v / 2 for k, v in via.items()} | {"relative": 0.5}, 4))
    out = [Candidate("nobody", {}, 0),
           *(Candidate(t, {t: 1.0}, 1 + TARGETS.index(t)) for t in targets)]
    if funnel is not None and "relative" in kinds:
        # the relative model ranking customers by the dense funnel outcome alone (see with_derived)
        out.append(Candidate(f"relative via {funnel}", {f"relative@{funnel}": 1.0}, 2))
    for name, w in bases:
        out.append(Candidate(name, w, 3 + len(SHRINKAGE)))
        for target in targets:
            for i, s in enumerate(SHRINKAGE):
                weights = {k: v * s for k, v in w.items()} | {target: 1.0 - s}
                out.append(Candidate(f"{name} shrunk {1 - s:.0%} to {target}", weights, 5 - i))
    return out + chained


def anchor_for(cands: list[Candidate], constraints: Constraints) -> str | None:
    """The default policy of a plan whose constraints bind (a budget, contact or arm caps), or
    None for an unconstrained plan (then the one-standard-error rule applies).

    Under a cap the plan must *rank* customers, so "nobody" and "constant" (which ranks nobody:
    its cap picks customers at random) are poor defaults. The default is the simplest ranking
    model: the relative model ranked by the dense funnel outcome when there is one ("relative
    via visit"), else "relative".
    """
    if not constraints.binding:
        return None
    names = [c.name for c in cands]
    return next((n for n in names if n.startswith("relative via ")), "relative" if "relative" in names else None)


def choose_anchored(table: pd.DataFrame, contributions: np.ndarray, anchor: str, *, z: float = ANCHOR_Z
                    ) -> pd.Series:
    """Keep the ``anchor`` candidate unless another one beats it by ``z`` paired standard errors
    (then the best of those that do).

    Among ~40 candidates the largest of their noise-only differences from the anchor is around
    two standard errors, so a one-standard-error margin mostly chases noise; ``contributions``
    are the per-row DR terms in ``table``'s order (``score_candidates(..., return_contributions=True)``).
    """
    i = int(np.flatnonzero(table["candidate"].to_numpy() == anchor)[0])
    gain, se = _paired(contributions, i)
    beats = (se > 0) & (gain > z * se)
    j = int(np.argmax(np.where(beats, gain, -np.inf))) if beats.any() else i
    return table.iloc[j]


def choose(table: pd.DataFrame) -> pd.Series:
    """The one-standard-error rule: the simplest candidate whose cross-validated profit is
    within one standard error of the best (ties: the higher estimate).

    Candidates' estimates differ by less than their noise on typical campaign data, so the
    argmax mostly picks whichever complex model was luckiest in cross-validation; preferring
    the simplest policy that is statistically as good holds up better on new customers.
    """
    best = table["profit_per_1000"].max()
    near = table[table["profit_per_1000"] >= best - table["stderr_vs_best"]]
    return near.sort_values(["complexity", "profit_per_1000"], ascending=[True, False]).iloc[0]


def score_candidates(
    oof: OutOfFold,
    economics: Economics,
    constraints: Constraints,
    cands: list[Candidate],
    *,
    solver: str = "lagrangian",
    return_contributions: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Cross-validated incremental profit per 1,000 customers of each candidate's plan.

    Returns a frame sorted best first with columns candidate, profit_per_1000, stderr, ci_low,
    ci_high, contact_share, cost_per_customer (planned), weights, complexity, and
    stderr_vs_best (paired standard error of the difference from the best candidate). With
    ``return_contributions`` also the per-row DR contributions (n, len(frame)), in the frame's
    row order (see :func:`choose_anchored`).
    """
    n = len(oof.treatment)
    reward = economics.realized_profit(oof.Y, oof.treatment)
    fitted = [k for k in oof.predictions if "@" not in k]
    all_learners = {k: 1.0 / len(fitted) for k in fitted}
    mu = economics.expected_profit(blend(oof.predictions, all_learners))
    limits = constraints.absolute(n)
    rows, contributions = [], []
    for cand in cands:
        value, cost = economics.value_cost(blend(oof.predictions, cand.weights))
        alloc = allocate(value, cost, method=solver, **limits)
        gain = policy_gain(reward, oof.treatment, alloc.arm, oof.propensity, mu=mu, method="dr")
        contributions.append(per_row_contributions(reward, oof.treatment, alloc.arm, oof.propensity,
                                                   mu=mu, method="dr"))
        rows.append({
            "candidate": cand.name,
            "profit_per_1000": 1000 * gain.estimate,
            "stderr": 1000 * gain.stderr,
            "ci_low": 1000 * gain.ci_low,
            "ci_high": 1000 * gain.ci_high,
            "contact_share": float(np.mean(alloc.arm != 0)),
            "cost_per_customer": float(alloc.total_cost / n),
            "weights": cand.weights,
            "complexity": cand.complexity,
        })
    table = pd.DataFrame(rows)
    per_row = np.stack(contributions, axis=1)
    table["stderr_vs_best"] = 1000 * _paired(per_row, int(table["profit_per_1000"].idxmax()))[1]
    order = np.asarray(table.sort_values("profit_per_1000", ascending=False, kind="stable").index)
    table = table.loc[order].reset_index(drop=True)
    if return_contributions:
        return table, per_row[:, order]
    return table


def _paired(per_row: np.ndarray, ref: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of each column's per-row difference from column ``ref``
    (paired: the same rows, so their shared noise cancels)."""
    diff = per_row - per_row[:, [ref]]
    return diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(len(diff))


def select(
    oof: OutOfFold,
    economics: Economics,
    constraints: Constraints,
    cands: list[Candidate],
    *,
    solver: str = "lagrangian",
) -> tuple[pd.DataFrame, pd.Series]:
    """Score the candidates under ``constraints`` and choose one: unconstrained by the
    one-standard-error rule (:func:`choose`); when the constraints bind, the default ranking
    policy (:func:`anchor_for`) unless another beats it clearly (:func:`choose_anchored`).
    Returns the scored table and the chosen row (its ``rule`` says which rule chose)."""
    table, contributions = score_candidates(oof, economics, constraints, cands, solver=solver,
                                            return_contributions=True)
    anchor = anchor_for(cands, constraints)
    if anchor is None:
        best = choose(table).copy()
        best["rule"] = "one standard error"
    else:
        best = choose_anchored(table, contributions, anchor).copy()
        best["rule"] = f"default {anchor!r} unless beaten by {ANCHOR_Z:g} paired standard errors"
    return table, best
