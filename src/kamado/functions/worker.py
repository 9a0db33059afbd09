"""One warm function worker: imports the handler once, then runs invocations sent over a loopback socket.

Standard library only. The pool submits it as an executor task (so the executor, not the control plane,
starts and supervises the process) running ``python -I worker.py PORT SOURCE_DIR MODULE FUNC MEMORY_MB
SELF_LIMIT``: it listens on ``127.0.0.1:PORT``, serves exactly one connection (the pool's) and exits when
that connection closes, so a worker whose server died (even by ``kill -9``) does not linger. A worker nobody
connects to within ``START_TIMEOUT_S`` exits too. ``SELF_LIMIT`` is ``1`` when the executor cannot enforce the
memory limit and the worker must set its own ``RLIMIT_AS``.

Protocol (one JSON document per line): the pool first sends the token from ``KAMADO_WORKER_TOKEN`` (any other
local user could connect to a loopback port; a connection without the token is dropped). The worker answers
``{"ready": true}`` or the import error. Then the pool writes ``{"calls": [event, ...], "timeout_ms": N,
"function": name, "request_ids": [...]}`` and the worker answers one line per call, in order:
``{"ok": true, "result": ...}`` or ``{"ok": false, "errorType", "errorMessage", "stackTrace"}``. What the
handler prints goes to the task's log, never into the protocol. Each call runs in a clean scratch directory
(cwd and TMPDIR): one a call left non-empty is removed and replaced.
"""

from __future__ import annotations

import hmac
import importlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import traceback
from typing import Any

#: How long a started worker waits for the pool to connect before it gives up and exits.
START_TIMEOUT_S = 60.0
#: Exit status when the port was taken between the pool choosing it and the worker binding it: start again.
EXIT_PORT_TAKEN = 75
#: Exit status after a fatal call (out of memory, exit()): the pool replaces the worker.
EXIT_FATAL = 3


class Context:
    """What Lambda's ``context`` offers that makes sense here."""

    def __init__(self, function_name: str, request_id: str, memory_mb: int, deadline: float) -> None:
        self.function_name = function_name
        self.aws_request_id = request_id
        self.request_id = request_id
        self.memory_limit_in_mb = memory_mb
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "ok": False,
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-20:],
    }


class Scratch:
    """The invocation's scratch directory. One left empty by a call is reused as it is (removing and making a
    directory costs more than a no-op call on some filesystems); one with anything in it is removed."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = tempfile.mkdtemp(prefix="inv-", dir=root)

    def enter(self) -> None:
        if os.environ.get("TMPDIR") != self.path:
            os.environ["TMPDIR"] = self.path
        tempfile.tempdir = self.path
        os.chdir(self.path)

    def leave(self) -> None:
        tempfile.tempdir = None
        try:
            with os.scandir(self.path) as it:
                dirty = next(it, None) is not None
        except OSError:
            dirty = True
        if dirty:
            os.chdir(self.root)
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = tempfile.mkdtemp(prefix="inv-", dir=self.root)


def _run_one(handler: Any, event: Any, ctx: Context, scratch: Scratch) -> tuple[dict[str, Any], bool]:
    """Run one call in a clean scratch directory. Returns the answer and whether the worker must exit."""
    scratch.enter()
    fatal = False
    try:
        result = handler(event, ctx)
        try:
            answer = {"ok": True, "result": json.dumps(result)}  # spliced in as JSON text by the caller
        except (TypeError, ValueError) as exc:
            answer = {
                "ok": False,
                "errorType": "Runtime.MarshalError",
                "errorMessage": f"The handler's result is not JSON serialisable: {exc}",
                "stackTrace": [],
            }
    except MemoryError as exc:
        answer = _error(exc)
        answer["errorMessage"] = answer["errorMessage"] or "the function ran out of memory"
        answer["reason"] = "OutOfMemory"
        fatal = True  # the heap may be in any state: the pool replaces this worker
    except SystemExit as exc:
        answer = _error(exc)
        answer["errorType"] = "Runtime.ExitError"
        answer["errorMessage"] = f"The handler called exit({exc.code!r})."
        fatal = True
    except BaseException as exc:
        answer = _error(exc)
    finally:
        scratch.leave()
    return answer, fatal


def _listen(port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        print(f"kamado worker: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        sock.close()
        return None
    sock.listen(4)
    return sock


def _accept(server: socket.socket, token: str, deadline: float) -> socket.socket | None:
    """The pool's connection: the first one that presents the token before the deadline."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        server.settimeout(left)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            return None
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            line = conn.makefile("rb").readline(256).strip().decode("ascii", "replace")
        except OSError:
            line = ""
        if token and hmac.compare_digest(line, token):
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        conn.close()


def serve(conn: socket.socket, handler: Any, memory_mb: int, scratch_root: str) -> int:
    """Answer the pool's calls until it closes the connection (exit 0) or a call was fatal (exit 3)."""
    scratch = Scratch(scratch_root)
    reader = conn.makefile("rb")
    for line in reader:
        msg = json.loads(line)
        timeout_s = msg["timeout_ms"] / 1000
        for event, rid in zip(msg["calls"], msg["request_ids"], strict=True):
            ctx = Context(msg["function"], rid, memory_mb, time.monotonic() + timeout_s)
            answer, fatal = _run_one(handler, event, ctx, scratch)
            try:
                text = '{"ok":true,"result":' + answer["result"] + "}" if answer["ok"] else json.dumps(answer)
            except MemoryError:
                text = json.dumps(
                    {"ok": False, "errorType": "MemoryError", "errorMessage": "", "reason": "OutOfMemory"}
                )
                fatal = True
            try:
                conn.sendall(text.encode() + b"\n")
            except OSError:
                return 0  # the pool went away (its server died): nothing left to answer
            if fatal:
                return EXIT_FATAL
    return 0


def main(argv: list[str]) -> int:
    port, source_dir, module_name, func_name = int(argv[1]), argv[2], argv[3], argv[4]
    memory_mb, self_limit = int(argv[5]), argv[6] == "1"
    token = os.environ.pop("KAMADO_WORKER_TOKEN", "")
    server = _listen(port)
    if server is None:
        return EXIT_PORT_TAKEN
    deadline = time.monotonic() + START_TIMEOUT_S
    if memory_mb > 0 and self_limit:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, source_dir)
    scratch_root = tempfile.mkdtemp(prefix="kamado-fn-")
    try:
        try:
            handler = getattr(importlib.import_module(module_name), func_name)
            if not callable(handler):
                raise TypeError(f"{module_name}.{func_name} is not callable")
            hello: dict[str, Any] = {"ready": True}
        except BaseException as exc:
            handler, hello = None, {"ready": False, **_error(exc)}
        conn = _accept(server, token, deadline)
        server.close()
        if conn is None:
            print("kamado worker: the pool never connected; exiting", file=sys.stderr)
            return 4
        try:
            conn.sendall(json.dumps(hello).encode() + b"\n")
            if handler is None:
                return 1
            return serve(conn, handler, memory_mb, scratch_root)
        finally:
            conn.close()
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
