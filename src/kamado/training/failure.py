"""``FailureReason`` that says why: the script's failure file, its exception, OOM, timeout, exit code."""

from __future__ import annotations

import signal as _signal
from pathlib import Path
from typing import Any

MAX_REASON = 1024


def _last_exception_line(log_tail: str) -> str | None:
    lines = [ln.rstrip() for ln in log_tail.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback (most recent call last)"):
            # The exception line is the first non-indented line after the traceback frames.
            for ln in lines[i + 1 :]:
                if not ln.startswith((" ", "\t")):
                    return ln
    return None


def failure_reason(outcome: dict[str, Any], failure_file: Path, log_tail: str, *, program: Any = None) -> str:
    """Compose a reason from the most specific evidence available, the SageMaker way first."""
    if failure_file.is_file():
        text = failure_file.read_text(errors="replace").strip()
        if text:
            return text[:MAX_REASON]
    if outcome.get("platform_error"):
        return f"InternalServerError: {outcome['platform_error']}"[:MAX_REASON]
    exit_code = outcome.get("exit_code")
    sig = outcome.get("signal")
    if outcome.get("state") == "Lost":
        return f"ExecutorLost: {outcome.get('reason') or 'the task disappeared'}"[:MAX_REASON]
    exc_line = _last_exception_line(log_tail)
    if outcome.get("oom") or (exc_line and exc_line.startswith("MemoryError")):
        return (
            "OutOfMemory: the job exceeded its memory limit"
            + (f" ({exc_line})" if exc_line else "")
            + "; use a larger instance type or less data per step"
        )[:MAX_REASON]
    if exc_line:
        return f"AlgorithmError: {exc_line} (exit code {exit_code})"[:MAX_REASON]
    detail = outcome.get("reason")
    if sig:
        try:
            signame = _signal.Signals(int(sig)).name
        except ValueError:
            signame = f"signal {sig}"
        return f"AlgorithmError: the process was killed by {signame}{f' ({detail})' if detail else ''}"[:MAX_REASON]
    if detail:
        return f"AlgorithmError: {detail}"[:MAX_REASON]
    lines = [ln for ln in log_tail.splitlines() if ln.strip()]
    last = f"; last output: {lines[-1][:300]}" if lines else ""
    return f"AlgorithmError: the entry point exited with code {exit_code}{last}"[:MAX_REASON]
