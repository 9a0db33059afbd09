"""Model-server instances as executor tasks: start one, check on it, drain and stop it.

An instance is a supervised task like a training job (own process group, the instance type's memory
limit, logs kept by the executor), so it outlives a control-plane restart and is re-attached by its
task id. Its record (a plain dict in the endpoint's status) holds everything needed to find it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from kamado.artifacts.base import ArtifactStore
from kamado.compute.executor import Executor
from kamado.compute.instance_types import reservation_for, resolve_instance_type
from kamado.compute.taskspec import Limits, TaskHandle, TaskSpec, TaskStatus
from kamado.core.secret_hooks import WITHHELD, SecretHooks, referenced_name
from kamado.core.settings import Settings
from kamado.hosting.model_files import prepare_model
from kamado.hosting.spec import ContainerDefinition
from kamado.hosting.states import InstanceState

#: Seconds a removed instance keeps running after leaving the routing table, so requests the router
#: already sent it finish; it then gets SIGTERM (the model server drains) and SIGKILL 30 s later.
log = logging.getLogger("kamado.hosting")
#: Extra bytes read before a log tail is cut, so a secret value straddling the cut is masked whole.
_REDACT_MARGIN = 8192
DRAIN_DELAY_S = 1.0
STOP_GRACE_S = 30.0
PING_TIMEOUT_S = 2.0
#: In-service instances are pinged this often; an instance that fails this many pings in a row is replaced.
PING_INTERVAL_S = 2.0
MAX_FAILED_PINGS = 3


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class InstanceOps:
    def __init__(self, executor: Executor, artifacts: ArtifactStore, settings: Settings) -> None:
        self.executor = executor
        self.artifacts = artifacts
        self.settings = settings
        self.models_root = settings.home / "hosting" / "models"
        self.workdirs = settings.home / "hosting" / "instances"
        self._http = httpx.Client(timeout=PING_TIMEOUT_S, trust_env=False)
        #: Records of instances started by this process, by task id. A pass whose status write lost a race
        #: starts the same task id again: it must get the same record (port included), not a new one.
        self._started: dict[str, dict[str, Any]] = {}
        #: Secret injection and redaction, plugged in by the API layer (None: values pass as written).
        self.secrets: SecretHooks | None = None
        self._redactors: dict[str, Callable[[str], str]] = {}

    def close(self) -> None:
        self._http.close()

    def start(
        self,
        endpoint: str,
        fleet: str,
        variant: dict[str, Any],
        instance_id: str,
        *,
        task_id: str | None = None,
        project: str | None = None,
    ) -> dict[str, Any]:
        """Submit the instance's task (idempotent by task id) and return its record. ``task_id`` overrides
        the endpoint's naming, for other users of model servers (batch transform: ``transform-job/...``);
        ``project`` is the owner's, whose secrets the container's environment may reference."""
        task_id = task_id or f"endpoint/{endpoint}/{fleet}/{instance_id}"
        if task_id in self._started:
            return dict(self._started[task_id])
        container = ContainerDefinition.model_validate(variant["Container"])
        prepared = prepare_model(self.artifacts, self.models_root, container)
        port = free_port()
        workdir = self.workdirs / endpoint / instance_id
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Its own scratch directory, as a training job's private HOME: the server's HOME is not the
            # instance's to fill (and a worker user cannot write it); caches written under ~ stay per instance.
            "HOME": str(workdir),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PYTHONUNBUFFERED": "1",
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "SM_MODEL_DIR": str(prepared.model_dir),
            "KAMADO_ENDPOINT_NAME": endpoint,
            "KAMADO_VARIANT_NAME": variant["VariantName"],
            "KAMADO_INSTANCE_ID": instance_id,
            **container.Environment,
        }
        if prepared.code_dir is not None:
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(prepared.code_dir)
        # The record keeps the references (to rebuild the redactor after a restart); only the task gets values.
        secret_env = {k: v for k, v in container.Environment.items() if referenced_name(v)}
        if self.secrets is not None and secret_env:
            resolved = self.secrets.resolve(secret_env, project=project)
            env.update(resolved)
            self._redactors[task_id] = self.secrets.redactor(resolved.values())
        if container.Command:
            command = list(container.Command)
            cwd = prepared.code_dir or prepared.model_dir
        else:
            command = [sys.executable, "-m", "kamado.hosting.model_server", "--model-dir", str(prepared.model_dir)]
            command += ["--port", str(port)]
            cwd = workdir
        itype = resolve_instance_type(variant.get("InstanceType", "local"))
        spec = TaskSpec(
            task_id=task_id,
            command=command,
            env=env,
            workdir=str(cwd),
            resources=reservation_for(itype, self.executor.capacity()),
            limits=Limits(
                memory_mb=itype.memory_mb, max_processes=self.settings.max_processes, stop_grace_s=STOP_GRACE_S
            ),
            placement="control-plane-host",  # the router and the transform runner reach it at 127.0.0.1:<port>
            # Its own scratch directory only: the model and code directories are a cache other instances share.
            writable=[str(workdir)],
            readable=[str(p) for p in (prepared.model_dir, prepared.code_dir) if p is not None],
        )
        handle = self.executor.submit(spec)
        record = {
            "InstanceId": instance_id,
            "TaskId": task_id,
            "Handle": handle.data,
            "Url": f"http://127.0.0.1:{port}",
            "State": str(InstanceState.STARTING),
            "StartedAt": time.time(),
            "FailedPings": 0,
        }
        if secret_env:
            record["SecretEnv"] = secret_env
            record["SecretProject"] = project
        if len(self._started) > 1000:
            self._started.pop(next(iter(self._started)))
        self._started[task_id] = dict(record)
        return record

    def _handle(self, inst: dict[str, Any]) -> TaskHandle:
        return self.executor.attach(inst["TaskId"], dict(inst.get("Handle") or {}))

    def poll(self, inst: dict[str, Any]) -> TaskStatus:
        return self.executor.poll(self._handle(inst))

    def ping(self, inst: dict[str, Any]) -> bool:
        try:
            return self._http.get(inst["Url"] + "/ping").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, inst: dict[str, Any]) -> None:
        self.executor.cancel(self._handle(inst), STOP_GRACE_S)

    def cleanup(self, inst: dict[str, Any]) -> None:
        # Best effort: a task the executor still reports running is cleaned up next time.
        self._redactors.pop(inst["TaskId"], None)
        with contextlib.suppress(Exception):
            self.executor.cleanup(self._handle(inst))

    def log_tail(self, inst: dict[str, Any], max_bytes: int = 4096) -> str:
        """The last lines the instance printed: why it died, for FailureReason and the user. Secret values
        the instance received are masked (a margin is read first, so a value cut at the start is caught)."""
        handle = self._handle(inst)
        data = b""
        offset = 0
        keep = max_bytes + _REDACT_MARGIN if inst.get("SecretEnv") else max_bytes
        try:
            while True:
                chunk, offset = self.executor.read_logs(handle, offset)
                if not chunk:
                    break
                data = (data + chunk)[-keep:]
        except Exception:
            return ""
        text = data.decode("utf-8", "replace")
        if inst.get("SecretEnv"):
            text = self._redact(inst, text)[-max_bytes:]
        return text.strip()

    def _redact(self, inst: dict[str, Any], text: str) -> str:
        redact = self._redactors.get(inst["TaskId"])
        if redact is None:
            if self.secrets is None:
                return WITHHELD  # references recorded, but no way to read them here: never show the text
            try:
                resolved = self.secrets.resolve(inst["SecretEnv"], project=inst.get("SecretProject"))
                redact = self.secrets.redactor(resolved.values())
            except Exception:
                log.exception("could not load the secrets of instance %s to redact its log", inst.get("InstanceId"))
                return WITHHELD
            self._redactors[inst["TaskId"]] = redact
        return redact(text)

    def read_log(self, inst: dict[str, Any], offset: int = 0, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        return self.executor.read_logs(self._handle(inst), offset, max_bytes)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def last_line(text: str) -> str:
    """What to quote from an instance's output when it dies: the exception if it printed one (a
    traceback ends with it, but the server may log more after), else its last line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if _EXCEPTION_LINE.match(ln)]
    if errors:
        return errors[-1][:500]
    return lines[-1][:500] if lines else ""
