"""Fixtures for the router tests (no tests here): real routers (detached processes, as the control plane starts
them) and real stand-in workers (``test_router_worker.py``, one process each)."""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kamado.hosting.router_process import RouterClient, RouterHandle, ensure_router
from kamado.hosting.routing import CaptureRoute, EndpointRoute, InstanceRoute, RoutingTable, VariantRoute

WORKER_SCRIPT = Path(__file__).with_name("test_router_worker.py")


@dataclass
class Worker:
    worker_id: str
    url: str
    proc: subprocess.Popen[str]

    def route(self) -> InstanceRoute:
        return InstanceRoute(instance_id=self.worker_id, url=self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_worker(worker_id: str, *extra: str) -> Worker:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), "--id", worker_id, *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return Worker(worker_id, f"http://127.0.0.1:{port}", proc)


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------- fixtures

_versions = itertools.count(1)


def next_version() -> int:
    return next(_versions)


def table(*endpoints: EndpointRoute, version: int | None = None) -> RoutingTable:
    return RoutingTable(
        version=next_version() if version is None else version, endpoints={e.endpoint_name: e for e in endpoints}
    )


def endpoint(name: str, *variants: VariantRoute, **kw: Any) -> EndpointRoute:
    return EndpointRoute(endpoint_name=name, variants=variants, **kw)


def variant(name: str, *workers: Worker | InstanceRoute, weight: float = 1.0, **kw: Any) -> VariantRoute:
    instances = tuple(w.route() if isinstance(w, Worker) else w for w in workers)
    return VariantRoute(variant_name=name, weight=weight, instances=instances, **kw)


def capture(prefix: str, pct: float) -> CaptureRoute:
    return CaptureRoute(sampling_percentage=pct, destination_prefix=prefix)


@dataclass
class LiveRouter:
    home: Path
    handle: RouterHandle
    admin: RouterClient

    @property
    def url(self) -> str:
        return self.handle.url

    def invoke_url(self, name: str) -> str:
        return f"{self.handle.url}/endpoints/{name}/invocations"


@contextlib.contextmanager
def running_router(home: Path) -> Iterator[LiveRouter]:
    handle = ensure_router(home)
    admin = RouterClient(handle)
    try:
        yield LiveRouter(home, handle, admin)
    finally:
        admin.stop(timeout_s=15)


@pytest.fixture(scope="module", name="router")
def router_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRouter]:
    with running_router(tmp_path_factory.mktemp("router-home")) as live:
        yield live


@pytest.fixture(scope="module", name="echo")
def echo_fixture() -> Iterator[Worker]:
    w = start_worker("echo")
    yield w
    w.stop()


@pytest.fixture(name="workers")
def workers_fixture() -> Iterator[Any]:
    """A factory for workers that are stopped after the test."""
    started: list[Worker] = []

    def make(worker_id: str, *extra: str) -> Worker:
        started.append(start_worker(worker_id, *extra))
        return started[-1]

    yield make
    for w in started:
        w.stop()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
