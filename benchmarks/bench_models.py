"""Each model kind on its own: Hillstrom held-out ranking and profit, simulator truth.

Every kind is fitted once on the training split with the hyperparameters ``train`` gives it
(the deep network chains conversion through visits; ``deep:nochain`` is the same network without
the chain; ``deep:separate`` the network with one head per arm × outcome), so the kinds are
compared directly. The row ``promolift`` is the product itself:
``train`` with every kind including ``deep`` (5-fold cross-validation, then the policy -- a single
kind, a blend or a shrunk blend -- chosen by cross-validated profit), planned with ``make_plan``.

* Hillstrom, 5 stratified 70/30 splits: Qini AUC of conversion and spend uplift per arm, and
  IPW incremental profit per 1,000 held-out customers of the kind's own plan (no cap, and ≤ 30%
  contacted); fit and predict seconds.
* Simulator (30,000 training rows, 10,000 new customers): PEHE (RMSE of predicted spend uplift
  against the truth, averaged over arms) and the share of the oracle's profit that the kind's
  unconstrained plan earns, judged by the true effects.

Usage::

    python benchmarks/bench_models.py [--splits 5] [--kinds t x dr relative deep promolift]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from promolift.config import CampaignConfig
from promolift.data import FeatureEncoder, load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.datasets.simulator import campaign_config, make_campaign
from promolift.economics import Economics
from promolift.evaluate.metrics import qini_auc_score
from promolift.evaluate.policy import policy_gain
from promolift.models import make_model
from promolift.optimize import allocate
from promolift.plan import make_plan
from promolift.train import arm_propensity, model_params, stratification_label, train

PRODUCT_KINDS = ["constant", "relative", "t", "x", "dr", "deep"]


class Cache:
    """Rows already measured (JSON lines), so a long run can stop and resume where it was."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows = [json.loads(line) for line in path.read_text().splitlines()] if path and path.exists() else []

    def get(self, **key) -> dict | None:
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, row: dict) -> dict:
        if self.path:
            with self.path.open("a") as f:
                f.write(json.dumps(row, default=float) + "\n")
        return row


def fit_kind(kind: str, cfg: CampaignConfig, X: pd.DataFrame, Y: np.ndarray, t: np.ndarray,
             types: list[str]):
    """Fit ``kind`` as ``train`` would (``"deep:nochain"``: deep without the funnel chain;
    ``"deep:separate"``: deep with one head per arm x outcome instead of the shared heads)."""
    base, _, variant = kind.partition(":")
    params = model_params(cfg, base)
    if variant == "nochain":
        params["chain"] = None
    elif variant == "separate":
        params["arm_heads"] = "separate"
    return make_model(base, **params).fit(X, Y, treatment=t, outcome_types=types)


def product(cfg: CampaignConfig, train_data, X_test: pd.DataFrame, ids: np.ndarray, caps: dict):
    """Train promolift with every kind; predictions of the chosen policy and its plans' arms."""
    cfg = CampaignConfig.from_dict(cfg.to_toml_dict() | {
        "model": cfg.to_toml_dict().get("model", {}) | {"kinds": PRODUCT_KINDS}})
    bundle = train(cfg, train_data)
    index = {a: i for i, a in enumerate(bundle.arms)}
    arms = {label: make_plan(bundle, X_test, ids, max_contacts=cap).table["arm"].map(index).to_numpy()
            for label, cap in caps.items()}
    return bundle.predict(X_test), arms, bundle.weights


