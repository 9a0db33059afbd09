"""CreateTrainingJob as SageMaker shapes it, validated declaratively at submit.

Field names are SageMaker's own (PascalCase) so the JSON round-trips losslessly and a boto3 facade is
thin. Unknown or mistyped fields are rejected (``extra="forbid"``), with the field named in the error.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.core.names import NAME_HINT, NAME_PATTERN

_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CHANNEL = re.compile(r"^[A-Za-z0-9\.\-_]+$")
_TAG_RE = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)

#: Hyperparameter keys the SageMaker SDK uses for script-mode plumbing (never passed to the script).
SAGEMAKER_PROGRAM = "sagemaker_program"
SAGEMAKER_SUBMIT_DIRECTORY = "sagemaker_submit_directory"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MetricDefinition(_Shape):
    Name: Annotated[str, Field(min_length=1, max_length=255)]
    Regex: Annotated[str, Field(min_length=1, max_length=500)]

    @field_validator("Regex")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            pattern = re.compile(v)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression ({exc}); escape literal characters") from exc
        if pattern.groups < 1:
            raise ValueError("needs one capture group around the number, e.g. 'loss=([0-9.]+)'")
        return v


class AlgorithmSpecificationSpec(_Shape):
    TrainingImage: Annotated[str | None, Field(max_length=255)] = None
    AlgorithmName: str | None = None
    TrainingInputMode: Literal["File", "FastFile"] = "File"
    MetricDefinitions: Annotated[list[MetricDefinition], Field(max_length=40)] = []
    ContainerEntrypoint: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None, Field(min_length=1, max_length=100)
    ] = None
    ContainerArguments: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None, Field(min_length=1, max_length=100)
    ] = None
    EnableSageMakerMetricsTimeSeries: bool | None = None


class S3DataSourceSpec(_Shape):
    S3DataType: Literal["S3Prefix"] = "S3Prefix"
    S3Uri: Annotated[str, Field(min_length=1, max_length=1024)]
    S3DataDistributionType: Literal["FullyReplicated", "ShardedByS3Key"] = "FullyReplicated"


class DataSourceSpec(_Shape):
    S3DataSource: S3DataSourceSpec


class Channel(_Shape):
    ChannelName: Annotated[str, Field(min_length=1, max_length=64)]
    DataSource: DataSourceSpec
    ContentType: Annotated[str | None, Field(max_length=256)] = None
    CompressionType: Literal["None"] = "None"
    RecordWrapperType: Literal["None"] = "None"
    InputMode: Literal["File", "FastFile"] | None = None

    @field_validator("ChannelName")
    @classmethod
    def _channel_name(cls, v: str) -> str:
        if not _CHANNEL.fullmatch(v):
            raise ValueError("may contain only letters, digits, '.', '-' and '_'")
        return v


class OutputDataConfigSpec(_Shape):
    S3OutputPath: Annotated[str | None, Field(max_length=1024)] = None
    KmsKeyId: str | None = None
    #: Only GZIP for now: outputs are uploaded as model.tar.gz / output.tar.gz.
    CompressionType: Literal["GZIP"] = "GZIP"


class ResourceConfigSpec(_Shape):
    InstanceType: Annotated[str, Field(min_length=1, max_length=64)] = "local"
    InstanceCount: Annotated[int, Field(ge=1, le=1)] = 1
    VolumeSizeInGB: Annotated[int, Field(ge=1, le=16384)] = 30
    KeepAlivePeriodInSeconds: Annotated[int | None, Field(ge=0, le=21600)] = None


class StoppingConditionSpec(_Shape):
    MaxRuntimeInSeconds: Annotated[int, Field(ge=1, le=28 * 86400)] = 86400
    MaxWaitTimeInSeconds: Annotated[int | None, Field(ge=1)] = None
    MaxPendingTimeInSeconds: Annotated[int | None, Field(ge=7200, le=2419200)] = None


class RetryStrategySpec(_Shape):
    MaximumRetryAttempts: Annotated[int, Field(ge=1, le=30)]


class CheckpointConfigSpec(_Shape):
    S3Uri: Annotated[str, Field(max_length=1024)]
    LocalPath: Annotated[str | None, Field(max_length=4096)] = None


class Tag(_Shape):
    Key: Annotated[str, Field(min_length=1, max_length=128)]
    Value: Annotated[str, Field(max_length=256)] = ""

    @field_validator("Key", "Value")
    @classmethod
    def _charset(cls, v: str) -> str:
        if not _TAG_RE.fullmatch(v):
            raise ValueError("may contain letters, digits, spaces and _ . : / = + - @ only")
        return v


class CreateTrainingJobRequest(_Shape):
    TrainingJobName: str
    AlgorithmSpecification: AlgorithmSpecificationSpec = Field(default_factory=AlgorithmSpecificationSpec)
    RoleArn: Annotated[str | None, Field(max_length=2048)] = None
    HyperParameters: dict[str, str] = {}
    InputDataConfig: Annotated[list[Channel], Field(max_length=20)] = []
    OutputDataConfig: OutputDataConfigSpec = Field(default_factory=OutputDataConfigSpec)
    ResourceConfig: ResourceConfigSpec = Field(default_factory=ResourceConfigSpec)
    StoppingCondition: StoppingConditionSpec = Field(default_factory=StoppingConditionSpec)
    RetryStrategy: RetryStrategySpec | None = None
    Environment: dict[str, str] = {}
    CheckpointConfig: CheckpointConfigSpec | None = None
    Tags: Annotated[list[Tag], Field(max_length=50)] = []
    EnableNetworkIsolation: bool = False
    EnableInterContainerTrafficEncryption: bool = False
    EnableManagedSpotTraining: bool = False
    #: Recorded and echoed back; they have no effect on the local executor.
    VpcConfig: dict[str, Any] | None = None
    ExperimentConfig: dict[str, Any] | None = None
    DebugHookConfig: dict[str, Any] | None = None
    ProfilerConfig: dict[str, Any] | None = None
    TensorBoardOutputConfig: dict[str, Any] | None = None

    @field_validator("TrainingJobName")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_PATTERN.fullmatch(v):
            raise ValueError(NAME_HINT)
        return v

    @field_validator("HyperParameters", mode="before")
    @classmethod
    def _hp_strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            bad = [k for k, val in v.items() if not isinstance(val, str)]
            if bad:
                raise ValueError(
                    f"values must be strings, as in SageMaker; JSON-encode {bad[:5]} "
                    '(e.g. "0.1", "\\"adam\\""; kamado.Estimator does this for you)'
                )
        return v

    @field_validator("HyperParameters")
    @classmethod
    def _hp_limits(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > 100:
            raise ValueError("at most 100 hyperparameters")
        for key, val in v.items():
            if not 1 <= len(key) <= 256:
                raise ValueError(f"key {key[:40]!r} must be 1-256 characters")
            if len(val) > 2500:
                raise ValueError(f"value of {key!r} is longer than 2500 characters")
        return v

    @field_validator("Environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_environment(v)

    @model_validator(mode="after")
    def _cross_checks(self) -> CreateTrainingJobRequest:
        names = [c.ChannelName for c in self.InputDataConfig]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"InputDataConfig has duplicate channel names {dupes}; each channel needs its own name")
        has_program = SAGEMAKER_PROGRAM in self.HyperParameters
        if not has_program and not self.AlgorithmSpecification.ContainerEntrypoint:
            raise ValueError(
                "no entry point: set HyperParameters.sagemaker_program (script mode, with "
                "sagemaker_submit_directory) or AlgorithmSpecification.ContainerEntrypoint"
            )
        if (
            self.StoppingCondition.MaxWaitTimeInSeconds is not None
            and self.StoppingCondition.MaxWaitTimeInSeconds < self.StoppingCondition.MaxRuntimeInSeconds
        ):
            raise ValueError("StoppingCondition.MaxWaitTimeInSeconds must be >= MaxRuntimeInSeconds")
        return self

    def tags_dict(self) -> dict[str, str]:
        return {t.Key: t.Value for t in self.Tags}

    def program(self) -> str | None:
        raw = self.HyperParameters.get(SAGEMAKER_PROGRAM)
        return None if raw is None else decode_hyperparameter(raw)

    def submit_directory(self) -> str | None:
        raw = self.HyperParameters.get(SAGEMAKER_SUBMIT_DIRECTORY)
        return None if raw is None else decode_hyperparameter(raw)


def check_environment(v: dict[str, str]) -> dict[str, str]:
    """SageMaker's limits on a job's ``Environment`` (shared by training and processing jobs)."""
    if len(v) > 100:
        raise ValueError("at most 100 variables")
    for key, val in v.items():
        if not _ENV_KEY.fullmatch(key) or len(key) > 512:
            raise ValueError(f"variable name {key[:40]!r} must match [a-zA-Z_][a-zA-Z0-9_]* (<= 512 chars)")
        if len(val) > 512:
            raise ValueError(f"value of {key!r} is longer than 512 characters")
    return v


def decode_hyperparameter(raw: str) -> Any:
    """What the SageMaker training toolkit does: ``json.loads`` and fall back to the raw string."""
    import json

    try:
        return json.loads(raw)
    except ValueError:
        return raw
