"""Per-variant invocation statistics for the router: a 300 s window for the autoscaler, cumulative counters for
Prometheus.

The router records every request once, on the event-loop thread, so nothing here takes a lock. Recording is a
few integer increments: a ring of per-second buckets (reused in place as the clock moves on) plus cumulative
totals. Percentiles come from **log-bucketed histograms** (bins 5 % wide, so a reported p50/p99 is within
about 2.5 % of the true value), kept sparse per second and merged on read; a bounded sample would be cheaper to
read but loses the tail the autoscaler and the rollback alarms care about.

``/metrics`` is rendered by a custom collector that reads these same counters at scrape time, instead of a
``prometheus_client.Counter`` per label set, whose lock and label lookup would cost more than the rest of the
bookkeeping on the hot path.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

#: How far back the window reaches; ``GET /_kamado/stats?window=`` is clamped to it.
HISTORY_S = 300
DEFAULT_WINDOW_S = 60.0

#: Outcome classes passed to :meth:`VariantStats.record`.
OK, CLIENT_ERROR, SERVER_ERROR = 0, 4, 5

_MIN_S = 1e-5  # latencies below 10 µs share the first bin
_LOG_STEP = math.log(1.05)
#: Prometheus histogram bounds (seconds): from the router's own overhead (~0.1 ms) to SageMaker's 60 s limit.
PROM_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0,
)  # fmt: skip


def _bin(seconds: float) -> int:
    return 0 if seconds <= _MIN_S else int(math.log(seconds / _MIN_S) / _LOG_STEP) + 1


def _bin_ms(index: int) -> float:
    """The geometric middle of a bin, in milliseconds (the value reported for a percentile falling in it)."""
    seconds = _MIN_S if index == 0 else _MIN_S * math.exp((index - 0.5) * _LOG_STEP)
    return round(seconds * 1000.0, 3)


def _percentile_ms(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index in sorted(hist):
        seen += hist[index]
        if seen >= rank:
            return _bin_ms(index)
    return None  # unreachable: the last bin always reaches the rank


class _Second:
    """One second of one variant; reused in place when the ring wraps round to it again."""

    __slots__ = ("model", "n", "n4xx", "n5xx", "overhead", "sec")

    def __init__(self, sec: int) -> None:
        self.sec = sec
        self.n = self.n4xx = self.n5xx = 0
        self.model: dict[int, int] = {}
        self.overhead: dict[int, int] = {}


class _Cumulative:
    """A Prometheus histogram's state: counts per bound (not yet cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(PROM_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(PROM_BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip((*PROM_BUCKETS, math.inf), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else repr(bound), float(running)))
        return out


