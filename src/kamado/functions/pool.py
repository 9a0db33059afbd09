"""Warm worker pools: reused worker processes per function, supervised from the control plane.

User code only runs in the children (``worker.py``). A caller borrows one worker for a dispatch (one or
more calls), so a worker never serves two callers at once; at most ``max_workers`` run per function. A call
that passes its timeout gets its worker killed and replaced; a worker that dies (out of memory, a crash)
fails the call it was running with that reason, and the calls queued behind it come back as not run.
Thread-safe.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("kamado.functions")
WORKER = str(Path(__file__).with_name("worker.py"))
#: How long a new worker may take to import the handler.
START_TIMEOUT_S = 60.0
#: Outcome of a call that never started because the worker ahead of it died: dispatch it again.
NOT_RUN = {"ok": False, "errorType": "Kamado.NotRun", "errorMessage": "not run", "notRun": True}


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    source_dir: Path
    handler: str  # "module.func"
    memory_mb: int
    timeout_s: float
    environment: dict[str, str] = field(default_factory=dict)
    max_workers: int = 2
    log_path: Path | None = None


class StartError(Exception):
    """The worker could not import the handler; ``info`` holds errorType/errorMessage/stackTrace."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info.get("errorMessage", "worker failed to start"))
        self.info = info


class Worker:
    def __init__(self, cfg: FunctionConfig) -> None:
        module, _, func = cfg.handler.rpartition(".")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **cfg.environment}
        env.update({"AWS_LAMBDA_FUNCTION_NAME": cfg.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_mb)})
        stderr: Any = subprocess.DEVNULL
        if cfg.log_path is not None:
            cfg.log_path.parent.mkdir(parents=True, exist_ok=True)
            stderr = open(cfg.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", WORKER, str(cfg.source_dir), module, func, str(cfg.memory_mb)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=str(cfg.source_dir),
                start_new_session=True,
            )
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._fd = self.proc.stdout.fileno()
        self._buf = b""
        hello = self.read_line(time.monotonic() + START_TIMEOUT_S)
        if hello is None or not hello.get("ready"):
            self.kill()
            raise StartError(hello or {"errorType": "Runtime.ExitError", "errorMessage": self._death()})

    def read_line(self, deadline: float) -> dict[str, Any] | None:
        """The next answer, or None when the deadline passed or the worker exited."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], left)
            if not ready:
                return None
            data = os.read(self._fd, 1 << 16)
            if not data:
                return None
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def send(self, msg: dict[str, Any]) -> bool:
        try:
            self._in.write(json.dumps(msg).encode() + b"\n")
            self._in.flush()
            return True
        except (BrokenPipeError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _death(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
            return f"the worker was killed by {name}{hint}"
        return f"the worker exited with code {code}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("worker %s did not exit after SIGKILL", self.proc.pid)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


class FunctionPool:
    """Warm workers of one function."""

    def __init__(self, cfg: FunctionConfig) -> None:
        self.cfg = cfg
        self._idle: list[Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._closed = False
        self.started = 0  # workers started over the pool's life (tests and stats)

    def _borrow(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise StartError({"errorType": "Kamado.PoolClosed", "errorMessage": "the function was removed"})
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._count -= 1
                if self._count < self.cfg.max_workers:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            w = Worker(self.cfg)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        with self._cond:
            self.started += 1
        return w

    def _give_back(self, w: Worker, healthy: bool) -> None:
        if not healthy:
            w.kill()
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(w)
            else:
                self._count -= 1
                if healthy:
                    w.kill()
            self._cond.notify()

    def run(
        self,
        events: Sequence[Any],
        *,
        on_result: Callable[[int, dict[str, Any]], None] | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Run each event as one call on one borrowed worker; one outcome per event, in order."""
        rids = list(request_ids) if request_ids is not None else [str(uuid.uuid4()) for _ in events]
        try:
            w = self._borrow()
        except StartError as exc:
            failed = {"ok": False, "reason": "InitError", **exc.info}
            return [dict(failed) for _ in events]
        timeout_s = self.cfg.timeout_s
        msg = {
            "calls": list(events),
            "request_ids": rids,
            "timeout_ms": int(timeout_s * 1000),
            "function": self.cfg.name,
        }
        out: list[dict[str, Any]] = []
        healthy = w.send(msg)
        while healthy and len(out) < len(events):
            # Each call has its own deadline, counted from the previous call's answer.
            answer = w.read_line(time.monotonic() + timeout_s + 0.05)
            if answer is None:
                healthy = False
                if w.alive():
                    answer = {
                        "ok": False,
                        "errorType": "Kamado.Timeout",
                        "errorMessage": f"Task timed out after {timeout_s:g} seconds",
                        "reason": "TimedOut",
                    }
                else:
                    answer = {
                        "ok": False,
                        "errorType": "Kamado.WorkerDied",
                        "errorMessage": w._death(),
                        "reason": "WorkerDied",
                    }
                    if "SIGKILL" in answer["errorMessage"] or "SIGSEGV" in answer["errorMessage"]:
                        answer["reason"] = "OutOfMemory" if "SIGKILL" in answer["errorMessage"] else "WorkerDied"
            elif answer.get("reason") == "OutOfMemory" or answer.get("errorType") == "Runtime.ExitError":
                healthy = False
            answer["requestId"] = rids[len(out)]
            out.append(answer)
            if on_result is not None:
                on_result(len(out) - 1, answer)
        while len(out) < len(events):
            out.append(dict(NOT_RUN, requestId=rids[len(out)]))
        self._give_back(w, healthy)
        return out

    def invoke(self, event: Any) -> dict[str, Any]:
        """One synchronous call; a call that was not run because its worker died first is retried once."""
        outcome = self.run([event])[0]
        if outcome.get("notRun"):
            outcome = self.run([event])[0]
        return outcome

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for w in idle:
            w.kill()


class Pools:
    """Every function's pool, created on first use. Thread-safe."""

    def __init__(self) -> None:
        self._pools: dict[str, FunctionPool] = {}
        self._lock = threading.Lock()

    def get(self, cfg: FunctionConfig) -> FunctionPool:
        with self._lock:
            pool = self._pools.get(cfg.name)
            if pool is not None and pool.cfg != cfg:
                pool.close()
                pool = None
            if pool is None:
                pool = self._pools[cfg.name] = FunctionPool(cfg)
            return pool

    def drop(self, name: str) -> None:
        with self._lock:
            pool = self._pools.pop(name, None)
        if pool is not None:
            pool.close()

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for p in pools:
            p.close()
