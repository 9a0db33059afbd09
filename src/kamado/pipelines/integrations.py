"""Task resources: what a state machine's ``Resource`` ARN means on this server, and running it.

Two families, as in Step Functions:

- **Functions** (the Lambda analogue): ``arn:aws:states:::lambda:invoke`` with ``FunctionName``/``Payload``
  (the result is wrapped as Lambda's ``{ExecutedVersion, Payload, StatusCode, ...}``), and the legacy form
  ``arn:aws:lambda:<region>:<account>:function:NAME`` (the payload is the state's input, the result is the
  function's return value). A handler's exception becomes the Task's error under its class name, with
  Lambda's cause JSON ``{errorMessage, errorType, requestId, stackTrace}``, so ``ErrorEquals: ["ValueError"]``
  works as on AWS.
- **SageMaker** (``arn:aws:states:::sagemaker:<api>[.sync]``): the parameters are the SageMaker request body,
  handed to the same services the REST API uses. Request/response calls return ``{<Resource>Arn}``; ``.sync``
  waits for the job and returns its ``Describe*`` response, or fails with ``States.TaskFailed`` and that
  description as the cause. kamado adds ``.sync`` to ``createEndpoint``/``updateEndpoint`` (wait for
  ``InService``) because users otherwise hand-roll polling loops.

Work is at-least-once: after a server crash the runner starts every unfinished Task again. A SageMaker
create is tagged with the Task's token, so the second start adopts the job the first one created instead
of failing on the duplicate name or starting a second job.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from kamado.core.errors import KamadoError, NotFound, ResourceInUse
from kamado.core.projects import DEFAULT_PROJECT, current_project
from kamado.core.roles import TaskAuthorizer
from kamado.functions.service import KIND as FUNCTION_KIND
from kamado.functions.service import FunctionService
from kamado.hosting.service import ENDPOINT, ENDPOINT_CONFIG, MODEL, HostingService
from kamado.hosting.spec import (
    CreateEndpointConfigRequest,
    CreateEndpointRequest,
    CreateModelRequest,
    UpdateEndpointRequest,
)
from kamado.processing.service import KIND as PROCESSING_KIND
from kamado.processing.service import ProcessingService
from kamado.processing.spec import CreateProcessingJobRequest
from kamado.training.service import KIND as TRAINING_KIND
from kamado.training.service import TrainingService
from kamado.training.spec import CreateTrainingJobRequest
from kamado.transform.service import KIND as TRANSFORM_KIND
from kamado.transform.service import TransformService
from kamado.transform.spec import CreateTransformJobRequest
from kamado.tuning.service import KIND as TUNING_KIND
from kamado.tuning.service import TuningService
from kamado.tuning.spec import CreateHyperParameterTuningJobRequest

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LEGACY_FUNCTION = re.compile(r"^arn:aws:lambda:[^:]*:[^:]*:function:([^:]+)(?::[^:]+)?$")
_SAGEMAKER = re.compile(r"^arn:aws:states:::sagemaker:([A-Za-z]+)(\.sync)?$")
#: The tag that ties a SageMaker resource to the Task that created it (adopted after a crash).
TASK_TAG = "kamado:pipeline-task"


@dataclass(frozen=True)
class TaskOutcome:
    ok: bool
    output: Any = None
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class _Sync:
    """How ``.sync`` waits: the describe method, the status field, and which statuses end the wait."""

    describe: str
    field: str
    done: frozenset[str]
    bad: frozenset[str]


@dataclass(frozen=True)
class _SageMakerApi:
    request: type[BaseModel]
    name_field: str
    kind: str
    arn_field: str
    #: The service (an attribute of :class:`Integrations`) and its method that the REST route calls too.
    service: str
    create: str
    sync: _Sync | None = None
    #: Jobs a cancelled ``.sync`` Task stops (best effort, as Step Functions does); endpoints are left alone.
    stoppable: bool = False


_DONE = frozenset({"Completed"})
_BAD = frozenset({"Failed", "Stopped"})


def _job(request: type[BaseModel], noun: str, kind: str, service: str) -> _SageMakerApi:
    """A SageMaker job API: ``<Noun>Name`` / ``<Noun>Arn``, ``.sync`` on ``<Noun>Status``, stoppable."""
    return _SageMakerApi(
        request, f"{noun}Name", kind, f"{noun}Arn", service, "create",
        _Sync("describe", f"{noun}Status", _DONE, _BAD), stoppable=True,
    )  # fmt: skip


_IN_SERVICE = frozenset({"InService"})
SAGEMAKER_APIS: dict[str, _SageMakerApi] = {
    "createTrainingJob": _job(CreateTrainingJobRequest, "TrainingJob", TRAINING_KIND, "training"),
    "createHyperParameterTuningJob": _job(
        CreateHyperParameterTuningJobRequest, "HyperParameterTuningJob", TUNING_KIND, "tuning"
    ),
    "createTransformJob": _job(CreateTransformJobRequest, "TransformJob", TRANSFORM_KIND, "transform"),
    "createProcessingJob": _job(CreateProcessingJobRequest, "ProcessingJob", PROCESSING_KIND, "processing"),
    "createModel": _SageMakerApi(CreateModelRequest, "ModelName", MODEL, "ModelArn", "hosting", "create_model"),
    "createEndpointConfig": _SageMakerApi(
        CreateEndpointConfigRequest, "EndpointConfigName", ENDPOINT_CONFIG, "EndpointConfigArn", "hosting",
        "create_endpoint_config",
    ),
    "createEndpoint": _SageMakerApi(
        CreateEndpointRequest, "EndpointName", ENDPOINT, "EndpointArn", "hosting", "create_endpoint",
        _Sync("describe_endpoint", "EndpointStatus", _IN_SERVICE, frozenset({"Failed", "OutOfService"})),
    ),
    "updateEndpoint": _SageMakerApi(
        UpdateEndpointRequest, "EndpointName", ENDPOINT, "EndpointArn", "hosting", "update_endpoint",
        _Sync("describe_endpoint", "EndpointStatus", _IN_SERVICE, frozenset({"Failed", "UpdateRollbackFailed"})),
    ),
}  # fmt: skip


def function_name(resource: str, params: Any) -> str | None:
    """The kamado function a Task resource invokes, or None when the resource is not a function."""
    if resource == LAMBDA_INVOKE or resource.startswith(LAMBDA_INVOKE + "."):
        raw = params.get("FunctionName") if isinstance(params, dict) else None
        if not isinstance(raw, str):
            return ""
        match = _LEGACY_FUNCTION.match(raw)
        return match.group(1) if match else raw.split(":")[0]
    match = _LEGACY_FUNCTION.match(resource)
    return match.group(1) if match else None


def _task_states(states: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        here = f"{path}/{name}"
        if state.get("Type") == "Task":
            yield here, state
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from _task_states(branch.get("States") or {}, f"{here}/Branches/{i}/States")
        for key in ("ItemProcessor", "Iterator"):
            inner = state.get(key)
            if isinstance(inner, dict):
                yield from _task_states(inner.get("States") or {}, f"{here}/{key}/States")


@dataclass
class _Running:
    future: Future[TaskOutcome] | None = None
    #: For ``.sync`` jobs: poll this until it returns an outcome.
    waiter: Callable[[], TaskOutcome | None] | None = None
    outcome: TaskOutcome | None = None


@dataclass
class Integrations:
    """Starts Task work and reports outcomes. Thread-safe; the runner polls, nothing here blocks it."""

    functions: FunctionService
    training: TrainingService
    tuning: TuningService
    hosting: HostingService
    transform: TransformService
    processing: ProcessingService
    max_workers: int = 16
    #: Called (from a worker thread) when a Task's call returns, so the runner acts at once.
    on_done: Callable[[], None] | None = None
    #: Checks a Task's call against its state machine's role (a service account); None: no checks.
    authorizer: TaskAuthorizer | None = None
    _running: dict[str, _Running] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    # -- create-time checks -------------------------------------------------------------------------------
    def check_definition(self, definition: dict[str, Any]) -> list[tuple[str, str]]:
        """``(JSON path, why)`` for each Task whose resource this server cannot run (all at once)."""
        problems: list[tuple[str, str]] = []
        for path, state in _task_states(definition.get("States") or {}, "/States"):
            resource = state.get("Resource")
            if not isinstance(resource, str):
                continue  # the ASL validator reports the missing field
            if "{%" in resource or resource.endswith(".waitForTaskToken"):
                why = (
                    "task tokens (.waitForTaskToken) are not available yet"
                    if "waitFor" in resource
                    else ("a JSONata expression as Resource is not supported; name the resource literally")
                )
                problems.append((f"{path}/Resource", why))
                continue
            params = state.get("Parameters", state.get("Arguments"))
            fn = function_name(resource, params if isinstance(params, dict) else {})
            if fn is not None:
                if fn == "" and isinstance(params, dict) and "FunctionName.$" in params:
                    continue  # chosen at run time
                if not fn:
                    problems.append((f"{path}/Parameters/FunctionName", "lambda:invoke needs a FunctionName"))
                elif self._record(FUNCTION_KIND, fn) is None:
                    problems.append(
                        (
                            f"{path}/Resource",
                            f"function '{fn}' does not exist; create it with `kamado functions create`",
                        )
                    )
                continue
            match = _SAGEMAKER.match(resource)
            if match:
                api = SAGEMAKER_APIS.get(match.group(1))
                if api is None:
                    problems.append(
                        (
                            f"{path}/Resource",
                            f"sagemaker:{match.group(1)} is not supported; "
                            f"available: {', '.join(sorted(SAGEMAKER_APIS))}",
                        )
                    )
                elif match.group(2) and api.sync is None:
                    problems.append((f"{path}/Resource", f"sagemaker:{match.group(1)} has no .sync form"))
                continue
            problems.append(
                (
                    f"{path}/Resource",
                    f"unknown resource {resource!r}: use a kamado function ({LAMBDA_INVOKE} or "
                    "arn:aws:lambda:<region>:<account>:function:NAME) or arn:aws:states:::sagemaker:<api>[.sync]",
                )
            )
        return problems

    # -- running ------------------------------------------------------------------------------------------
    def start(
        self,
        token: str,
        resource: str,
        params: Any,
        *,
        timeout_s: float | None = None,
        role: str | None = None,
        via: str = "",
    ) -> None:
        """Begin the Task ``token`` (idempotent while it runs: a second start is ignored). ``role`` is the
        service account the Task acts as (its state machine's roleArn), ``via`` the execution, for the audit."""
        del timeout_s  # the runner enforces TimeoutSeconds with its own timer
        with self._lock:
            if token in self._running:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="kamado-pipeline-task")
            running = self._running[token] = _Running()
            # In the caller's context: the runner starts a Task inside its execution's project_scope, and the
            # pool's threads would otherwise create the Task's job in no project (so in 'default').
            running.future = self._pool.submit(
                contextvars.copy_context().run, self._begin, token, resource, params, role, via
            )
        if self.on_done is not None:
            on_done = self.on_done
            running.future.add_done_callback(lambda _f: on_done())

    def poll(self, token: str) -> TaskOutcome | None:
        """The Task's outcome once it has one, else None. The outcome is kept (and returned again) until
        :meth:`forget`: the runner forgets it only after recording the transition that consumed it."""
        with self._lock:
            running = self._running.get(token)
        if running is None:
            return None
        if running.outcome is not None:
            return running.outcome
        outcome: TaskOutcome | None = None
        if running.waiter is not None:
            outcome = running.waiter()
        elif running.future is not None and running.future.done():
            try:
                outcome = running.future.result()
            except Exception as exc:  # a bug here must fail the Task, not the runner
                outcome = TaskOutcome(False, error="States.TaskFailed", cause=f"{type(exc).__name__}: {exc}")
            if outcome.ok and isinstance(outcome.output, _Waiter):
                running.waiter, running.future = outcome.output, None
                outcome = running.waiter()
        running.outcome = outcome
        return outcome

    def forget(self, token: str) -> None:
        """Stop tracking a Task whose outcome was recorded."""
        with self._lock:
            self._running.pop(token, None)

    def cancel(self, token: str) -> None:
        """The Task is no longer wanted (timed out, its execution stopped or failed): stop a ``.sync`` job it
        is waiting for, best effort as Step Functions does; a function call in flight finishes alone."""
        with self._lock:
            running = self._running.pop(token, None)
        waiter = running.waiter if running is not None else None
        if isinstance(waiter, _Waiter) and waiter.api.stoppable:
            with contextlib.suppress(KamadoError):  # already over
                getattr(self, waiter.api.service).stop(waiter.name)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._running.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _begin(self, token: str, resource: str, params: Any, role: str | None = None, via: str = "") -> TaskOutcome:
        fn = function_name(resource, params if isinstance(params, dict) else {})
        if fn is not None:
            if denied := self._denied(role, "InvokeFunction", fn, via):
                return TaskOutcome(False, error="Lambda.AWSLambdaException", cause=denied)
            return self._invoke(resource, fn, params)
        match = _SAGEMAKER.match(resource)
        if match and match.group(1) in SAGEMAKER_APIS:
            api = SAGEMAKER_APIS[match.group(1)]
            action = match.group(1)[0].upper() + match.group(1)[1:]  # createTrainingJob -> CreateTrainingJob
            named = params.get(api.name_field) if isinstance(params, dict) else None
            if denied := self._denied(role, action, named if isinstance(named, str) else "*", via):
                return TaskOutcome(False, error="SageMaker.AmazonSageMakerException", cause=denied)
            return self._sagemaker(token, api, bool(match.group(2)), params)
        return TaskOutcome(False, error="States.Runtime", cause=f"Resource {resource!r} is not supported here.")

    def _denied(self, role: str | None, action: str, resource: str, via: str) -> str | None:
        """Why the role may not make this call (None: it may, or the state machine has no role)."""
        if role is None or self.authorizer is None:
            return None
        project = current_project.get() or DEFAULT_PROJECT
        return self.authorizer.check(role, action, resource, project=project, via=via)

    # -- functions ----------------------------------------------------------------------------------------
    def _invoke(self, resource: str, name: str, params: Any) -> TaskOutcome:
        legacy = resource != LAMBDA_INVOKE
        payload = params if legacy else (params or {}).get("Payload", {})
        if not legacy and (params or {}).get("InvocationType") == "Event":
            try:
                queued = self.functions.invoke_async(name, json.dumps(payload).encode())
            except KamadoError as exc:
                return TaskOutcome(False, error="Lambda.ServiceException", cause=exc.message)
            return TaskOutcome(True, {"Payload": "", "StatusCode": 202, "SdkResponseMetadata": {"RequestId": queued}})
        try:
            outcome = self.functions.invoke(name, json.dumps(payload).encode())
        except NotFound as exc:
            return TaskOutcome(False, error="Lambda.ResourceNotFoundException", cause=exc.message)
        except KamadoError as exc:
            return TaskOutcome(False, error="Lambda.ServiceException", cause=exc.message)
        rid = outcome.get("requestId")
        if not outcome.get("ok"):
            cause = {
                "errorMessage": outcome.get("errorMessage", ""),
                "errorType": outcome.get("errorType", "Exception"),
                "requestId": rid,
                "stackTrace": outcome.get("stackTrace", []),
            }
            return TaskOutcome(False, error=str(cause["errorType"]), cause=json.dumps(cause))
        result = outcome.get("result")
        if legacy:
            return TaskOutcome(True, result)
        return TaskOutcome(
            True,
            {
                "ExecutedVersion": "$LATEST",
                "Payload": result,
                "SdkHttpMetadata": {"HttpStatusCode": 200},
                "SdkResponseMetadata": {"RequestId": rid},
                "StatusCode": 200,
            },
        )

    # -- SageMaker ----------------------------------------------------------------------------------------
    def _sagemaker(self, token: str, api: _SageMakerApi, sync: bool, params: Any) -> TaskOutcome:
        if not isinstance(params, dict):
            return TaskOutcome(False, error="SageMaker.AmazonSageMakerException", cause="Parameters must be an object.")
        body = dict(params)
        path_name = None
        if api.name_field not in api.request.model_fields:  # UpdateEndpoint: the name is in the REST path
            path_name = body.pop(api.name_field, None)
            if not isinstance(path_name, str):
                return TaskOutcome(
                    False, error="SageMaker.AmazonSageMakerException", cause=f"{api.name_field} is required."
                )
        if "Tags" in api.request.model_fields:
            body["Tags"] = [*(body.get("Tags") or []), {"Key": TASK_TAG, "Value": token[:256]}]
        try:
            req = api.request.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return TaskOutcome(False, error="SageMaker.AmazonSageMakerException", cause=f"{where}: {first['msg']}")
        name = path_name if path_name is not None else str(getattr(req, api.name_field))
        try:
            arn = self._create(api, name, req)
        except ResourceInUse as exc:
            rec = self._record(api.kind, name)
            if rec is None or rec.tags.get(TASK_TAG) != token[:256]:
                return TaskOutcome(False, error="SageMaker.ResourceInUse", cause=exc.message)
            arn = rec.arn  # created by this Task before a crash: adopt it
        except KamadoError as exc:
            return TaskOutcome(False, error="SageMaker.AmazonSageMakerException", cause=exc.message)
        if not sync or api.sync is None:
            return TaskOutcome(True, {api.arn_field: arn})
        return TaskOutcome(True, _Waiter(self, api, name))

    def _create(self, api: _SageMakerApi, name: str, req: Any) -> str:
        method = getattr(getattr(self, api.service), api.create)
        # UpdateEndpoint names its endpoint in the REST path, not in the body.
        rec = method(name, req) if api.name_field not in api.request.model_fields else method(req)
        return str(rec.arn)

    def _record(self, kind: str, name: str) -> Any:
        """The resource, or None (read from the store the services share)."""
        try:
            return self.functions.store.get(kind, name)
        except NotFound:
            return None


class _Waiter:
    """Polls a ``.sync`` job's description until it is terminal."""

    def __init__(self, owner: Integrations, api: _SageMakerApi, name: str) -> None:
        assert api.sync is not None
        self.owner, self.api, self.name, self.sync = owner, api, name, api.sync

    def __call__(self) -> TaskOutcome | None:
        try:
            described: dict[str, Any] = getattr(getattr(self.owner, self.api.service), self.sync.describe)(self.name)
        except NotFound as exc:
            return TaskOutcome(False, error="States.TaskFailed", cause=exc.message)
        status = described.get(self.sync.field)
        if status in self.sync.done:
            return TaskOutcome(True, described)
        if status in self.sync.bad:
            return TaskOutcome(False, error="States.TaskFailed", cause=json.dumps(described, default=str))
        return None
