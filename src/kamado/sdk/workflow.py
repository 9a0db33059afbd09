"""Pipelines in Python that compile to Amazon States Language, so one durable engine runs both.

Steps are objects; ``>>`` chains them (as in Airflow), a :class:`Choice` branches on conditions written as
Python comparisons, and every step keeps ASL's data-flow fields (``input_path``, ``parameters``,
``result_selector``, ``result_path``, ``output_path``) under Python names. ``Workflow.definition()`` is
plain ASL: inspect it, save it, or run it anywhere Step Functions definitions run::

    train = TrainingJob("Train", request, result_path="$.train")
    score = FunctionTask("Score", "evaluate", payload={"model.$": "$.train.ModelArtifacts.S3ModelArtifacts"},
                         result_selector={"accuracy.$": "$.Payload.accuracy"}, result_path="$.score")
    gate = Choice("Better?").when(Var("$.score.accuracy") > 0.9, deploy).otherwise(Succeed("Keep"))
    Workflow("weekly-retrain", train >> score >> gate).create().start({...}).wait()
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kamado.sdk.client import Client
from kamado.sdk.pipelines import StateMachine

__all__ = [
    "Chain",
    "Choice",
    "Condition",
    "CreateEndpoint",
    "CreateEndpointConfig",
    "CreateModel",
    "Fail",
    "FunctionTask",
    "Map",
    "Parallel",
    "Pass",
    "ProcessingJob",
    "Step",
    "Succeed",
    "Task",
    "TrainingJob",
    "TransformJob",
    "TuningJob",
    "UpdateEndpoint",
    "Var",
    "Wait",
    "Workflow",
]

_DATAFLOW = {
    "input_path": "InputPath",
    "parameters": "Parameters",
    "result_selector": "ResultSelector",
    "result_path": "ResultPath",
    "output_path": "OutputPath",
    "assign": "Assign",
    "comment": "Comment",
}


class Condition:
    """A Choice rule; build with :class:`Var` comparisons and combine with ``&``, ``|`` and ``~``."""

    def __init__(self, rule: dict[str, Any]) -> None:
        self.rule = rule

    def __and__(self, other: Condition) -> Condition:
        return Condition({"And": [self.rule, other.rule]})

    def __or__(self, other: Condition) -> Condition:
        return Condition({"Or": [self.rule, other.rule]})

    def __invert__(self) -> Condition:
        return Condition({"Not": self.rule})

    def __bool__(self) -> bool:
        raise TypeError("a Condition is not a Python bool: combine conditions with &, | and ~, not and/or/not")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Numeric"
    if isinstance(value, str):
        return "String"
    raise TypeError(f"cannot compare a Var with {type(value).__name__}; use a number, string, bool or Var")


class Var:
    """A JSONPath into the state's input, for Choice conditions: ``Var("$.accuracy") >= 0.9``."""

    def __init__(self, path: str) -> None:
        if not path.startswith("$"):
            raise ValueError(f"Var path {path!r} must start with '$' (e.g. '$.accuracy')")
        self.path = path

    def _compare(self, op: str, other: Any, kind: str | None = None) -> Condition:
        if isinstance(other, Var):
            if kind is None:
                raise TypeError("comparing two Vars needs the type: use .numeric(), .string() or .timestamp()")
            return Condition({"Variable": self.path, f"{kind}{op}Path": other.path})
        return Condition({"Variable": self.path, f"{kind or _kind(other)}{op}": other})

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._compare("Equals", other)

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        return ~self._compare("Equals", other)

    def __lt__(self, other: Any) -> Condition:
        return self._compare("LessThan", other)

    def __le__(self, other: Any) -> Condition:
        return self._compare("LessThanEquals", other)

    def __gt__(self, other: Any) -> Condition:
        return self._compare("GreaterThan", other)

    def __ge__(self, other: Any) -> Condition:
        return self._compare("GreaterThanEquals", other)

    __hash__ = None  # type: ignore[assignment]

    def is_present(self, present: bool = True) -> Condition:
        return Condition({"Variable": self.path, "IsPresent": present})

    def is_null(self, null: bool = True) -> Condition:
        return Condition({"Variable": self.path, "IsNull": null})

    def matches(self, pattern: str) -> Condition:
        """``StringMatches``: ``*`` is the only wildcard."""
        return Condition({"Variable": self.path, "StringMatches": pattern})

    def timestamp_before(self, iso: str) -> Condition:
        return Condition({"Variable": self.path, "TimestampLessThan": iso})

    def timestamp_after(self, iso: str) -> Condition:
        return Condition({"Variable": self.path, "TimestampGreaterThan": iso})


