"""RELIABILITY T6 and T7 at full size (``make soak``): blue/green updates under 200 req/s for 60 s.

T6: two replicas, constant load on keep-alive and fresh connections, an update at t=15 s with each
traffic policy: zero failed requests, p99 during the update at most 2x the p99 before it, 100% on the new
fleet at the end. T7: a bad version (20% 5xx) behind a 10% canary with a 5xx-rate alarm and 120 s of
baking: rollback begins within 40 s, customer-visible errors at most 1% of the window's requests.
The quick versions of both run in ``make test`` (tests/hosting/test_endpoints_e2e.py).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.hosting.endpoint_kit import ROW, make_kit
from tests.live_server import LiveServer

RATE = 200.0
DURATION_S = 60.0
UPDATE_AT_S = 15.0

POLICIES: dict[str, dict[str, Any]] = {
    "all-at-once": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 5},
    "canary": {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 5},
    "linear": {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 3,
    },
}


class PacedLoad:
    """Requests at a constant total rate, alternating keep-alive and fresh connections; every outcome and
    latency is kept with its send time."""

    def __init__(self, url: str, rate: float, threads: int = 8) -> None:
        self.url, self.rate, self.threads = url, rate, threads
        self.samples: list[tuple[float, str, float, str | None]] = []  # (t, outcome, latency_s, version)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def start(self) -> PacedLoad:
        self.t0 = time.monotonic()
        for w in self._workers:
            w.start()
        return self

    def _run(self, index: int) -> None:
        interval = self.threads / self.rate
        next_at = self.t0 + index * interval / self.threads
        keep = httpx.Client(timeout=30, trust_env=False)
        fresh = httpx.Client(timeout=30, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))
        n = 0
        while not self._stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            n += 1
            sent = time.monotonic()
            try:
                client = keep if n % 2 else fresh  # half on a new connection each time
                r = client.post(self.url, content=ROW, headers={"Content-Type": "application/json"})
                outcome, version = str(r.status_code), (r.json().get("version") if r.status_code == 200 else None)
            except httpx.HTTPError as exc:
                outcome, version = type(exc).__name__, None
            with self._lock:
                self.samples.append((sent - self.t0, outcome, time.monotonic() - sent, version))
        keep.close()
        fresh.close()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(60)


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 100 else max(latencies, default=0.0)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_t6_blue_green_update_fails_no_request(live: LiveServer, tmp_path: Path, policy: str) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("blue")
    kit.model("green", KIT_VERSION="v2")
    kit.config("blue", [{"VariantName": "AllTraffic", "ModelName": "blue", "InitialInstanceCount": 2}])
    kit.config("green", [{"VariantName": "AllTraffic", "ModelName": "green", "InitialInstanceCount": 2}])
    kit.endpoint("ep", "blue")
    kit.wait("ep")
    load = PacedLoad(kit.runtime() + "/endpoints/ep/invocations", RATE).start()
    try:
        time.sleep(UPDATE_AT_S)
        update_at = time.monotonic() - load.t0
        config = {
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": POLICIES[policy], "TerminationWaitInSeconds": 5}
        }
        live.client._request(
            "POST", "/api/v1/endpoints/ep/update", json={"EndpointConfigName": "green", "DeploymentConfig": config}
        )
        desc = kit.wait("ep", timeout=DURATION_S)
        done_at = time.monotonic() - load.t0
        time.sleep(max(0.0, DURATION_S - (time.monotonic() - load.t0)))
    finally:
        load.stop()
    failed = [s for s in load.samples if s[1] != "200"]
    assert len(load.samples) >= 0.9 * RATE * DURATION_S
    assert failed == [], f"{len(failed)} failed: {failed[:5]}"
    before = [s[2] for s in load.samples if s[0] < update_at]
    during = [s[2] for s in load.samples if update_at <= s[0] <= done_at]
    assert _p99(during) <= 2 * _p99(before) + 0.005, (_p99(before), _p99(during))
    assert desc["EndpointConfigName"] == "green"
    tail = [s[3] for s in load.samples if s[0] > done_at + 1]
    assert tail and set(tail) == {"v2"}, "100% on the new fleet at the end"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_t7_bad_version_rolls_back_with_at_most_one_percent_errors(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("blue")
    kit.model("bad", KIT_VERSION="bad", KIT_FAIL_RATE="0.2")
    kit.config("blue", [{"VariantName": "AllTraffic", "ModelName": "blue", "InitialInstanceCount": 2}])
    kit.config("bad", [{"VariantName": "AllTraffic", "ModelName": "bad", "InitialInstanceCount": 2}])
    kit.endpoint("ep", "blue")
    kit.wait("ep")
    load = PacedLoad(kit.runtime() + "/endpoints/ep/invocations", RATE).start()
    try:
        time.sleep(UPDATE_AT_S)
        config = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 120,
                }
            },
            "AutoRollbackConfiguration": {
                "Alarms": [
                    {
                        "AlarmName": "green-5xx",
                        "Metric": "Invocation5XXErrorRate",
                        "Threshold": 0.01,
                        "WindowSeconds": 30,
                    }
                ]
            },
        }
        live.client._request(
            "POST", "/api/v1/endpoints/ep/update", json={"EndpointConfigName": "bad", "DeploymentConfig": config}
        )
        started = time.monotonic()
        while (desc := kit.describe("ep"))["EndpointStatus"] != "InService" or not desc["FailureReason"]:
            assert time.monotonic() - started < 60, desc
            time.sleep(0.1)
        rolled_back_after = time.monotonic() - started
        time.sleep(max(0.0, DURATION_S - (time.monotonic() - load.t0)))
    finally:
        load.stop()
    assert rolled_back_after <= 40
    window = [s for s in load.samples if s[0] >= UPDATE_AT_S]
    errors = [s for s in window if s[1] != "200"]
    assert len(errors) <= 0.01 * len(window), f"{len(errors)} of {len(window)}"
    assert desc["EndpointConfigName"] == "blue" and "green-5xx" in desc["FailureReason"]
