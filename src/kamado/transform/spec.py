"""CreateTransformJob as SageMaker shapes it, validated declaratively at submit.

Field names are SageMaker's own. Unknown fields are refused; what kamado does not offer yet (manifest
inputs, compression, RecordIO/TFRecord splitting, chunked streaming, data capture) is refused with a
400 that says so rather than accepted and ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.core.names import NAME_HINT, NAME_PATTERN
from kamado.transform.jsonpath import parse_path

_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN.pattern, description=NAME_HINT)]
#: Content types whose records kamado can parse for DataProcessing (filters and joins).
CSV_TYPES = ("text/csv",)
JSON_TYPES = ("application/json", "application/jsonlines", "application/x-jsonlines")


def media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TransformTag(_Shape):
    Key: Annotated[str, Field(min_length=1, max_length=128)]
    Value: Annotated[str, Field(max_length=256)] = ""


class TransformS3DataSource(_Shape):
    S3DataType: Literal["S3Prefix", "ManifestFile", "AugmentedManifestFile", "Converse"]
    S3Uri: Annotated[str, Field(min_length=1, max_length=1024)]

    @field_validator("S3DataType")
    @classmethod
    def _prefix_only(cls, v: str) -> str:
        if v != "S3Prefix":
            raise ValueError(f"{v} inputs are not supported yet; use S3Prefix (every object under S3Uri)")
        return v


class TransformDataSource(_Shape):
    S3DataSource: TransformS3DataSource


class TransformInputSpec(_Shape):
    DataSource: TransformDataSource
    ContentType: Annotated[str | None, Field(max_length=256)] = None
    CompressionType: Literal["None", "Gzip"] = "None"
    SplitType: Literal["None", "Line", "RecordIO", "TFRecord"] = "None"

    @field_validator("CompressionType")
    @classmethod
    def _no_gzip(cls, v: str) -> str:
        if v != "None":
            raise ValueError("Gzip inputs are not supported yet; decompress them first")
        return v

    @field_validator("SplitType")
    @classmethod
    def _line_or_none(cls, v: str) -> str:
        if v not in ("None", "Line"):
            raise ValueError(f"SplitType {v} is not supported yet; use Line or None")
        return v


class TransformOutputSpec(_Shape):
    S3OutputPath: Annotated[str, Field(min_length=1, max_length=1024)]
    Accept: Annotated[str | None, Field(max_length=256)] = None
    AssembleWith: Literal["None", "Line"] = "None"
    KmsKeyId: Annotated[str | None, Field(max_length=2048)] = None


class TransformResourcesSpec(_Shape):
    InstanceType: Annotated[str, Field(min_length=1, max_length=64)]
    InstanceCount: Annotated[int, Field(ge=1, le=100)]
    VolumeKmsKeyId: Annotated[str | None, Field(max_length=2048)] = None


class DataProcessingSpec(_Shape):
    InputFilter: Annotated[str, Field(min_length=1, max_length=63)] = "$"
    OutputFilter: Annotated[str, Field(min_length=1, max_length=63)] = "$"
    JoinSource: Literal["None", "Input"] = "None"

    @field_validator("InputFilter", "OutputFilter")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_path(v)  # raises ValueError naming what is wrong
        return v

    def is_identity(self) -> bool:
        return self.InputFilter == "$" and self.OutputFilter == "$" and self.JoinSource == "None"


class ModelClientConfigSpec(_Shape):
    InvocationsTimeoutInSeconds: Annotated[int, Field(ge=1, le=3600)] = 600
    #: Retries of a request the model never answered (a refused or broken connection); a model's error
    #: answer is not retried, because inference need not be idempotent.
    InvocationsMaxRetries: Annotated[int, Field(ge=0, le=3)] = 3


class CreateTransformJobRequest(_Shape):
    TransformJobName: Name
    ModelName: Name
    MaxConcurrentTransforms: Annotated[int | None, Field(ge=0, le=100)] = None
    MaxPayloadInMB: Annotated[int | None, Field(ge=0, le=100)] = None
    BatchStrategy: Literal["MultiRecord", "SingleRecord"] | None = None
    ModelClientConfig: ModelClientConfigSpec | None = None
    Environment: Annotated[dict[str, Annotated[str, Field(max_length=10240)]], Field(max_length=16)] = {}
    TransformInput: TransformInputSpec
    TransformOutput: TransformOutputSpec
    TransformResources: TransformResourcesSpec
    DataProcessing: DataProcessingSpec | None = None
    DataCaptureConfig: dict[str, object] | None = None
    ExperimentConfig: dict[str, object] | None = None
    Tags: Annotated[list[TransformTag], Field(max_length=50)] = []

    @field_validator("Environment")
    @classmethod
    def _env_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not _ENV_KEY.match(k)]
        if bad:
            raise ValueError(f"keys {bad} are not valid environment variable names ([A-Za-z_][A-Za-z0-9_]*)")
        return v

    @field_validator("MaxPayloadInMB")
    @classmethod
    def _no_streaming(cls, v: int | None) -> int | None:
        if v == 0:
            raise ValueError("0 (HTTP chunked streaming) is not supported; give a size of 1 to 100 MB")
        return v

    @field_validator("DataCaptureConfig")
    @classmethod
    def _no_capture(cls, v: object) -> None:
        if v is not None:
            raise ValueError("data capture for transform jobs is not supported yet; leave it out")
        return None

    @model_validator(mode="after")
    def _cross_field(self) -> CreateTransformJobRequest:
        split = self.TransformInput.SplitType
        if self.BatchStrategy == "MultiRecord" and split == "None":
            raise ValueError(
                "BatchStrategy MultiRecord needs TransformInput.SplitType Line: without splitting, each object is "
                "one record; set SplitType to Line, or use BatchStrategy SingleRecord"
            )
        mct = self.MaxConcurrentTransforms or 1
        if mct * self.payload_mb() > 100:
            raise ValueError(
                f"MaxConcurrentTransforms x MaxPayloadInMB must be at most 100 MB (got {mct} x {self.payload_mb()})"
            )
        dp = self.DataProcessing
        if dp is not None and not dp.is_identity():
            kind = media(self.TransformInput.ContentType)
            if split != "Line":
                raise ValueError("DataProcessing (filters, JoinSource) needs TransformInput.SplitType Line")
            if kind not in CSV_TYPES + JSON_TYPES:
                raise ValueError(
                    "DataProcessing needs TransformInput.ContentType text/csv, application/json or "
                    f"application/jsonlines to parse records (got {self.TransformInput.ContentType!r})"
                )
            if kind in CSV_TYPES:
                for label, path in (("InputFilter", dp.InputFilter), ("OutputFilter", dp.OutputFilter)):
                    if not parse_path(path).index_only():
                        raise ValueError(f"DataProcessing.{label} {path!r}: CSV rows take index paths only")
        return self

    def payload_mb(self) -> int:
        return self.MaxPayloadInMB if self.MaxPayloadInMB is not None else 6

    def tags_dict(self) -> dict[str, str]:
        return {t.Key: t.Value for t in self.Tags}