class Chain:
    """Steps joined by ``>>``: the first is where the chain starts, the last where the next step attaches."""

    def __init__(self, first: Step, last: Step) -> None:
        self.first, self.last = first, last

    def __rshift__(self, other: Step | Chain) -> Chain:
        head = other.first if isinstance(other, Chain) else other
        self.last._then(head)
        return Chain(self.first, other.last if isinstance(other, Chain) else other)


class Step:
    """One ASL state. Subclasses fill :meth:`_fields`; ``>>`` sets ``Next``."""

    type = ""
    terminal = False  # Succeed, Fail and Choice never take a Next

    def __init__(self, name: str, **dataflow: Any) -> None:
        if not name or len(name) > 80:
            raise ValueError(f"step name {name!r} must be 1-80 characters")
        unknown = set(dataflow) - set(_DATAFLOW)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unknown arguments {sorted(unknown)}; "
                f"data-flow arguments are {sorted(_DATAFLOW)}"
            )
        self.name = name
        # An argument given as None is kept: ``result_path=None`` is ASL's null (discard the result).
        self.dataflow = dict(dataflow)
        self.next: Step | None = None
        self._retry: list[dict[str, Any]] = []
        self._catch: list[tuple[dict[str, Any], Step]] = []

    def __rshift__(self, other: Step | Chain) -> Chain:
        return Chain(self, self) >> other

    @property
    def first(self) -> Step:
        return self

    @property
    def last(self) -> Step:
        return self

    def _then(self, step: Step) -> None:
        if self.terminal:
            raise ValueError(f"{self.type} step {self.name!r} cannot be followed by {step.name!r}")
        if self.next is not None and self.next is not step:
            raise ValueError(f"step {self.name!r} already continues with {self.next.name!r}")
        self.next = step

    def retry(
        self,
        errors: Iterable[str] = ("States.ALL",),
        *,
        interval_s: int = 1,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        max_delay_s: int | None = None,
        jitter: bool = False,
    ) -> Step:
        rule: dict[str, Any] = {
            "ErrorEquals": list(errors),
            "IntervalSeconds": interval_s,
            "MaxAttempts": max_attempts,
            "BackoffRate": backoff_rate,
        }
        if max_delay_s is not None:
            rule["MaxDelaySeconds"] = max_delay_s
        if jitter:
            rule["JitterStrategy"] = "FULL"
        self._retry.append(rule)
        return self

    def catch(self, errors: Iterable[str], then: Step | Chain, *, result_path: str | None = "$.error") -> Step:
        rule: dict[str, Any] = {"ErrorEquals": list(errors)}
        if result_path is not None:
            rule["ResultPath"] = result_path
        self._catch.append((rule, then.first))
        return self

    def _fields(self) -> dict[str, Any]:
        return {}

    def _successors(self) -> list[Step]:
        return [s for s in [self.next, *(step for _, step in self._catch)] if s is not None]

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"Type": self.type, **self._fields()}
        state.update({_DATAFLOW[k]: v for k, v in self.dataflow.items()})
        if self._retry:
            state["Retry"] = self._retry
        if self._catch:
            state["Catch"] = [{**rule, "Next": step.name} for rule, step in self._catch]
        if not self.terminal:
            if self.next is not None:
                state["Next"] = self.next.name
            else:
                state["End"] = True
        return state


