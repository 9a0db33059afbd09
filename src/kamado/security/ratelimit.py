"""Failed-authentication limiter per client address (A12/T13).

Only failures count, so a client presenting a valid token is never locked out, even from an address
that an attacker shares; after ``max_failures`` failures within ``window_s`` an address's further
failures are answered 429 with Retry-After instead of 401. Memory is bounded: the least recently
failing addresses are forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque


class FailureLimiter:
    def __init__(self, *, max_failures: int = 20, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
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
            self._failures[client] = q
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
            if len(q) > self.max_failures:
                return max(1.0, q[0] + self.window_s - now)
            return None
