"""Shared by the decision-service tests: a small trained bundle, a plan and app settings."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from promolift.config import CampaignConfig
from promolift.data import load_campaign
from promolift.datasets.simulator import campaign_config, make_campaign
from promolift.plan import make_plan
from promolift.serve.auth import add_key
from promolift.serve.settings import ServeSettings
from promolift.train import train

FAST_MODEL = {"kinds": ["constant", "relative", "t", "dr"], "n_folds": 2, "n_estimators": 30,
              "learning_rate": 0.1, "min_child_samples": 30}
N_TRAIN = 3000


@functools.lru_cache(maxsize=1)
def _built() -> tuple[Path, object]:
    """Train once per process (tests copy what they change)."""
    sim = make_campaign(3600, random_state=3)
    raw = campaign_config(sim)
    raw["model"] = FAST_MODEL
    raw["arms"]["arm2"]["discount_rate"] = 0.05
    config = CampaignConfig.from_dict(raw)
    data = load_campaign(sim.frame, config)
    bundle = train(config, data.subset(np.arange(N_TRAIN)))
    root = Path(tempfile.mkdtemp(prefix="promolift-serve-tests-"))
    atexit.register(shutil.rmtree, root, True)
    bundle.save(root / "model")
    return root, data


def model_dir() -> Path:
    return _built()[0] / "model"


def customers():
    """(ids, X) of the customers not used in training."""
    data = _built()[1]
    rows = np.arange(N_TRAIN, len(data))
    return data.ids[rows], data.X.iloc[rows].reset_index(drop=True)


def copy_model(dest: Path) -> Path:
    shutil.copytree(model_dir(), dest)
    return dest


def write_plan(dest: Path, **constraints) -> Path:
    from promolift.bundle import ModelBundle

    ids, X = customers()
    plan = make_plan(ModelBundle.load(model_dir()), X, ids, **constraints)
    return plan.save(dest / "plan.csv")


def settings(tmp: Path, *, keys: bool = True, **kw) -> tuple[ServeSettings, dict[str, str]]:
    """Settings writing into ``tmp``, and API keys by role ("decide", "admin", "both")."""
    api = {}
    if keys:
        path = tmp / "keys.json"
        api = {"decide": add_key(path, "frontend", ["decide"]), "admin": add_key(path, "ops", ["admin"])}
        kw.setdefault("api_keys", path)
    kw.setdefault("model_dir", model_dir())
    kw.setdefault("audit_log", tmp / "audit.jsonl")
    kw.setdefault("budget_store", f"sqlite:///{tmp / 'budget.db'}")
    kw.setdefault("pseudonym_key", "test-secret")
    return ServeSettings(**kw), api


def payload(X, ids, **extra) -> dict:
    """A decision request for the rows of ``X`` (NaN -> omitted, as a client would send)."""
    records = X.to_dict(orient="records")
    customers = [{"id": str(i), "features": {k: v for k, v in r.items() if not pd.isna(v)}}
                 for i, r in zip(ids, records, strict=True)]
    return {"customers": customers, **extra}