class Pass(Step):
    type = "Pass"

    def __init__(self, name: str, *, result: Any = None, **dataflow: Any) -> None:
        super().__init__(name, **dataflow)
        self.result = result

    def _fields(self) -> dict[str, Any]:
        return {} if self.result is None else {"Result": self.result}


class Succeed(Step):
    type = "Succeed"
    terminal = True


class Fail(Step):
    type = "Fail"
    terminal = True

    def __init__(self, name: str, *, error: str | None = None, cause: str | None = None) -> None:
        super().__init__(name)
        self.error, self.cause = error, cause

    def _fields(self) -> dict[str, Any]:
        return {k: v for k, v in {"Error": self.error, "Cause": self.cause}.items() if v is not None}


class Wait(Step):
    type = "Wait"

    def __init__(
        self,
        name: str,
        *,
        seconds: int | None = None,
        timestamp: str | None = None,
        seconds_path: str | None = None,
        **dataflow: Any,
    ) -> None:
        super().__init__(name, **dataflow)
        given = {
            k: v
            for k, v in {"Seconds": seconds, "Timestamp": timestamp, "SecondsPath": seconds_path}.items()
            if v is not None
        }
        if len(given) != 1:
            raise ValueError("Wait needs exactly one of seconds=, timestamp= or seconds_path=")
        self.wait = given

    def _fields(self) -> dict[str, Any]:
        return dict(self.wait)


class Choice(Step):
    type = "Choice"
    terminal = True

    def __init__(self, name: str, **dataflow: Any) -> None:
        super().__init__(name, **dataflow)
        self.rules: list[tuple[Condition, Step]] = []
        self.default: Step | None = None

    def when(self, condition: Condition, then: Step | Chain) -> Choice:
        self.rules.append((condition, then.first))
        return self

    def otherwise(self, then: Step | Chain) -> Choice:
        self.default = then.first
        return self

    def _successors(self) -> list[Step]:
        return [step for _, step in self.rules] + ([self.default] if self.default else [])

    def _fields(self) -> dict[str, Any]:
        if not self.rules:
            raise ValueError(f"Choice {self.name!r} needs at least one .when(condition, step)")
        out: dict[str, Any] = {"Choices": [{**cond.rule, "Next": step.name} for cond, step in self.rules]}
        if self.default is not None:
            out["Default"] = self.default.name
        return out


class Task(Step):
    """Any Task resource: ``Task("Call", "arn:aws:states:::lambda:invoke", parameters={...})``."""

    type = "Task"

    def __init__(
        self,
        name: str,
        resource: str,
        *,
        timeout_s: int | None = None,
        heartbeat_s: int | None = None,
        **dataflow: Any,
    ) -> None:
        super().__init__(name, **dataflow)
        self.resource = resource
        self.timeout_s, self.heartbeat_s = timeout_s, heartbeat_s

    def _fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Resource": self.resource}
        if self.timeout_s is not None:
            out["TimeoutSeconds"] = self.timeout_s
        if self.heartbeat_s is not None:
            out["HeartbeatSeconds"] = self.heartbeat_s
        return out


class FunctionTask(Task):
    """Invoke a kamado function (Lambda's ``lambda:invoke``); the result is under ``$.Payload``."""

    def __init__(self, name: str, function: str, *, payload: Any = None, **kwargs: Any) -> None:
        parameters: dict[str, Any] = {"FunctionName": function}
        if payload is None:
            parameters["Payload.$"] = "$"
        else:
            parameters["Payload"] = payload
        kwargs.setdefault("parameters", parameters)
        super().__init__(name, "arn:aws:states:::lambda:invoke", **kwargs)


def _sagemaker(api: str, sync: bool) -> str:
    return f"arn:aws:states:::sagemaker:{api}{'.sync' if sync else ''}"


class TrainingJob(Task):
    """``createTrainingJob``: ``request`` is the CreateTrainingJob body; with ``sync`` the step waits."""

    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = True, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createTrainingJob", sync), parameters=request, **kwargs)


class TuningJob(Task):
    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = True, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createHyperParameterTuningJob", sync), parameters=request, **kwargs)


class TransformJob(Task):
    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = True, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createTransformJob", sync), parameters=request, **kwargs)


