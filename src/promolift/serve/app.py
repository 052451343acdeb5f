"""The decision service: ``create_app(settings)`` builds the FastAPI app.

Routes
------
``POST /v1/decisions`` (role ``decide``)
    1 to ``max_batch`` customers -> per customer the arm, expected incremental profit and cost,
    model version, reason codes and whether the budget limited it. One ``predict`` per request.
``GET /v1/models`` (``decide`` or ``admin``)
    The serving version and the previous ones kept for rollback.
``POST /v1/admin/models``, ``POST /v1/admin/models/rollback`` (``admin``)
    Load a new bundle (and plan) or go back to the previous one. The new version is built
    completely (loaded, checksums verified, one warm-up prediction) and then swapped in by
    replacing one reference: in-flight requests finish on the version they started with. A
    broken bundle is refused (422) and the running version stays.
``GET /healthz`` (process up), ``GET /readyz`` (model loaded, budget store reachable),
``GET /metrics`` (Prometheus).

Online and offline agree: the decision uses the plan's policy weights, the bundle's economics
and the plan's prices through :func:`promolift.serve.decide.decide`, the rule of the offline
solver. Budget pacing then commits the expected cost of each non-control decision, in request
order, to the campaign's :class:`~promolift.serve.budget.BudgetStore`; a decision that does not
fit becomes control (``budget_limited: true``). The budget is never exceeded.
"""

# no "from __future__ import annotations": FastAPI must see the route annotations themselves,
# which refer to models built inside create_app
import json
import threading
import time
import uuid
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from promolift.bundle import ModelBundle
from promolift.errors import BundleError, ConfigError, PromoliftError
from promolift.serve.audit import AuditLog, Pseudonymizer
from promolift.serve.auth import ApiKey, KeyRing
from promolift.serve.decide import Prices, decide, read_plan_summary
from promolift.serve.logs import configure_logging, logger
from promolift.serve.metrics import ServeMetrics
from promolift.serve.schemas import (
    DecisionResponse,
    LoadModelRequest,
    ModelsResponse,
    ModelVersion,
    build_models,
    field_path,
)
from promolift.serve.settings import ServeSettings, get_settings

__all__ = ["ServingState", "app_from_env", "create_app", "load_state"]

_ANONYMOUS = ApiKey("anonymous", frozenset({"decide", "admin"}), b"")


# ---------------------------------------------------------------------------------- model state
@dataclass(frozen=True)
class ServingState:
    """One model version ready to serve: never mutated, replaced as a whole on reload."""

    bundle: ModelBundle
    weights: dict[str, float]
    prices: Prices
    path: str
    plan_path: str | None
    plan_budget: float | None
    loaded_at: str
    arms: np.ndarray = field(repr=False)

    @property
    def version(self) -> str:
        return self.bundle.version

    def describe(self) -> ModelVersion:
        return ModelVersion(version=self.version, path=self.path, plan=self.plan_path,
                            loaded_at=self.loaded_at, weights=self.weights,
                            prices=self.prices.to_dict(self.bundle.arms))


def schema_of(manifest_or_bundle: dict | ModelBundle) -> dict[str, Any]:
    """What a request must look like for a model: its feature schema and arms."""
    if isinstance(manifest_or_bundle, ModelBundle):
        return {"feature_schema": manifest_or_bundle.encoder.to_dict(), "arms": manifest_or_bundle.arms}
    return {"feature_schema": manifest_or_bundle["feature_schema"], "arms": manifest_or_bundle["arms"]}


def read_schema(model_dir: str | Path) -> dict[str, Any]:
    """The request schema from a bundle's manifest (cheap: no model is loaded)."""
    path = Path(model_dir) / "manifest.json"
    try:
        return schema_of(json.loads(path.read_text()))
    except FileNotFoundError:
        raise BundleError(f"{model_dir}: not a model bundle (no manifest.json). Create one with "
                          "'promolift train campaign.toml --out DIR'.") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: corrupt manifest ({exc}). Re-run 'promolift train'.") from None


