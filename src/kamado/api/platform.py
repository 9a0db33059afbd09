"""The server's parts wired together once: store, artifact store, executor, services, reconcilers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.factory import open_artifact_store
from kamado.compute.executor import Executor
from kamado.compute.local import LocalExecutor
from kamado.core.errors import InvalidSpec
from kamado.core.settings import Settings
from kamado.store.base import MetadataStore
from kamado.store.sql import open_store
from kamado.training.reconciler import TrainingReconciler
from kamado.training.service import TrainingService


def make_executor(settings: Settings) -> Executor:
    """Executors by name; third-party ones come later through an entry-point group."""
    builtins: dict[str, Any] = {
        "local": lambda: LocalExecutor(
            settings.home / "tasks", max_cpus=settings.max_cpus, max_memory_mb=settings.max_memory_mb
        ),
    }
    if settings.executor not in builtins:
        raise InvalidSpec(
            f"Unknown executor {settings.executor!r}; available: {sorted(builtins)}.",
            details=[{"field": "executor"}],
        )
    return builtins[settings.executor]()


@dataclass
class Platform:
    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    executor: Executor
    training: TrainingService
    reconcilers: list[Any] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, *, executor: Executor | None = None) -> Platform:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.database_url)
        artifacts = open_artifact_store(settings.artifacts_url)
        executor = executor or make_executor(settings)
        training = TrainingService(store, artifacts, settings, capacity=executor.capacity())
        platform = cls(settings=settings, store=store, artifacts=artifacts, executor=executor, training=training)
        platform.reconcilers.append(TrainingReconciler(store, artifacts, executor, settings))
        return platform

    def start(self) -> None:
        for r in self.reconcilers:
            r.start()

    def close(self) -> None:
        for r in self.reconcilers:
            r.stop()
        self.store.close()

    def wake(self) -> None:
        for r in self.reconcilers:
            r.wake()

    def idle(self) -> bool:
        return all(r.idle() for r in self.reconcilers)