class ProcessingJob(Task):
    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = True, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createProcessingJob", sync), parameters=request, **kwargs)


class CreateModel(Task):
    def __init__(self, name: str, request: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createModel", False), parameters=request, **kwargs)


class CreateEndpointConfig(Task):
    def __init__(self, name: str, request: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createEndpointConfig", False), parameters=request, **kwargs)


class CreateEndpoint(Task):
    """``createEndpoint``; ``sync=True`` (a kamado extension) waits until the endpoint is InService."""

    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = False, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("createEndpoint", sync), parameters=request, **kwargs)


class UpdateEndpoint(Task):
    """``updateEndpoint``; ``sync=True`` (a kamado extension) waits for the rollout to finish."""

    def __init__(self, name: str, request: dict[str, Any], *, sync: bool = False, **kwargs: Any) -> None:
        super().__init__(name, _sagemaker("updateEndpoint", sync), parameters=request, **kwargs)


class Parallel(Step):
    type = "Parallel"

    def __init__(self, name: str, branches: Iterable[Step | Chain], **dataflow: Any) -> None:
        super().__init__(name, **dataflow)
        self.branches = [b.first for b in branches]
        if not self.branches:
            raise ValueError(f"Parallel {self.name!r} needs at least one branch")

    def _fields(self) -> dict[str, Any]:
        return {"Branches": [_machine(b) for b in self.branches]}


class Map(Step):
    """Run ``iterator`` for each item of ``items_path`` (inline Map; at most ``max_concurrency`` at once)."""

    type = "Map"

    def __init__(
        self,
        name: str,
        iterator: Step | Chain,
        *,
        items_path: str | None = None,
        max_concurrency: int = 0,
        item_selector: dict[str, Any] | None = None,
        tolerated_failure_percentage: float | None = None,
        **dataflow: Any,
    ) -> None:
        super().__init__(name, **dataflow)
        self.iterator = iterator.first
        self.items_path, self.max_concurrency = items_path, max_concurrency
        self.item_selector, self.tolerated = item_selector, tolerated_failure_percentage

    def _fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, **_machine(self.iterator)}}
        if self.items_path:
            out["ItemsPath"] = self.items_path
        if self.max_concurrency:
            out["MaxConcurrency"] = self.max_concurrency
        if self.item_selector is not None:
            out["ItemSelector"] = self.item_selector
        if self.tolerated is not None:
            out["ToleratedFailurePercentage"] = self.tolerated
        return out


def _machine(start: Step) -> dict[str, Any]:
    """``{StartAt, States}`` for every step reachable from ``start``; step names must be unique."""
    states: dict[str, dict[str, Any]] = {}
    seen: dict[str, Step] = {}
    todo = [start]
    while todo:
        step = todo.pop(0)
        if step.name in seen:
            if seen[step.name] is not step:
                raise ValueError(f"two different steps are named {step.name!r}; step names must be unique")
            continue
        seen[step.name] = step
        states[step.name] = step.to_state()
        todo.extend(step._successors())
    return {"StartAt": start.name, "States": states}


class Workflow:
    """A named pipeline: its ASL ``definition()``, and ``create``/``update`` on a kamado server."""

    def __init__(self, name: str, start: Step | Chain, *, comment: str | None = None, timeout_s: int | None = None):
        self.name = name
        self.start = start.first
        self.comment, self.timeout_s = comment, timeout_s

    def definition(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.comment:
            out["Comment"] = self.comment
        out.update(_machine(self.start))
        if self.timeout_s is not None:
            out["TimeoutSeconds"] = self.timeout_s
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.definition(), indent=indent)

    def create(self, *, client: Client | None = None, update: bool = True) -> StateMachine:
        """Create the state machine on the server (or update its definition when it exists and ``update``)."""
        from kamado.core.errors import ResourceInUse

        try:
            return StateMachine.create(self.name, self.definition(), client=client)
        except ResourceInUse:
            if not update:
                raise
            machine = StateMachine(self.name, client=client)
            machine.update(self.definition())
            return machine
