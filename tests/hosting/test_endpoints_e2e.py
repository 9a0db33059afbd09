"""Endpoints end to end: a real control plane, router and model servers on loopback, real traffic."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from kamado.compute.local import LocalExecutor
from kamado.compute.shim import read_json
from kamado.core.errors import NotFound
from kamado.sdk.client import Client
from kamado.testing.hosting import stop_hosting_processes
from tests.hosting.endpoint_kit import ROW, Load, make_kit
from tests.live_server import LiveServer, start_server, task_visible_dir

pytestmark = pytest.mark.timeout(180)


def _variant(name: str, model: str, count: int = 1, weight: float = 1.0) -> dict[str, object]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": count, "InitialVariantWeight": weight}


def _invoke(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, content=ROW, headers={"Content-Type": "application/json", **headers}, trust_env=False)


def _worker_pids(home: Path) -> dict[str, int]:
    executor = LocalExecutor(home / "tasks")
    pids = {}
    for handle in executor.list_tasks():
        info = read_json(str(executor.state_dir(handle.task_id) / "shim.json")) or {}
        status = executor.poll(handle)
        if handle.task_id.startswith("endpoint/") and not status.state.is_terminal() and info.get("child_pid"):
            pids[handle.task_id] = int(info["child_pid"])
    return pids


def test_endpoint_serves_reports_and_deletes(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("m1")
    kit.config("c1", [_variant("AllTraffic", "m1")])
    kit.endpoint("ep", "c1")
    desc = kit.wait("ep")
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    url = kit.runtime() + "/endpoints/ep/invocations"
    assert desc["InvocationUrl"] == url
    r = _invoke(url)
    assert r.status_code == 200, r.text
    assert r.json() == {"version": "v1", "labels": [0]}
    assert r.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    for _ in range(9):
        assert _invoke(url).status_code == 200
    bad = httpx.post(url, content=b"[[1,2", headers={"Content-Type": "application/json"}, trust_env=False)
    assert bad.status_code == 424 and bad.json()["OriginalStatusCode"] == 400, "the model's own 4xx, as ModelError"
    metrics = kit.describe("ep")["ProductionVariants"][0]["Metrics"]
    assert metrics["invocations"] == 11 and metrics["invocations_4xx"] == 1
    assert "model server" in live.client._request("GET", "/api/v1/endpoints/ep/logs").decode()
    assert httpx.post(kit.runtime() + "/endpoints/nope/invocations", content=ROW, trust_env=False).status_code == 400
    pids = _worker_pids(live.home)
    assert len(pids) == 1
    live.client._request("DELETE", "/api/v1/endpoints/ep")
    deadline = time.monotonic() + 30
    while True:
        try:
            kit.describe("ep")
        except NotFound:
            break
        assert time.monotonic() < deadline, "endpoint never went away"
        time.sleep(0.1)
    assert _worker_pids(live.home) == {}, "its model servers were stopped"
    assert _invoke(url).status_code == 400
    live.client._request("DELETE", "/api/v1/endpoint-configs/c1")  # no longer in use


def test_two_variants_split_traffic_by_weight_and_pin_by_header(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("ma", KIT_VERSION="a")
    kit.model("mb", KIT_VERSION="b")
    kit.config("split", [_variant("A", "ma", weight=9), _variant("B", "mb", weight=1)])
    kit.endpoint("split", "split")
    kit.wait("split")
    url = kit.runtime() + "/endpoints/split/invocations"
    n = 1500
    seen = {"a": 0, "b": 0}
    with httpx.Client(trust_env=False) as http:
        for _ in range(n):
            r = http.post(url, content=ROW, headers={"Content-Type": "application/json"})
            assert r.status_code == 200
            seen[r.json()["version"]] += 1
        pinned = http.post(
            url, content=ROW, headers={"Content-Type": "application/json", "X-Amzn-SageMaker-Target-Variant": "B"}
        )
        unknown = http.post(url, content=ROW, headers={"X-Amzn-SageMaker-Target-Variant": "C"})
    tolerance = 3.29 * math.sqrt(n * 0.1 * 0.9)  # 99.9% binomial interval
    assert abs(seen["b"] - n * 0.1) <= tolerance, seen
    assert pinned.json()["version"] == "b" and pinned.headers["x-amzn-invoked-production-variant"] == "B"
    assert unknown.status_code == 400


def test_canary_update_under_load_fails_no_request(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("v1")
    kit.model("v2", KIT_VERSION="v2")
    kit.config("c1", [_variant("AllTraffic", "v1", count=2)])
    kit.config("c2", [_variant("AllTraffic", "v2", count=2)])
    kit.endpoint("ep", "c1")
    kit.wait("ep")
    load = Load(kit.runtime() + "/endpoints/ep/invocations").start()
    try:
        time.sleep(1.0)
        policy = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 1.5,
                },
                "TerminationWaitInSeconds": 1,
            }
        }
        live.client._request(
            "POST", "/api/v1/endpoints/ep/update", json={"EndpointConfigName": "c2", "DeploymentConfig": policy}
        )
        assert kit.describe("ep")["EndpointStatus"] == "Updating"
        desc = kit.wait("ep", timeout=90)
        time.sleep(0.5)
    finally:
        load.stop()
    assert desc["EndpointConfigName"] == "c2" and desc["FailureReason"] is None
    assert load.failed == 0, load.outcomes
    assert load.versions["v1"] > 0 and load.versions["v2"] > 0, load.versions
    assert {r.json()["version"] for r in (_invoke(kit.runtime() + "/endpoints/ep/invocations") for _ in range(10))} == {
        "v2"
    }
    deadline = time.monotonic() + 30
    while len(_worker_pids(live.home)) != 2:
        assert time.monotonic() < deadline, "the old fleet was not stopped"
        time.sleep(0.1)


def test_a_bad_version_is_rolled_back_by_its_alarm(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("good")
    kit.model("bad", KIT_VERSION="bad", KIT_FAIL_RATE="0.5")
    kit.config("good", [_variant("AllTraffic", "good")])
    kit.config("bad", [_variant("AllTraffic", "bad")])
    kit.endpoint("ep", "good")
    kit.wait("ep")
    load = Load(kit.runtime() + "/endpoints/ep/invocations").start()
    try:
        policy = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 60,
                }
            },
            "AutoRollbackConfiguration": {
                "Alarms": [
                    {
                        "AlarmName": "errors",
                        "Metric": "Invocation5XXErrorRate",
                        "Threshold": 0.01,
                        "WindowSeconds": 10,
                        "MinInvocations": 5,
                    }
                ]
            },
        }
        live.client._request(
            "POST", "/api/v1/endpoints/ep/update", json={"EndpointConfigName": "bad", "DeploymentConfig": policy}
        )
        started = time.monotonic()
        while (desc := kit.describe("ep"))["EndpointStatus"] != "InService" or not desc["FailureReason"]:
            assert time.monotonic() - started < 60, desc
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        load.stop()
    assert took < 40, f"rolled back {took:.1f} s after the update"
    assert desc["EndpointConfigName"] == "good"
    assert "rolled back" in desc["FailureReason"] and "errors" in desc["FailureReason"]
    assert load.versions["v1"] > 0 and load.versions["bad"] > 0, load.versions
    assert load.failed <= 0.05 * load.total, load.outcomes
    after = [_invoke(kit.runtime() + "/endpoints/ep/invocations") for _ in range(20)]
    assert all(r.status_code == 200 and r.json()["version"] == "v1" for r in after)


def test_a_rollback_that_cannot_complete_is_reported_not_hidden(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    # Somewhere the model server can see: a root server's tasks run as a uid of their own, cannot reach the
    # test's private tmp_path and have a /tmp of their own (see compute/worker_user.py).
    flag = task_visible_dir("kamado-flag-") / "old-version-broken"
    kit.model("old", KIT_CRASH_FLAG=str(flag))
    kit.model("bad", KIT_VERSION="bad", KIT_FAIL_RATE="1")
    kit.config("old", [_variant("AllTraffic", "old")])
    kit.config("bad", [_variant("AllTraffic", "bad")])
    kit.endpoint("ep", "old")
    kit.wait("ep")
    old_pids = _worker_pids(live.home)
    policy = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 60,
            }
        },
        "AutoRollbackConfiguration": {
            "Alarms": [
                {"AlarmName": "errors", "Metric": "Invocation5XXErrorRate", "Threshold": 0.1, "MinInvocations": 3}
            ]
        },
    }
    live.client._request(
        "POST", "/api/v1/endpoints/ep/update", json={"EndpointConfigName": "bad", "DeploymentConfig": policy}
    )
    while kit.describe("ep").get("PendingDeploymentSummary", {}).get("Phase") != "Baking":
        time.sleep(0.05)
    # The old version can no longer start, and its running instance dies: there is nothing to roll back to.
    flag.write_text("broken")
    for pid in old_pids.values():
        os.kill(pid, signal.SIGKILL)
    url = kit.runtime() + "/endpoints/ep/invocations"
    deadline = time.monotonic() + 60
    while (desc := kit.describe("ep"))["EndpointStatus"] != "UpdateRollbackFailed":
        assert desc["EndpointStatus"] in ("Updating", "RollingBack"), desc
        assert time.monotonic() < deadline, desc
        with contextlib.suppress(httpx.HTTPError):  # held while no instance serves: may time out
            httpx.post(url, content=ROW, headers={"Content-Type": "application/json"}, timeout=1, trust_env=False)
        time.sleep(0.05)
    assert "rollback failed" in desc["FailureReason"] and "cannot load" in desc["FailureReason"], desc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_killed_model_server_is_survived_and_replaced(live: LiveServer, tmp_path: Path, sig: int) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("m")
    kit.config("c", [_variant("AllTraffic", "m", count=2)])
    kit.endpoint("ep", "c")
    kit.wait("ep")
    before = _worker_pids(live.home)
    assert len(before) == 2
    load = Load(kit.runtime() + "/endpoints/ep/invocations").start()
    try:
        time.sleep(1.0)
        victim = sorted(before.values())[0]
        os.kill(victim, sig)
        deadline = time.monotonic() + 30
        while True:
            pids = _worker_pids(live.home)
            healthy = kit.describe("ep")["ProductionVariants"][0]["CurrentInstanceCount"]
            if len(pids) == 2 and victim not in pids.values() and healthy == 2:
                break
            assert time.monotonic() < deadline, f"no replacement: {pids}"
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        load.stop()
    assert load.total >= 200
    if sig == signal.SIGTERM:
        assert load.failed == 0, f"a terminated model server drains: {load.outcomes}"
    else:
        # Only requests in flight on the killed process are lost (at most one per load thread), and they
        # come back as 424 ModelError, never as a bare 5xx; none sent after it died fails.
        assert load.failed <= load.threads, load.outcomes
        assert set(load.outcomes) <= {"200", "424"}, load.outcomes


def test_instance_counts_change_in_place_and_scale_from_zero(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("m")
    kit.config("c", [_variant("AllTraffic", "m")])
    kit.endpoint("ep", "c")
    kit.wait("ep")
    path = "/api/v1/endpoints/ep/weights-and-capacities"
    live.client._request(
        "POST", path, json={"DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}]}
    )
    desc = kit.wait("ep")
    assert desc["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert len(_worker_pids(live.home)) == 2
    live.client._request(
        "POST", path, json={"DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 1}]}
    )
    deadline = time.monotonic() + 30
    while len(_worker_pids(live.home)) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Autoscaling with MinCapacity 0: idle, it goes to zero; a request then wakes it and is served.
    live.client._request(
        "PUT",
        "/api/v1/endpoints/ep/variants/AllTraffic/scaling-policy",
        json={"MinCapacity": 0, "MaxCapacity": 2, "TargetValue": 6000, "ScaleInCooldown": 2, "ScaleOutCooldown": 0},
    )
    deadline = time.monotonic() + 30
    while kit.describe("ep")["ProductionVariants"][0]["DesiredInstanceCount"] != 0 or _worker_pids(live.home):
        assert time.monotonic() < deadline, kit.describe("ep")
        time.sleep(0.1)
    r = httpx.post(
        kit.runtime() + "/endpoints/ep/invocations",
        content=ROW,
        headers={"Content-Type": "application/json"},
        timeout=60,
        trust_env=False,
    )
    assert r.status_code == 200, r.text
    assert kit.describe("ep")["ProductionVariants"][0]["DesiredInstanceCount"] == 1


def test_data_capture_writes_sagemaker_json_lines(live: LiveServer, tmp_path: Path) -> None:
    kit = make_kit(live.client, tmp_path)
    kit.model("m")
    destination = live.client.info()["artifactStore"].rstrip("/") + "/capture"
    kit.config(
        "c",
        [_variant("AllTraffic", "m")],
        DataCaptureConfig={
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "InputAndOutput"}],
        },
    )
    kit.endpoint("ep", "c")
    desc = kit.wait("ep")
    assert desc["DataCaptureConfig"]["CaptureStatus"] == "Started"
    for _ in range(3):
        assert _invoke(kit.runtime() + "/endpoints/ep/invocations").status_code == 200
    root = live.home / "artifacts" / "capture" / "ep" / "AllTraffic"
    deadline = time.monotonic() + 15
    while not list(root.rglob("*.jsonl")):
        assert time.monotonic() < deadline, "no capture file"
        time.sleep(0.1)
    time.sleep(1.5)
    lines = [json.loads(x) for f in root.rglob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(lines) == 3
    event = lines[0]
    assert event["captureData"]["endpointInput"]["data"] == ROW.decode()
    assert event["captureData"]["endpointInput"]["mode"] == "INPUT"
    assert json.loads(event["captureData"]["endpointOutput"]["data"])["version"] == "v1"
    assert len(next(iter(root.rglob("*.jsonl"))).relative_to(root).parts) == 5, "yyyy/mm/dd/hh/file.jsonl"


def test_control_plane_restart_drops_no_request(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server, thread, url, _ = start_server(home)
    try:
        client = Client(url)
        kit = make_kit(client, tmp_path)
        kit.model("m")
        kit.config("c", [_variant("AllTraffic", "m")])
        kit.endpoint("ep", "c")
        kit.wait("ep")
        runtime = kit.runtime()
        pids = _worker_pids(home)
        load = Load(runtime + "/endpoints/ep/invocations").start()
        time.sleep(0.5)
        client.close()
        server.should_exit = True
        thread.join(30)
        time.sleep(1.0)  # serving with no control plane at all
        server, thread, url, _ = start_server(home)
        client = Client(url)
        time.sleep(1.0)
        load.stop()
        assert load.failed == 0 and load.total > 50, load.outcomes
        desc = client._request("GET", "/api/v1/endpoints/ep")
        assert desc["EndpointStatus"] == "InService"
        assert client._request("GET", "/api/v1/runtime")["Url"] == runtime, "the same router, adopted"
        assert _worker_pids(home) == pids, "the same model servers, adopted, none started again"
        client.close()
    finally:
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)
