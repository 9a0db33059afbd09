"""The executor contract.

Implementations are thread-safe. ``submit`` is idempotent by ``TaskSpec.task_id``: submitting a task id
that is already known returns a handle to the existing task and never starts a second process.
A task keeps running when the control plane dies; ``attach`` re-acquires it from ``TaskHandle.data``
after a restart, and reports ``TaskState.LOST`` if it can no longer be found (never a silent success).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from kamado.compute.taskspec import Resources, TaskHandle, TaskSpec, TaskStatus


@dataclass(frozen=True, kw_only=True)
class ExecutorCapabilities:
    #: Can give each task a private mount namespace (e.g. its own ``/opt/ml``).
    mount_namespaces: bool = False
    #: Enforces Limits.memory_mb (cgroup or rlimit).
    memory_limits: bool = False
    #: Tasks survive a control-plane restart and can be re-attached.
    survives_restart: bool = False
    #: Can run a task with no network (``TaskSpec.network="none"``).
    network_isolation: bool = False
    #: Who tasks run as, for people to read (``nobody (uid 65534, gid 65534)``); None: not known here (Ray: the
    #: user each node's Ray runs as).
    task_user: str | None = None


class Executor(ABC):
    name: str

    @property
    @abstractmethod
    def capabilities(self) -> ExecutorCapabilities: ...

    @abstractmethod
    def capacity(self) -> Resources:
        """Total resources this executor can run at once (the reconciler queues beyond it)."""

    @abstractmethod
    def submit(self, spec: TaskSpec) -> TaskHandle: ...

    @abstractmethod
    def poll(self, handle: TaskHandle) -> TaskStatus: ...

    @abstractmethod
    def read_logs(self, handle: TaskHandle, offset: int, max_bytes: int = 1 << 20) -> tuple[bytes, int]:
        """Combined stdout+stderr bytes from ``offset``; returns (data, next_offset). Works after exit."""

    @abstractmethod
    def cancel(self, handle: TaskHandle, grace_s: float | None = None) -> None:
        """SIGTERM the task's process tree, SIGKILL after the grace. Idempotent; no-op once ended."""

    @abstractmethod
    def attach(self, task_id: str, data: dict[str, object]) -> TaskHandle:
        """Rebuild a handle from stored ``TaskHandle.data`` (after a control-plane restart)."""

    @abstractmethod
    def cleanup(self, handle: TaskHandle) -> None:
        """Forget an ended task and delete the executor's own files for it (not the workdir)."""

    def on_task_end(self, callback: Callable[[str], None]) -> None:
        """Ask to be told (with the task id, from any thread) when a task this executor started ends, so a
        reconciler can act at once instead of at its next poll. Best effort: executors that cannot tell
        (and tasks re-attached after a restart) are still found by polling. Default: never told."""
        del callback
