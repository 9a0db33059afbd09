"""The server's parts wired together once: store, artifact store, executor, services, reconcilers."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.factory import open_artifact_store
from kamado.compute.executor import Executor
from kamado.compute.local import LocalExecutor
from kamado.core.errors import InvalidSpec, ResourceInUse
from kamado.core.settings import Settings
from kamado.functions.asyncq import AsyncInvoker
from kamado.functions.maprun import MapRunService
from kamado.functions.runner import MapRunner
from kamado.functions.service import FunctionService
from kamado.hosting.reconciler import HostingReconciler
from kamado.hosting.service import HostingService
from kamado.pipelines.integrations import Integrations
from kamado.pipelines.runner import ExecutionRunner
from kamado.pipelines.scheduler import Scheduler
from kamado.pipelines.schedules import ScheduleService
from kamado.pipelines.service import PipelineService
from kamado.processing.reconciler import ProcessingReconciler
from kamado.processing.service import ProcessingService
from kamado.store.base import MetadataStore
from kamado.store.sql import open_store
from kamado.training.reconciler import TrainingReconciler
from kamado.training.service import TrainingService
from kamado.transform.reconciler import TransformReconciler
from kamado.transform.service import TransformService
from kamado.tuning.reconciler import TuningReconciler
from kamado.tuning.service import TuningService

log = logging.getLogger("kamado.server")
CONTROLLER_LEASE = "controller"
LEASE_TTL_S = 30.0


def _owner_id(pid: int) -> str:
    return f"pid {pid} on {socket.gethostname()} ({uuid.uuid4().hex[:8]})"


def _dead_on_this_host(holder: str) -> bool:
    """True when ``holder`` names a server process on this machine that no longer exists."""
    parts = holder.split()
    if len(parts) < 4 or parts[0] != "pid" or parts[2] != "on" or parts[3] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def make_executor(settings: Settings) -> Executor:
    """Executors by name; third-party ones come later through an entry-point group."""
    builtins: dict[str, Any] = {
        "local": lambda: LocalExecutor(
            settings.home / "tasks",
            max_cpus=settings.max_cpus,
            max_memory_mb=settings.max_memory_mb,
            worker_user=settings.worker_user,
        ),
        "ray": lambda: _ray_executor(settings),
    }
    if settings.executor not in builtins:
        raise InvalidSpec(
            f"Unknown executor {settings.executor!r}; available: {sorted(builtins)}.",
            details=[{"field": "executor"}],
        )
    return builtins[settings.executor]()


def _ray_executor(settings: Settings) -> Executor:
    """Imported here so kamado runs without ray installed; the executor itself never imports ray."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise InvalidSpec(
            "The Ray executor needs Ray on the server: install kamado[ray] (pip install 'kamado[ray]').",
            details=[{"field": "executor"}],
        )
    if settings.worker_user not in ("", "auto"):
        raise InvalidSpec(
            f"worker_user is {settings.worker_user!r}, but the Ray executor cannot switch users: its tasks run as "
            "the user each node's Ray runs as. Start Ray as that user and unset KAMADO_WORKER_USER.",
            details=[{"field": "worker_user", "message": "only the local executor switches users"}],
        )
    if not settings.ray_address:
        raise InvalidSpec(
            "The Ray executor needs the cluster's address: --ray-address HOST:PORT or KAMADO_RAY_ADDRESS.",
            details=[{"field": "ray_address"}],
        )
    from kamado.compute.ray_executor import RayExecutor

    return RayExecutor(settings.ray_address, settings.home / "ray-tasks")


