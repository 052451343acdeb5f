"""The model bundle: everything needed to score and plan, in one versioned directory.

Layout::

    MODEL_DIR/
      manifest.json        config, feature schema, arms, outcomes, chosen policy, metrics,
                           library versions, data fingerprint, sha256 of every file
      models/<kind>/       one fitted response model per kind (no pickle: JSON + LightGBM text)
      validation.npz       cross-validated (out-of-fold) predictions of every kind with the
                           training outcomes and arms: plan-time policy selection reads them

It is written atomically (built under a temporary name, then renamed), and loading checks the
format, the files' checksums and the library versions.
"""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promolift._version import __version__
from promolift.config import CampaignConfig
from promolift.data.encode import FeatureEncoder
from promolift.economics import Economics
from promolift.errors import BundleError, BundleVersionWarning
from promolift.io import atomic_directory, atomic_write_json

__all__ = ["ModelBundle", "OutOfFold", "blend", "funnel_per_unit", "through_funnel", "with_derived",
           "FORMAT_VERSION"]

FORMAT_VERSION = 2  # 2: the relative model stores its per-arm means (relative@funnel)
_LIBRARIES = ("numpy", "pandas", "scikit-learn", "lightgbm", "scipy")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "promolift": __version__}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "missing"
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blend(predictions: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of per-kind predictions (n, K, M); empty weights ("nobody") give zeros."""
    out = np.zeros_like(next(iter(predictions.values())))
    for kind, w in weights.items():
        if w > 0:
            out += w * predictions[kind]
    return out


def through_funnel(pred: np.ndarray, relative: np.ndarray, funnel: int) -> np.ndarray:
    """Route every outcome's uplift through the funnel outcome's uplift (ESMM-style chain).

    The arm is assumed to change whether a customer enters the funnel (visits), not what a
    visitor does next: ``y_k(x) = y_0(x) + (f_k(x) - f_0(x)) · E[y | x] / E[f | x]``, with the
    per-visit ratio taken from the pooled ``relative`` model. The dense funnel outcome carries
    far more signal than rare conversions or zero-inflated spend.
    """
    out = pred.copy()
    base = relative[:, 0, :]
    ratio = np.divide(base, base[:, [funnel]], out=np.zeros_like(base), where=base[:, [funnel]] > 1e-9)
    lift = pred[:, :, funnel] - pred[:, :1, funnel]
    others = [m for m in range(pred.shape[2]) if m != funnel]
    out[:, :, others] = pred[:, :1, others] + lift[:, :, None] * ratio[:, None, others]
    return out


def with_derived(predictions: dict[str, np.ndarray], funnel: tuple[int, str] | None,
                 per_unit: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Add the derived kinds ``"<learner>@<funnel>"`` (see :func:`through_funnel`) when possible,
    and ``"relative@<funnel>"`` given ``per_unit`` (K, M), each arm's mean outcomes per funnel
    unit: the relative model's funnel prediction times them, i.e. customers ranked by the dense
    funnel outcome alone (e.g. spend = P(visit) × the arm's spend per visit)."""
    if funnel is None or "relative" not in predictions:
        return predictions
    index, name = funnel
    derived = {f"{k}@{name}": through_funnel(p, predictions["relative"], index)
               for k, p in predictions.items() if k not in ("constant", "relative") and "@" not in k}
    if per_unit is not None:
        derived[f"relative@{name}"] = predictions["relative"][:, :, [index]] * np.asarray(per_unit)[None]
    return predictions | derived


def funnel_per_unit(models: dict[str, Any], config: CampaignConfig) -> np.ndarray | None:
    """The relative model's (K, M) mean outcomes per funnel unit (``relative@<funnel>``), or None."""
    relative = models.get("relative")
    if config.funnel is None or not hasattr(relative, "per_unit"):
        return None
    return relative.per_unit(config.funnel[0])


@dataclass(frozen=True)
class OutOfFold:
    """Cross-validated predictions on the training rows (the honest basis for choosing a policy)."""

    predictions: dict[str, np.ndarray]  # kind -> (n, K, M)
    Y: np.ndarray
    treatment: np.ndarray
    propensity: np.ndarray  # (n, K)
    conversion_value: np.ndarray | None = None  # (n,) when economics.conversion_value is set


@dataclass(eq=False)
class ModelBundle:
    """A trained campaign: config, encoder, fitted models, the chosen policy and its evidence.

    ``weights`` maps model kind to its weight in the chosen candidate (e.g. ``{"dr": 0.5,
    "constant": 0.5}`` is the DR-learner shrunk half-way to the average effect).
    """

    config: CampaignConfig
    encoder: FeatureEncoder
    models: dict[str, Any]
    weights: dict[str, float]
    oof: OutOfFold
    calibration: dict[str, np.ndarray]  # kind -> (K, M) factors on predicted outcome levels
    metrics: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    version: str = ""
    created: str = ""
    libraries: dict[str, str] = field(default_factory=library_versions)

    @property
    def arms(self) -> list[str]:
        return self.config.arm_names

    @property
    def outcomes(self) -> list[str]:
        return self.config.outcome_names

    @property
    def economics(self) -> Economics:
        """The campaign's economics (bind customers with ``.for_customers(X)`` before use when
        ``economics.conversion_value`` is configured)."""
        return Economics.from_config(self.config)

    @property
    def oof_economics(self) -> Economics:
        """The economics bound to the training customers behind :attr:`oof`."""
        return self.economics.with_values(self.oof.conversion_value)

    def predict_kinds(self, X: pd.DataFrame | np.ndarray, kinds: list[str] | None = None
                      ) -> dict[str, np.ndarray]:
        """Calibrated predictions (n, K, M) of each fitted kind (and derived ``a@funnel`` kind
        asked for) on raw features ``X``, or on their encoded matrix (:meth:`FeatureEncoder.matrix
        <promolift.data.FeatureEncoder.matrix>`)."""
        wanted = kinds or list(self.models)
        base = {k.split("@")[0] for k in wanted} | ({"relative"} if any("@" in k for k in wanted) else set())
        Xe = X if isinstance(X, np.ndarray) else self.encoder.matrix(X)
        preds = {k: self.models[k].predict(Xe) * self.calibration[k] for k in base}
        if any("@" in k for k in wanted):
            preds = self.with_derived(preds)
        return {k: preds[k] for k in wanted}

    def with_derived(self, predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-kind predictions plus this bundle's derived kinds (``"<kind>@<funnel>"``)."""
        return with_derived(predictions, self.config.funnel, funnel_per_unit(self.models, self.config))

    def predict(self, X: pd.DataFrame | np.ndarray, weights: dict[str, float] | None = None) -> np.ndarray:
        """Predictions (n, K, M) of a blend of kinds (default: the chosen candidate's)."""
        weights = self.weights if weights is None else weights
        used = [k for k, w in weights.items() if w > 0] or ["constant"]  # may be derived kinds
        return blend(self.predict_kinds(X, used), weights)

    # ------------------------------------------------------------------ persistence
    def manifest(self, files: dict[str, str]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "bundle_version": self.version,
            "created": self.created,
            "config": self.config.to_toml_dict(),
            "feature_schema": self.encoder.to_dict(),
            "arms": self.arms,
            "outcomes": self.outcomes,
            "outcome_types": list(self.config.outcomes.values()),
            "kinds": sorted(self.models),
            "serving_formats": {k: m.serving_format for k, m in sorted(self.models.items())
                                if hasattr(m, "serving_format")},
            "weights": self.weights,
            "calibration": {k: v.tolist() for k, v in self.calibration.items()},
            "metrics": self.metrics,
            "libraries": self.libraries,
            "data_fingerprint": self.fingerprint,
            "files": files,
        }

    def save(self, path: str | Path) -> Path:
        """Write the bundle to ``path`` atomically (replacing an existing bundle only on success)."""
        path = Path(path)
        if not self.created:
            self.created = datetime.now(UTC).isoformat(timespec="seconds")
        if not self.version:
            digest = hashlib.sha256(
                f"{self.fingerprint}{self.created}{json.dumps(self.weights, sort_keys=True)}".encode()
            ).hexdigest()
            self.version = f"{self.created[:10].replace('-', '')}-{digest[:10]}"
        with atomic_directory(path) as tmp:
            for kind, model in self.models.items():
                d = tmp / "models" / kind
                d.mkdir(parents=True)
                model.save(d)
            np.savez_compressed(
                tmp / "validation.npz",
                Y=self.oof.Y, treatment=self.oof.treatment, propensity=self.oof.propensity,
                **({} if self.oof.conversion_value is None else {"conversion_value": self.oof.conversion_value}),
                **{f"pred_{k}": self.oof.predictions[k].astype(np.float32) for k in self.models},
            )
            files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
            atomic_write_json(tmp / "manifest.json", self.manifest(files))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ModelBundle:
        """Load and verify a bundle.

        Raises
        ------
        BundleError
            Missing directory or manifest, unknown format, a file missing or altered.

        Warns
        -----
        BundleVersionWarning
            If it was written by another promolift or library version.
        """
        from promolift.models import load_model

        path = Path(path)
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise BundleError(f"{path}: not a model bundle (no manifest.json). Create one with "
                              "'promolift train campaign.toml --out DIR'.")
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{mpath}: corrupt manifest ({exc}). Re-run 'promolift train'.") from None
        fmt = manifest.get("format_version")
        if fmt != FORMAT_VERSION:
            raise BundleError(f"{path}: bundle format {fmt!r}, this promolift reads format "
                              f"{FORMAT_VERSION}. Re-train with this version.")
        for rel, digest in manifest["files"].items():
            f = path / rel
            if not f.is_file():
                raise BundleError(f"{path}: file '{rel}' listed in the manifest is missing. "
                                  "The bundle is incomplete: re-run 'promolift train'.")
            if _sha256(f) != digest:
                raise BundleError(f"{path}: file '{rel}' does not match its checksum in the manifest "
                                  "(changed or corrupt). Re-run 'promolift train'.")
        here = library_versions()
        diff = {k: (v, here.get(k)) for k, v in manifest["libraries"].items()
                if k != "python" and here.get(k) != v}
        if diff:
            desc = ", ".join(f"{k} {a} (now {b})" for k, (a, b) in diff.items())
            warnings.warn(f"{path}: bundle written with {desc}; predictions may differ slightly. "
                          "Re-train to silence this.", BundleVersionWarning, stacklevel=2)
        config = CampaignConfig.from_dict(manifest["config"], source=f"{mpath} (config)")
        if config.arm_names != manifest["arms"] or config.outcome_names != manifest["outcomes"]:
            raise BundleError(f"{path}: manifest arms/outcomes disagree with its config.")
        models = {k: load_model(path / "models" / k) for k in manifest["kinds"]}
        encoder = FeatureEncoder.from_dict(manifest["feature_schema"])
        for kind, model in models.items():  # they read the encoder's matrix by position
            if list(model.feature_names_in_) != encoder.columns_ or model.categories_ != encoder.categories_:
                raise BundleError(f"{path}: model '{kind}' takes other features than the bundle's "
                                  "feature schema. Re-run 'promolift train'.")
        with np.load(path / "validation.npz") as z:
            oof = OutOfFold(
                predictions=with_derived({k: z[f"pred_{k}"].astype(np.float64) for k in manifest["kinds"]},
                                         config.funnel, funnel_per_unit(models, config)),
                Y=z["Y"], treatment=z["treatment"], propensity=z["propensity"],
                conversion_value=z["conversion_value"] if "conversion_value" in z.files else None,
            )
        return cls(
            config=config,
            encoder=encoder,
            models=models,
            weights={k: float(v) for k, v in manifest["weights"].items()},
            oof=oof,
            calibration={k: np.asarray(v, dtype=float) for k, v in manifest["calibration"].items()},
            metrics=manifest["metrics"],
            fingerprint=manifest["data_fingerprint"],
            version=manifest["bundle_version"],
            created=manifest["created"],
            libraries=manifest["libraries"],
        )
