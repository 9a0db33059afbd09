"""The server's end of the pipe to the Ray bridge process (see ``ray_bridge.py`` for why there is one).

Thread-safe: calls from many threads share one bridge and may be in flight at once. A call that gets no
answer in time, or a bridge that dies, makes every call in flight fail with ``ServiceUnavailable``; the
bridge is killed and the next call starts a new one. No ``ray`` import here.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import IO, Any

from kamado.core.errors import InvalidSpec, ServiceUnavailable

log = logging.getLogger("kamado.compute.ray")


def split_address(address: str) -> tuple[str, int] | None:
    """``host:port`` of the cluster's GCS, or None for forms only Ray resolves (``auto``)."""
    if address.startswith("ray://"):
        raise InvalidSpec(
            f"Ray address {address!r} is a Ray Client address; the Ray executor connects as a cluster "
            "node instead: give the head's GCS address, e.g. 10.0.0.5:6379.",
            details=[{"field": "ray_address"}],
        )
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def probe(address: str, timeout_s: float = 3.0) -> str | None:
    """None when the cluster's GCS port accepts TCP connections, else why not (one short sentence)."""
    where = split_address(address)
    if where is None:
        return None
    try:
        with socket.create_connection(where, timeout=timeout_s):
            return None
    except OSError as exc:
        return f"the Ray cluster at {address} does not accept connections ({exc.strerror or exc})"


class BridgeClient:
    def __init__(
        self,
        address: str,
        namespace: str,
        *,
        log_path: Path,
        python: str = sys.executable,
        start_timeout_s: float = 90.0,
        call_timeout_s: float = 30.0,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.log_path = log_path
        self.python = python
        self.start_timeout_s = start_timeout_s
        self.call_timeout_s = call_timeout_s
        self.hello: dict[str, Any] = {}
        self._lock = threading.Lock()  # guards starting and replacing the bridge
        self._write_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[str], None]] = []
        self._head_ok_at = -1e9

    def on_task_end(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    def call(self, op: str, timeout_s: float | None = None, **args: Any) -> Any:
        self._check_head()
        proc = self._ensure_started()
        rid = next(self._ids)
        future: Future[Any] = Future()
        self._pending[rid] = future
        try:
            with self._write_lock:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"id": rid, "op": op, "args": args}).encode() + b"\n")
                proc.stdin.flush()
            return self._wait(proc, future, timeout_s or self.call_timeout_s)
        except FutureTimeout:
            self._discard(proc, f"the Ray bridge did not answer {op!r} within {timeout_s or self.call_timeout_s:g} s")
            raise ServiceUnavailable(
                f"The Ray cluster at {self.address} did not answer in time ({op}); is its head node up?"
            ) from None
        except (BrokenPipeError, OSError) as exc:
            self._discard(proc, f"writing to the Ray bridge failed: {exc}")
            raise ServiceUnavailable(f"Lost the connection to the Ray cluster at {self.address}: {exc}") from None
        finally:
            self._pending.pop(rid, None)

    def _wait(self, proc: subprocess.Popen[bytes], future: Future[Any], timeout_s: float) -> Any:
        """The answer, checking each second that the head still listens: a call into a cluster whose head
        died would otherwise block for the whole timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return future.result(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            except FutureTimeout:
                if time.monotonic() >= deadline:
                    raise
            why = probe(self.address, timeout_s=1.0)
            if why is not None:
                self._discard(proc, why)
                raise ServiceUnavailable(f"{why[0].upper()}{why[1:]}; check --ray-address / KAMADO_RAY_ADDRESS.")

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                self._kill(self._proc)
                self._proc = None

    # ------------------------------------------------------------------------------------------- internals

    def _check_head(self) -> None:
        """Fail fast (one TCP connect, at most once a second) when the head's port is closed: a call into a
        cluster whose GCS is gone would only block until its timeout."""
        now = time.monotonic()
        if now - self._head_ok_at < 1.0:
            return
        why = probe(self.address, timeout_s=2.0)
        if why is None:
            self._head_ok_at = now
            return
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._discard(proc, why)
        raise ServiceUnavailable(f"{why[0].upper()}{why[1:]}; check --ray-address / KAMADO_RAY_ADDRESS.")

    def _ensure_started(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                return self._proc
            self._proc = self._start()
            return self._proc

    def _start(self) -> subprocess.Popen[bytes]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as errlog:
            proc = subprocess.Popen(
                [self.python, "-m", "kamado.compute.ray_bridge", self.address, self.namespace],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errlog,
                close_fds=True,
                start_new_session=True,  # no terminal signals; it exits when our end of its stdin closes
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
        assert proc.stdout is not None
        first: Future[dict[str, Any]] = Future()
        threading.Thread(
            target=self._read, args=(proc, proc.stdout, first), name="kamado-ray-bridge-reader", daemon=True
        ).start()
        try:
            hello = first.result(timeout=self.start_timeout_s)
        except FutureTimeout:
            self._kill(proc)
            raise ServiceUnavailable(
                f"Could not connect to the Ray cluster at {self.address} within {self.start_timeout_s:g} s; "
                f"see {self.log_path}."
            ) from None
        if hello.get("event") != "ready":
            self._kill(proc)
            raise ServiceUnavailable(
                f"Could not connect to the Ray cluster at {self.address}: {hello.get('error', 'the bridge exited')}"
            )
        self.hello = hello
        return proc

    def _read(self, proc: subprocess.Popen[bytes], stream: IO[bytes], first: Future[dict[str, Any]]) -> None:
        for raw in stream:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "id" in message:
                future = self._pending.get(int(message["id"]))
                if future is None or future.done():
                    continue
                if message.get("ok"):
                    future.set_result(message.get("result"))
                else:
                    future.set_exception(
                        ServiceUnavailable(
                            f"The Ray cluster at {self.address} refused the request: "
                            f"{message.get('kind')}: {message.get('error')}"
                        )
                    )
            elif message.get("event") in ("ready", "failed") and not first.done():
                first.set_result(message)
            elif message.get("event") == "ended":
                for callback in list(self._listeners):
                    try:
                        callback(str(message.get("task_id")))
                    except Exception:  # a listener's bug must not stop the reader
                        log.exception("task-end listener failed")
        if not first.done():
            first.set_result({"event": "failed", "error": f"the bridge exited (see {self.log_path})"})
        self._discard(proc, "the Ray bridge exited")

    def _discard(self, proc: subprocess.Popen[bytes], why: str) -> None:
        """Kill ``proc`` (if it is still the bridge) and fail every call waiting on it."""
        with self._lock:
            if self._proc is proc:
                self._proc = None
        self._kill(proc)
        for rid, future in list(self._pending.items()):
            if not future.done():
                future.set_exception(ServiceUnavailable(f"Lost the Ray cluster at {self.address}: {why}."))
            self._pending.pop(rid, None)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)


def b64(data: str | None) -> bytes | None:
    return base64.b64decode(data) if data is not None else None
