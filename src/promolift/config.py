"""The campaign config (``campaign.toml``): columns, arms, outcomes and economics.

Parsed strictly (unknown keys are errors with a "Did you mean" hint) and every problem is
reported in one message, so a user fixes the file in one go.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promolift.errors import ConfigError, did_you_mean

OutcomeType = Literal["binary", "continuous"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinSection(_Strict):
    """Customer-level columns joined to the log by customer id, used as features.

    For example the table ``promolift clv`` writes: CLV, P(alive) and the churn segment.
    """

    path: Path
    on: str = "customer"
    columns: list[str] = Field(default_factory=list)  # empty = every column but the key


class DataSection(_Strict):
    """Where the experiment log is and what its columns mean."""

    path: Path | None = None
    id: str = "customer_id"
    treatment: str = "treatment"
    control: str = "control"
    features: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    propensity: str | None = None
    join: list[JoinSection] = Field(default_factory=list)


class ArmEconomics(_Strict):
    """What one arm costs: per contact, per conversion, and as a share of spend."""

    contact_cost: Annotated[float, Field(ge=0)] = 0.0
    cost_per_conversion: Annotated[float, Field(ge=0)] = 0.0
    discount_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0


class EconomicsSection(_Strict):
    """How outcomes become money."""

    margin: Annotated[float, Field(gt=0, le=1)] = 0.3
    value_outcome: str = "spend"
    conversion_outcome: str | None = "conversion"
    # A per-customer column (e.g. "clv" from a join): the future value one conversion brings on
    # top of its order. Incremental conversions are then worth margin · spend + this value.
    conversion_value: str | None = None


class ModelSection(_Strict):
    """Which response models to fit and how."""

    kinds: list[Literal["constant", "relative", "t", "x", "dr", "deep"]] = Field(
        default_factory=lambda: ["constant", "relative", "t", "x", "dr"]
    )
    n_folds: Annotated[int, Field(ge=2, le=20)] = 5
    n_estimators: Annotated[int, Field(ge=1)] = 300
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    num_leaves: Annotated[int, Field(ge=2)] = 31
    min_child_samples: Annotated[int, Field(ge=1)] = 50
    spend_model: Literal["hurdle", "direct"] = "hurdle"
    funnel_outcome: str | None = None
    random_state: int = 0


class PlanSection(_Strict):
    """Default constraints for ``promolift plan`` (the command line overrides them)."""

    budget: Annotated[float, Field(ge=0)] | None = None
    max_contacts: Annotated[int, Field(ge=0)] | None = None
    arm_caps: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    min_roi: float | None = None
    safety_margin: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Feature columns the plan summary breaks incremental profit down by (categorical: by value,
    # numeric: by quartile). Default: the joined columns named "segment" and "clv", if any.
    segments: list[str] | None = None


class CampaignConfig(_Strict):
    """A parsed ``campaign.toml``.

    Arms are ordered control first, then the ``[arms.*]`` tables in file order; the control
    arm needs no table (it costs nothing).
    """

    data: DataSection = Field(default_factory=DataSection)
    outcomes: dict[str, OutcomeType] = Field(
        default_factory=lambda: {"visit": "binary", "conversion": "binary", "spend": "continuous"}
    )
    economics: EconomicsSection = Field(default_factory=EconomicsSection)
    arms: dict[str, ArmEconomics] = Field(default_factory=dict)
    model: ModelSection = Field(default_factory=ModelSection)
    plan: PlanSection = Field(default_factory=PlanSection)

    @model_validator(mode="after")
    def _check_references(self) -> CampaignConfig:
        problems = []
        if not self.outcomes:
            problems.append("[outcomes] is empty: declare at least one outcome, e.g. spend = \"continuous\"")
        eco = self.economics
        if eco.value_outcome not in self.outcomes:
            problems.append(
                f"economics.value_outcome = '{eco.value_outcome}' is not in [outcomes] "
                f"({', '.join(self.outcomes)}).{did_you_mean(eco.value_outcome, self.outcomes)}"
            )
        elif self.outcomes[eco.value_outcome] != "continuous":
            problems.append(f"economics.value_outcome '{eco.value_outcome}' must be a continuous outcome")
        if eco.conversion_outcome is not None:
            if eco.conversion_outcome not in self.outcomes:
                problems.append(
                    f"economics.conversion_outcome = '{eco.conversion_outcome}' is not in [outcomes] "
                    f"({', '.join(self.outcomes)}).{did_you_mean(eco.conversion_outcome, self.outcomes)}"
                    " Set it to an outcome or remove the key."
                )
            elif self.outcomes[eco.conversion_outcome] != "binary":
                problems.append(
                    f"economics.conversion_outcome '{eco.conversion_outcome}' must be a binary outcome"
                )
        if not self.arms:
            problems.append("no [arms.NAME] table: declare at least one promotion arm besides the control")
        funnel = self.model.funnel_outcome
        if funnel is not None and (funnel not in self.outcomes or self.outcomes[funnel] != "binary"
                                   or funnel == eco.conversion_outcome):
            problems.append(
                f"model.funnel_outcome = '{funnel}' must be a binary outcome upstream of the conversion "
                f"(e.g. visit).{did_you_mean(funnel, self.outcomes)}"
            )
        if eco.conversion_value is not None and eco.conversion_outcome is None:
            problems.append("economics.conversion_value needs economics.conversion_outcome")
        for name, arm in self.arms.items():
            if arm.cost_per_conversion and eco.conversion_outcome is None:
                problems.append(f"arms.{name}.cost_per_conversion needs economics.conversion_outcome")
        for name in self.plan.arm_caps:
            if name not in self.arms:
                problems.append(
                    f"plan.arm_caps names unknown arm '{name}'.{did_you_mean(name, self.arms)}"
                )
        used = {self.data.id, self.data.treatment, *self.outcomes}
        if self.data.propensity:
            used.add(self.data.propensity)
        for col in self.data.features:
            if col in used:
                problems.append(f"data.features lists '{col}', which is the id, treatment, propensity or an outcome")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def arm_names(self) -> list[str]:
        """Arm names, control first."""
        return [self.data.control, *(a for a in self.arms if a != self.data.control)]

    @property
    def outcome_names(self) -> list[str]:
        return list(self.outcomes)

    @property
    def funnel(self) -> tuple[int, str] | None:
        """(index, name) of ``model.funnel_outcome``, or None."""
        name = self.model.funnel_outcome
        return None if name is None else (self.outcome_names.index(name), name)

    def segment_columns(self, available: list[str]) -> list[str]:
        """Columns to break the plan down by: ``plan.segments``, else joined ``segment``/``clv``."""
        if self.plan.segments is not None:
            return list(self.plan.segments)
        return [c for c in ("segment", "clv") if c in available]

    def arm_economics(self) -> list[ArmEconomics]:
        """Economics per arm in :attr:`arm_names` order (control costs nothing)."""
        return [self.arms.get(a, ArmEconomics()) for a in self.arm_names]

    def to_toml_dict(self) -> dict[str, Any]:
        """JSON-able dict that :meth:`from_dict` reads back (used in bundle manifests)."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> CampaignConfig:
        """Validate a dict, reporting every problem in one :class:`ConfigError`."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a ``campaign.toml``; ``data.path`` is resolved relative to it.

    Raises
    ------
    ConfigError
        If the file is missing, is not TOML, or does not validate (all problems listed).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found. Create it (see README, 'campaign.toml').")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    cfg = CampaignConfig.from_dict(raw, source=str(path))

    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (path.parent / p).resolve()

    update: dict[str, Any] = {"join": [j.model_copy(update={"path": resolve(j.path)}) for j in cfg.data.join]}
    if cfg.data.path is not None:
        update["path"] = resolve(cfg.data.path)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update=update)})


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "data": DataSection,
    "economics": EconomicsSection,
    "model": ModelSection,
    "plan": PlanSection,
}


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            key = str(err["loc"][-1])
            if not parent:
                fields = CampaignConfig.model_fields
            elif parent[0] == "arms":
                fields = ArmEconomics.model_fields
            elif parent[:2] == ("data", "join"):
                fields = JoinSection.model_fields
            else:
                fields = _SECTION_MODELS.get(str(parent[0]), CampaignConfig).model_fields
            lines.append(f"  - {loc}: unknown key.{did_you_mean(key, fields)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            where = f"{loc}: " if loc else ""
            got = f" (got {err['input']!r})" if loc and not isinstance(err["input"], dict) else ""
            lines.append(f"  - {where}{msg}{got}")
    return f"{source}: {len(lines)} problem(s) in the campaign config:\n" + "\n".join(lines)
