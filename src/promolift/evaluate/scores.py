"""How well the outcome levels are predicted, per arm: AUC and log-loss (binary), RMSE (continuous)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

__all__ = ["outcome_scores"]


def outcome_scores(
    pred: np.ndarray,
    Y: np.ndarray,
    treatment: np.ndarray,
    *,
    arms: list[str],
    outcomes: list[str],
    outcome_types: list[str],
) -> pd.DataFrame:
    """Score ``pred[:, k, m]`` against ``Y[:, m]`` on the rows that received arm ``k``.

    Returns one row per arm × outcome with columns arm, outcome, n, auc, log_loss, rmse,
    mean_predicted, mean_observed (the last two show calibration).
    """
    rows = []
    for k, arm in enumerate(arms):
        mask = treatment == k
        for m, (name, kind) in enumerate(zip(outcomes, outcome_types, strict=True)):
            y, p = Y[mask, m], pred[mask, k, m]
            row = {"arm": arm, "outcome": name, "n": int(mask.sum()), "auc": np.nan, "log_loss": np.nan,
                   "rmse": float(np.sqrt(np.mean((y - p) ** 2))),
                   "mean_predicted": float(p.mean()), "mean_observed": float(y.mean())}
            if kind == "binary" and 0 < y.sum() < len(y):
                q = np.clip(p, 1e-6, 1 - 1e-6)
                row["auc"] = float(roc_auc_score(y, q))
                row["log_loss"] = float(log_loss(y, q, labels=[0, 1]))
            rows.append(row)
    return pd.DataFrame(rows)
