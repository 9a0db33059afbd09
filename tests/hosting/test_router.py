"""The router end to end: a real router process, real stand-in workers, real HTTP on loopback.

One router serves the whole module; each test publishes its own table (a higher version each time) and uses
its own endpoint names, so the tests stay independent of their order.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.invocation import (
    CUSTOM_ATTRIBUTES_HEADER,
    ERROR_TYPE_HEADER,
    INFERENCE_ID_HEADER,
    INVOKED_VARIANT_HEADER,
    MAX_INVOCATION_BYTES,
    TARGET_VARIANT_HEADER,
)
from kamado.hosting.routing import ADMIN_TOKEN_HEADER, InstanceRoute
from tests.hosting.test_router_support import (  # noqa: F401  (the *_fixture names register fixtures)
    LiveRouter,
    Worker,
    capture,
    echo_fixture,
    endpoint,
    free_port,
    router_fixture,
    table,
    variant,
    wait_until,
    workers_fixture,
)


@pytest.fixture
def http() -> Any:
    with httpx.Client(timeout=30) as client:
        yield client


def _attrs(response: httpx.Response) -> dict[str, str]:
    raw = response.headers.get(CUSTOM_ATTRIBUTES_HEADER, "")
    return dict(item.split("=", 1) for item in raw.split(";") if "=" in item)


def _stats(router: LiveRouter, name: str, window: float = 60) -> dict[str, Any]:
    result: dict[str, Any] = router.admin.stats(window)["endpoints"][name]
    return result


# ------------------------------------------------------------------------------------------------ routing


def test_invocation_reaches_the_worker_with_the_sagemaker_headers(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-basic", variant("AllTraffic", echo))))
    r = http.post(
        router.invoke_url("ep-basic"),
        content=b"1,2,3",
        headers={
            "Content-Type": "text/csv",
            "Accept": "application/json",
            CUSTOM_ATTRIBUTES_HEADER: "trace=abc",
            INFERENCE_ID_HEADER: "inf-1",
        },
    )
    assert r.status_code == 200, r.text
    assert r.content == b"1,2,3" and r.headers["content-type"] == "text/csv"
    assert r.headers[INVOKED_VARIANT_HEADER] == "AllTraffic"
    assert _attrs(r) == {"worker": "echo", "accept": "application/json", "inference": "inf-1"}


def test_traffic_splits_by_weight_within_the_binomial_interval(router: LiveRouter, workers: Any, http: Any) -> None:
    a, b = workers("a"), workers("b")
    router.admin.publish(table(endpoint("ep-split", variant("A", a, weight=9), variant("B", b, weight=1))))
    n = 4000
    seen = {"A": 0, "B": 0}
    for _ in range(n):
        r = http.post(router.invoke_url("ep-split"), content=b"x")
        assert r.status_code == 200
        seen[r.headers[INVOKED_VARIANT_HEADER]] += 1
    # 99.9 % two-sided binomial interval around the configured 10 %.
    half_width = 3.2905 * math.sqrt(n * 0.1 * 0.9)
    assert abs(seen["B"] - n * 0.1) <= half_width, seen
    variants = _stats(router, "ep-split")["variants"]
    assert variants["A"]["invocations"] == seen["A"] and variants["B"]["invocations"] == seen["B"]


def test_target_variant_pins_the_variant_even_at_weight_zero(router: LiveRouter, workers: Any, http: Any) -> None:
    a, b = workers("a"), workers("b")
    router.admin.publish(table(endpoint("ep-pin", variant("A", a, weight=1), variant("Shadow", b, weight=0))))
    for _ in range(20):
        r = http.post(router.invoke_url("ep-pin"), content=b"x", headers={TARGET_VARIANT_HEADER: "Shadow"})
        assert r.status_code == 200 and r.headers[INVOKED_VARIANT_HEADER] == "Shadow" and _attrs(r)["worker"] == "b"
    unpinned = {http.post(router.invoke_url("ep-pin"), content=b"x").headers[INVOKED_VARIANT_HEADER] for _ in range(20)}
    assert unpinned == {"A"}


def test_a_variant_listed_by_two_fleets_splits_between_them_and_reports_both(
    router: LiveRouter, workers: Any, http: Any
) -> None:
    blue, green = workers("blue"), workers("green")
    router.admin.publish(
        table(
            endpoint(
                "ep-fleets",
                variant("A", blue, weight=0.5, fleet="f-blue"),
                variant("A", green, weight=0.5, fleet="f-green"),
            )
        )
    )
    answered = []
    for i in range(100):
        headers = {TARGET_VARIANT_HEADER: "A"} if i % 2 else {}
        r = http.post(router.invoke_url("ep-fleets"), content=b"x", headers=headers)
        assert r.status_code == 200 and r.headers[INVOKED_VARIANT_HEADER] == "A"
        answered.append(_attrs(r)["worker"])
    ep = _stats(router, "ep-fleets")
    assert ep["variants"]["A"]["invocations"] == 100
    per_fleet = {f: ep["fleets"][f]["A"]["invocations"] for f in ("f-blue", "f-green")}
    assert per_fleet == {"f-blue": answered.count("blue"), "f-green": answered.count("green")}
    assert min(per_fleet.values()) > 10  # 50/50 over 100 requests: below 11 is a 1-in-10^13 event
    metrics = http.get(f"{router.url}/metrics").text
    assert 'kamado_invocations_total{endpoint="ep-fleets",variant="A"} 100.0' in metrics


def test_unknown_endpoint_and_variant_are_validation_errors(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-known", variant("A", echo), variant("B", echo))))
    r = http.post(router.invoke_url("ep-nope"), content=b"x")
    assert r.status_code == 400 and r.headers[ERROR_TYPE_HEADER] == "ValidationError"
    assert r.json()["ErrorCode"] == "NO_SUCH_ENDPOINT" and "ep-nope" in r.json()["Message"]
    r = http.post(router.invoke_url("ep-known"), content=b"x", headers={TARGET_VARIANT_HEADER: "C"})
    assert r.status_code == 400 and r.headers[ERROR_TYPE_HEADER] == "ValidationError"
    assert "A, B" in r.json()["Message"] and "'C'" not in r.json()["Message"]
    assert _stats(router, "ep-known")["invocations_4xx_unrouted"] == 1


def test_oversized_body_is_413_and_the_connection_stays_usable(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-big", variant("A", echo))))
    started = time.monotonic()
    r = http.post(router.invoke_url("ep-big"), content=b"x" * (MAX_INVOCATION_BYTES + 1))
    assert r.status_code == 413 and r.headers[ERROR_TYPE_HEADER] == "ValidationError"
    assert time.monotonic() - started < 5
    ok = http.post(router.invoke_url("ep-big"), content=b"x" * MAX_INVOCATION_BYTES)
    assert ok.status_code == 200 and len(ok.content) == MAX_INVOCATION_BYTES

    def chunks() -> Any:  # no Content-Length: the cap applies while reading
        for _ in range(7):
            yield b"y" * (1024 * 1024)

    r = http.post(router.invoke_url("ep-big"), content=chunks())
    assert r.status_code == 413
    assert _stats(router, "ep-big")["variants"]["A"]["invocations_4xx"] == 2


# ------------------------------------------------------------------------------------------ model errors


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "CLIENT_ERROR_FROM_MODEL"), (422, "CLIENT_ERROR_FROM_MODEL"), (503, "SERVER_ERROR_FROM_MODEL")],
)
def test_worker_errors_become_424_model_errors(
    router: LiveRouter, echo: Worker, http: Any, status: int, code: str
) -> None:
    router.admin.publish(table(endpoint("ep-err", variant("A", echo))))
    r = http.post(router.invoke_url("ep-err"), content=b"x", headers={CUSTOM_ATTRIBUTES_HEADER: f"status={status}"})
    assert r.status_code == 424 and r.headers[ERROR_TYPE_HEADER] == "ModelError"
    body = r.json()
    assert body["ErrorCode"] == code and body["OriginalStatusCode"] == status
    assert body["OriginalMessage"] == f"worker echo failed with {status}"
    assert body["Message"].startswith(f"Received {'client' if status < 500 else 'server'} error ({status}) from model")


def test_slow_model_times_out_as_424(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-slow", variant("A", echo, model_timeout_s=0.3))))
    started = time.monotonic()
    r = http.post(router.invoke_url("ep-slow"), content=b"x", headers={CUSTOM_ATTRIBUTES_HEADER: "sleep_ms=3000"})
    assert r.status_code == 424 and r.headers[ERROR_TYPE_HEADER] == "ModelError"
    assert r.json()["OriginalStatusCode"] == 0 and "timed out" in r.json()["Message"]
    assert time.monotonic() - started < 2.5
    fast = http.post(router.invoke_url("ep-slow"), content=b"x")  # the timed-out connection is not reused
    assert fast.status_code == 200
    assert _stats(router, "ep-slow")["variants"]["A"]["invocations_5xx"] == 1


def test_a_worker_dying_mid_request_is_a_424_and_is_not_retried(router: LiveRouter, workers: Any, http: Any) -> None:
    a, b = workers("a"), workers("b")
    router.admin.publish(table(endpoint("ep-die", variant("A", a, b))))
    r = http.post(router.invoke_url("ep-die"), content=b"x", headers={CUSTOM_ATTRIBUTES_HEADER: "die=1"})
    assert r.status_code == 424 and r.json()["ErrorCode"] == "SERVER_ERROR_FROM_MODEL"
    time.sleep(0.2)
    assert [w.proc.poll() is not None for w in (a, b)].count(True) == 1  # sent once: only one worker died


def test_a_refused_instance_is_skipped_without_failing_a_request(router: LiveRouter, echo: Worker, http: Any) -> None:
    dead = InstanceRoute(instance_id="dead", url=f"http://127.0.0.1:{free_port()}")
    router.admin.publish(
        table(endpoint("ep-dead", variant("A", dead, echo, dead.model_copy(update={"instance_id": "d2"}))))
    )
    answers = [http.post(router.invoke_url("ep-dead"), content=b"x") for _ in range(30)]
    assert {r.status_code for r in answers} == {200}
    assert {_attrs(r)["worker"] for r in answers} == {"echo"}
    assert _stats(router, "ep-dead")["variants"]["A"]["invocations_5xx"] == 0


# ------------------------------------------------------------------------------------------------ holding


def _in_background(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["response"] = fn()
        except BaseException as exc:  # reported by the test's assertion on box
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_requests_wait_for_a_cold_variant_until_an_instance_is_published(router: LiveRouter, workers: Any) -> None:
    router.admin.publish(table(endpoint("ep-cold", variant("A"), max_wait_s=20)))
    thread, box = _in_background(lambda: httpx.post(router.invoke_url("ep-cold"), content=b"wake", timeout=30))
    wait_until(lambda: _stats(router, "ep-cold")["pending"] == 1)
    assert _stats(router, "ep-cold")["variants"]["A"]["pending"] == 1
    w = workers("late")
    router.admin.publish(table(endpoint("ep-cold", variant("A", w), max_wait_s=20)))
    thread.join(10)
    r = box["response"]
    assert r.status_code == 200 and r.content == b"wake" and _attrs(r)["worker"] == "late"
    assert _stats(router, "ep-cold")["pending"] == 0


def test_past_max_pending_or_max_wait_the_router_answers_503(router: LiveRouter, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-full", variant("A"), max_pending=1, max_wait_s=1.0)))
    thread, box = _in_background(lambda: httpx.post(router.invoke_url("ep-full"), content=b"x", timeout=30))
    wait_until(lambda: _stats(router, "ep-full")["pending"] == 1)
    r = http.post(router.invoke_url("ep-full"), content=b"x")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.headers[ERROR_TYPE_HEADER] == "ServiceUnavailable"
    thread.join(10)
    held = box["response"]
    assert held.status_code == 503 and "within 1 s" in held.json()["Message"]
    assert _stats(router, "ep-full")["variants"]["A"]["invocations_5xx"] == 2


def test_a_variant_scaled_to_zero_desired_answers_503_at_once(router: LiveRouter, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-zero", variant("A", desired_instances=0))))
    r = http.post(router.invoke_url("ep-zero"), content=b"x")
    assert r.status_code == 503 and r.headers[ERROR_TYPE_HEADER] == "ServiceUnavailable"


# ------------------------------------------------------------------------------------------ stats, metrics


def test_stats_and_metrics_count_what_happened(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(table(endpoint("ep-stats", variant("A", echo))))
    for _ in range(10):
        assert http.post(router.invoke_url("ep-stats"), content=b"x").status_code == 200
    for attrs in ("status=404", "status=500", "status=500"):
        assert (
            http.post(
                router.invoke_url("ep-stats"), content=b"x", headers={CUSTOM_ATTRIBUTES_HEADER: attrs}
            ).status_code
            == 424
        )
    full = router.admin.stats(30)
    assert set(full) == {"version", "now", "endpoints"} and abs(full["now"] - time.time()) < 5
    ep = full["endpoints"]["ep-stats"]
    a = ep["variants"]["A"]
    assert ep["pending"] == 0 and a["window_s"] == 30
    assert (a["invocations"], a["invocations_4xx"], a["invocations_5xx"]) == (13, 1, 2)
    assert a["in_flight"] == 0 and a["pending"] == 0 and a["capture_dropped"] == 0
    assert 0 < a["model_latency_p50_ms"] <= a["model_latency_p99_ms"] < 1000
    assert 0 < a["overhead_latency_p50_ms"] < 1000
    assert time.time() - 10 < a["last_invocation_at"] <= time.time()
    assert a["invocations_per_instance_per_minute"] == pytest.approx(13 * 60 / 30)
    metrics = http.get(f"{router.url}/metrics").text
    labels = '{endpoint="ep-stats",variant="A"}'
    assert f"kamado_invocations_total{labels} 13.0" in metrics
    assert f"kamado_invocation_4xx_errors_total{labels} 1.0" in metrics
    assert f"kamado_invocation_5xx_errors_total{labels} 2.0" in metrics
    assert f"kamado_model_latency_seconds_count{labels} 13.0" in metrics
    assert f"kamado_overhead_latency_seconds_count{labels} 13.0" in metrics
    assert f"kamado_pending_requests{labels} 0.0" in metrics


def test_stats_window_is_validated_and_clamped(router: LiveRouter, http: Any) -> None:
    headers = {ADMIN_TOKEN_HEADER: router.handle.token}
    assert http.get(f"{router.url}/_kamado/stats?window=abc", headers=headers).status_code == 400
    assert http.get(f"{router.url}/_kamado/stats?window=nan", headers=headers).status_code == 400
    r = http.get(f"{router.url}/_kamado/stats?window=9999", headers=headers)
    assert r.status_code == 200
    assert all(v["window_s"] == 300 for e in r.json()["endpoints"].values() for v in e["variants"].values())


# ---------------------------------------------------------------------------------------------------- admin


def test_admin_routes_need_the_token(router: LiveRouter, http: Any) -> None:
    body = table(endpoint("ep-admin", variant("A"))).model_dump_json()
    for headers in ({}, {ADMIN_TOKEN_HEADER: "0" * 64}, {ADMIN_TOKEN_HEADER: router.handle.token[:-1]}):
        assert http.put(f"{router.url}/_kamado/routes", content=body, headers=headers).status_code == 401
        assert http.get(f"{router.url}/_kamado/stats", headers=headers).status_code == 401
    assert http.get(f"{router.url}/ping").status_code == 200
    assert http.get(f"{router.url}/metrics").status_code == 200


def test_stale_and_invalid_tables_are_refused(router: LiveRouter, echo: Worker, http: Any) -> None:
    headers = {ADMIN_TOKEN_HEADER: router.handle.token}
    current = table(endpoint("ep-v", variant("A", echo)))
    router.admin.publish(current)
    stale = table(endpoint("ep-v2", variant("A", echo)), version=current.version - 1)
    r = http.put(f"{router.url}/_kamado/routes", content=stale.model_dump_json(), headers=headers)
    assert r.status_code == 409 and r.json()["version"] == current.version
    assert http.post(router.invoke_url("ep-v2"), content=b"x").status_code == 400  # not installed
    assert http.post(router.invoke_url("ep-v"), content=b"x").status_code == 200
    for bad in (
        b"{",
        b'{"version": -1}',
        b'{"version": 99999, "endpoints": {"x": {"endpoint_name": "y", "variants": []}}}',
    ):
        r = http.put(f"{router.url}/_kamado/routes", content=bad, headers=headers)
        assert r.status_code == 400 and r.json()["Message"]
    assert http.get(f"{router.url}/ping").json()["version"] == current.version


# -------------------------------------------------------------------------------------------------- capture


def _captured(home: Path, prefix: str) -> list[Path]:
    root = home / "artifacts" / prefix
    return sorted(root.rglob("*.jsonl")) if root.exists() else []


def test_capture_writes_sagemaker_json_lines_in_the_hourly_layout(router: LiveRouter, echo: Worker, http: Any) -> None:
    router.admin.publish(
        table(
            endpoint("ep-cap", variant("A", echo, capture=capture("capture/all", 100))),
            endpoint("ep-nocap", variant("A", echo, capture=capture("capture/none", 0))),
        )
    )
    sent = [(b"1,2", "text/csv"), (b'{"a": 1}', "application/json"), (b"\x00\xff", "application/x-npy")]
    for body, ctype in sent:
        r = http.post(
            router.invoke_url("ep-cap"), content=body, headers={"Content-Type": ctype, INFERENCE_ID_HEADER: "i-7"}
        )
        assert r.status_code == 200
    for _ in range(50):
        http.post(router.invoke_url("ep-nocap"), content=b"x")
    wait_until(lambda: len(_lines(router.home)) >= 3, timeout=5)
    records = [json.loads(line) for line in _lines(router.home)]
    for f in _captured(router.home, "capture/all"):
        key = f.relative_to(router.home / "artifacts").as_posix()
        assert re.fullmatch(r"capture/all/ep-cap/A/\d{4}/\d{2}/\d{2}/\d{2}/[0-9a-f]{32}\.jsonl", key), key
    assert len(records) == 3
    by_type = {r["captureData"]["endpointInput"]["observedContentType"]: r for r in records}
    csv = by_type["text/csv"]
    assert csv["eventVersion"] == "0" and csv["eventMetadata"]["inferenceId"] == "i-7"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", csv["eventMetadata"]["inferenceTime"])
    assert csv["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv",
        "mode": "INPUT",
        "data": "1,2",
        "encoding": "CSV",
    }
    assert (
        csv["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
        and csv["captureData"]["endpointOutput"]["data"] == "1,2"
    )
    assert by_type["application/json"]["captureData"]["endpointInput"]["encoding"] == "JSON"
    binary = by_type["application/x-npy"]["captureData"]["endpointInput"]
    assert binary["encoding"] == "BASE64" and binary["data"] == "AP8="
    time.sleep(1.2)  # one more flush interval: nothing was sampled at 0 %
    assert _captured(router.home, "capture/none") == []


def _lines(home: Path) -> list[str]:
    return [line for f in _captured(home, "capture/all") for line in f.read_text().splitlines()]
