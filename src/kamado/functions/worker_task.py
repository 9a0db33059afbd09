"""One warm worker as an executor task: submit it, connect to it, exchange line-JSON, learn why it died.

The control plane never starts a worker process itself (executors are the only code that starts
processes): each worker is a long-lived ``TaskSpec`` named ``function/<function>/<worker-id>``, running
``worker.py`` listening on a loopback port the pool chose. The executor supervises it like a training job
(own process group, memory limit where the executor enforces one, log kept by the executor), so a death's
cause (exit code, signal, out of memory) comes from the executor's status and the task's log, and a worker
the pool cancels is stopped by the executor. Retired tasks are cleaned up by :class:`Janitor` once ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kamado.compute.executor import Executor
from kamado.compute.taskspec import Limits, Resources, TaskHandle, TaskSpec, TaskStatus
from kamado.functions.worker import EXIT_PORT_TAKEN, START_TIMEOUT_S

log = logging.getLogger("kamado.functions")
WORKER = str(Path(__file__).with_name("worker.py"))
#: Prefix of every worker's task id; a server sweeps tasks under it that it did not start (a crashed server's).
TASK_PREFIX = "function/"
#: Prefix of the import checks' task ids (see ``service.check_handler``); swept at start like workers.
CHECK_PREFIX = "function-check/"
#: How long a dead worker's executor status may take to be recorded before we give up waiting for it.
STATUS_WAIT_S = 3.0
#: Seconds between SIGTERM and SIGKILL when a worker is stopped: an idle worker has nothing to drain.
STOP_GRACE_S = 1.0
#: A port taken between choosing and binding it: start the worker again on another, this many times.
PORT_RETRIES = 3


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    source_dir: Path
    handler: str  # "module.func"
    memory_mb: int
    timeout_s: float
    environment: dict[str, str] = field(default_factory=dict)
    max_workers: int = 2
    #: Masks the secret values in ``environment`` in everything a call returns (None: no secrets).
    redact: Callable[[str], str] | None = field(default=None, compare=False, repr=False)


class StartError(Exception):
    """The worker could not start or import the handler; ``info`` holds errorType/errorMessage/stackTrace."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info.get("errorMessage", "worker failed to start"))
        self.info = info


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerTask:
    """A started, connected worker. Not thread-safe: the pool lends it to one caller at a time."""

    def __init__(self, cfg: FunctionConfig, executor: Executor, janitor: Janitor) -> None:
        self.executor = executor
        self.janitor = janitor
        self._buf = b""
        self._eof = False
        for attempt in range(PORT_RETRIES):
            self.task_id = f"{TASK_PREFIX}{cfg.name}/{uuid.uuid4().hex[:12]}"
            port, token = free_port(), secrets.token_hex(16)
            self.handle = executor.submit(self._spec(cfg, port, token))
            janitor.started(self.task_id)
            try:
                self.sock = self._connect(port, token)
                hello = self._hello()
                break
            except StartError as exc:
                self.kill()
                if exc.info.get("exitCode") != EXIT_PORT_TAKEN or attempt == PORT_RETRIES - 1:
                    raise
        if not hello.get("ready"):
            self.kill()
            raise StartError({k: v for k, v in hello.items() if k != "ready"})

    def _hello(self) -> dict[str, Any]:
        """The worker's first line; a worker that dies first (or a stranger on the port) is a StartError."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            hello = self.read_line(min(deadline, time.monotonic() + 0.5))
            if hello is not None:
                return hello
            if self.closed() or self.executor.poll(self.handle).state.is_terminal():
                raise StartError(self.death())
        raise StartError({"errorType": "Kamado.StartTimeout", "errorMessage": "the worker did not start in time"})

    def _spec(self, cfg: FunctionConfig, port: int, token: str) -> TaskSpec:
        module, _, func = cfg.handler.rpartition(".")
        enforced = self.executor.capabilities.memory_limits
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            **cfg.environment,
            "AWS_LAMBDA_FUNCTION_NAME": cfg.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb),
            "KAMADO_WORKER_TOKEN": token,
        }
        argv = [str(port), str(cfg.source_dir), module, func, str(cfg.memory_mb), "0" if enforced else "1"]
        return TaskSpec(
            task_id=self.task_id,
            command=[sys.executable, "-I", WORKER, *argv],
            env=env,
            workdir=str(cfg.source_dir),
            resources=Resources(cpus=1.0, memory_mb=cfg.memory_mb),
            # No max_runtime_s: a warm worker lives as long as its pool; each call's timeout is the pool's.
            limits=Limits(memory_mb=cfg.memory_mb if enforced else None, stop_grace_s=STOP_GRACE_S),
            placement="control-plane-host",  # its pool connects to it at 127.0.0.1:<port>
            writable=[],  # the code is shared by the function's workers: read-only, as Lambda's /var/task
            readable=[str(cfg.source_dir)],
        )

    def _connect(self, port: int, token: str) -> socket.socket:
        deadline = time.monotonic() + START_TIMEOUT_S
        delay = 0.002
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT_S)
                break
            except OSError:
                status = self.executor.poll(self.handle)
                if status.state.is_terminal():
                    raise StartError(self._describe(status)) from None
                if time.monotonic() > deadline:
                    raise StartError(
                        {"errorType": "Kamado.StartTimeout", "errorMessage": "the worker did not start in time"}
                    ) from None
                time.sleep(delay)
                delay = min(0.05, delay * 2)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        sock.sendall(token.encode() + b"\n")
        return sock

    # -- the protocol ------------------------------------------------------------------------------
    def read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next answer, or None when the deadline passed or the worker closed the connection."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._eof = True
                return None
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, msg: dict[str, Any]) -> bool:
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
            return True
        except OSError:
            return False

    # -- life and death ----------------------------------------------------------------------------
    def closed(self) -> bool:
        """The worker closed the connection (it died or exited), as seen by the last read."""
        return self._eof

    def alive(self) -> bool:
        """Cheap check of an idle worker: its connection is neither closed nor carrying anything unasked."""
        if self._eof:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def death(self) -> dict[str, Any]:
        """Why the worker ended, from the executor: errorType/errorMessage/reason (+ exitCode)."""
        deadline = time.monotonic() + STATUS_WAIT_S
        status = self.executor.poll(self.handle)
        while not status.state.is_terminal() and time.monotonic() < deadline:
            time.sleep(0.02)
            status = self.executor.poll(self.handle)
        if not status.state.is_terminal():
            return {"errorType": "Kamado.WorkerDied", "errorMessage": "the worker stopped answering"}
        return self._describe(status)

    def _describe(self, status: TaskStatus) -> dict[str, Any]:
        if status.oom:
            what, reason = f"the worker was killed: {status.reason or 'out of memory'}", "OutOfMemory"
        elif status.signal:
            try:
                name = signal.Signals(status.signal).name
            except ValueError:
                name = f"signal {status.signal}"
            what, reason = f"the worker was killed by {name}", "WorkerDied"
        else:
            what, reason = f"the worker exited with code {status.exit_code}", "WorkerDied"
            if status.exit_code is None and status.reason:
                what = f"the worker ended: {status.reason}"
        tail = self.log_tail()
        if tail:
            what += f"; its log ends with: {tail}"
        return {"errorType": "Kamado.WorkerDied", "errorMessage": what, "reason": reason, "exitCode": status.exit_code}

    def log_tail(self, max_bytes: int = 2048) -> str:
        data, offset = b"", 0
        try:
            while True:
                chunk, offset = self.executor.read_logs(self.handle, offset)
                if not chunk:
                    break
                data = (data + chunk)[-max_bytes:]
        except Exception:
            return ""
        lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""

    def cancel(self) -> None:
        """Ask the executor to stop the task now; safe from any thread (the connection is left alone)."""
        with contextlib.suppress(Exception):
            self.executor.cancel(self.handle, 0.0)

    def kill(self) -> None:
        """Stop the task now (timed out, broken, or no longer wanted) and leave its cleanup to the janitor."""
        sock = getattr(self, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(Exception):
            self.executor.cancel(self.handle, 0.0)
        self.janitor.retire(self.executor, self.handle)


class Janitor:
    """Cleans up retired worker tasks once the executor reports them ended, off the dispatch path.

    Also knows which worker tasks this server started, so :meth:`sweep` can tell a crashed server's leftovers
    (found through the executor's task list) from its own. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retired: dict[str, tuple[Executor, TaskHandle, float]] = {}
        self._mine: set[str] = set()
        self._thread: threading.Thread | None = None

    def started(self, task_id: str) -> None:
        with self._lock:
            self._mine.add(task_id)

    def retire(self, executor: Executor, handle: TaskHandle) -> None:
        with self._lock:
            self._retired[handle.task_id] = (executor, handle, time.monotonic())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kamado-fn-janitor", daemon=True)
                self._thread.start()

    def sweep(self, executor: Executor) -> int:
        """Stop every worker (and import-check) task this server did not start - a previous server's, left
        behind when it was killed - and clean them up; returns how many. Run at start, before any request."""
        list_tasks = getattr(executor, "list_tasks", None)
        if list_tasks is None:
            return 0  # an executor that cannot list its tasks: its tasks die with their connection
        found = 0
        for handle in list_tasks():
            with self._lock:
                if not handle.task_id.startswith((TASK_PREFIX, CHECK_PREFIX)) or handle.task_id in self._mine:
                    continue
            found += 1
            with contextlib.suppress(Exception):
                executor.cancel(handle, 0.0)
            self.retire(executor, handle)
        if found:
            log.info("stopped %d worker task(s) left by a previous server", found)
        return found

    def drain(self, timeout_s: float) -> bool:
        """Clean up what is retired, waiting up to ``timeout_s``; True when nothing is left."""
        deadline = time.monotonic() + timeout_s
        while self._pass() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self._retired

    def _run(self) -> None:
        while self._pass():
            time.sleep(0.1)

    def _pass(self) -> bool:
        """One look at every retired task; True while any is left."""
        with self._lock:
            todo = list(self._retired.items())
        for task_id, (executor, handle, since) in todo:
            try:
                if not executor.poll(handle).state.is_terminal():
                    if time.monotonic() - since > 10 * STOP_GRACE_S + 5:
                        executor.cancel(handle, 0.0)  # the first cancel was lost: ask again
                    continue
                executor.cleanup(handle)
            except Exception:
                log.exception("cleaning up worker task %s failed; retrying", task_id)
                continue
            with self._lock:
                self._retired.pop(task_id, None)
                self._mine.discard(task_id)
        with self._lock:
            return bool(self._retired)
