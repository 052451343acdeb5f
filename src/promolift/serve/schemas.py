"""Request and response models of the decision API, generated from a bundle's feature schema.

Input rules (the same as in training, see :class:`promolift.data.encode.FeatureEncoder`):

* a numeric feature takes a JSON number; a string, boolean or object is a 422;
* a categorical feature takes a string (numbers and booleans are accepted and compared as text,
  as training did); a value never seen in training is treated as **missing**, exactly as the
  encoder does at training time, and the known values are listed in the OpenAPI schema;
* a feature that is omitted or ``null`` is missing (NaN / no category), as an empty cell was in
  training;
* an unknown feature name, an unknown arm or more than ``max_batch`` customers is a 422 naming
  the field, e.g. ``customers[3].features.recency``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

__all__ = ["LoadModelRequest", "ModelVersion", "Reason", "RequestModels", "build_models"]

CustomerId = Annotated[StrictStr, Field(min_length=1, max_length=128)] | StrictInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(BaseModel):
    """One reason code: a feature's contribution to the expected incremental profit of the arm."""

    feature: str
    value: Any = Field(description="The customer's value of the feature (null when missing).")
    contribution: float = Field(description="USD of expected incremental profit it accounts for.")
    direction: Literal["+", "-"]


class Decision(BaseModel):
    """What one customer gets, what it is expected to earn and cost, and why."""

    id: str | int
    arm: str = Field(description="Arm to give (the control arm means: nothing).")
    expected_incremental_profit: float = Field(description="USD, vs giving nothing.")
    expected_cost: float = Field(description="USD of expected promotion cost committed to the budget.")
    budget_limited: bool = Field(description="True when the rule chose an arm the remaining budget "
                                             "could not pay for: the customer gets control instead.")
    preferred_arm: str = Field(description="Arm chosen by the rule before budget pacing.")
    model_version: str
    reasons: list[Reason] = Field(default_factory=list)


class DecisionResponse(BaseModel):
    """One decision per customer, in request order."""

    request_id: str
    model_version: str
    campaign: str
    decisions: list[Decision]


class ModelVersion(BaseModel):
    """A loaded model version and the plan its prices come from."""

    version: str
    path: str
    plan: str | None
    loaded_at: str
    weights: dict[str, float]
    prices: dict[str, Any]


class ModelsResponse(BaseModel):
    current: ModelVersion
    previous: list[ModelVersion] = Field(description="Older versions kept for rollback, newest first.")


class LoadModelRequest(_Strict):
    """A bundle to load (a path on the server) and, optionally, the plan whose prices to use."""

    model_dir: str = Field(min_length=1, max_length=1024, examples=["models/spring-v2"])
    plan: str | None = Field(default=None, min_length=1, max_length=1024, examples=["plans/spring-v2/plan.json"])


class RequestModels:
    """The request models made for one feature schema and arm list."""

    def __init__(self, features: type[BaseModel], customer: type[BaseModel], request: type[BaseModel]):
        self.features = features
        self.customer = customer
        self.request = request


def build_models(schema: dict[str, Any], arms: list[str], *, max_batch: int = 1000,
                 max_reasons: int = 20) -> RequestModels:
    """Pydantic models validating decision requests against a bundle's feature schema.

    Parameters
    ----------
    schema : dict
        ``FeatureEncoder.to_dict()``: ``columns``, ``numeric``, ``categories``.
    arms : list of str
        Arm names, control first.
    max_batch : int, default=1000
    max_reasons : int, default=20

    Examples
    --------
    >>> m = build_models({"columns": ["age", "channel"], "numeric": ["age"],
    ...                   "categories": {"channel": ["Phone", "Web"]}}, ["none", "email"])
    >>> r = m.request.model_validate({"customers": [{"id": "a", "features": {"age": 3}}]})
    >>> r.customers[0].features.f_1 is None  # fields are f_<column index>, aliased to the name
    True
    """
    fields: dict[str, Any] = {}
    for i, col in enumerate(schema["columns"]):  # f_i aliased to the column: any column name works
        if col in schema["numeric"]:
            fields[f"f_{i}"] = (StrictFloat | None, Field(
                default=None, alias=col, allow_inf_nan=False, description="number; null = missing"))
        else:
            cats = schema["categories"][col]
            shown = cats[:50]
            fields[f"f_{i}"] = (StrictStr | StrictInt | StrictBool | None, Field(
                default=None, alias=col, examples=shown[:3],
                description=f"one of {', '.join(map(repr, shown))}{', ...' if len(cats) > 50 else ''}; "
                            "another value or null = missing (as in training)"))
    features = create_model("Features", __config__=ConfigDict(extra="forbid"), **fields)
    example_features = {c: (0 if c in schema["numeric"] else (schema["categories"][c] or [None])[0])
                        for c in schema["columns"]}
    customer = create_model(
        "Customer", __config__=ConfigDict(extra="forbid"),
        id=(CustomerId, Field(description="Your customer id; only a keyed pseudonym of it is logged.")),
        features=(features, Field(default_factory=features)),
    )
    arm_name = Literal[tuple(arms)]  # type: ignore[valid-type]
    request = create_model(
        "DecisionRequest",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [
            {"customers": [{"id": "c-1001", "features": example_features}]}]}),
        customers=(list[customer], Field(min_length=1, max_length=max_batch,  # type: ignore[valid-type]
                                         description=f"1 to {max_batch} customers")),
        arms=(list[arm_name] | None, Field(  # type: ignore[valid-type]
            default=None, min_length=1, max_length=len(arms),
            description="Only offer these arms in this request (default: all).")),
        reasons=(int | None, Field(default=None, ge=0, le=max_reasons,
                                   description="Reason codes per decision (default: the server's).")),
    )
    return RequestModels(features, customer, request)


def field_path(loc: tuple | list) -> str:
    """``("body", "customers", 3, "features", "recency")`` -> ``customers[3].features.recency``."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "int", "float", "bool", "literal", "list", "function-after", "constrained-str") \
                or "[" in str(part):
            continue  # pydantic's union-member tags are not part of the field's path
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


