"""Hillstrom benchmark: promolift against causalml and scikit-uplift on the same splits.

Five stratified 70/30 splits (seeds 0-4, stratified by arm × conversion); economics $0.10 per
e-mail and 30% margin on spend. Every policy is valued on the held-out 30% by IPW, as
incremental profit per 1,000 customers relative to e-mailing nobody. The comparison libraries
run in their own virtualenv (``benchmarks/.venv-compare``, made from
``requirements-compare.txt`` on first use), never as promolift dependencies.

Usage::

    python benchmarks/bench_hillstrom.py            # all 5 splits, with the libraries
    python benchmarks/bench_hillstrom.py --splits 1 --no-compare
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from promolift.data import load_campaign
from promolift.datasets import hillstrom_config, load_hillstrom
from promolift.evaluate.metrics import qini_auc_score
from promolift.evaluate.policy import policy_gain
from promolift.bundle import blend, with_derived
from promolift.optimize import allocate
from promolift.plan import make_plan
from promolift.selection import candidates
from promolift.train import arm_propensity, stratification_label, train

HERE = Path(__file__).parent
COMPARE_VENV = HERE / ".venv-compare"


def compare_python() -> Path:
    py = COMPARE_VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(COMPARE_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(HERE / "requirements-compare.txt")],
                       check=True)
    return py


def ipw_gain(reward, t, arm, prop) -> tuple[float, float]:
    g = policy_gain(reward, t, arm, prop, method="ipw")
    return 1000 * g.estimate, 1000 * (g.ci_high - g.estimate)


def gain_policy(uplift_spend: np.ndarray, margin: float, cost: float, cap: float | None) -> np.ndarray:
    """Arm with the highest predicted profit gain where > 0; with ``cap``, only the top share."""
    gain = margin * uplift_spend - cost
    best = gain.argmax(axis=1)
    top = gain[np.arange(len(gain)), best]
    arm = np.where(top > 0, best + 1, 0)
    if cap is not None:
        k = int(cap * len(arm))
        order = np.argsort(-top, kind="stable")
        keep = np.zeros(len(arm), bool)
        keep[order[:k]] = True
        arm = np.where(keep, arm, 0)
    return arm


def qini_by_arm(Y, t, uplift, outcomes, arms) -> dict:
    """Qini AUC per treated arm × outcome; ``uplift`` is (n, K-1, M)."""
    out = {}
    for k in range(1, len(arms)):
        rows = (t == 0) | (t == k)
        for m, o in enumerate(outcomes):
            out[f"{arms[k]}|{o}"] = qini_auc_score(Y[rows, m], uplift[rows, k - 1, m], (t[rows] == k).astype(int))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--no-compare", action="store_true", help="skip causalml / scikit-uplift")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "hillstrom.json")
    ap.add_argument("--compare-cache", type=Path, help="reuse the libraries' predictions from this .npz if "
                    "it exists (same splits), else run them and save there")
    ap.add_argument("--libs-only", action="store_true", help="only run the libraries (fills --compare-cache)")
    args = ap.parse_args()

    cfg = hillstrom_config()
    data = load_campaign(load_hillstrom(), cfg)
    margin, cost = cfg.economics.margin, 0.10
    label = stratification_label(data, cfg)
    splits = [train_test_split(np.arange(len(data)), test_size=0.3, random_state=s, stratify=label)
              for s in range(args.splits)]
    arms, outcomes = list(data.arms), list(data.outcomes)
    spend = outcomes.index("spend")
    rows, qini, times = [], [], []

    lib_preds = None
    if args.compare_cache and args.compare_cache.exists():
        with np.load(args.compare_cache) as z:
            lib_preds = {k: z[k] for k in z.files}
        if f"sklift|two_models|spend|{args.splits - 1}|uplift" not in lib_preds:
            sys.exit(f"{args.compare_cache} has fewer than {args.splits} splits: delete it to re-run")
    elif not args.no_compare:
        X = pd.get_dummies(data.X, dtype=float).to_numpy()
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(src, X=X, treatment=data.treatment, Y=data.Y[:, [outcomes.index("conversion"), spend]],
                     outcomes=np.array(["conversion", "spend"]), n_splits=args.splits,
                     **{f"train_{s}": tr for s, (tr, _) in enumerate(splits)},
                     **{f"test_{s}": te for s, (_, te) in enumerate(splits)})
            env = dict(os.environ, OMP_NUM_THREADS="2")
            subprocess.run([str(compare_python()), str(HERE / "compare_libs.py"), str(src), str(dst)],
                           check=True, env=env)
            with np.load(dst) as z:
                lib_preds = {k: z[k] for k in z.files}
            if args.compare_cache:
                args.compare_cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(args.compare_cache, **lib_preds)
    if args.libs_only:
        return

    for s, (tr, te) in enumerate(splits):
        test = data.subset(te)
        reward = np.asarray(test.Y[:, spend] * margin - np.where(test.treatment > 0, cost, 0.0))
        prop = arm_propensity(test)

        def record(policy, arm, split=s, reward=reward, test=test, prop=prop):
            est, half = ipw_gain(reward, test.treatment, arm, prop)
            rows.append({"split": split, "policy": policy, "profit_per_1000": est, "ci_half": half,
                         "contact_share": float(np.mean(arm != 0))})

        start = time.perf_counter()
        bundle = train(cfg, data.subset(tr))
        fit_s = time.perf_counter() - start
        times.append({"split": s, "model": f"promolift (CV of {len(bundle.models)} kinds + selection + final fits)",
                      "seconds": fit_s})
        index = {a: i for i, a in enumerate(arms)}
        preds = with_derived(bundle.predict_kinds(test.X), cfg.funnel,
                             bundle.models["relative"].per_unit(cfg.funnel[0]))
        for name, kwargs in (("promolift", {}), ("promolift, ≤30% contacted", {"max_contacts": int(0.3 * len(te))})):
            plan = make_plan(bundle, test.X, test.ids, **kwargs)
            record(name, plan.table["arm"].map(index).to_numpy())
            rows[-1]["chosen"] = plan.summary["policy"]["candidate"]
            # Not a policy: the candidate with the best *held-out* value, an upper bound on selection.
            oracle = max((ipw_gain(reward, test.treatment, allocate(
                *bundle.economics.value_cost(blend(preds, c.weights)), **kwargs).arm, prop)[0], c.name)
                for c in candidates(list(bundle.models), funnel=cfg.model.funnel_outcome))
            rows.append({"split": s, "policy": f"{name}: best candidate picked on held-out data (oracle)",
                         "profit_per_1000": oracle[0], "ci_half": np.nan, "contact_share": np.nan,
                         "chosen": oracle[1]})
        for kind, p in preds.items():
            if kind != "constant":
                lift = (p - p[:, :1])[:, 1:]
                qini.append({"split": s, "model": f"promolift {kind}", **qini_by_arm(test.Y, test.treatment, lift,
                                                                                    outcomes, arms)})
        n = len(te)
        record("nobody", np.zeros(n, int))
        for k in range(1, len(arms)):
            record(f"everybody: {arms[k]}", np.full(n, k))
        rng = np.random.default_rng(s)
        record("random 30%", np.where(rng.random(n) < 0.3, rng.integers(1, len(arms), n), 0))

        if lib_preds is not None:
            conv = outcomes.index("conversion")
            for lib, kind in (("causalml", "t"), ("causalml", "x"), ("causalml", "dr"),
                              ("sklift", "two_models"), ("sklift", "solo_model")):
                up_spend = lib_preds[f"{lib}|{kind}|spend|{s}|uplift"]
                up_conv = lib_preds[f"{lib}|{kind}|conversion|{s}|uplift"]
                name = f"{lib} {kind}"
                record(f"{name}, gain > 0", gain_policy(up_spend, margin, cost, None))
                record(f"{name}, ≤30% contacted", gain_policy(up_spend, margin, cost, 0.3))
                lift = np.zeros((n, len(arms) - 1, len(outcomes)))
                lift[:, :, spend], lift[:, :, conv] = up_spend, up_conv
                qini.append({"split": s, "model": name, **qini_by_arm(test.Y, test.treatment, lift, outcomes, arms)})
                times.append({"split": s, "model": f"{name} (spend + conversion models)",
                              "seconds": float(lib_preds[f"{lib}|{kind}|spend|{s}|seconds"]
                                               + lib_preds[f"{lib}|{kind}|conversion|{s}|seconds"])})
        print(f"split {s} done ({fit_s:.1f} s promolift fit)", file=sys.stderr, flush=True)

    rows_df, qini_df, times_df = pd.DataFrame(rows), pd.DataFrame(qini), pd.DataFrame(times)
    summary = (rows_df.groupby("policy", sort=False)
               .agg(mean=("profit_per_1000", "mean"), std=("profit_per_1000", "std"),
                    ci_half=("ci_half", "mean"), contacted=("contact_share", "mean"))
               .sort_values("mean", ascending=False))
    print(f"\nHillstrom, {args.splits} splits, {platform.machine()} {os.cpu_count()} cores")
    print("\n| policy | incremental profit / 1,000 (mean ± sd over splits) | mean 95% CI half-width | contacted |")
    print("| --- | --- | --- | --- |")
    for name, r in summary.iterrows():
        half = "" if np.isnan(r["ci_half"]) else f"±{r['ci_half']:.0f}"
        contacted = "" if np.isnan(r["contacted"]) else f"{r['contacted']:.0%}"
        print(f"| {name} | {r['mean']:+.0f} ± {r['std']:.0f} | {half} | {contacted} |")
    if "chosen" in rows_df:
        print("\npolicies chosen by promolift per split:",
              rows_df.dropna(subset=["chosen"])[["split", "policy", "chosen"]].to_dict(orient="records"))
    cols = [c for c in qini_df.columns if c not in ("split", "model")]
    print("\nQini AUC on the held-out 30% (mean ± sd over splits)\n| model | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for name, g in qini_df.groupby("model", sort=False):
        cells = [f"{g[c].mean():.4f} ± {g[c].std():.4f}" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")
    t = times_df.groupby("model", sort=False)["seconds"].agg(["median", "min", "max"])
    print("\n| model | fit seconds (median, min–max over splits) |\n| --- | --- |")
    for name, r in t.iterrows():
        print(f"| {name} | {r['median']:.1f} ({r['min']:.1f}–{r['max']:.1f}) |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"policies": rows, "qini": qini_df.to_dict(orient="records"),
                                    "times": times}, indent=1, default=float))


if __name__ == "__main__":
    main()
