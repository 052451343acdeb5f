"""A data-quality summary: missing values, outliers, arm balance and a sample-ratio check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from promolift.data.load import CampaignData

__all__ = ["QualityReport", "data_quality"]

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class QualityReport:
    """What a user should know about a log before trusting results on it.

    ``features`` has one row per feature (type, missing share, outlier share, distinct values);
    ``arms`` one row per arm (rows, share, expected share, mean of each outcome); ``srm_pvalue``
    is the chi-square p-value of the sample-ratio test (observed arm counts against the expected
    shares); a value below 0.001 means the randomization is probably broken.
    """

    n_rows: int
    features: pd.DataFrame
    arms: pd.DataFrame
    srm_pvalue: float

    @property
    def srm_ok(self) -> bool:
        return self.srm_pvalue >= SRM_ALPHA

    def warnings(self) -> list[str]:
        out = []
        if not self.srm_ok:
            out.append(f"sample-ratio mismatch: arm counts are unlikely under the expected shares "
                       f"(p = {self.srm_pvalue:.2g}); check the randomization before trusting uplift")
        for row in self.features.itertuples():
            if row.missing_share > 0.3:
                out.append(f"feature '{row.feature}' is {row.missing_share:.0%} missing")
        return out


def data_quality(data: CampaignData, expected_shares: np.ndarray | None = None) -> QualityReport:
    """Summarise ``data``; ``expected_shares`` defaults to equal shares per arm."""
    X = data.X
    rows = []
    for col in X.columns:
        s = X[col]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        outlier = np.nan
        if numeric:
            v = s.to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            if len(v):
                q1, q3 = np.percentile(v, [25, 75])
                iqr = q3 - q1
                outlier = float(np.mean((v < q1 - 3 * iqr) | (v > q3 + 3 * iqr))) if iqr > 0 else 0.0
        rows.append({
            "feature": col,
            "type": "numeric" if numeric else "categorical",
            "missing_share": float(s.isna().mean()),
            "outlier_share": outlier,
            "distinct": int(s.nunique()),
        })
    counts = np.bincount(data.treatment, minlength=data.n_arms).astype(float)
    expected = (np.full(data.n_arms, 1 / data.n_arms) if expected_shares is None
                else np.asarray(expected_shares, float) / np.sum(expected_shares))
    pvalue = float(stats.chisquare(counts, expected * counts.sum()).pvalue)
    arm_rows = {"arm": list(data.arms), "rows": counts.astype(int), "share": counts / counts.sum(),
                "expected_share": expected}
    for j, name in enumerate(data.outcomes):
        sums = np.bincount(data.treatment, weights=data.Y[:, j], minlength=data.n_arms)
        arm_rows[f"mean_{name}"] = sums / np.maximum(counts, 1)
    return QualityReport(n_rows=len(data), features=pd.DataFrame(rows), arms=pd.DataFrame(arm_rows),
                         srm_pvalue=pvalue)
