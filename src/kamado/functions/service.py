"""Functions behind the API: create (after checking the handler imports), describe, list, delete, invoke.

User code never runs in this process, and this process starts none: the import check at create is a short
executor task, and invocations go to the warm pool's workers (executor tasks too). Asynchronous invocations
are stored as ``function-invocation`` resources (state ``Queued`` → ``Succeeded`` | ``DeadLetter``) that
:mod:`kamado.functions.asyncq` runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.trees import materialize_tree, tree_exists
from kamado.compute.executor import Executor
from kamado.compute.taskspec import Limits, TaskHandle, TaskSpec, TaskState
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound, PayloadTooLarge, ResourceInUse
from kamado.core.names import arn
from kamado.core.secret_hooks import SecretHooks, redact_json, referenced_name
from kamado.core.settings import Settings
from kamado.functions.pool import FunctionConfig, Pools
from kamado.functions.spec import CreateFunctionRequest
from kamado.functions.worker_task import CHECK_PREFIX
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ListQuery, ResourceRecord

KIND = "function"
INVOCATION_KIND = "function-invocation"
#: Lambda's synchronous payload limit, for requests and responses.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Lambda's limit on an asynchronous invocation's payload.
MAX_ASYNC_PAYLOAD_BYTES = 256 * 1024
_TREE = re.compile(r"^trees/([0-9a-f]{64})$")
_CHECK = (
    "import importlib, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "obj = getattr(importlib.import_module(sys.argv[2]), sys.argv[3])\n"
    "if not callable(obj): raise TypeError(sys.argv[2] + '.' + sys.argv[3] + ' is not callable')\n"
)


def check_handler(
    executor: Executor, source_dir: Path, handler: str, env: dict[str, str], *, timeout_s: float = 60.0
) -> None:
    """Import the handler in a throwaway interpreter, run as a short executor task (this process never runs
    user code nor starts processes); InvalidSpec with the error's last line if it fails."""
    module, _, func = handler.rpartition(".")
    spec = TaskSpec(
        task_id=f"{CHECK_PREFIX}{uuid.uuid4().hex}",
        command=[sys.executable, "-I", "-c", _CHECK, str(source_dir), module, func],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **env},
        workdir=str(source_dir),
        limits=Limits(max_runtime_s=timeout_s, stop_grace_s=0.0),
        writable=[],
        readable=[str(source_dir)],
    )
    handle = executor.submit(spec)
    try:
        deadline = time.monotonic() + timeout_s + 10
        delay = 0.005
        while not (status := executor.poll(handle)).state.is_terminal():
            if time.monotonic() > deadline:
                executor.cancel(handle, 0.0)
                break
            time.sleep(delay)
            delay = min(0.1, delay * 1.5)
        if status.state == TaskState.SUCCEEDED:
            return
        if status.state in (TaskState.TIMED_OUT, TaskState.RUNNING, TaskState.PENDING):
            raise InvalidSpec(
                f"Importing handler {handler!r} took longer than {timeout_s:g} s; move slow work out of import time.",
                details=[{"field": "Handler", "message": "import timed out"}],
            )
        out, _ = executor.read_logs(handle, 0, 256 * 1024)
        lines = [ln for ln in out.decode("utf-8", "replace").strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else (status.reason or f"exit code {status.exit_code}")
        raise InvalidSpec(
            f"Handler {handler!r} cannot be imported from the function's code: {last}",
            details=[{"field": "Handler", "message": last, "traceback": lines[-20:]}],
        )
    finally:
        _cleanup_later(executor, handle)


def _cleanup_later(executor: Executor, handle: TaskHandle) -> None:
    """Forget the check's task; one still ending (cancelled just now) is left to a short-lived thread."""

    def attempt(tries: int) -> None:
        for _ in range(tries):
            try:
                executor.cleanup(handle)
                return
            except ResourceInUse:
                time.sleep(0.1)

    try:
        executor.cleanup(handle)
    except ResourceInUse:
        threading.Thread(target=attempt, args=(100,), name="kamado-fn-check-cleanup", daemon=True).start()


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class FunctionService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, settings: Settings, executor: Executor) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.executor = executor
        #: Warm workers are executor tasks: this server never starts a worker process itself.
        self.pools = Pools(executor)
        self.root = settings.home / "functions"
        #: Backoff before async retry n (1-based) is ``retry_base_s * 2 ** (n - 1)``; Lambda waits minutes.
        self.retry_base_s = 1.0
        self.async_attempts = 3  # the first try and Lambda's two retries
        #: Secret checks, injection and redaction, plugged in by the API layer (None: values pass as written).
        self.secrets: SecretHooks | None = None

    # -- create and read ------------------------------------------------------------------------------
    def create(self, req: CreateFunctionRequest) -> ResourceRecord:
        field = "Code.Uri"
        try:
            key = self.artifacts.key_from_uri(req.Code.Uri).rstrip("/")
        except InvalidSpec as exc:
            raise InvalidSpec(
                f"{field} {req.Code.Uri!r} is not in the artifact store; upload the code with "
                "Client.upload_directory(path) and pass the URI it returns.",
                details=[{"field": field, "message": exc.message}],
            ) from exc
        m = _TREE.match(key)
        if not m or not tree_exists(self.artifacts, m.group(1)):
            raise InvalidSpec(
                f"{field} {req.Code.Uri!r} is not an uploaded source tree; use Client.upload_directory(path).",
                details=[{"field": field, "message": "no such uploaded tree"}],
            )
        try:
            self.store.get(KIND, req.FunctionName)
        except NotFound:
            pass
        else:
            raise ResourceInUse(f"Function '{req.FunctionName}' already exists; delete it first or pick another name.")
        digest = m.group(1)
        source = self.root / req.FunctionName / f"code-{digest[:16]}"
        if not source.is_dir():
            tmp = source.with_name(source.name + f".tmp-{uuid.uuid4().hex[:6]}")
            materialize_tree(self.artifacts, digest, tmp)
            os.replace(tmp, source)
        variables = req.Environment.Variables
        if self.secrets is not None:
            self.secrets.check_environment(variables, field="Environment.Variables")
            resolved = self.secrets.resolve(variables)
            try:
                check_handler(self.executor, source, req.Handler, {**variables, **resolved})
            except InvalidSpec as exc:
                redact = self.secrets.redactor(resolved.values())
                raise InvalidSpec(redact(exc.message), details=redact_json(exc.details, redact)) from None  # type: ignore[arg-type]
        else:
            check_handler(self.executor, source, req.Handler, variables)
        return self.store.create(
            kind=KIND,
            name=req.FunctionName,
            arn=arn(KIND, req.FunctionName, region=self.settings.region, account=self.settings.account),
            state="Active",
            spec=req.model_dump(mode="json"),
            status={"SourceDir": str(source), "CodeSha256": digest},
            tags=req.Tags,
        )

    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(
                f"Could not find function '{name}'; create it with `kamado functions create`.",
                details={"FunctionName": name},
            ) from None

    def describe(self, name: str) -> dict[str, Any]:
        return describe_record(self.get(name))

    def list(self, **filters: Any) -> dict[str, Any]:
        page = self.store.list(KIND, list_query(**filters))
        out: dict[str, Any] = {"Functions": [describe_record(r) for r in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def delete(self, name: str) -> None:
        self.get(name)
        self.pools.drop(name)
        self.store.delete(KIND, name)
        shutil.rmtree(self.root / name, ignore_errors=True)

    def config(self, rec: ResourceRecord) -> FunctionConfig:
        spec = rec.spec
        reserved = spec.get("ReservedConcurrentExecutions") or (os.cpu_count() or 2)
        environment = dict(spec.get("Environment", {}).get("Variables", {}))
        redact = None
        if self.secrets is not None and any(referenced_name(v) for v in environment.values()):
            # Resolved on every use: a rotated secret changes the config, so new workers get the new value.
            resolved = self.secrets.resolve(environment, project=rec.project)
            environment.update(resolved)
            redact = self.secrets.redactor(resolved.values())
        return FunctionConfig(
            name=rec.name,
            source_dir=Path(rec.status["SourceDir"]),
            handler=spec["Handler"],
            memory_mb=int(spec["MemorySize"]),
            timeout_s=float(spec["Timeout"]),
            environment=environment,
            max_workers=int(reserved),
            redact=redact,
        )

    def pool(self, name: str) -> Any:
        return self.pools.get(self.config(self.get(name)))

    # -- invoke ---------------------------------------------------------------------------------------
    def invoke(self, name: str, payload: bytes) -> dict[str, Any]:
        """RequestResponse: the outcome (``ok``, ``result`` or ``errorType``/``errorMessage``/...)."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(f"The payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes.")
        event = _parse(payload)
        outcome = self.pool(name).invoke(event)
        if outcome.get("ok") and len(_encode(outcome.get("result"))) > MAX_PAYLOAD_BYTES:
            return {
                "ok": False,
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": f"The response is larger than the limit of {MAX_PAYLOAD_BYTES} bytes.",
                "requestId": outcome.get("requestId"),
            }
        return outcome

    def invoke_async(self, name: str, payload: bytes) -> str:
        """Event: queue the call in the store; returns its request id."""
        rec = self.get(name)
        if len(payload) > MAX_ASYNC_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"An asynchronous payload is limited to {MAX_ASYNC_PAYLOAD_BYTES} bytes; this one is {len(payload)}."
            )
        event = _parse(payload)
        rid = str(uuid.uuid4())
        self.store.create(
            kind=INVOCATION_KIND,
            name=rid,
            arn=f"{rec.arn}/invocation/{rid}",
            state="Queued",
            spec={"FunctionName": name, "Payload": event},
            status={"Attempts": 0, "NextAttemptAt": time.time()},
            parent=name,
        )
        return rid

    def list_dead_letters(self, name: str, *, limit: int = 100, next_token: str | None = None) -> dict[str, Any]:
        self.get(name)
        page = self.store.list(
            INVOCATION_KIND, ListQuery(states=["DeadLetter"], parent=name, limit=limit, page_token=next_token)
        )
        out: dict[str, Any] = {"DeadLetters": [invocation_record(r) for r in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def replay(self, name: str, request_id: str) -> None:
        """Queue a dead letter again, with a fresh set of attempts."""
        try:
            rec = self.store.get(INVOCATION_KIND, request_id)
        except NotFound:
            rec = None
        if rec is None or rec.parent != name:
            raise NotFound(f"Function '{name}' has no invocation '{request_id}'.")
        if rec.state != "DeadLetter":
            raise IllegalTransition(f"Invocation '{request_id}' is {rec.state}; only dead letters can be replayed.")
        self.store.transition(
            INVOCATION_KIND,
            request_id,
            from_states=["DeadLetter"],
            to_state="Queued",
            status_patch={"Attempts": 0, "NextAttemptAt": time.time(), "Replays": rec.status.get("Replays", 0) + 1},
        )

    def close(self) -> None:
        self.pools.close()


def _parse(payload: bytes) -> Any:
    if not payload.strip():
        return {}
    try:
        return json.loads(payload)
    except ValueError as exc:
        raise InvalidSpec(
            f"The payload is not valid JSON: {exc}", details=[{"field": "Payload", "message": str(exc)}]
        ) from None


def describe_record(rec: ResourceRecord) -> dict[str, Any]:
    out = {k: v for k, v in rec.spec.items() if k != "Tags"}
    out.update(
        {
            "FunctionArn": rec.arn,
            "State": rec.state,
            "CodeSha256": rec.status.get("CodeSha256"),
            "LastModified": iso_time(rec.updated_at),
        }
    )
    return out


def invocation_record(rec: ResourceRecord) -> dict[str, Any]:
    st = rec.status
    return {
        "RequestId": rec.name,
        "FunctionName": rec.parent,
        "Status": rec.state,
        "Attempts": st.get("Attempts", 0),
        "Payload": rec.spec.get("Payload"),
        "Error": st.get("Error"),
        "CreationTime": iso_time(rec.created_at),
        "LastModifiedTime": iso_time(rec.updated_at),
    }
