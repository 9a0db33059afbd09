"""What an executor is asked to run, and what it reports back. Plain, JSON-round-trippable data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Resources:
    """What a task reserves from the executor's capacity."""

    cpus: float = 1.0
    memory_mb: int | None = None
    gpus: int = 0


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Hard limits enforced on the task's process tree. ``None`` means unlimited."""

    max_runtime_s: float | None = None
    memory_mb: int | None = None
    max_processes: int | None = None
    max_file_size_mb: int | None = None
    #: Seconds between SIGTERM and SIGKILL on cancel or timeout (SageMaker: 120).
    stop_grace_s: float = 120.0


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    #: Unique per attempt, e.g. ``training-job/my-job/1``; submit is idempotent by it.
    task_id: str
    command: list[str]
    #: The complete environment of the task (the executor adds nothing but PATH/HOME/LANG if absent, and
    #: ``CUDA_VISIBLE_DEVICES`` with the task's own GPUs on a machine that has GPUs).
    env: dict[str, str]
    #: Private working directory (cwd); must exist.
    workdir: str
    resources: Resources = field(default_factory=Resources)
    limits: Limits = field(default_factory=Limits)
    #: Bind mounts into a private mount namespace, target -> source, e.g. ``{"/opt/ml": "/jobs/x"}``.
    mounts: dict[str, str] = field(default_factory=dict)
    #: "auto": mount where the kernel allows, skip otherwise; "require": fail the task if it cannot.
    mount_policy: str = "auto"
    #: "host": the machine's network; "none": a private network namespace with only loopback (SageMaker's
    #: EnableNetworkIsolation). Never skipped: the task fails if the kernel refuses.
    network: str = "host"
    #: Tasks that share a ``gang`` id (e.g. ``processing-job/<name>``) are one multi-instance job of
    #: ``gang_size`` alike tasks that must start together or not at all. The Ray executor reserves the whole
    #: gang at once (one placement group); the local executor ignores both fields, since every instance runs
    #: on its one machine and starts as soon as it is submitted anyway.
    gang: str | None = None
    gang_size: int = 1
    #: "any": wherever the executor likes; "control-plane-host": where the control plane can reach the task
    #: at 127.0.0.1 (model servers, function workers). Locally every task is there already; on a cluster
    #: whose nodes have other addresses, the Ray executor keeps such tasks on the server's own node.
    placement: str = "any"
    #: Trees the task writes (its ``/opt/ml``, a private HOME). Where the executor runs tasks as an unprivileged
    #: worker user (a root server), these are handed to that user before the task starts. ``None``: the workdir
    #: and the mount sources.
    writable: list[str] | None = None
    #: Trees the task only reads that the server wrote and that other tasks share (a model cache, a function's
    #: code): made readable to the worker user, never handed to it.
    readable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskSpec:
        data = dict(data)
        data["resources"] = Resources(**data.get("resources", {}))
        data["limits"] = Limits(**data.get("limits", {}))
        return cls(**data)


class TaskState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    #: Ended by cancel().
    STOPPED = "Stopped"
    #: Ended because Limits.max_runtime_s passed.
    TIMED_OUT = "TimedOut"
    #: The executor no longer knows the task (its supervisor died, the node vanished).
    LOST = "Lost"

    def is_terminal(self) -> bool:
        return self not in (TaskState.PENDING, TaskState.RUNNING)


@dataclass(frozen=True, kw_only=True)
class TaskStatus:
    state: TaskState
    exit_code: int | None = None
    #: Signal number that ended the user's process, if any.
    signal: int | None = None
    #: Human-readable cause for non-success ("killed by SIGKILL: out of memory", "exceeded 30 s", ...).
    reason: str | None = None
    #: True when the kernel's OOM killer or the memory limit ended the task.
    oom: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    pid: int | None = None
    cpu_seconds: float | None = None
    peak_memory_mb: float | None = None


@dataclass(frozen=True, kw_only=True)
class TaskHandle:
    """A reference to a submitted task.

    ``data`` is JSON-serialisable and enough to re-attach after a restart.
    """

    task_id: str
    executor: str
    data: dict[str, Any] = field(default_factory=dict)