def load_state(model_dir: str | Path, plan: str | Path | None = None) -> ServingState:
    """Load and verify a bundle and (optionally) its plan, and warm it up with one prediction.

    Raises
    ------
    BundleError
        The bundle is missing, corrupt or fails to predict.
    ConfigError
        The plan is missing, malformed or was made with another bundle version.
    """
    try:
        bundle = ModelBundle.load(model_dir)
    except (OSError, ValueError) as exc:  # unreadable path (too long, NUL byte, permissions)
        if isinstance(exc, PromoliftError):
            raise
        raise BundleError(f"{str(model_dir)[:200]}: cannot read the bundle ({type(exc).__name__}: "
                          f"{str(exc)[:200]}). Give the directory written by 'promolift train'.") from None
    for model in bundle.models.values():  # one thread per request: concurrency comes from requests
        if hasattr(model, "n_jobs"):
            model.n_jobs = 1
    weights, prices, plan_path, plan_budget = dict(bundle.weights), Prices(), None, None
    if plan is not None:
        try:
            summary, p = read_plan_summary(plan)
        except (OSError, ValueError) as exc:
            if isinstance(exc, PromoliftError):
                raise
            raise ConfigError(f"{str(plan)[:200]}: cannot read the plan ({type(exc).__name__}). Give the "
                              "plan.json written by 'promolift plan'.") from None
        plan_path = str(p)
        if summary.get("bundle_version") != bundle.version:
            raise ConfigError(f"{p}: plan made with model version {summary.get('bundle_version')!r}, but "
                              f"{model_dir} is version {bundle.version!r}. Re-run 'promolift plan' with "
                              "this model, or serve the model the plan was made with.")
        weights = {k: float(v) for k, v in summary["policy"]["weights"].items()}
        unknown = [k for k in weights if k.split("@")[0] not in bundle.models]
        if unknown:
            raise ConfigError(f"{p}: policy uses model kind(s) {', '.join(unknown)} that {model_dir} "
                              f"does not have ({', '.join(bundle.models)}).")
        prices = Prices.from_plan(summary, bundle.arms, source=str(p))
        plan_budget = summary["constraints"].get("effective_budget")
    try:  # a model that loads but cannot predict is as broken as a missing file
        X = pd.DataFrame({c: [np.nan] for c in bundle.encoder.columns_})
        value, cost = bundle.economics.for_customers(X).value_cost(bundle.predict(X, weights))
        decide(value, cost, prices)
    except Exception as exc:
        raise BundleError(f"{model_dir}: the model failed its warm-up prediction ({exc}).") from exc
    try:  # else the first request with reason codes pays for the explainer's imports and set-up
        from promolift.explain import reason_codes as explain_reasons

        explain_reasons(bundle, X, np.zeros(1, dtype=np.intp), weights=weights, top=1)
    except Exception as exc:  # noqa: BLE001 - decisions work without reason codes
        logger.warning("reason codes unavailable for this model", extra={"error": str(exc)})
    return ServingState(bundle=bundle, weights=weights, prices=prices, path=str(model_dir),
                        plan_path=plan_path, plan_budget=plan_budget,
                        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        arms=np.asarray(bundle.arms, dtype=object))


class ModelRegistry:
    """The serving version and a few previous ones; swaps replace one reference under a lock."""

    def __init__(self, current: ServingState, keep: int = 3):
        self.current = current
        self.previous: deque[ServingState] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def swap(self, new: ServingState) -> None:
        with self._lock:
            self.previous.appendleft(self.current)
            self.current = new

    def rollback(self) -> ServingState:
        with self._lock:
            if not self.previous:
                raise LookupError("no previous model version to roll back to")
            self.current = self.previous.popleft()
            return self.current


# ---------------------------------------------------------------------------------- reason codes
def reason_codes(state: ServingState, X: pd.DataFrame | None, encoded: np.ndarray, arm: np.ndarray,
                 top: int) -> list[list[dict]]:
    """Reason codes for each customer's arm (a treated arm for control: why it was not worth
    it); ``encoded`` is the matrix the customers were scored on, ``X`` their raw features (may
    be ``None`` when ``top`` is 0)."""
    if top <= 0:
        return [[] for _ in range(len(encoded))]
    from promolift.explain import reason_codes as explain

    out = explain(state.bundle, X, arm, weights=state.weights, top=top, encoded=encoded)
    return [[{"feature": r.feature, "value": _jsonable(r.value), "contribution": float(r.contribution),
              "direction": r.direction} for r in reasons] for reasons in out]


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, str | bool | int):
        return v
    if isinstance(v, float | np.floating):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer | np.bool_):
        return v.item()
    return str(v)