class VariantStats:
    """Counters of one variant of one endpoint. Not thread-safe: the event loop is the only writer and reader."""

    __slots__ = (
        "capture_dropped", "invocations", "invocations_4xx", "invocations_5xx", "last_invocation_at", "model",
        "overhead", "ring",
    )  # fmt: skip

    def __init__(self) -> None:
        self.ring: list[_Second | None] = [None] * HISTORY_S
        self.invocations = self.invocations_4xx = self.invocations_5xx = 0
        self.last_invocation_at: float | None = None
        self.model = _Cumulative()
        self.overhead = _Cumulative()
        self.capture_dropped = 0

    def record(self, now: float, outcome: int, model_s: float | None = None, overhead_s: float | None = None) -> None:
        """Count one finished request; ``model_s`` is None when no worker was asked (413, 503, ...)."""
        sec = int(now)
        slot = self.ring[sec % HISTORY_S]
        if slot is None or slot.sec != sec:
            slot = self.ring[sec % HISTORY_S] = _Second(sec)
        slot.n += 1
        self.invocations += 1
        self.last_invocation_at = now
        if outcome == CLIENT_ERROR:
            slot.n4xx += 1
            self.invocations_4xx += 1
        elif outcome == SERVER_ERROR:
            slot.n5xx += 1
            self.invocations_5xx += 1
        if model_s is not None:
            b = _bin(model_s)
            slot.model[b] = slot.model.get(b, 0) + 1
            self.model.observe(model_s)
        if overhead_s is not None:
            b = _bin(overhead_s)
            slot.overhead[b] = slot.overhead.get(b, 0) + 1
            self.overhead.observe(overhead_s)

    def window(self, window_s: float, now: float, instances: int) -> dict[str, Any]:
        """The autoscaler's view of the last ``window_s`` seconds (the current, partial second included)."""
        window_s = clamp_window(window_s)
        newest = int(now)
        oldest = newest - math.ceil(window_s) + 1
        n = n4 = n5 = 0
        model: dict[int, int] = {}
        overhead: dict[int, int] = {}
        for slot in self.ring:
            if slot is None or not oldest <= slot.sec <= newest:
                continue
            n, n4, n5 = n + slot.n, n4 + slot.n4xx, n5 + slot.n5xx
            for src, dst in ((slot.model, model), (slot.overhead, overhead)):
                for k, v in src.items():
                    dst[k] = dst.get(k, 0) + v
        return {
            "window_s": window_s,
            "invocations": n,
            "invocations_4xx": n4,
            "invocations_5xx": n5,
            "model_latency_p50_ms": _percentile_ms(model, 0.50),
            "model_latency_p99_ms": _percentile_ms(model, 0.99),
            "overhead_latency_p50_ms": _percentile_ms(overhead, 0.50),
            "last_invocation_at": self.last_invocation_at,
            # SageMaker's InvocationsPerInstance; a variant at zero instances counts as one so demand still shows.
            "invocations_per_instance_per_minute": round(n / max(1, instances) * 60.0 / window_s, 3),
            "capture_dropped": self.capture_dropped,
        }


def clamp_window(window_s: float) -> float:
    return float(min(max(window_s, 1.0), HISTORY_S))


@dataclass(frozen=True, slots=True)
class VariantSample:
    """What the collector needs of one variant at scrape time."""

    endpoint: str
    variant: str
    stats: VariantStats
    pending: int


class RouterCollector(Collector):
    """Renders the router's counters for ``/metrics``; ``source`` is read once per scrape."""

    def __init__(self, source: Callable[[], Iterable[VariantSample]], unrouted: Callable[[], dict[str, int]]) -> None:
        self._source = source
        self._unrouted = unrouted

    def collect(self) -> Iterator[Metric]:
        labels = ["endpoint", "variant"]
        total = CounterMetricFamily("kamado_invocations", "Invocations routed to a variant.", labels=labels)
        e4 = CounterMetricFamily("kamado_invocation_4xx_errors", "Invocations answered 4xx.", labels=labels)
        e5 = CounterMetricFamily(
            "kamado_invocation_5xx_errors", "Model server errors, timeouts and 503s.", labels=labels
        )
        model = HistogramMetricFamily("kamado_model_latency_seconds", "Time waiting on the worker.", labels=labels)
        over = HistogramMetricFamily(
            "kamado_overhead_latency_seconds", "Router time minus model latency.", labels=labels
        )
        pending = GaugeMetricFamily("kamado_pending_requests", "Requests held for a cold variant.", labels=labels)
        for s in self._source():
            key = [s.endpoint, s.variant]
            total.add_metric(key, s.stats.invocations)
            e4.add_metric(key, s.stats.invocations_4xx)
            e5.add_metric(key, s.stats.invocations_5xx)
            model.add_metric(key, s.stats.model.buckets(), s.stats.model.total)
            over.add_metric(key, s.stats.overhead.buckets(), s.stats.overhead.total)
            pending.add_metric(key, s.pending)
        unrouted = CounterMetricFamily(
            "kamado_unrouted_requests", "Invocations refused before a variant was chosen.", labels=["reason"]
        )
        for reason, count in sorted(self._unrouted().items()):
            unrouted.add_metric([reason], count)
        yield from (total, e4, e5, model, over, pending, unrouted)
