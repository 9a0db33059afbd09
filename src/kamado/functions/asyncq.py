"""Asynchronous invocations: queued in the store, retried with exponential backoff, then dead-lettered.

Each pass takes the ``Queued`` invocations that are due and runs them on the function's pool, at most one
step per invocation in flight. The record is the whole state (attempts, next attempt time, last error), so
a restarted server carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kamado.core.errors import IllegalTransition, NotFound
from kamado.core.loop import ReconcileLoop, StepPool
from kamado.functions.service import INVOCATION_KIND, FunctionService
from kamado.store.records import ResourceRecord

log = logging.getLogger("kamado.functions")


class AsyncInvoker(ReconcileLoop):
    name = "function-async"

    def __init__(self, service: FunctionService, *, interval_s: float = 0.2, inline: bool = False) -> None:
        super().__init__(interval_s)
        self.service = service
        self.steps = StepPool(4, "kamado-fn-async", inline=inline)

    def idle(self) -> bool:
        return not self.service.store.list_in_states(INVOCATION_KIND, ["Queued"])

    def tick(self) -> None:
        now = time.time()
        for rec in self.service.store.list_in_states(INVOCATION_KIND, ["Queued"]):
            if rec.status.get("NextAttemptAt", 0) <= now and not self.steps.busy(rec.name):
                self.steps.spawn(rec.name, self._attempt, rec)

    def _attempt(self, rec: ResourceRecord) -> None:
        name = str(rec.parent)
        attempts = int(rec.status.get("Attempts", 0)) + 1
        try:
            outcome: dict[str, Any] = self.service.pool(name).invoke(rec.spec.get("Payload"))
        except NotFound:
            outcome = {"ok": False, "errorType": "ResourceNotFound", "errorMessage": f"function '{name}' was deleted"}
            attempts = self.service.async_attempts
        patch: dict[str, Any] = {"Attempts": attempts}
        if outcome.get("ok"):
            to = "Succeeded"
        else:
            patch["Error"] = {k: outcome.get(k) for k in ("errorType", "errorMessage", "reason", "stackTrace")}
            if attempts >= self.service.async_attempts:
                to = "DeadLetter"
            else:
                to = "Queued"
                patch["NextAttemptAt"] = time.time() + self.service.retry_base_s * 2 ** (attempts - 1)
        try:
            self.service.store.transition(
                INVOCATION_KIND, rec.name, from_states=["Queued"], to_state=to, status_patch=patch
            )
        except (IllegalTransition, NotFound):
            log.info("invocation %s changed while it ran; its outcome is dropped", rec.name)
        if to == "Queued":
            self.wake()

    def start(self) -> None:
        # Runs once this server holds the controller lease: the worker tasks of a server that was killed
        # (kill -9, OOM) before it could close its pools are stopped now, not left running.
        try:
            self.service.pools.sweep_stale()
        except Exception:
            log.exception("stopping a previous server's function workers failed")
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.steps.shutdown()