# ---------------------------------------------------------------------------------- middleware
class _BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = length is not None and (not length.isdigit() or int(length) > self.limit)
        chunks: list[dict] = []
        if not too_big and scope["method"] in ("POST", "PUT", "PATCH"):
            size = 0
            while True:
                message = await receive()
                chunks.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.limit:
                    too_big = True
                    break
                if not message.get("more_body", False):
                    break
        if too_big:
            body = json.dumps({"detail": f"request body over the {self.limit:,}-byte limit; "
                                         "send fewer customers per request"}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return None
        if not chunks:
            return await self.app(scope, receive, send)

        async def replay():
            return chunks.pop(0) if chunks else await receive()

        return await self.app(scope, replay, send)


class _Observe:
    """Request id, one JSON log line and the Prometheus request metrics for every request."""

    def __init__(self, app, metrics: ServeMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_wrapped(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route=route, method=scope["method"], status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(elapsed)
            st = scope.get("state", {})
            logger.info("request", extra={
                "request_id": request_id, "method": scope["method"], "route": route, "status": status,
                "duration_ms": round(elapsed * 1000, 3), "key": st.get("key"),
                "customers": st.get("customers"), "model_version": st.get("model_version")})


# ---------------------------------------------------------------------------------- the app
def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """Build the service for ``settings`` (default: :func:`get_settings`, the environment).

    The request schema comes from the bundle's manifest (so the OpenAPI document lists the
    features); the bundle itself is loaded and verified at startup (lifespan).

    Raises
    ------
    BundleError, ConfigError
        The bundle's manifest or the API key file cannot be read.
    """
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    schema = read_schema(settings.model_dir)
    models = build_models(schema["feature_schema"], schema["arms"], max_batch=settings.max_batch)
    keyring = KeyRing.load(settings.api_keys) if settings.api_keys else None
    metrics = ServeMetrics()
    key_bytes = settings.pseudonym_key.get_secret_value().encode() if settings.pseudonym_key else None
    pseudonym = Pseudonymizer(key_bytes)
    columns = list(schema["feature_schema"]["columns"])
    numeric = set(schema["feature_schema"]["numeric"])
    campaign = settings.campaign or "default"

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = await run_in_threadpool(load_state, settings.model_dir, settings.plan)
        if schema_of(state.bundle) != schema:
            raise BundleError(f"{settings.model_dir}: manifest changed while starting; restart.")
        budget = settings.budget if settings.budget is not None else state.plan_budget
        store = None
        if budget is not None:
            from promolift.serve.budget import open_budget_store

            store = open_budget_store(settings.budget_store)
            metrics.set_budget(campaign, store.spent(campaign), budget)
        audit = AuditLog(settings.audit_log, settings.audit_fsync, settings.audit_fsync_interval)
        app.state.registry = ModelRegistry(state, settings.history)
        app.state.store, app.state.budget, app.state.audit = store, budget, audit
        metrics.set_model(state.version, state.plan_path)
        metrics.model_loads.labels(outcome="ok").inc()
        if not pseudonym.stable:
            logger.warning("no pseudonym_key set: customer pseudonyms change at every restart")
        if keyring is None:
            logger.warning("authentication is disabled (no api_keys file)")
        logger.info("ready", extra={"model_version": state.version, "campaign": campaign, "budget": budget})
        try:
            yield
        finally:
            audit.close()
            if store is not None:
                store.close()

    app = FastAPI(
        title="promolift decision service",
        version=str(schema["feature_schema"].get("version", "1")),
        summary="Which promotion (or none) to give a customer, at the offline plan's prices.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics

    header = APIKeyHeader(name="X-API-Key", auto_error=False,
                          description="API key (promolift api-key NAME --role decide).")

    def require(*roles: str):
        def check(request: Request, key: Annotated[str | None, Security(header)]) -> ApiKey:
            if keyring is None:
                who = _ANONYMOUS
            else:
                who = keyring.identify(key)
                if who is None:
                    raise HTTPException(401, "missing or unknown API key (send it in X-API-Key)",
                                        headers={"WWW-Authenticate": "APIKey"})
                if not who.roles & set(roles):
                    raise HTTPException(403, f"API key '{who.name}' lacks the role {' or '.join(roles)}")
            request.state.key = who.name
            return who
        return check

    def registry(request: Request) -> ModelRegistry:
        return request.app.state.registry

    Registry = Annotated[ModelRegistry, Depends(registry)]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": field_path(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(PromoliftError)
    async def _promolift_error(request: Request, exc: PromoliftError) -> JSONResponse:
        status = 503 if type(exc).__name__ == "BudgetStoreUnavailableError" else 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    # ----------------------------------------------------------------------- decisions
    decisions = APIRouter(tags=["decisions"])
    DecisionRequest = models.request

    @decisions.post("/v1/decisions", response_model=DecisionResponse,
                    responses={401: {"description": "Missing or unknown API key"},
                               403: {"description": "The key lacks the decide role"},
                               413: {"description": "Request body too large"},
                               422: {"description": "Invalid request; `detail[].field` names the field"},
                               503: {"description": "Budget store unreachable"}})
    def post_decisions(body: DecisionRequest, request: Request, reg: Registry,  # type: ignore[valid-type]
                       who: Annotated[ApiKey, Depends(require("decide"))]) -> DecisionResponse:
        """Decide, for 1 to `max_batch` customers, which arm (or nothing) each gets."""
        state = reg.current  # one reference: a concurrent reload does not affect this request
        app_state = request.app.state
        customers = body.customers
        n = len(customers)
        request.state.customers, request.state.model_version = n, state.version
        raw = _columns(customers, columns, numeric)
        top = settings.reasons if body.reasons is None else body.reasons
        economics = state.bundle.economics
        # raw features as a DataFrame only for what needs one (reason codes, CLV-valued economics)
        X = pd.DataFrame(raw, columns=columns) if top > 0 or economics.conversion_value_column else None
        encoded = state.bundle.encoder.matrix(raw)
        pred = state.bundle.predict(encoded, state.weights)
        if economics.conversion_value_column is not None:
            economics = economics.for_customers(X)
        value, cost = economics.value_cost(pred)
        if body.arms is not None:
            off = ~np.isin(state.arms, body.arms)
            off[0] = False
            value[:, off], cost[:, off] = 0.0, 0.0  # value 0: never chosen
        preferred = decide(value, cost, state.prices)
        rows = np.arange(n)
        arm = preferred.copy()
        limited = np.zeros(n, dtype=bool)
        store, budget = app_state.store, app_state.budget
        treated = np.flatnonzero(preferred != 0)
        if store is not None and treated.size:
            ok = np.asarray(store.commit(campaign, cost[treated, preferred[treated]].tolist(), budget), bool)
            limited[treated[~ok]] = True
            arm[limited] = 0
            metrics.set_budget(campaign, store.spent(campaign), budget)
        reasons = reason_codes(state, X, encoded, preferred, top)
        profit, spend = value[rows, arm], cost[rows, arm]
        names, pref_names = state.arms[arm].tolist(), state.arms[preferred].tolist()
        ids = [c.id for c in customers]
        out = [{"id": i, "arm": a, "expected_incremental_profit": p, "expected_cost": c,
                "budget_limited": b, "preferred_arm": pa, "model_version": state.version, "reasons": r}
               for i, a, p, c, b, pa, r in zip(ids, names, profit.tolist(), spend.tolist(),
                                               limited.tolist(), pref_names, reasons, strict=True)]
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        rid = request.state.request_id
        app_state.audit.write([
            {"ts": ts, "request_id": rid, "key": who.name, "model_version": state.version,
             "campaign": campaign, "customer": pid, "arm": d["arm"], "expected_cost": d["expected_cost"],
             "expected_incremental_profit": d["expected_incremental_profit"],
             "budget_limited": d["budget_limited"]}
            for pid, d in zip(pseudonym.many(ids), out, strict=True)])
        for name, count in zip(*np.unique(arm, return_counts=True), strict=True):
            metrics.decisions.labels(campaign=campaign, arm=state.arms[name]).inc(int(count))
        if limited.any():
            metrics.budget_limited.labels(campaign=campaign).inc(int(limited.sum()))
        # already valid: skip re-validating every decision through the response model
        return JSONResponse({"request_id": rid, "model_version": state.version, "campaign": campaign,
                             "decisions": out})

    # ----------------------------------------------------------------------- model versions
    admin = APIRouter(tags=["models"])

    @admin.get("/v1/models", response_model=ModelsResponse)
    def get_models(reg: Registry, who: Annotated[ApiKey, Depends(require("decide", "admin"))]):
        """The serving model version and the previous ones kept for rollback."""
        return {"current": reg.current.describe(), "previous": [s.describe() for s in reg.previous]}

    @admin.post("/v1/admin/models", response_model=ModelsResponse, status_code=201,
                responses={409: {"description": "The bundle takes other features or arms"},
                           422: {"description": "Broken bundle or plan: refused, the running model stays"}})
    def load_model(body: LoadModelRequest, request: Request, reg: Registry,
                   who: Annotated[ApiKey, Depends(require("admin"))]):
        """Load a bundle (and plan); swap it in only if it loads, verifies and predicts."""
        try:
            new = load_state(body.model_dir, body.plan)
        except PromoliftError as exc:
            metrics.model_loads.labels(outcome="refused").inc()
            logger.warning("model load refused", extra={"key": who.name, "error": str(exc)})
            raise HTTPException(422, f"refused, still serving {reg.current.version}: {exc}") from None
        if schema_of(new.bundle) != schema:
            metrics.model_loads.labels(outcome="refused").inc()
            raise HTTPException(409, f"refused, still serving {reg.current.version}: {body.model_dir} takes "
                                     "other features or arms than this service's API; start a new service "
                                     "for it ('promolift serve').")
        reg.swap(new)
        metrics.set_model(new.version, new.plan_path)
        metrics.model_loads.labels(outcome="ok").inc()
        logger.info("model loaded", extra={"key": who.name, "model_version": new.version})
        return {"current": new.describe(), "previous": [s.describe() for s in reg.previous]}

    @admin.post("/v1/admin/models/rollback", response_model=ModelsResponse,
                responses={409: {"description": "No previous version"}})
    def rollback(reg: Registry, who: Annotated[ApiKey, Depends(require("admin"))]):
        """Serve the previous model version again."""
        try:
            cur = reg.rollback()
        except LookupError as exc:
            raise HTTPException(409, str(exc)) from None
        metrics.set_model(cur.version, cur.plan_path)
        logger.info("model rolled back", extra={"key": who.name, "model_version": cur.version})
        return {"current": cur.describe(), "previous": [s.describe() for s in reg.previous]}

    # ----------------------------------------------------------------------- health
    health = APIRouter(tags=["health"])

    @health.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @health.get("/readyz", responses={503: {"description": "Not ready"}})
    def readyz(request: Request) -> JSONResponse:
        """Ready when a model is loaded and the budget store answers."""
        st = request.app.state
        reg = getattr(st, "registry", None)
        problems = [] if reg is not None else ["no model loaded"]
        if getattr(st, "store", None) is not None:
            try:
                st.store.spent(campaign)
            except Exception as exc:  # noqa: BLE001 - any failure: not ready
                problems.append(f"budget store: {exc}")
        body = {"status": "ready" if not problems else "not ready", "problems": problems,
                "model_version": reg.current.version if reg else None}
        return JSONResponse(body, status_code=200 if not problems else 503)

    @health.get("/metrics", response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics (text exposition format)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in (decisions, admin, health):
        app.include_router(router)
    app.add_middleware(_Observe, metrics=metrics)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)  # outermost: before any parsing
    return app


def _columns(customers: list, columns: list[str], numeric: set[str]) -> dict[str, Any]:
    """Feature columns from validated customers; categorical values as text, as in training."""
    feats = [c.features for c in customers]
    out: dict[str, Any] = {}
    for i, col in enumerate(columns):
        values = [getattr(f, f"f_{i}") for f in feats]
        if col in numeric:
            out[col] = np.array(values, dtype=np.float64)  # None -> NaN
        else:
            out[col] = np.array([None if v is None else str(v) for v in values], dtype=object)
    return out


def app_from_env() -> FastAPI:
    """App factory for uvicorn workers (``promolift serve`` sets ``PROMOLIFT_SERVE_*``)."""
    return create_app(get_settings())