@dataclass
class Platform:
    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    executor: Executor
    training: TrainingService
    tuning: TuningService
    hosting: HostingService
    hoster: HostingReconciler
    transform: TransformService
    processing: ProcessingService
    functions: FunctionService
    map_runs: MapRunService
    pipelines: PipelineService
    schedules: ScheduleService
    reconcilers: list[Any] = field(default_factory=list)
    owner: str = field(default_factory=lambda: _owner_id(os.getpid()))
    _closing: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings, *, executor: Executor | None = None) -> Platform:
        settings.home.mkdir(parents=True, exist_ok=True)
        store = open_store(settings.database_url)
        artifacts = open_artifact_store(settings.artifacts_url)
        executor = executor or make_executor(settings)
        isolation = executor.capabilities.network_isolation
        training = TrainingService(
            store, artifacts, settings, capacity=executor.capacity(), network_isolation=isolation
        )
        tuning = TuningService(store, training)
        hosting = HostingService(store, artifacts, settings)
        hoster = HostingReconciler(store, artifacts, executor, settings, hosting)
        hosting.router_url = hoster.router_url
        hosting.router_stats = hoster.stats_if_running
        functions = FunctionService(store, artifacts, settings, executor)
        transform = TransformService(store, artifacts, settings)
        processing = ProcessingService(
            store, artifacts, settings, capacity=executor.capacity(), network_isolation=isolation
        )
        integrations = Integrations(functions, training, tuning, hosting, transform, processing)
        pipelines = PipelineService(store, settings, check_resources=integrations.check_definition)
        platform = cls(
            settings=settings,
            store=store,
            artifacts=artifacts,
            executor=executor,
            training=training,
            tuning=tuning,
            hosting=hosting,
            hoster=hoster,
            transform=transform,
            processing=processing,
            functions=functions,
            map_runs=MapRunService(store, artifacts, functions),
            pipelines=pipelines,
            schedules=ScheduleService(store, artifacts, pipelines),
        )
        trainer = TrainingReconciler(store, artifacts, executor, settings)
        platform.reconcilers.append(trainer)
        tuner = TuningReconciler(store, tuning, training, settings, wake_training=trainer.wake)
        # A trial that ends or reports its objective wakes the tuning reconciler at once (next trial, pruning).
        trainer.child_listeners.append(lambda _name, _parent: tuner.wake())
        platform.reconcilers.append(tuner)
        platform.reconcilers.append(hoster)
        platform.reconcilers.append(TransformReconciler(store, artifacts, executor, settings))
        # Processing instances queue on the training reconciler's ledger: one account of the machine.
        platform.reconcilers.append(ProcessingReconciler(store, artifacts, executor, settings, ledger=trainer.ledger))
        # Functions run in warm pools of executor tasks (user code only in the workers).
        platform.reconcilers.append(AsyncInvoker(functions, interval_s=settings.reconcile_interval_s))
        platform.reconcilers.append(MapRunner(platform.map_runs, interval_s=settings.reconcile_interval_s))
        # Pipeline executions: the interpreter's transitions recorded durably, Task work through the services.
        runner = ExecutionRunner(pipelines, integrations, interval_s=settings.reconcile_interval_s)
        integrations.on_done = runner.wake
        platform.reconcilers.append(runner)
        # Schedules and triggers start executions; a start wakes the runner at once.
        platform.reconcilers.append(
            Scheduler(platform.schedules, interval_s=max(settings.reconcile_interval_s, 0.5), on_start=runner.wake)
        )
        return platform

    def runtime_url(self) -> str:
        """The router's base URL, starting the router if it is not running (it outlives this server)."""
        return self.hoster.router().handle.url

    def hosting_logs(self, instance: dict[str, Any]) -> str:
        return self.hoster.ops.log_tail(instance, max_bytes=64 * 1024)

    def claim_controller(self) -> None:
        """Become the one server reconciling this database, or refuse to start.

        Two servers reconciling one store (two homes on one PostgreSQL, say) would each take the other's
        running jobs for lost. The lease lives in the store itself, so it covers every way of sharing it.
        """
        holder = self.store.acquire_lease(CONTROLLER_LEASE, self.owner, LEASE_TTL_S)
        if holder is not None and _dead_on_this_host(holder):
            # The previous server on this machine was killed (kill -9, OOM): no need to wait out its lease.
            holder = self.store.acquire_lease(CONTROLLER_LEASE, self.owner, LEASE_TTL_S, take_over_from=holder)
        if holder is not None:
            raise ResourceInUse(
                f"Another kamado server ({holder}) is reconciling the metadata store {self.store.url.split('@')[-1]}; "
                f"stop it first, or wait {LEASE_TTL_S:.0f} s if it died. Only one server may run jobs for a store."
            )

    def start(self) -> None:
        self.claim_controller()
        for r in self.reconcilers:
            r.start()
        self._renewer = threading.Thread(target=self._renew_lease, name="kamado-lease", daemon=True)
        self._renewer.start()

    def _renew_lease(self) -> None:
        while not self._closing.wait(LEASE_TTL_S / 3):
            try:
                holder = self.store.acquire_lease(CONTROLLER_LEASE, self.owner, LEASE_TTL_S)
            except Exception:
                log.exception("renewing the controller lease failed; retrying")
                continue
            if holder is not None:
                log.error("another server (%s) took over the metadata store; this one stops reconciling", holder)
                for r in self.reconcilers:
                    r.stop()
                return

    def close(self) -> None:
        self._closing.set()
        for r in self.reconcilers:
            r.stop()
        self.hoster.close()
        self.functions.close()
        try:
            self.store.release_lease(CONTROLLER_LEASE, self.owner)
        except Exception:
            log.exception("releasing the controller lease failed (it expires by itself)")
        self.store.close()

    def wake(self) -> None:
        for r in self.reconcilers:
            r.wake()

    def idle(self) -> bool:
        return all(r.idle() for r in self.reconcilers)
