"""CreateProcessingJob as SageMaker shapes it, validated declaratively at submit.

Field names are SageMaker's own (PascalCase). Unknown fields are refused, and so are the parts of the
SageMaker API kamado does not run (Pipe mode, manifest files, Gzip inputs, Athena/Redshift datasets,
continuous upload, Feature Store outputs): each with a 400 that names the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.core.names import NAME_HINT, NAME_PATTERN
from kamado.training.spec import Tag, check_environment

#: Where a processing container sees its inputs and outputs (SageMaker's rule for ``LocalPath``).
PROCESSING_ROOT = "/opt/ml/processing"
_IO_NAME = re.compile(r"^[A-Za-z0-9\.\-_]+$")
_ARG = Annotated[str, Field(min_length=1, max_length=256)]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _local_path(v: str) -> str:
    parts = v.rstrip("/").split("/")
    if not v.startswith(PROCESSING_ROOT + "/") or ".." in parts or len(parts) <= 4:
        raise ValueError(f"must be a directory under {PROCESSING_ROOT}/, e.g. {PROCESSING_ROOT}/input/data")
    return v.rstrip("/")


def _io_name(v: str) -> str:
    if not _IO_NAME.fullmatch(v):
        raise ValueError("may contain only letters, digits, '.', '-' and '_'")
    return v


class S3InputSpec(_Shape):
    S3Uri: Annotated[str, Field(min_length=1, max_length=1024)]
    LocalPath: Annotated[str, Field(min_length=1, max_length=256)]
    S3DataType: Literal["S3Prefix"] = "S3Prefix"
    S3InputMode: Literal["File"] = "File"
    S3DataDistributionType: Literal["FullyReplicated", "ShardedByS3Key"] = "FullyReplicated"
    S3CompressionType: Literal["None"] = "None"

    _path = field_validator("LocalPath")(_local_path)


class ProcessingInputSpec(_Shape):
    InputName: Annotated[str, Field(min_length=1, max_length=256)]
    S3Input: S3InputSpec
    AppManaged: Literal[False] = False
    DatasetDefinition: dict[str, Any] | None = None

    _name = field_validator("InputName")(_io_name)

    @field_validator("DatasetDefinition")
    @classmethod
    def _no_dataset(cls, v: Any) -> Any:
        raise ValueError(
            "Athena/Redshift datasets are not supported; export the data to the artifact store, use S3Input"
        )


class S3OutputSpec(_Shape):
    S3Uri: Annotated[str, Field(min_length=1, max_length=1024)]
    LocalPath: Annotated[str, Field(min_length=1, max_length=256)]
    S3UploadMode: Literal["EndOfJob"] = "EndOfJob"

    _path = field_validator("LocalPath")(_local_path)


class ProcessingOutputSpec(_Shape):
    OutputName: Annotated[str, Field(min_length=1, max_length=256)]
    S3Output: S3OutputSpec
    AppManaged: Literal[False] = False
    FeatureStoreOutput: dict[str, Any] | None = None

    _name = field_validator("OutputName")(_io_name)

    @field_validator("FeatureStoreOutput")
    @classmethod
    def _no_feature_store(cls, v: Any) -> Any:
        raise ValueError("Feature Store outputs are not supported; use S3Output")


class ProcessingOutputConfigSpec(_Shape):
    Outputs: Annotated[list[ProcessingOutputSpec], Field(min_length=1, max_length=10)]
    KmsKeyId: Annotated[str | None, Field(max_length=2048)] = None


class ClusterConfigSpec(_Shape):
    InstanceCount: Annotated[int, Field(ge=1, le=100)] = 1
    InstanceType: Annotated[str, Field(min_length=1, max_length=64)] = "local"
    VolumeSizeInGB: Annotated[int, Field(ge=1, le=16384)] = 30
    VolumeKmsKeyId: Annotated[str | None, Field(max_length=2048)] = None


class ProcessingResourcesSpec(_Shape):
    ClusterConfig: ClusterConfigSpec


class StoppingConditionSpec(_Shape):
    MaxRuntimeInSeconds: Annotated[int, Field(ge=1, le=777_600)] = 86400


class AppSpecificationSpec(_Shape):
    #: Recorded and echoed back: the local executor runs ``ContainerEntrypoint`` on this machine.
    ImageUri: Annotated[str, Field(max_length=256)] = "local"
    ContainerEntrypoint: Annotated[list[_ARG] | None, Field(min_length=1, max_length=100)] = None
    ContainerArguments: Annotated[list[_ARG] | None, Field(min_length=1, max_length=100)] = None


class CreateProcessingJobRequest(_Shape):
    ProcessingJobName: str
    ProcessingResources: ProcessingResourcesSpec
    AppSpecification: AppSpecificationSpec
    ProcessingInputs: Annotated[list[ProcessingInputSpec], Field(max_length=10)] = []
    ProcessingOutputConfig: ProcessingOutputConfigSpec | None = None
    StoppingCondition: StoppingConditionSpec = Field(default_factory=StoppingConditionSpec)
    Environment: dict[str, str] = {}
    RoleArn: Annotated[str | None, Field(max_length=2048)] = None
    Tags: Annotated[list[Tag], Field(max_length=50)] = []
    #: ``EnableNetworkIsolation`` runs every instance with no network; the rest is recorded and echoed back.
    NetworkConfig: dict[str, Any] | None = None
    ExperimentConfig: dict[str, Any] | None = None

    def network_isolation(self) -> bool:
        return bool((self.NetworkConfig or {}).get("EnableNetworkIsolation"))

    @field_validator("ProcessingJobName")
    @classmethod
    def _job_name(cls, v: str) -> str:
        if not NAME_PATTERN.fullmatch(v):
            raise ValueError(NAME_HINT)
        return v

    @field_validator("Environment")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_environment(v)

    @model_validator(mode="after")
    def _cross_checks(self) -> CreateProcessingJobRequest:
        if not self.AppSpecification.ContainerEntrypoint:
            raise ValueError(
                "AppSpecification.ContainerEntrypoint is required: kamado runs the entry point on this machine "
                "rather than an image's default, e.g. ['python3', '/opt/ml/processing/input/code/script.py']"
            )
        _unique("ProcessingInputs", "InputName", [i.InputName for i in self.ProcessingInputs])
        outputs = self.outputs()
        _unique("ProcessingOutputConfig.Outputs", "OutputName", [o.OutputName for o in outputs])
        paths = [i.S3Input.LocalPath for i in self.ProcessingInputs] + [o.S3Output.LocalPath for o in outputs]
        _unique("ProcessingInputs and ProcessingOutputConfig.Outputs", "LocalPath", paths)
        for a in paths:
            for b in paths:
                if a != b and b.startswith(a + "/"):
                    raise ValueError(f"LocalPath {b!r} is inside {a!r}; give each input and output its own directory")
        return self

    def outputs(self) -> list[ProcessingOutputSpec]:
        return list(self.ProcessingOutputConfig.Outputs) if self.ProcessingOutputConfig else []

    def instance_count(self) -> int:
        return self.ProcessingResources.ClusterConfig.InstanceCount

    def tags_dict(self) -> dict[str, str]:
        return {t.Key: t.Value for t in self.Tags}


def _unique(where: str, field: str, values: list[str]) -> None:
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"{where} has duplicate {field} {dupes}; each needs its own")
