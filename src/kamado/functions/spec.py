"""CreateFunction and StartMapRun request shapes, validated declaratively at submit."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kamado.core.names import NAME_HINT, NAME_PATTERN

_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(v: str) -> str:
    if not NAME_PATTERN.fullmatch(v):
        raise ValueError(NAME_HINT)
    return v


class FunctionCode(_Shape):
    #: A source tree URI returned by ``Client.upload_directory``.
    Uri: Annotated[str, Field(min_length=1, max_length=1024)]


class FunctionEnvironment(_Shape):
    Variables: dict[str, Annotated[str, Field(max_length=4096)]] = Field(default_factory=dict)

    @field_validator("Variables")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if not _ENV_NAME.fullmatch(k):
                raise ValueError(f"{k!r} is not a valid environment variable name")
        return v


class CreateFunctionRequest(_Shape):
    FunctionName: str
    Handler: Annotated[str, Field(min_length=3, max_length=128, description="module.function")]
    Code: FunctionCode
    MemorySize: Annotated[int, Field(ge=128, le=65536)] = 512
    Timeout: Annotated[float, Field(gt=0, le=900)] = 30.0
    Environment: FunctionEnvironment = Field(default_factory=FunctionEnvironment)
    ReservedConcurrentExecutions: Annotated[int, Field(ge=1, le=1000)] | None = None
    Tags: dict[str, str] = Field(default_factory=dict)

    _fn = field_validator("FunctionName")(_name)

    @field_validator("Handler")
    @classmethod
    def _handler(cls, v: str) -> str:
        if not _HANDLER.fullmatch(v):
            raise ValueError("must be 'module.function', e.g. 'app.handler'")
        return v


class ItemSourceSpec(_Shape):
    """Where a map run's items come from: an object or prefix in the artifact store (``Uri`` + ``Format``), or
    the succeeded results of an earlier map run (``MapRun``: chaining one stage's output into the next)."""

    Uri: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    Format: Literal["json", "jsonl", "csv", "prefix"] | None = None
    MapRun: str | None = None

    @field_validator("MapRun")
    @classmethod
    def _run(cls, v: str | None) -> str | None:
        return None if v is None else _name(v)

    @model_validator(mode="after")
    def _one_kind(self) -> ItemSourceSpec:
        if (self.Uri is None) == (self.MapRun is None):
            raise ValueError(
                "give exactly one of Uri (with Format) or MapRun (the name of a Succeeded map run to chain from)"
            )
        if self.MapRun is not None and self.Format is not None:
            raise ValueError("Format applies to a Uri source only; a MapRun source's items are its results")
        return self

    @property
    def format(self) -> str:
        return self.Format or "jsonl"


class StartMapRunRequest(_Shape):
    MapRunName: str | None = None
    FunctionName: str
    Items: list[Any] | None = None
    ItemSource: ItemSourceSpec | None = None
    MaxConcurrency: Annotated[int, Field(ge=0, le=10_000)] = 0
    BatchSize: Annotated[int, Field(ge=1, le=10_000)] = 1
    ToleratedFailurePercentage: Annotated[float, Field(ge=0, le=100)] = 0.0
    MaxAttempts: Annotated[int, Field(ge=1, le=10)] = 3
    ResultPrefix: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    Tags: dict[str, str] = Field(default_factory=dict)

    _fn = field_validator("FunctionName")(_name)

    @field_validator("MapRunName")
    @classmethod
    def _run_name(cls, v: str | None) -> str | None:
        return None if v is None else _name(v)

    @model_validator(mode="after")
    def _one_source(self) -> StartMapRunRequest:
        if (self.Items is None) == (self.ItemSource is None):
            raise ValueError("give exactly one of Items (an inline list) or ItemSource {Uri, Format}")
        return self
