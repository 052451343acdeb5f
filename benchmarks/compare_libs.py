"""Fit causalml and scikit-uplift learners on given splits; runs in the comparison environment.

Not part of promolift (it never imports it): ``bench_hillstrom.py`` writes the splits to an
``.npz``, runs this script with the comparison virtualenv's Python, and reads the predictions
back. Settings as the issue states them: LightGBM base learners, 200 trees, learning rate 0.05,
31 leaves, at least 50 rows per leaf.

Usage: python compare_libs.py IN.npz OUT.npz
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")

LGBM = dict(n_estimators=200, learning_rate=0.05, num_leaves=31, min_child_samples=50, verbose=-1,
            n_jobs=2, random_state=0)


def _causalml(kind, X, t, y, Xte, n_arms):
    from causalml.inference.meta import BaseDRRegressor, BaseTRegressor, BaseXRegressor
    from lightgbm import LGBMRegressor

    cls = {"t": BaseTRegressor, "x": BaseXRegressor, "dr": BaseDRRegressor}[kind]
    model = cls(learner=LGBMRegressor(**LGBM), control_name=0)
    shares = np.bincount(t, minlength=n_arms) / len(t)
    if kind == "t":
        model.fit(X, t, y)
        return model.predict(Xte)
    p_train = {k: np.full(len(t), shares[k] / (shares[k] + shares[0])) for k in range(1, n_arms)}
    p_test = {k: np.full(len(Xte), shares[k] / (shares[k] + shares[0])) for k in range(1, n_arms)}
    model.fit(X, t, y, p=p_train)
    return model.predict(Xte, p=p_test)


def _sklift(kind, X, t, y, Xte, n_arms):
    from lightgbm import LGBMClassifier, LGBMRegressor
    from sklift.models import SoloModel, TwoModels

    class Regressor(LGBMRegressor):
        """sklift's predict() calls predict_proba()[:, 1]; give a regressor that interface."""

        def predict_proba(self, X):
            p = self.predict(X)
            return np.column_stack([1 - p, p])

    estimator = LGBMClassifier if set(np.unique(y)) <= {0.0, 1.0} else Regressor

    out = np.zeros((len(Xte), n_arms - 1))
    for k in range(1, n_arms):
        rows = (t == 0) | (t == k)
        if kind == "two_models":
            model = TwoModels(estimator_trmnt=estimator(**LGBM), estimator_ctrl=estimator(**LGBM),
                              method="vanilla")
        else:
            model = SoloModel(estimator=estimator(**LGBM))
        model.fit(X[rows], y[rows], (t[rows] == k).astype(int))
        out[:, k - 1] = model.predict(Xte)
    return out


def main(src: str, dst: str) -> None:
    z = np.load(src)
    X, t, Y = z["X"], z["treatment"].astype(int), z["Y"]
    n_arms = int(t.max()) + 1
    results = {}
    for s in range(int(z["n_splits"])):
        tr, te = z[f"train_{s}"], z[f"test_{s}"]
        for lib, fn, kinds in (("sklift", _sklift, ("two_models", "solo_model")),
                               ("causalml", _causalml, ("t", "x", "dr"))):
            for kind in kinds:
                for m, outcome in enumerate(z["outcomes"]):
                    start = time.perf_counter()
                    pred = fn(kind, X[tr], t[tr], Y[tr, m], X[te], n_arms)
                    results[f"{lib}|{kind}|{outcome}|{s}|uplift"] = np.asarray(pred, float).reshape(len(te), -1)
                    results[f"{lib}|{kind}|{outcome}|{s}|seconds"] = np.array(time.perf_counter() - start)
                print(f"split {s}: {lib} {kind} done", file=sys.stderr, flush=True)
    np.savez_compressed(dst, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
