"""TransformJobStatus as data: the states, which may follow which, and which are final."""

from __future__ import annotations

from enum import StrEnum


class TransformJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    def is_terminal(self) -> bool:
        return self in (TransformJobStatus.COMPLETED, TransformJobStatus.FAILED, TransformJobStatus.STOPPED)


_S = TransformJobStatus
#: Legal moves; the store's compare-and-set refuses anything else.
TRANSITIONS: dict[TransformJobStatus, frozenset[TransformJobStatus]] = {
    _S.IN_PROGRESS: frozenset({_S.COMPLETED, _S.FAILED, _S.STOPPING, _S.STOPPED}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.FAILED, _S.COMPLETED}),
}
ACTIVE = [str(_S.IN_PROGRESS), str(_S.STOPPING)]
ALL = [str(s) for s in TransformJobStatus]


def sources(target: TransformJobStatus) -> list[str]:
    """The states ``target`` may be reached from (for the store's compare-and-set)."""
    return [str(s) for s, targets in TRANSITIONS.items() if target in targets]
