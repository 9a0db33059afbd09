"""Functions end to end against a live server: create checks, sync and async invoke, the warm pool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.errors import InvalidSpec, NotFound, PayloadTooLarge
from kamado.sdk.client import Client
from tests.live_server import LiveServer


def _create(client: Client, code_dir: Path, name: str, handler: str, **extra: Any) -> None:
    client.create_function(
        {"FunctionName": name, "Handler": handler, "Code": {"Uri": client.upload_directory(code_dir)}, **extra}
    )


def test_handler_that_cannot_be_imported_is_refused_at_create(live: LiveServer, code_dir: Path) -> None:
    (code_dir / "broken.py").write_text("import not_a_module_anywhere\ndef h(e, c): pass\n")
    with pytest.raises(InvalidSpec, match="not_a_module_anywhere"):
        _create(live.client, code_dir, "broken", "broken.h")
    with pytest.raises(InvalidSpec, match="missing"):
        _create(live.client, code_dir, "nofunc", "app.missing")
    with pytest.raises(NotFound):
        live.client.get_function("broken")


def test_sync_invoke_result_error_and_context(live: LiveServer, code_dir: Path) -> None:
    _create(live.client, code_dir, "echo", "app.echo", MemorySize=256, Environment={"Variables": {"GREETING": "hi"}})
    out = live.client.invoke_function("echo", {"a": 1})
    assert "FunctionError" not in out
    body = out["Payload"]
    assert body["event"] == {"a": 1} and body["mem"] == 256 and body["env"] == "hi"
    assert body["rid"] == out["RequestId"] and 0 < body["left"] <= 30_000
    assert body["tmp"] == body["cwd"]
    _create(live.client, code_dir, "boom", "app.boom")
    err = live.client.invoke_function("boom", 7)
    assert err["StatusCode"] == 200 and err["FunctionError"] == "Unhandled"
    assert err["Payload"]["errorType"] == "ValueError" and "bad input: 7" in err["Payload"]["errorMessage"]
    assert any("boom" in line for line in err["Payload"]["stackTrace"])


def test_payload_over_the_limit_is_413(live: LiveServer, code_dir: Path) -> None:
    _create(live.client, code_dir, "echo", "app.echo")
    with pytest.raises(PayloadTooLarge):
        live.client.invoke_function("echo", "x" * (6 * 1024 * 1024 + 10))
    resp = httpx.post(f"{live.url}/api/v1/functions/echo/invocations", content=b"{not json")
    assert resp.status_code == 400


def test_timeout_and_memory_kill_fail_the_call_and_the_pool_survives(live: LiveServer, code_dir: Path) -> None:
    _create(live.client, code_dir, "sleepy", "app.sleepy", Timeout=0.5, ReservedConcurrentExecutions=1)
    t0 = time.monotonic()
    out = live.client.invoke_function("sleepy", {"s": 30})
    assert out["FunctionError"] and out["Payload"]["reason"] == "TimedOut"
    assert "timed out after 0.5" in out["Payload"]["errorMessage"]
    assert time.monotonic() - t0 < 10
    assert live.client.invoke_function("sleepy", {"s": 0})["Payload"] == "woke"

    _create(live.client, code_dir, "hog", "app.hog", MemorySize=256, ReservedConcurrentExecutions=1)
    out = live.client.invoke_function("hog", {})
    assert out["FunctionError"] and out["Payload"]["reason"] == "OutOfMemory", out
    assert out["Payload"]["errorType"] == "MemoryError"
    _create(live.client, code_dir, "echo", "app.echo", MemorySize=256, ReservedConcurrentExecutions=1)
    assert live.client.invoke_function("echo", 1)["Payload"]["event"] == 1


def test_scratch_is_clean_for_every_invocation_on_a_warm_worker(live: LiveServer, code_dir: Path) -> None:
    _create(live.client, code_dir, "scratch", "app.scratch", ReservedConcurrentExecutions=1)
    first = live.client.invoke_function("scratch", {})["Payload"]
    second = live.client.invoke_function("scratch", {})["Payload"]
    assert first["pid"] == second["pid"], "the same warm worker served both"
    assert first["seen"] == [] and second["seen"] == [], "nothing of one invocation's scratch reaches the next"


def test_async_retries_then_dead_letter_then_replay(live: LiveServer, code_dir: Path) -> None:
    live.app.state.platform.functions.retry_base_s = 0.05
    _create(live.client, code_dir, "bad", "app.bad_async")
    rid = live.client.invoke_function_async("bad", {"n": 1})
    deadline = time.monotonic() + 30
    while not live.client.list_dead_letters("bad") and time.monotonic() < deadline:
        time.sleep(0.05)
    (letter,) = live.client.list_dead_letters("bad")
    assert letter["RequestId"] == rid and letter["Attempts"] == 3 and letter["Payload"] == {"n": 1}
    assert letter["Error"]["errorType"] == "RuntimeError"
    live.client.replay_dead_letter("bad", rid)
    assert live.client.list_dead_letters("bad") == []
    deadline = time.monotonic() + 30
    while not live.client.list_dead_letters("bad") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.client.list_dead_letters("bad")[0]["RequestId"] == rid

    _create(live.client, code_dir, "echo", "app.echo")
    resp = httpx.post(
        f"{live.url}/api/v1/functions/echo/invocations", json={"z": 1}, headers={"X-Kamado-Invocation-Type": "Event"}
    )
    assert resp.status_code == 202 and resp.headers["X-Kamado-Request-Id"]


def test_platform_is_idle_only_without_queued_work(live: LiveServer, code_dir: Path) -> None:
    platform = live.app.state.platform
    assert platform.idle()
    _create(live.client, code_dir, "sleepy", "app.sleepy")
    live.client.invoke_function_async("sleepy", {"s": 0.3})
    assert not platform.idle()
