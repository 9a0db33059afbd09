"""One warm function worker: imports the handler once, then runs invocations read from stdin.

Standard library only, started as ``python -I worker.py SOURCE_DIR MODULE FUNC MEMORY_MB`` by the pool, so
nothing in the server's packages can break it and user code never runs in the control plane.

Protocol (one JSON document per line): the pool writes ``{"calls": [event, ...], "timeout_ms": N,
"function": name, "request_ids": [...]}``; the worker answers one line per call, in order:
``{"ok": true, "result": ...}`` or ``{"ok": false, "errorType", "errorMessage", "stackTrace"}``. The first
line it writes is ``{"ready": true}`` or the import error. Anything the handler prints goes to stderr, never
into the protocol. Each call runs in a clean scratch directory (cwd and TMPDIR): one a call left non-empty
is removed and replaced.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from typing import Any


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


def main(argv: list[str]) -> int:
    source_dir, module_name, func_name, memory_mb = argv[1], argv[2], argv[3], int(argv[4])
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints go to stderr, not into the protocol
    sys.stdout = sys.stderr
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, source_dir)
    scratch_root = tempfile.mkdtemp(prefix="kamado-fn-")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        if not callable(handler):
            raise TypeError(f"{module_name}.{func_name} is not callable")
    except BaseException as exc:
        proto.write(json.dumps({"ready": False, **_error(exc)}) + "\n")
        return 1
    proto.write(json.dumps({"ready": True}) + "\n")
    scratch = Scratch(scratch_root)
    for line in sys.stdin:
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
            proto.write(text + "\n")
            if fatal:
                shutil.rmtree(scratch_root, ignore_errors=True)
                return 3
    shutil.rmtree(scratch_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