def hillstrom(kinds: list[str], splits: int, cache: Cache) -> pd.DataFrame:
    cfg = hillstrom_config()
    data = load_campaign(load_hillstrom(), cfg)
    eco = Economics.from_config(cfg)
    X = FeatureEncoder().fit_transform(data.X)
    outcomes = list(data.outcomes)
    rows = []
    for s in range(splits):
        tr, te = train_test_split(np.arange(len(data)), test_size=0.3, random_state=s,
                                  stratify=stratification_label(data, cfg))
        test = data.subset(te)
        reward, prop = eco.realized_profit(test.Y, test.treatment), arm_propensity(test)
        caps = {"profit/1000": None, "profit/1000 ≤30%": int(0.3 * len(te))}
        for kind in kinds:
            if (done := cache.get(data="hillstrom", split=s, kind=kind)) is not None:
                rows.append({k: v for k, v in done.items() if k != "data"})
                continue
            start = time.perf_counter()
            if kind == "promolift":
                pred, plans, chosen = product(cfg, data.subset(tr), test.X, test.ids, caps)
                print(f"split {s}: promolift chose {chosen}", flush=True)
                fit_s, predict_s = time.perf_counter() - start, np.nan
            else:
                model = fit_kind(kind, cfg, X.iloc[tr], data.Y[tr], data.treatment[tr], data.outcome_types)
                fit_s = time.perf_counter() - start
                start = time.perf_counter()
                pred = model.predict(X.iloc[te])
                predict_s = time.perf_counter() - start
                value, cost = eco.value_cost(pred)
                plans = {label: allocate(value, cost, max_contacts=cap).arm for label, cap in caps.items()}
            row = {"split": s, "kind": kind, "fit_s": fit_s, "predict_s": predict_s}
            for k, arm in enumerate(data.arms[1:], start=1):
                keep = np.isin(test.treatment, (0, k))
                for o in ("conversion", "spend"):
                    m = outcomes.index(o)
                    row[f"qini {arm} {o}"] = qini_auc_score(test.Y[keep, m], (pred[:, k, m] - pred[:, 0, m])[keep],
                                                            (test.treatment[keep] == k).astype(int))
            for label, arm in plans.items():
                row[label] = 1000 * policy_gain(reward, test.treatment, arm, prop, method="ipw").estimate
            cache.add({"data": "hillstrom", **row})
            rows.append(row)
    return pd.DataFrame(rows)


def simulator(kinds: list[str], seeds: int, cache: Cache) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        sim = make_campaign(40000, random_state=seed)
        cfg = CampaignConfig.from_dict(campaign_config(sim) | {"model": {"funnel_outcome": "visit"}})
        eco = Economics.from_config(cfg)
        X = FeatureEncoder(categorical=sim.categorical).fit_transform(sim.feature_frame())
        t, Y = sim.treatment_codes(), sim.outcome_matrix()
        tr, te = np.arange(30000), np.arange(30000, 40000)
        true_value, _ = eco.value_cost(sim.true_outcomes[te])
        oracle = np.maximum(true_value.max(axis=1), 0).sum()
        truth = sim.true_outcomes[te][..., 2]
        for kind in kinds:
            if (done := cache.get(data="simulator", seed=seed, kind=kind)) is not None:
                rows.append({k: v for k, v in done.items() if k != "data"})
                continue
            if kind == "promolift":
                data = load_campaign(sim.frame, cfg)
                pred, plans, _ = product(cfg, data.subset(tr), data.X.iloc[te], data.ids[te], {"all": None})
                arm = plans["all"]
            else:
                pred = fit_kind(kind, cfg, X.iloc[tr], Y[tr], t[tr], sim.outcome_types).predict(X.iloc[te])
                arm = allocate(*eco.value_cost(pred)).arm
            lift = pred[..., 2][:, 1:] - pred[..., 2][:, :1]
            pehe = float(np.sqrt(np.mean((lift - (truth[:, 1:] - truth[:, :1])) ** 2)))
            share = true_value[np.arange(len(te)), arm].sum() / oracle
            row = {"seed": seed, "kind": kind, "PEHE spend": pehe, "oracle profit share": share}
            cache.add({"data": "simulator", **row})
            rows.append(row)
    return pd.DataFrame(rows)


def _table(frame: pd.DataFrame, by: str, skip: tuple[str, ...]) -> str:
    cols = [c for c in frame.columns if c not in (by, *skip)]
    g = frame.groupby(by, sort=False)[cols]
    mean, sd = g.mean(), g.std()
    lines = [f"| {by} | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
    for name, r in mean.iterrows():
        lines.append(f"| {name} | " + " | ".join(f"{r[c]:.3g} ± {sd.loc[name, c]:.2g}" for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--kinds", nargs="+", default=["t", "x", "dr", "relative", "deep", "deep:nochain", "promolift"])
    ap.add_argument("--cache", type=Path, default=Path(__file__).parent / "results" / "models_rows.jsonl",
                    help="measured rows (JSON lines): reused, so a stopped run resumes; delete to re-measure")
    args = ap.parse_args()
    cache = Cache(args.cache)
    hs = hillstrom(args.kinds, args.splits, cache)
    sim = simulator(args.kinds, args.seeds, cache)
    text = (f"Hillstrom, each kind fitted once on the 70% ('promolift': train + plan), mean ± sd over "
            f"{args.splits} splits\n\n{_table(hs, 'kind', ('split',))}\n\n"
            f"Simulator, 30,000 training rows, 10,000 new customers, mean ± sd over {args.seeds} seeds\n\n"
            f"{_table(sim, 'kind', ('seed',))}\n")
    print(text)
    (Path(__file__).parent / "results" / "models.md").write_text(text)

if __name__ == "__main__":
    main()
