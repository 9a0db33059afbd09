"""What the executors that keep a directory per task share: its name, the submit claim, the status record,
spec validation, and the checks on a task's supervisor process.

The local executor and the Ray executor both keep everything about a task in ``root/<safe name>/`` (the
spec, ``launch.json``, the final ``status.json``), so a new executor on the same root sees what the old one
saw. The claim on that directory (an ``flock`` held while the task is started) makes ``submit`` idempotent
by task id across threads and processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kamado.compute import shim as _shim
from kamado.compute.executor import Executor
from kamado.compute.taskspec import TaskHandle, TaskSpec, TaskState, TaskStatus
from kamado.core.errors import InvalidSpec, ResourceInUse


class DirectoryExecutor(Executor):
    """An executor whose durable state is one directory per task under ``root``."""

    root: Path

    def _state_dir(self, task_id: str) -> Path:
        if not task_id:
            raise InvalidSpec("task_id must be a non-empty string.", details=[{"field": "task_id"}])
        return self.root / safe_name(task_id)

    def _dir_of(self, handle: TaskHandle) -> Path:
        return self._state_dir(handle.task_id)

    def _submit_once(self, spec: TaskSpec, start: Callable[[Path], dict[str, Any]]) -> tuple[Path, Any]:
        """Start the task with ``start(state_dir)`` unless it was started (or ended) already; returns the state
        directory and the launch record. The claim is held while ``start`` runs: a concurrent submit of the
        same id waits and then finds ``launch.json``; a submit after a crash mid-start finds no launch.json."""
        state_dir = self._state_dir(spec.task_id)
        state_dir.mkdir(exist_ok=True, mode=0o700)
        fd = os.open(state_dir / ".submit.lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            launch = _shim.read_json(str(state_dir / "launch.json"))
            if launch is None and not (state_dir / "status.json").exists():
                launch = start(state_dir)
                _shim.write_json_atomic(str(state_dir / "launch.json"), launch)
        finally:
            os.close(fd)
        return state_dir, launch

    def _require_ended(self, handle: TaskHandle) -> None:
        """``cleanup`` of a task that still runs is refused: its files are what tells it apart from lost."""
        status = self.poll(handle)
        if not status.state.is_terminal():
            raise ResourceInUse(
                f"Task '{handle.task_id}' is still {status.state.value}; cancel it and wait for it to end "
                "before cleaning up."
            )


def safe_name(task_id: str) -> str:
    """An injective, filesystem-safe directory name: ``training-job/x/1`` → ``training-job%2Fx%2F1``.

    Dots are escaped too, so no id can become ``.`` or ``..`` and step outside the root.
    """
    name = quote(task_id, safe="").replace(".", "%2E")
    if len(name) > 200:  # NAME_MAX is 255 bytes; keep it unique with a hash of the whole id
        name = name[:150] + "-" + hashlib.sha256(task_id.encode()).hexdigest()[:32]
    return name


def supervisor_alive(launch: dict[str, Any]) -> bool:
    """Is the recorded supervisor still running? Pid *and* start time *and* boot, so a reused pid is dead."""
    pid = launch.get("pid")
    if not isinstance(pid, int):
        return False
    st = _shim.proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    if launch.get("boot_id") and launch["boot_id"] != _shim.boot_id():
        return False
    return launch.get("start_time") is None or st[3] == launch["start_time"]


def kill_orphaned_group(shim_info: dict[str, Any]) -> int:
    """SIGKILL the process group of a task whose supervisor died, if it verifiably still belongs to it."""
    pgid, start = shim_info.get("child_pid"), shim_info.get("child_start_time")
    if not isinstance(pgid, int) or not isinstance(start, int):
        return 0
    if shim_info.get("boot_id") and shim_info["boot_id"] != _shim.boot_id():
        return 0
    leader = _shim.proc_stat(pgid)
    if leader is not None and leader[3] != start:
        return 0  # the pid was reused by an unrelated process: not ours to kill
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _shim.proc_stat(int(name))
            # A member started before the leader cannot be the task's: that group id was reused.
            if st is not None and st[2] == pgid and st[0] not in ("Z", "X") and st[3] >= start:
                members.append(int(name))
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return len(members)


def read_status(state_dir: Path) -> TaskStatus | None:
    data = _shim.read_json(str(state_dir / "status.json"))
    return to_status(data) if isinstance(data, dict) else None


def to_status(data: dict[str, Any]) -> TaskStatus:
    return TaskStatus(
        state=TaskState(data["state"]),
        exit_code=data.get("exit_code"),
        signal=data.get("signal"),
        reason=data.get("reason"),
        oom=bool(data.get("oom")),
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        pid=data.get("pid"),
        cpu_seconds=data.get("cpu_seconds"),
        peak_memory_mb=data.get("peak_memory_mb"),
    )


def validate(spec: TaskSpec) -> None:
    """Reject what the supervisor could only fail on later, at submit, with the field named."""
    errors: list[dict[str, str]] = []
    if not spec.task_id:
        errors.append({"field": "task_id", "message": "must be a non-empty string"})
    if not spec.command or not all(isinstance(a, str) for a in spec.command) or not spec.command[0]:
        errors.append({"field": "command", "message": "must be a non-empty list of strings"})
    if not all(isinstance(k, str) and isinstance(v, str) and k and "=" not in k for k, v in spec.env.items()):
        errors.append({"field": "env", "message": "keys and values must be strings; keys non-empty without '='"})
    if not os.path.isabs(spec.workdir) or not os.path.isdir(spec.workdir):
        errors.append({"field": "workdir", "message": f"{spec.workdir!r} must be an existing absolute directory"})
    if spec.mount_policy not in ("auto", "require"):
        errors.append({"field": "mount_policy", "message": "must be 'auto' or 'require'"})
    if spec.network not in ("host", "none"):
        errors.append({"field": "network", "message": "must be 'host' or 'none'"})
    if spec.placement not in ("any", "control-plane-host"):
        errors.append({"field": "placement", "message": "must be 'any' or 'control-plane-host'"})
    for target, source in spec.mounts.items():
        if not os.path.isabs(target) or not os.path.isabs(source):
            errors.append({"field": f"mounts[{target!r}]", "message": "target and source must be absolute paths"})
    for name, paths in (("writable", spec.writable or []), ("readable", spec.readable)):
        if not all(isinstance(p, str) and os.path.isabs(p) for p in paths):
            errors.append({"field": name, "message": "must be a list of absolute paths"})
    lim = spec.limits
    for field in ("max_runtime_s", "memory_mb", "max_processes", "max_file_size_mb"):
        value = getattr(lim, field)
        if value is not None and value <= 0:
            errors.append({"field": f"limits.{field}", "message": "must be positive or None (unlimited)"})
    if lim.stop_grace_s < 0:
        errors.append({"field": "limits.stop_grace_s", "message": "must not be negative"})
    if errors:
        fields = ", ".join(e["field"] for e in errors)
        raise InvalidSpec(
            f"Task '{spec.task_id}' has an invalid spec ({fields}); fix it and submit again.", details=errors
        )


def recorded_status(task_id: Any, state: str, reason: str, shim_info: dict[str, Any], killed: int) -> dict[str, Any]:
    """A status.json written by someone other than the shim (the supervisor died, or never ran), in the
    shim's own schema, so readers need not tell the writers apart."""
    return {
        "schema": _shim.STATUS_SCHEMA,
        "task_id": task_id,
        "state": state,
        "exit_code": None,
        "signal": None,
        "reason": reason,
        "oom": False,
        "started_at": shim_info.get("started_at"),
        "ended_at": time.time(),
        "pid": shim_info.get("child_pid"),
        "cpu_seconds": None,
        "peak_memory_mb": None,
        "shim_pid": shim_info.get("pid"),
        "sent_sigkill": bool(killed),
        "leftover_processes_killed": killed,
    }
