"""The transform reconciler: one worker thread per running transform job, so a pass never waits on one.

A pass lists the jobs that are ``InProgress`` or ``Stopping``. A job without a live worker in this process
gets one (a new job, or one a previous server was running: it resumes from its journal); a ``Stopping``
job's worker is told to stop. Everything a worker needs is in the store and the journal, so a restarted
server picks every job up where it was.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kamado.artifacts.base import ArtifactStore
from kamado.compute.executor import Executor
from kamado.core.loop import ReconcileLoop
from kamado.core.settings import Settings
from kamado.hosting.instances import InstanceOps
from kamado.store.base import MetadataStore
from kamado.transform.runner import JobRun, Journal
from kamado.transform.service import KIND
from kamado.transform.states import ACTIVE, TransformJobStatus

log = logging.getLogger("kamado.transform")
SHUTDOWN_WAIT_S = 5.0


@dataclass
class Worker:
    run: JobRun
    thread: threading.Thread


class TransformReconciler(ReconcileLoop):
    name = "transform-reconciler"

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, executor: Executor, settings: Settings) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.ops = InstanceOps(executor, artifacts, settings)
        self.journals = settings.home / "transform"
        self._workers: dict[str, Worker] = {}
        self._lock = threading.Lock()
        super().__init__(settings.reconcile_interval_s)

    def idle(self) -> bool:
        return not self.store.list_in_states(KIND, ACTIVE)

    def tick(self) -> None:
        if self._stop.is_set():
            return
        for job in self.store.list_in_states(KIND, ACTIVE):
            with self._lock:
                worker = self._workers.get(job.name)
                if worker is not None and worker.thread.is_alive():
                    if job.state == TransformJobStatus.STOPPING:
                        worker.run.stop.set()
                    continue
                run = JobRun(job, self.store, self.artifacts, self.ops, Journal(self.journals / job.name))
                thread = threading.Thread(target=run.run, name=f"kamado-transform-{job.name}", daemon=True)
                self._workers[job.name] = Worker(run, thread)
                thread.start()
        with self._lock:
            for name in [n for n, w in self._workers.items() if not w.thread.is_alive()]:
                del self._workers[name]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reconciling. Running jobs stay InProgress and their model servers are stopped; the next
        server on this store resumes them."""
        super().stop(timeout)
        with self._lock:
            workers = list(self._workers.values())
        for w in workers:
            w.run.shutdown.set()
        for w in workers:
            w.thread.join(SHUTDOWN_WAIT_S)
        self.ops.close()
