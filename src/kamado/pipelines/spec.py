"""Step Functions request shapes: CreateStateMachine, UpdateStateMachine, StartExecution, StopExecution.

Field names are Step Functions' own (camelCase), so a boto3 ``stepfunctions`` facade can stay thin.
Unknown fields are refused. What kamado does not run (Express workflows' CloudWatch logging, X-Ray
tracing, publishing versions and aliases) is refused with a 400 that names the field.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kamado.core.errors import InvalidSpec

#: Step Functions' rule for state machine and execution names.
_BAD_NAME_CHARS = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
NAME_HINT = (
    "use 1-80 characters without whitespace, brackets <>{}[], wildcards ?*, the characters "
    '"#%\\^|~`$&,;:/ or control characters'
)
#: Step Functions caps definitions and request bodies at 1 MB.
MAX_DEFINITION_BYTES = 1 << 20
#: An execution's input, like every state's input and output, is capped at 256 KiB.
MAX_INPUT_BYTES = 256 * 1024


def validate_sfn_name(value: str, *, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 80 or _BAD_NAME_CHARS.search(value):
        raise InvalidSpec(
            f"{field} {str(value)[:90]!r} is not a valid name: {NAME_HINT}.",
            details=[{"field": field, "message": NAME_HINT}],
        )
    return value


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SfnTag(_Shape):
    key: Annotated[str, Field(min_length=1, max_length=128)]
    value: Annotated[str, Field(max_length=256)] = ""


def parse_definition(definition: str | dict[str, Any], *, field: str = "definition") -> dict[str, Any]:
    """The definition as a JSON object; a string that is not JSON gets the line and column of the fault."""
    if isinstance(definition, dict):
        text = json.dumps(definition)
        parsed: Any = definition
    else:
        text = definition
        try:
            parsed = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise InvalidSpec(
                f"{field} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                details=[{"field": field, "message": f"line {exc.lineno}, column {exc.colno}: {exc.msg}"}],
            ) from None
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidSpec(
            f"{field} is larger than {MAX_DEFINITION_BYTES} bytes; move large constants into the execution input.",
            details=[{"field": field, "message": "too large"}],
        )
    if not isinstance(parsed, dict):
        raise InvalidSpec(
            f"{field} must be a JSON object with StartAt and States.",
            details=[{"field": field, "message": "not an object"}],
        )
    return parsed


def parse_input(text: str | None, *, field: str = "input") -> Any:
    """Execution input: JSON text (Step Functions passes it as a string); ``None`` means ``{}``."""
    if text is None:
        return {}
    if len(text.encode()) > MAX_INPUT_BYTES:
        raise InvalidSpec(
            f"{field} is larger than 256 KiB; pass a reference (an artifact URI) instead of the data.",
            details=[{"field": field, "message": "too large"}],
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidSpec(
            f"{field} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            'Pass the input as JSON text, e.g. "{\\"key\\": 1}".',
            details=[{"field": field, "message": f"line {exc.lineno}, column {exc.colno}: {exc.msg}"}],
        ) from None


class CreateStateMachineRequest(_Shape):
    name: str
    #: ASL as JSON text (as Step Functions takes it) or as an object (a kamado convenience).
    definition: str | dict[str, Any]
    roleArn: Annotated[str, Field(max_length=256)] | None = None
    type: Literal["STANDARD"] = "STANDARD"
    tags: list[SfnTag] = Field(default_factory=list, max_length=50)
    loggingConfiguration: dict[str, Any] | None = None
    tracingConfiguration: dict[str, Any] | None = None
    publish: Literal[False] = False

    @field_validator("tracingConfiguration")
    @classmethod
    def _no_tracing(cls, v: Any) -> Any:
        if v and v.get("enabled"):
            raise ValueError("X-Ray tracing is not available; leave tracingConfiguration out")
        return v

    def tags_dict(self) -> dict[str, str]:
        return {t.key: t.value for t in self.tags}


class UpdateStateMachineRequest(_Shape):
    definition: str | dict[str, Any] | None = None
    roleArn: Annotated[str, Field(max_length=256)] | None = None
    loggingConfiguration: dict[str, Any] | None = None


class StartExecutionRequest(_Shape):
    #: The execution's name is its idempotency key; a new UUID when left out.
    name: str | None = None
    input: str | None = None
    traceHeader: str | None = None


class StopExecutionRequest(_Shape):
    error: Annotated[str, Field(max_length=256)] | None = None
    cause: Annotated[str, Field(max_length=32768)] | None = None
