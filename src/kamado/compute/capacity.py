"""A ledger of what running tasks have reserved, so reconcilers queue work instead of oversubscribing.

Each reconciler (training, tuning, batch...) asks ``try_reserve`` before it submits a task and
``release``-s when the task ends. Reservations are keyed by task id and idempotent, because reconcilers
retry: a second reserve for the same id must not count twice, and a release of an unknown id is a no-op.
After a restart the ledger is rebuilt by reserving again for every task the store says is running.
"""

from __future__ import annotations

import threading

from kamado.compute.taskspec import Resources

_EPS = 1e-9


class CapacityLedger:
    """Thread-safe reservations against a fixed total.

    A request larger than the total in some dimension is admitted only when nothing else is reserved:
    it runs alone rather than never (``reservation_for`` normally clamps such requests already).
    ``memory_mb=None`` in a request reserves no memory; in the total it means memory is not accounted.
    """

    def __init__(self, total: Resources) -> None:
        self.total = total
        self._lock = threading.Lock()
        self._held: dict[str, Resources] = {}

    def try_reserve(self, task_id: str, request: Resources) -> bool:
        """Reserve ``request`` for ``task_id`` if it fits; True if it is (now or already) reserved."""
        with self._lock:
            if task_id in self._held:
                return True
            if self._held and not self._fits(request):
                return False
            self._held[task_id] = request
            return True

    def release(self, task_id: str) -> None:
        with self._lock:
            self._held.pop(task_id, None)

    def reserved(self) -> Resources:
        with self._lock:
            return self._sum()

    def available(self) -> Resources:
        """What is left (never negative, even while an oversized task runs alone)."""
        with self._lock:
            used = self._sum()
        memory = None
        if self.total.memory_mb is not None:
            memory = max(0, self.total.memory_mb - (used.memory_mb or 0))
        return Resources(
            cpus=max(0.0, self.total.cpus - used.cpus),
            memory_mb=memory,
            gpus=max(0, self.total.gpus - used.gpus),
        )

    def holders(self) -> dict[str, Resources]:
        with self._lock:
            return dict(self._held)

    def __contains__(self, task_id: object) -> bool:
        with self._lock:
            return task_id in self._held

    def _sum(self) -> Resources:
        cpus = sum(r.cpus for r in self._held.values())
        memory = sum(r.memory_mb or 0 for r in self._held.values())
        gpus = sum(r.gpus for r in self._held.values())
        return Resources(cpus=cpus, memory_mb=memory, gpus=gpus)

    def _fits(self, request: Resources) -> bool:
        used = self._sum()
        if used.cpus + request.cpus > self.total.cpus + _EPS:
            return False
        if used.gpus + request.gpus > self.total.gpus:
            return False
        if self.total.memory_mb is not None and request.memory_mb is not None:
            return (used.memory_mb or 0) + request.memory_mb <= self.total.memory_mb
        return True
