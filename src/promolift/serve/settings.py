"""Settings of the decision service, read from ``PROMOLIFT_SERVE_*`` environment variables.

``promolift serve`` turns its options into these variables, so that every uvicorn worker
process builds the same app (``create_app(get_settings())``). Tests build
:class:`ServeSettings` directly and pass it to :func:`promolift.serve.app.create_app`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServeSettings", "get_settings"]


class ServeSettings(BaseSettings):
    """Everything the service needs to start.

    Parameters
    ----------
    model_dir : Path
        Model bundle directory (``promolift train --out``).
    plan : Path, optional
        ``plan.json`` (or the directory holding it) from ``promolift plan``: its policy weights and
        prices (λ, μ, ν) are used, so that online decisions equal the offline plan. Without a plan,
        λ = μ = ν = 0 and the bundle's chosen weights are used (unconstrained decisions).
    budget : float, optional
        Budget (USD of expected promotion cost) paced for the campaign. Default: the plan's
        effective budget if there is a plan, else no budget.
    campaign : str, optional
        Name of the budget counter (one budget per campaign), default ``"default"``.
    budget_store : str, optional
        ``sqlite:///path.db`` (default store, see :func:`promolift.serve.budget.open_budget_store`)
        or ``redis://host:port/db``.
    api_keys : Path, optional
        JSON file of hashed API keys (``promolift api-key`` writes it). ``None`` disables
        authentication: only for tests and local benchmarks (``promolift serve --insecure``).
    pseudonym_key : SecretStr, optional
        Key of the HMAC that pseudonymizes customer ids in logs and the audit log. Without it a
        random per-process key is used (pseudonyms then do not match across restarts).
    audit_log : Path
        Append-only JSON-lines file, one line per decision.
    audit_fsync : {"always", "interval", "never"}
        ``always``: fsync after every request's lines (survives power loss, costs ~1 ms);
        ``interval``: at most every ``audit_fsync_interval`` seconds (a crash of the process loses
        nothing, a power cut up to that many seconds); ``never``: leave it to the OS.
    max_body_bytes : int
        Larger requests get 413 before being parsed.
    max_batch : int
        Most customers per request (the schema enforces it: 422).
    reasons : int
        Default number of reason codes per decision (a request may ask for fewer; 0 = none).
    """

    model_config = SettingsConfigDict(env_prefix="PROMOLIFT_SERVE_", extra="forbid")

    model_dir: Path
    plan: Path | None = None
    budget: Annotated[float, Field(ge=0)] | None = None
    campaign: str | None = None
    budget_store: str | None = None
    api_keys: Path | None = None
    pseudonym_key: SecretStr | None = None
    audit_log: Path = Path("promolift-audit.jsonl")
    audit_fsync: Literal["always", "interval", "never"] = "interval"
    audit_fsync_interval: Annotated[float, Field(gt=0)] = 1.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024 * 1024
    max_batch: Annotated[int, Field(ge=1, le=100_000)] = 1000
    reasons: Annotated[int, Field(ge=0, le=20)] = 3
    history: Annotated[int, Field(ge=1, le=20)] = 3
    log_level: Literal["debug", "info", "warning", "error"] = "info"


@lru_cache
def get_settings() -> ServeSettings:
    """The settings from the environment, read once per process (tests construct their own)."""
    return ServeSettings()  # type: ignore[call-arg]  # model_dir comes from the environment
