"""Lifecycles as data: states, legal transitions and terminality, as SageMaker names them."""

from __future__ import annotations

from enum import StrEnum


class TrainingJobStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"

    def is_terminal(self) -> bool:
        return self in TERMINAL_TRAINING_STATES


class SecondaryStatus(StrEnum):
    STARTING = "Starting"
    PENDING = "Pending"
    DOWNLOADING = "Downloading"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    INTERRUPTED = "Interrupted"
    RESTARTING = "Restarting"


TERMINAL_TRAINING_STATES = frozenset({TrainingJobStatus.COMPLETED, TrainingJobStatus.FAILED, TrainingJobStatus.STOPPED})

#: Legal primary-status transitions. Anything else is refused atomically by the store's compare-and-set.
TRAINING_TRANSITIONS: dict[TrainingJobStatus, frozenset[TrainingJobStatus]] = {
    TrainingJobStatus.IN_PROGRESS: frozenset(
        {
            TrainingJobStatus.COMPLETED,
            TrainingJobStatus.FAILED,
            TrainingJobStatus.STOPPING,
            TrainingJobStatus.STOPPED,
        }
    ),
    TrainingJobStatus.STOPPING: frozenset(
        {TrainingJobStatus.STOPPED, TrainingJobStatus.FAILED, TrainingJobStatus.COMPLETED}
    ),
    TrainingJobStatus.COMPLETED: frozenset(),
    TrainingJobStatus.FAILED: frozenset(),
    TrainingJobStatus.STOPPED: frozenset(),
}


def sources_for(target: TrainingJobStatus) -> list[str]:
    """The states from which ``target`` may be reached (for the store's compare-and-set)."""
    return [str(s) for s, targets in TRAINING_TRANSITIONS.items() if target in targets]
