"""Why the 30%-cap goal is not met: ranking rules for a capped Hillstrom plan, on the
development splits only (stratified 70/30, seeds 100-109; the reported seeds 0-4 are not used).

Every rule is fitted on the 70% and plans the held-out 30%: each customer's best arm by
predicted incremental profit (30% margin on spend, $0.10 per e-mail), the top 30% contacted
when that is positive; IPW profit per 1,000 held-out customers relative to nobody, as in
``bench_hillstrom.py``. The rules are deliberately simple (plain LightGBM T-learners on spend,
cell means, visit-uplift models) so that each question is answered by one change:

* does restricting or coarsening the features help, and can cross-validation on the 70%
  find the subset that helps (greedy backward elimination scored by 5-fold CV at the cap)?
* does ranking by the dense visit uplift (T-learner, interaction logistic regression, DR)
  beat the product's "relative via visit"?

The product's own candidates on the same splits come from ``dev_cap.py cands``.

Usage::

    python benchmarks/dev_cap_study.py [--seeds 100-109] [--out benchmarks/results/dev_cap_study.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from dev_cap import _design, seeds, split  # noqa: E402

from promolift.data import FeatureEncoder, load_campaign  # noqa: E402
from promolift.datasets import hillstrom_config, load_hillstrom  # noqa: E402
from promolift.train import stratification_label  # noqa: E402

CAP, MARGIN, COST = 0.3, 0.30, 0.10
HAND_PICKED = ["mens", "womens", "newbie", "channel", "zip_code"]
"""Picked after looking at segment means on all 64,000 rows (which contain every test split):
reported to show what data snooping would buy, not as a method."""

cfg = hillstrom_config()
data = load_campaign(load_hillstrom(), cfg)
X = FeatureEncoder(categorical=cfg.data.categorical).fit(data.X).transform(data.X)
ALL = list(X.columns)
T, Y, K = data.treatment, data.Y, data.n_arms
VISIT, SPEND = 0, 2


def ipw(policy: np.ndarray, rows: np.ndarray) -> float:
    a = T[rows]
    reward = MARGIN * Y[rows, SPEND] - COST * (a > 0)
    p = np.bincount(a, minlength=K) / len(a)
    return 1000 * (np.mean((a == policy) * reward / p[a]) - np.mean((a == 0) * reward / p[0]))


def capped(spend_uplift: np.ndarray) -> np.ndarray:
    """Best arm by predicted profit, the top CAP share contacted where that profit is positive."""
    profit = MARGIN * spend_uplift - COST
    best, arm = profit.max(axis=1), profit.argmax(axis=1) + 1
    policy = np.zeros(len(best), dtype=int)
    top = np.argsort(-best, kind="stable")[: int(CAP * len(best))]
    policy[top] = arm[top]
    policy[best <= 0] = 0
    return policy


def t_learner(feats, *, leaves=15, min_child=200, max_bin=255, outcome=SPEND, winsorize=None):
    """Per-arm LightGBM regressions; ``winsorize`` caps the outcome at that quantile of its
    positive training values."""
    def fit(tr, te):
        y = Y[:, outcome]
        if winsorize is not None:
            y = np.minimum(y, np.quantile(y[tr][y[tr] > 0], winsorize))
        level = []
        for k in range(K):
            rows = tr[T[tr] == k]
            m = lgb.LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=leaves,
                                  min_child_samples=min_child, max_bin=max_bin, verbose=-1, n_jobs=2,
                                  random_state=0).fit(X.iloc[rows][feats], y[rows])
            level.append(m.predict(X.iloc[te][feats]))
        level = np.stack(level, axis=1)
        return level[:, 1:] - level[:, :1]
    return fit


def cells(feats, outcome=SPEND):
    """Per-arm outcome means in every combination of ``feats`` (unseen cells: the arm's mean)."""
    def fit(tr, te):
        key = lambda rows: pd.MultiIndex.from_frame(X.iloc[rows][feats].astype(str))  # noqa: E731
        g = pd.DataFrame({"arm": T[tr], "y": Y[tr, outcome]}, index=key(tr))
        means = g.groupby([*g.index.names, "arm"])["y"].mean().unstack().reindex(columns=range(K))
        overall = np.array([Y[tr][T[tr] == k, outcome].mean() for k in range(K)])
        means = means.fillna(pd.Series(overall, index=range(K)))
        upl = means.to_numpy()[:, 1:] - means.to_numpy()[:, :1]
        out = pd.DataFrame(upl, index=means.index).reindex(key(te)).to_numpy()
        return np.where(np.isnan(out), overall[None, 1:] - overall[0], out)
    return fit


def subspace(size, n):
    """Average of T-learners on ``n`` random feature subsets of ``size`` (random-subspace ensemble)."""
    def fit(tr, te):
        rng = np.random.default_rng(0)
        return sum(t_learner(list(rng.choice(ALL, size, replace=False)))(tr, te) for _ in range(n)) / n
    return fit


def backward(tr, te):
    """Greedy backward elimination of features for the T-learner, scored by 5-fold CV at the cap
    on the training rows only; the chosen subset is then fitted on all of them."""
    label = stratification_label(data, cfg)[tr]

    def cv(feats):
        upl = np.zeros((len(tr), K - 1))
        for a, b in StratifiedKFold(5, shuffle=True, random_state=0).split(tr, label):
            upl[b] = t_learner(feats)(tr[a], tr[b])
        return ipw(capped(upl), tr)

    feats, score = list(ALL), cv(ALL)
    while len(feats) > 1:
        trial = {f: cv([g for g in feats if g != f]) for f in feats}
        drop, best = max(trial.items(), key=lambda kv: kv[1])
        if best <= score:
            break
        feats, score = [g for g in feats if g != drop], best
    backward.chosen.append(feats)
    return t_learner(feats)(tr, te)


backward.chosen = []


def via_visit(visit_fit):
    """Spend uplift = visit uplift × the arm's incremental spend per incremental visit."""
    def fit(tr, te):
        m = np.stack([Y[tr][T[tr] == k].mean(axis=0) for k in range(K)])
        per_visit = (m[1:, SPEND] - m[0, SPEND]) / (m[1:, VISIT] - m[0, VISIT])
        return visit_fit(tr, te) * per_visit[None]
    return fit


def visit_t(**params):
    def fit(tr, te):
        p = []
        for k in range(K):
            rows = tr[T[tr] == k]
            p.append(lgb.LGBMClassifier(**params, verbose=-1, n_jobs=2, random_state=0)
                     .fit(X.iloc[rows], Y[rows, VISIT]).predict_proba(X.iloc[te])[:, 1])
        p = np.stack(p, axis=1)
        return p[:, 1:] - p[:, :1]
    return fit


def visit_logistic(C):
    """Lo's (2002) interaction model: one logistic regression on [z, arm, arm × z]."""
    def fit(tr, te):
        Z = _design(X)
        Z = ((Z - Z.iloc[tr].mean()) / Z.iloc[tr].std().replace(0, 1)).to_numpy()

        def design(rows, arm):
            parts = [Z[rows]]
            for k in range(1, K):
                a = (arm == k).astype(float)[:, None]
                parts += [a, a * Z[rows]]
            return np.hstack(parts)

        m = LogisticRegression(C=C, max_iter=3000).fit(design(tr, T[tr]), Y[tr, VISIT])
        p = np.stack([m.predict_proba(design(te, np.full(len(te), k)))[:, 1] for k in range(K)], axis=1)
        return p[:, 1:] - p[:, :1]
    return fit


def interaction_pvalue(rows: np.ndarray, feature: str, outcome: int) -> float:
    """F-test p-value of arm × ``feature`` in a linear model of ``outcome`` with arm and feature
    main effects: is there any sign that the feature modifies the arms' effects?"""
    from scipy import stats

    Z = _design(X[[feature]]).to_numpy()[rows]
    arms = np.stack([(T[rows] == k).astype(float) for k in range(1, K)], axis=1)
    base = np.hstack([np.ones((len(rows), 1)), arms, Z])
    full = np.hstack([base, *(arms[:, [k]] * Z for k in range(K - 1))])
    y = Y[rows, outcome]

    def rss(D):
        e = y - D @ np.linalg.lstsq(D, y, rcond=None)[0]
        return e @ e

    q, dof = full.shape[1] - base.shape[1], len(rows) - full.shape[1]
    F = (rss(base) - rss(full)) / q / (rss(full) / dof)
    return float(stats.f.sf(F, q, dof))


RULES = {
    "T-learner on spend, all 8 features": t_learner(ALL),
    "T-learner, features coarsened to 3 bins": t_learner(ALL, max_bin=3),
    "T-learner, features coarsened to 10 bins": t_learner(ALL, max_bin=10),
    "T-learner, spend winsorised at the 95th percentile of order size": t_learner(ALL, winsorize=0.95),
    "T-learner, spend winsorised at the median order size": t_learner(ALL, winsorize=0.5),
    "T-learner, random-subspace ensemble, 20 × 4 features": subspace(4, 20),
    "T-learner, features chosen by CV (backward elimination)": backward,
    "T-learner, hand-picked 5 features (snooped)": t_learner(HAND_PICKED),
    "T-learner, hand-picked 5 minus zip_code": t_learner([f for f in HAND_PICKED if f != "zip_code"]),
    "T-learner, hand-picked 5 plus history_segment": t_learner([*HAND_PICKED, "history_segment"]),
    "T-learner, hand-picked 5 plus recency": t_learner([*HAND_PICKED, "recency"]),
    "cell means of spend, mens × womens": cells(["mens", "womens"]),
    "cell means of spend, hand-picked 5": cells(HAND_PICKED),
    "visit T-learner (31 leaves, min 50)": via_visit(visit_t(n_estimators=200, learning_rate=0.05,
                                                             num_leaves=31, min_child_samples=50)),
    "visit T-learner (8 leaves, min 1000)": via_visit(visit_t(n_estimators=200, learning_rate=0.03,
                                                              num_leaves=8, min_child_samples=1000)),
    "visit interaction logistic (C=1)": via_visit(visit_logistic(1.0)),
    "visit interaction logistic (C=0.01)": via_visit(visit_logistic(0.01)),
    "visit cell means, mens × womens": via_visit(cells(["mens", "womens"], outcome=VISIT)),
}


def _markdown(table: pd.DataFrame, fmt: str = "{:+.0f}") -> list[str]:
    head = [str(table.index.name or ""), *(str(c) for c in table.columns)]
    return ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head),
            *(f"| {name} | " + " | ".join(fmt.format(v) for v in row) + " |" for name, row in table.iterrows())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="100-109")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dev_cap_study.md")
    args = ap.parse_args()
    rows, pvalues = [], []
    for s in seeds(args.seeds):
        tr, te = split(data, cfg, s)
        pvalues += [{"feature": f, "outcome": data.outcomes[m], "p": interaction_pvalue(tr, f, m)}
                    for f in ALL for m in range(len(data.outcomes))]
        for name, fit in RULES.items():
            start = time.perf_counter()
            rows.append({"seed": s, "rule": name, "profit": ipw(capped(fit(tr, te)), te),
                         "seconds": time.perf_counter() - start})
        print(f"seed {s} done", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby("rule", sort=False)["profit"].agg(["mean", "std", "min", "max"])
    lines = [f"Development splits (seeds {args.seeds}), at most 30% contacted, IPW profit per 1,000 held-out "
             "customers relative to nobody (mean ± sd over splits, min, max).", "",
             "| rule | profit / 1,000 | min | max |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | "
              f"{r['mean']:+.0f} ± {r['std']:.0f} | {r['min']:+.0f} | {r['max']:+.0f} |"
              for name, r in summary.iterrows()]
    p = pd.DataFrame(pvalues).groupby(["feature", "outcome"])["p"].min().unstack()
    lines += ["", "Smallest p-value over the splits of the arm × feature interaction F-test (training rows):", "",
              *_markdown(p, fmt="{:.2g}")]
    lines += ["", "Features chosen by backward elimination, per split: "
              + "; ".join(", ".join(f) for f in backward.chosen), "",
              "Per split:", "", *_markdown(frame.pivot(index="rule", columns="seed", values="profit")
                                           .reindex(list(RULES)))]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
