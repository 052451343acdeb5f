"""Development harness for the capped plan, on splits that are NOT the reported benchmark's.

The reported Hillstrom benchmark uses the stratified 70/30 splits with seeds 0-4. Ideas for
choosing the capped policy are developed and compared here on the same split procedure with
other seeds (default 100-109), so that the final figures on seeds 0-4 stay out of sample.

``build`` trains promolift once per split and caches, per model kind, the calibrated
out-of-fold predictions on the 70% and the final model's predictions on the held-out 30%
(``--cache``, default ``/tmp/promolift-dev``). ``eval`` then replays selection rules on the
cache: each rule sees only the out-of-fold predictions; its chosen blend is planned on the
held-out 30% and valued by IPW, per 1,000 customers, relative to nobody.

Usage::

    python benchmarks/dev_cap.py build --seeds 100-109
    python benchmarks/dev_cap.py eval --seeds 100-109
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from promolift.bundle import OutOfFold, blend, with_derived
from promolift.data import load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.evaluate.policy import policy_gain
from promolift.optimize import allocate
from promolift.selection import Constraints, candidates, choose, choose_anchored, score_candidates, select
from promolift.train import arm_propensity, stratification_label, train

CAP = 0.3


def seeds(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def split(data, cfg, seed: int):
    return train_test_split(np.arange(len(data)), test_size=0.3, random_state=seed,
                            stratify=stratification_label(data, cfg))


def build(args, cfg, data) -> None:
    args.cache.mkdir(parents=True, exist_ok=True)
    for s in seeds(args.seeds):
        path = args.cache / f"seed_{s}.npz"
        if path.exists() and not args.force:
            continue
        tr, te = split(data, cfg, s)
        start = time.perf_counter()
        bundle = train(cfg, data.subset(tr))
        test = data.subset(te)
        preds = bundle.predict_kinds(test.X)
        preds = with_derived(preds, cfg.funnel)
        np.savez_compressed(
            path, tr=tr, te=te,
            **{f"oof|{k}": v for k, v in bundle.oof.predictions.items()},
            **{f"test|{k}": v for k, v in preds.items()})
        print(f"seed {s}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def load(cache: Path, s: int, data, extra=()):
    oof, test = {}, {}
    for suffix in ["", *(f"_{e}" for e in extra if e not in ("derived", "product"))]:
        with np.load(cache / f"seed_{s}{suffix}.npz") as z:
            if not suffix:
                tr, te = z["tr"], z["te"]
            oof |= {k.split("|", 1)[1]: z[k] for k in z.files if k.startswith("oof|")}
            test |= {k.split("|", 1)[1]: z[k] for k in z.files if k.startswith("test|")}
    train_data, test_data = data.subset(tr), data.subset(te)
    if "derived" in extra:
        for name, m in (("relconv", 1), ("relvisit", 0)):
            for preds in (oof, test):
                r = preds["relative"]
                # spend per converter / visitor, arm by arm, from the relative model's own levels
                ratio = r[..., 2].sum(axis=0) / r[..., m].sum(axis=0)
                d = r.copy()
                d[..., 2] = r[..., m] * ratio[None, :]
                preds[name] = d
        for preds in (oof, test):
            r = preds["relative"]
            for k in ("t", "x", "dr"):
                ratio = r[..., 2].sum() / r[..., 0].sum()
                p = preds[k].copy()
                p[..., 2] = p[:, :1, 2] + (p[..., 0] - p[:, :1, 0]) * ratio
                preds[f"{k}@visitc"] = p
    if "product" in extra:  # relative@visit exactly as train() derives it (means of the training arms)
        from promolift.models.learners import per_unit
        means = np.stack([train_data.Y[train_data.treatment == k].mean(axis=0) for k in range(train_data.n_arms)])
        pu = per_unit(means, 0)
        for preds in (oof, test):
            preds["relative@visit"] = preds["relative"][:, :, [0]] * pu[None]
    o = OutOfFold(predictions=oof, Y=train_data.Y, treatment=train_data.treatment,
                  propensity=arm_propensity(train_data))
    return o, test, test_data


# Measured on the development splits and not adopted (README, "Capped-plan development").
def choose_bagged(
    table: pd.DataFrame,
    contributions: np.ndarray,
    *,
    n_boot: int = 200,
    random_state: int = 0,
) -> pd.Series:
    """Bootstrap-averaged choice: the blend of candidates weighted by how often each one is the
    best on a bootstrap resample of the cross-validated rows.

    The argmax over candidates whose estimates differ by less than their noise is itself a
    noisy pick; averaging it over resamples (bagging the selection, cf. Breiman's "bumping")
    turns the choice into a smooth blend of the candidates that are plausibly best, in
    proportion to the evidence for each. ``contributions`` are the per-row DR terms of every
    candidate's plan in ``table``'s row order (``score_candidates(..., return_contributions=True)``).
    Candidates are blends of kinds, so the result is one: its ``weights`` are the bootstrap
    frequencies times each candidate's weights. Returns a row like ``table``'s, with
    ``candidate`` describing the mix and ``share`` the frequencies.
    """
    n, m = contributions.shape
    rng = np.random.default_rng(random_state)
    wins = np.zeros(m)
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        wins[int(np.argmax(counts @ contributions))] += 1
    share = wins / n_boot
    weights: dict[str, float] = {}
    for i in np.flatnonzero(share):
        for kind, w in table.iloc[i]["weights"].items():
            weights[kind] = weights.get(kind, 0.0) + float(share[i]) * w
    top = np.flatnonzero(share)[np.argsort(-share[np.flatnonzero(share)], kind="stable")]
    mix = ", ".join(f"{table.iloc[i]['candidate']} {share[i]:.0%}" for i in top[:3])
    if len(top) > 3:
        mix += f", {len(top) - 3} more"
    row = table.iloc[int(top[0])].copy()
    row["candidate"] = table.iloc[int(top[0])]["candidate"] if len(top) == 1 else f"bagged: {mix}"
    row["weights"] = {k: w for k, w in weights.items() if w > 0}
    row["share"] = {table.iloc[i]["candidate"]: float(share[i]) for i in top}
    return row


def heldout(economics, preds, test_data, weights, cap) -> float:
    """IPW profit per 1,000 held-out customers of the blend's plan, relative to nobody."""
    n = len(test_data.treatment)
    value, cost = economics.value_cost(blend(preds, weights))
    arm = allocate(value, cost, max_contacts=None if cap is None else int(cap * n)).arm
    reward = economics.realized_profit(test_data.Y, test_data.treatment)
    return 1000 * policy_gain(reward, test_data.treatment, arm, arm_propensity(test_data), method="ipw").estimate


RULES = {
    "one-SE (current)": lambda table, contrib: choose(table),
    "argmax": lambda table, contrib: table.iloc[0],
    "bagged": lambda table, contrib: choose_bagged(table, contrib),
    "product (select)": None,
    "2-SE": lambda table, contrib: _kse(table, 2.0),
    "3-SE": lambda table, contrib: _kse(table, 3.0),
    "fixed relative": lambda table, contrib: table.set_index("candidate").loc["relative"].rename("relative")
    .to_frame().T.reset_index(names="candidate").iloc[0],
}

for _z in (1.0, 2.0, 3.0):
    RULES[f"anchor relative, z={_z:g}"] = (lambda z: lambda table, contrib: _anchor(table, contrib, "relative", z))(_z)
    RULES[f"anchor relvisit, z={_z:g}"] = (lambda z: lambda table, contrib: _anchor(table, contrib, "relvisit", z))(_z)


def _anchor(table, contrib, anchor, z):
    """Keep ``anchor`` unless the best candidate beats it by z paired standard errors."""
    if anchor not in set(table["candidate"]):
        return choose(table)
    return choose_anchored(table, contrib, anchor, z=z)


def _kse(table, k):
    best = table["profit_per_1000"].max()
    near = table[table["profit_per_1000"] >= best - k * table["stderr_vs_best"]]
    return near.sort_values(["complexity", "profit_per_1000"], ascending=[True, False]).iloc[0]


def evaluate(args, cfg, data) -> None:
    from promolift.economics import Economics

    economics = Economics.from_config(cfg)
    rows = []
    for s in seeds(args.seeds):
        oof, test, test_data = load(args.cache, s, data, args.extra)
        kinds = [k for k in oof.predictions if "@" not in k]
        cands = [c for c in candidates(kinds, funnel=cfg.model.funnel_outcome)
                 if all(k in oof.predictions for k in c.weights)]  # a cache from before relative@visit
        if "derived" in args.extra:
            from promolift.selection import Candidate
            cands.append(Candidate("relvisit", {"relvisit": 1.0}, 2))
        for cap in (None, args.cap):
            cons = Constraints() if cap is None else Constraints(contact_share=cap)
            table, contrib = score_candidates(oof, economics, cons, cands, return_contributions=True)
            for rule, fn in RULES.items():
                if fn is not None:
                    best = fn(table, contrib)
                elif "product" in args.extra:  # the product's own select, on its own candidates
                    best = select(oof, economics, cons, candidates(kinds, funnel=cfg.model.funnel_outcome))[1]
                else:
                    continue
                rows.append({"seed": s, "cap": cap or 1.0, "rule": rule, "chosen": best["candidate"],
                             "profit": heldout(economics, test, test_data, dict(best["weights"]), cap)})
            oracle = max((heldout(economics, test, test_data, c.weights, cap), c.name) for c in cands)
            rows.append({"seed": s, "cap": cap or 1.0, "rule": "oracle", "chosen": oracle[1], "profit": oracle[0]})
        print(f"seed {s} done", file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["cap", "rule"], sort=False)["profit"].agg(["mean", "std", "min"])
    print(summary.round(1).to_string())
    if args.verbose:
        print(frame.pivot_table(index=["cap", "rule"], columns="seed", values="profit").round(0).to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["build", "eval", "cands", "add"])
    ap.add_argument("--kind", default="s")
    ap.add_argument("--extra", nargs="*", default=[], help="experimental kinds to load with the cache")
    ap.add_argument("--cap", type=float, default=CAP)
    ap.add_argument("--seeds", default="100-109")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/promolift-dev"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    cfg = hillstrom_config()
    data = load_campaign(load_hillstrom(), cfg)
    {"build": build, "eval": evaluate, "cands": per_candidate, "add": add_kind}[args.command](args, cfg, data)



def per_candidate(args, cfg, data) -> pd.DataFrame:
    """Held-out profit of every candidate at the cap, per split (mean ± sd), with the OOF estimate."""
    from promolift.economics import Economics

    economics = Economics.from_config(cfg)
    rows = []
    for s in seeds(args.seeds):
        oof, test, test_data = load(args.cache, s, data, args.extra)
        kinds = [k for k in oof.predictions if "@" not in k]
        cands = candidates(kinds, funnel=cfg.model.funnel_outcome) + EXTRA(list(oof.predictions))
        table = score_candidates(oof, economics, Constraints(contact_share=args.cap), cands).set_index("candidate")
        for c in cands:
            rows.append({"seed": s, "candidate": c.name, "cv": table.loc[c.name, "profit_per_1000"],
                         "cv_se": table.loc[c.name, "stderr"], "cv_se_vs_best": table.loc[c.name, "stderr_vs_best"],
                         "heldout": heldout(economics, test, test_data, c.weights, args.cap)})
    frame = pd.DataFrame(rows)
    out = frame.groupby("candidate").agg(cv=("cv", "mean"), heldout=("heldout", "mean"), sd=("heldout", "std"))
    print(out.sort_values("heldout", ascending=False).round(1).to_string())
    real = frame[frame["candidate"] != "nobody"]
    print(f"standard error of a candidate's cross-validated profit at the cap, median: {real['cv_se'].median():.0f}; "
          f"of its paired difference from the best: {real['cv_se_vs_best'][real['cv_se_vs_best'] > 0].median():.0f}")
    if args.verbose:
        print(frame.pivot_table(index="candidate", columns="seed", values="heldout").round(0).to_string())
    return frame


def EXTRA(kinds):  # noqa: N802 - experimental candidates, filled in while developing
    from promolift.selection import Candidate

    out = []
    if "relative@visit" in kinds:
        for k in ("t", "x", "dr"):
            for w in (0.25, 0.5):
                out += [Candidate(f"{k} via visit {w:.0%} + relative via visit", {f"{k}@visit": w, "relative@visit": 1 - w}, 4),
                        Candidate(f"{k} {w:.0%} + relative via visit", {k: w, "relative@visit": 1 - w}, 4)]
    for k in kinds:
        if k in ("relconv", "relvisit"):
            out += [Candidate(k, {k: 1.0}, 2), Candidate(f"{k} 50% relative", {k: 0.5, "relative": 0.5}, 2)]
        if k in ("t", "x", "dr") and "relvisit" in kinds:
            out += [Candidate(f"{k} visitc", {f"{k}@visitc": 1.0}, 6),
                    Candidate(f"{k} visitc 50% relvisit", {f"{k}@visitc": 0.5, "relvisit": 0.5}, 4)]
        if k in EXTRA_KINDS:
            out += [Candidate(k, {k: 1.0}, 6), Candidate(f"{k} via visit", {f"{k}@visit": 1.0}, 6),
                    Candidate(f"{k} shrunk 50% to relative", {k: 0.5, "relative": 0.5}, 4),
                    Candidate(f"{k} via visit shrunk 50% to relative", {f"{k}@visit": 0.5, "relative": 0.5}, 4)]
    return out


def _s_learner(X, Y, t, K, params):
    """Prototype S-learner: one LightGBM model per outcome on all rows with the arm as a feature;
    spend as P(spend > 0 | x, arm) × E[spend | spend > 0, x] (order size not moved by the arm)."""
    import lightgbm as lgb

    Xa = X.assign(arm=pd.Categorical(t, categories=range(K)))
    clf = dict(n_estimators=200, learning_rate=0.05, verbose=-1, n_jobs=1, random_state=0,
               num_leaves=params.get("num_leaves", 15), min_child_samples=params.get("min_child", 200))
    visit = lgb.LGBMClassifier(**clf).fit(Xa, Y[:, 0])
    conv = lgb.LGBMClassifier(**clf).fit(Xa, Y[:, 1])
    pos = Y[:, 2] > 0
    amount = lgb.LGBMRegressor(**(clf | {"num_leaves": 7, "min_child_samples": 50})).fit(X[pos], Y[pos, 2])

    def predict(Xn):
        out = np.empty((len(Xn), K, 3))
        a = amount.predict(Xn)
        for k in range(K):
            Xk = Xn.assign(arm=pd.Categorical(np.full(len(Xn), k), categories=range(K)))
            out[:, k, 0] = visit.predict_proba(Xk)[:, 1]
            out[:, k, 1] = conv.predict_proba(Xk)[:, 1]
            out[:, k, 2] = out[:, k, 1] * a
        return out
    return predict


def _design(X):
    """Generic linear design: one-hot categoricals, standardised numerics (log1p when skewed)."""
    cols = []
    for c in X.columns:
        v = X[c]
        if isinstance(v.dtype, pd.CategoricalDtype):
            cols.append(pd.get_dummies(v, prefix=c, drop_first=True, dtype=float))
        else:
            v = v.astype(float).fillna(v.median())
            if v.min() >= 0 and v.skew() > 2:
                v = np.log1p(v)
            cols.append(v.rename(c).to_frame())
    return pd.concat(cols, axis=1)


def _lo_learner(X, Y, t, K, C=1.0, pairs=False):
    """Prototype interaction model (Lo 2002): logistic regression per binary outcome on
    [z, arm dummies, arm dummies × z]; spend = P(conv | x, arm) × the arm's mean order size."""
    from sklearn.linear_model import LogisticRegression

    Z0 = _design(X)
    mean, sd = Z0.mean(), Z0.std().replace(0, 1)

    def feats(Xn):
        Z = (_design(Xn).reindex(columns=Z0.columns, fill_value=0.0) - mean) / sd
        if pairs:
            names = list(Z.columns)
            extra = {f"{a}*{b}": Z[a] * Z[b] for i, a in enumerate(names) for b in names[i + 1:]}
            Z = pd.concat([Z, pd.DataFrame(extra, index=Z.index)], axis=1)
        return Z.to_numpy()

    def design(Z, arm):
        D = [Z]
        for k in range(1, K):
            a = (arm == k).astype(float)[:, None]
            D += [a, a * Z]
        return np.hstack(D)

    Z = feats(X)
    D = design(Z, t)
    models = [LogisticRegression(C=C, max_iter=2000).fit(D, Y[:, m]) for m in (0, 1)]
    order = np.array([Y[(t == k) & (Y[:, 1] > 0), 2].mean() for k in range(K)])

    def predict(Xn):
        Zn = feats(Xn)
        out = np.empty((len(Xn), K, 3))
        for k in range(K):
            Dk = design(Zn, np.full(len(Xn), k))
            out[:, k, 0] = models[0].predict_proba(Dk)[:, 1]
            out[:, k, 1] = models[1].predict_proba(Dk)[:, 1]
            out[:, k, 2] = out[:, k, 1] * order[k]
        return out
    return predict


EXTRA_KINDS = {
    "lo": lambda X, Y, t, K, types: _lo_learner(X, Y, t, K),
    "lo01": lambda X, Y, t, K, types: _lo_learner(X, Y, t, K, C=0.01),
    "lop": lambda X, Y, t, K, types: _lo_learner(X, Y, t, K, C=0.01, pairs=True),
    "s": lambda X, Y, t, K, types: _s_learner(X, Y, t, K, {}),
    "treg": lambda X, Y, t, K, types: _promolift_kind("t", X, Y, t, types, num_leaves=7, min_child_samples=400),
    "xreg": lambda X, Y, t, K, types: _promolift_kind("x", X, Y, t, types, num_leaves=7, min_child_samples=200,
                                                      effect_min_child_samples=0.2),
}


def _promolift_kind(kind, X, Y, t, types, **params):
    from promolift.models import make_model

    model = make_model(kind, **params).fit(X, Y, treatment=t, outcome_types=types)
    return model.predict


def add_kind(args, cfg, data) -> None:
    """Cross-validate an experimental kind on the same folds as ``train`` and cache it."""
    from sklearn.model_selection import StratifiedKFold

    from promolift.bundle import through_funnel
    from promolift.data import FeatureEncoder
    from promolift.train import calibration_factors

    name = args.kind
    for s in seeds(args.seeds):
        path = args.cache / f"seed_{s}_{name}.npz"
        if path.exists() and not args.force:
            continue
        start = time.perf_counter()
        tr, te = split(data, cfg, s)
        d, test = data.subset(tr), data.subset(te)
        enc = FeatureEncoder(categorical=cfg.data.categorical).fit(d.X)
        Xe, Xt = enc.transform(d.X, source=d.source), enc.transform(test.X)
        K = d.n_arms
        oof = np.empty((len(d), K, len(d.outcomes)))
        folds = StratifiedKFold(cfg.model.n_folds, shuffle=True, random_state=cfg.model.random_state)
        for a, b in folds.split(np.zeros(len(d)), stratification_label(d, cfg)):
            oof[b] = EXTRA_KINDS[name](Xe.iloc[a], d.Y[a], d.treatment[a], K, d.outcome_types)(Xe.iloc[b])
        cal = calibration_factors(oof, d.Y, d.treatment)
        pred = EXTRA_KINDS[name](Xe, d.Y, d.treatment, K, d.outcome_types)(Xt) * cal
        oof = oof * cal
        with np.load(args.cache / f"seed_{s}.npz") as z:
            rel_oof, rel_test = z["oof|relative"], z["test|relative"]
        f = cfg.funnel[0]
        np.savez_compressed(path, **{f"oof|{name}": oof, f"test|{name}": pred,
                                     f"oof|{name}@visit": through_funnel(oof, rel_oof, f),
                                     f"test|{name}@visit": through_funnel(pred, rel_test, f)})
        print(f"seed {s} {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
