"""Failed-authentication limiter per client address (A12/T13).

Only failures count, so a client presenting a valid token is never locked out, even from an address
that an attacker shares; after ``max_failures`` failures within ``window_s`` an address's further
failures are answered 429 with Retry-After instead of 401. Memory is bounded: the least recently
failing addresses are forgotten first.

Spreading a guessing run over many addresses stays under every per-address limit, so failures are also
counted across all addresses: past ``alert_failures`` within a window an alert is due (at most one per
window), which the server logs as a warning and records in the audit log.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(
        self,
        *,
        max_failures: int = 20,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        alert_failures: int = 100,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self.alert_failures = alert_failures
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque()
        self._alerted_at = -float("inf")
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        q = self._failures.get(client)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def record_failure(self, client: str) -> float | None:
        """Count a failure; returns seconds to wait when the client is over its limit, else None."""
        now = time.monotonic()
        with self._lock:
            q = self._recent(client, now)
            q.append(now)
            self._all.append(now)
            self._failures[client] = q
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            if len(q) > self.max_failures:
                return max(1.0, q[0] + self.window_s - now)
            return None

    def alert_due(self) -> tuple[int, int] | None:
        """(failures, addresses) in the last window when they passed ``alert_failures`` and no alert was
        given in the last window; None otherwise. Call after ``record_failure``."""
        now = time.monotonic()
        with self._lock:
            while self._all and self._all[0] <= now - self.window_s:
                self._all.popleft()
            if len(self._all) < self.alert_failures or now - self._alerted_at < self.window_s:
                return None
            self._alerted_at = now
            addresses = sum(1 for q in self._failures.values() if q and q[-1] > now - self.window_s)
            return len(self._all), addresses
