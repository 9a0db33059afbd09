"""CreateHyperParameterTuningJob as SageMaker shapes it, validated at submit (nothing half-created)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.training.spec import (
    AlgorithmSpecificationSpec,
    Channel,
    CheckpointConfigSpec,
    OutputDataConfigSpec,
    ResourceConfigSpec,
    RetryStrategySpec,
    StoppingConditionSpec,
    Tag,
)

#: SageMaker allows 32 characters: child jobs are named ``<tuning job>-<NNN>-<8 hex>`` within 63.
TUNING_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
OBJECTIVE_HP = "_tuning_objective_metric"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _number(value: str, field: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{field} must be finite")
    return x


class _NumericRange(_Shape):
    Name: Annotated[str, Field(min_length=1, max_length=256)]
    MinValue: Annotated[str, Field(min_length=1, max_length=256)]
    MaxValue: Annotated[str, Field(min_length=1, max_length=256)]
    ScalingType: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"

    def bounds(self) -> tuple[float, float]:
        return _number(self.MinValue, "MinValue"), _number(self.MaxValue, "MaxValue")

    @model_validator(mode="after")
    def _check(self) -> _NumericRange:
        low, high = self.bounds()
        if low > high:
            raise ValueError(f"range {self.Name!r} is inverted: MinValue {low} > MaxValue {high}; swap them")
        if self.ScalingType == "Logarithmic" and low <= 0:
            raise ValueError(f"range {self.Name!r}: Logarithmic scaling needs MinValue > 0 (got {low}); use Linear")
        return self


class IntegerParameterRange(_NumericRange):
    @model_validator(mode="after")
    def _integers(self) -> IntegerParameterRange:
        low, high = self.bounds()
        if low != int(low) or high != int(high):
            raise ValueError(f"integer range {self.Name!r} needs whole-number bounds")
        if self.ScalingType == "ReverseLogarithmic":
            raise ValueError(f"integer range {self.Name!r}: ReverseLogarithmic is for continuous ranges only")
        return self


class ContinuousParameterRange(_NumericRange):
    @model_validator(mode="after")
    def _reverse_log(self) -> ContinuousParameterRange:
        low, high = self.bounds()
        if self.ScalingType == "ReverseLogarithmic" and not (low >= 0 and high < 1):
            raise ValueError(f"range {self.Name!r}: ReverseLogarithmic needs 0 <= MinValue and MaxValue < 1")
        return self


class CategoricalParameterRange(_Shape):
    Name: Annotated[str, Field(min_length=1, max_length=256)]
    Values: Annotated[list[Annotated[str, Field(max_length=256)]], Field(min_length=1, max_length=30)]

    @field_validator("Values")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("values must be unique")
        return v


class ParameterRanges(_Shape):
    IntegerParameterRanges: Annotated[list[IntegerParameterRange], Field(max_length=30)] = []
    ContinuousParameterRanges: Annotated[list[ContinuousParameterRange], Field(max_length=30)] = []
    CategoricalParameterRanges: Annotated[list[CategoricalParameterRange], Field(max_length=30)] = []

    def names(self) -> list[str]:
        numeric: list[_NumericRange] = [*self.IntegerParameterRanges, *self.ContinuousParameterRanges]
        return [r.Name for r in numeric] + [c.Name for c in self.CategoricalParameterRanges]


class Objective(_Shape):
    Type: Literal["Maximize", "Minimize"]
    MetricName: Annotated[str, Field(min_length=1, max_length=255)]


class ResourceLimits(_Shape):
    MaxNumberOfTrainingJobs: Annotated[int | None, Field(ge=1, le=10_000)] = None
    MaxParallelTrainingJobs: Annotated[int, Field(ge=1, le=100)]
    MaxRuntimeInSeconds: Annotated[int | None, Field(ge=120, le=15_768_000)] = None


class CompletionCriteria(_Shape):
    TargetObjectiveMetricValue: float | None = None


class HyperbandConfig(_Shape):
    MinResource: Annotated[int, Field(ge=1, le=20_000)] = 1
    MaxResource: Annotated[int, Field(ge=1, le=20_000)]

    @model_validator(mode="after")
    def _order(self) -> HyperbandConfig:
        if self.MinResource > self.MaxResource:
            raise ValueError("MinResource must be <= MaxResource")
        return self


class StrategyConfigSpec(_Shape):
    HyperbandStrategyConfig: HyperbandConfig | None = None


class TuningJobConfig(_Shape):
    Strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"]
    StrategyConfig: StrategyConfigSpec | None = None
    HyperParameterTuningJobObjective: Objective
    ResourceLimits: ResourceLimits
    ParameterRanges: ParameterRanges
    TrainingJobEarlyStoppingType: Literal["Off", "Auto"] = "Off"
    TuningJobCompletionCriteria: CompletionCriteria | None = None
    RandomSeed: Annotated[int | None, Field(ge=0)] = None

    @model_validator(mode="after")
    def _strategy_rules(self) -> TuningJobConfig:
        ranges = self.ParameterRanges
        if not ranges.names():
            raise ValueError("ParameterRanges is empty: give at least one range to tune")
        dupes = sorted({n for n in ranges.names() if ranges.names().count(n) > 1})
        if dupes:
            raise ValueError(f"ParameterRanges names {dupes} more than once")
        if self.Strategy == "Hyperband":
            if self.TrainingJobEarlyStoppingType != "Off":
                raise ValueError("TrainingJobEarlyStoppingType must be Off with Hyperband (it stops trials itself)")
            if not (self.StrategyConfig and self.StrategyConfig.HyperbandStrategyConfig):
                raise ValueError(
                    "Hyperband needs StrategyConfig.HyperbandStrategyConfig {MinResource, MaxResource}: "
                    "the steps (epochs) at which trials report the objective"
                )
        if self.Strategy == "Grid":
            if ranges.ContinuousParameterRanges:
                raise ValueError(
                    "Grid needs categorical or integer ranges; a continuous range has no finite grid "
                    "(use Random or Bayesian, or list the values as a categorical range)"
                )
            if (
                self.ResourceLimits.MaxNumberOfTrainingJobs is not None
                and self.ResourceLimits.MaxNumberOfTrainingJobs != self.grid_size()
            ):
                raise ValueError(
                    f"Grid runs every combination ({self.grid_size()}); leave out "
                    "ResourceLimits.MaxNumberOfTrainingJobs or set it to that"
                )
        elif self.ResourceLimits.MaxNumberOfTrainingJobs is None:
            raise ValueError(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {self.Strategy} strategy")
        return self

    def grid_size(self) -> int:
        size = 1
        for cat in self.ParameterRanges.CategoricalParameterRanges:
            size *= len(cat.Values)
        for r in self.ParameterRanges.IntegerParameterRanges:
            low, high = r.bounds()
            size *= int(high) - int(low) + 1
        return size

    def max_jobs(self) -> int:
        return self.ResourceLimits.MaxNumberOfTrainingJobs or self.grid_size()


class TrainingJobDefinition(_Shape):
    AlgorithmSpecification: AlgorithmSpecificationSpec = Field(default_factory=AlgorithmSpecificationSpec)
    RoleArn: Annotated[str | None, Field(max_length=2048)] = None
    StaticHyperParameters: dict[str, str] = {}
    InputDataConfig: Annotated[list[Channel], Field(max_length=20)] = []
    OutputDataConfig: OutputDataConfigSpec = Field(default_factory=OutputDataConfigSpec)
    ResourceConfig: ResourceConfigSpec = Field(default_factory=ResourceConfigSpec)
    StoppingCondition: StoppingConditionSpec = Field(default_factory=StoppingConditionSpec)
    RetryStrategy: RetryStrategySpec | None = None
    Environment: dict[str, str] = {}
    CheckpointConfig: CheckpointConfigSpec | None = None


class ParentTuningJob(_Shape):
    HyperParameterTuningJobName: Annotated[str, Field(min_length=1, max_length=32)]


class WarmStartConfigSpec(_Shape):
    ParentHyperParameterTuningJobs: Annotated[list[ParentTuningJob], Field(min_length=1, max_length=5)]
    WarmStartType: Literal["IdenticalDataAndAlgorithm", "TransferLearning"]


class CreateHyperParameterTuningJobRequest(_Shape):
    HyperParameterTuningJobName: str
    HyperParameterTuningJobConfig: TuningJobConfig
    TrainingJobDefinition: TrainingJobDefinition
    WarmStartConfig: WarmStartConfigSpec | None = None
    Tags: Annotated[list[Tag], Field(max_length=50)] = []

    @field_validator("HyperParameterTuningJobName")
    @classmethod
    def _name(cls, v: str) -> str:
        if not TUNING_NAME.fullmatch(v):
            raise ValueError(
                "use 1-32 letters, digits and hyphens, starting and ending with a letter or digit "
                "(child training jobs append -NNN-xxxxxxxx)"
            )
        return v

    @model_validator(mode="after")
    def _objective_is_defined(self) -> CreateHyperParameterTuningJobRequest:
        metric = self.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName
        defined = [m.Name for m in self.TrainingJobDefinition.AlgorithmSpecification.MetricDefinitions]
        if metric not in defined:
            raise ValueError(
                f"the objective metric {metric!r} is not produced by any MetricDefinition ({defined or 'none'}); "
                "add a MetricDefinition with that Name and a regex, or log it with kamado.log_metric"
            )
        overlap = sorted(
            set(self.HyperParameterTuningJobConfig.ParameterRanges.names())
            & set(self.TrainingJobDefinition.StaticHyperParameters)
        )
        if overlap:
            raise ValueError(f"{overlap} are both tuned and static; remove them from StaticHyperParameters")
        return self

    def tags_dict(self) -> dict[str, str]:
        return {t.Key: t.Value for t in self.Tags}

    def child_request(self, name: str, tuned: dict[str, str]) -> dict[str, Any]:
        """The CreateTrainingJob request of one trial: static + sampled hyperparameters, SageMaker style."""
        d = self.TrainingJobDefinition
        metric = self.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName
        body: dict[str, Any] = d.model_dump(mode="json", exclude_none=True, exclude={"StaticHyperParameters"})
        body["TrainingJobName"] = name
        body["HyperParameters"] = {**d.StaticHyperParameters, **tuned, OBJECTIVE_HP: f'"{metric}"'}
        body["Tags"] = [t.model_dump() for t in self.Tags]
        return body
