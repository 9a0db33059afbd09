"""CapacityLedger: queue rather than oversubscribe; idempotent per task id; thread-safe."""

from __future__ import annotations

import threading

from kamado.compute.capacity import CapacityLedger
from kamado.compute.taskspec import Resources


def test_reserve_until_full_then_queue() -> None:
    ledger = CapacityLedger(Resources(cpus=2, memory_mb=16_000, gpus=0))
    assert ledger.try_reserve("a", Resources(cpus=1, memory_mb=8_000))
    assert ledger.try_reserve("b", Resources(cpus=1, memory_mb=4_000))
    assert not ledger.try_reserve("c", Resources(cpus=0.5, memory_mb=1_000))  # no CPU left
    assert ledger.reserved() == Resources(cpus=2, memory_mb=12_000, gpus=0)
    ledger.release("a")
    assert ledger.try_reserve("c", Resources(cpus=0.5, memory_mb=1_000))
    assert set(ledger.holders()) == {"b", "c"}


def test_memory_and_gpus_are_limits_too() -> None:
    ledger = CapacityLedger(Resources(cpus=16, memory_mb=10_000, gpus=1))
    assert ledger.try_reserve("a", Resources(cpus=1, memory_mb=6_000, gpus=1))
    assert not ledger.try_reserve("b", Resources(cpus=1, memory_mb=6_000))
    assert not ledger.try_reserve("c", Resources(cpus=1, memory_mb=100, gpus=1))
    assert ledger.try_reserve("d", Resources(cpus=1, memory_mb=4_000))
    assert ledger.available() == Resources(cpus=14, memory_mb=0, gpus=0)


def test_reserve_and_release_are_idempotent() -> None:
    ledger = CapacityLedger(Resources(cpus=2))
    assert ledger.try_reserve("a", Resources(cpus=1))
    assert ledger.try_reserve("a", Resources(cpus=1))  # a retrying reconciler does not count twice
    assert ledger.reserved().cpus == 1
    assert "a" in ledger
    ledger.release("a")
    ledger.release("a")
    ledger.release("never-reserved")
    assert ledger.reserved() == Resources(cpus=0, memory_mb=0, gpus=0)
    assert "a" not in ledger


def test_oversized_request_runs_alone_not_never() -> None:
    ledger = CapacityLedger(Resources(cpus=2, memory_mb=4_000))
    assert ledger.try_reserve("small", Resources(cpus=1))
    assert not ledger.try_reserve("huge", Resources(cpus=96, memory_mb=1_000_000))
    ledger.release("small")
    assert ledger.try_reserve("huge", Resources(cpus=96, memory_mb=1_000_000))
    assert not ledger.try_reserve("small", Resources(cpus=1))  # nothing joins it while it runs
    assert ledger.available() == Resources(cpus=0, memory_mb=0, gpus=0)


def test_unaccounted_memory() -> None:
    ledger = CapacityLedger(Resources(cpus=2, memory_mb=None))
    assert ledger.try_reserve("a", Resources(cpus=1, memory_mb=10**9))
    assert ledger.try_reserve("b", Resources(cpus=1, memory_mb=10**9))
    assert ledger.available().memory_mb is None


def test_concurrent_reservations_never_oversubscribe() -> None:
    ledger = CapacityLedger(Resources(cpus=4))
    granted: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def worker(i: int) -> None:
        barrier.wait()
        if ledger.try_reserve(f"t{i}", Resources(cpus=0.5)):
            with lock:
                granted.append(f"t{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 8
    assert ledger.reserved().cpus == 4
