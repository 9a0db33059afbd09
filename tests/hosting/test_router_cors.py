"""CORS on a real router process: the control plane's own origin may call the invoke path from a browser
(preflight and the call itself), any other origin may not, and nothing else gets CORS headers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kamado.hosting.cors import ALLOW_HEADERS, ConsoleOrigins, origin_of
from tests.hosting.test_router_support import (  # noqa: F401  (echo_fixture registers the fixture)
    LiveRouter,
    Worker,
    echo_fixture,
    endpoint,
    running_router,
    table,
    variant,
)

CONSOLE = "http://127.0.0.1:8765"
EXTRA = "https://console.example.org"
EVIL = "http://evil.example"


def _write_server_json(home: Path, url: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / "server.json.tmp"
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": 0}))
    os.replace(tmp, home / "server.json")


@pytest.fixture(scope="module")
def cors_router(tmp_path_factory: pytest.TempPathFactory, echo: Worker) -> Iterator[LiveRouter]:
    home = tmp_path_factory.mktemp("cors-home")
    _write_server_json(home, CONSOLE)
    mp = pytest.MonkeyPatch()
    mp.setenv("KAMADO_CONSOLE_ORIGINS", f"{EXTRA}, not a url")  # the router process inherits it
    try:
        with running_router(home) as live:
            live.admin.publish(table(endpoint("ep-cors", variant("Blue", echo))))
            yield live
    finally:
        mp.undo()


def _preflight(router: LiveRouter, origin: str, path: str = "/endpoints/ep-cors/invocations") -> httpx.Response:
    return httpx.options(
        router.url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-amzn-sagemaker-target-variant",
        },
    )


@pytest.mark.parametrize("origin", [CONSOLE, "http://localhost:8765", "http://[::1]:8765", EXTRA])
def test_preflight_from_the_console_is_allowed(cors_router: LiveRouter, origin: str) -> None:
    r = _preflight(cors_router, origin)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == origin  # the origin itself, never "*"
    assert r.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert allowed == {
        "authorization",
        "content-type",
        "accept",
        "x-amzn-sagemaker-target-variant",
        "x-amzn-sagemaker-custom-attributes",
    }
    assert "Origin" in r.headers["vary"]


@pytest.mark.parametrize("origin", [EVIL, "http://127.0.0.1:8766", "https://127.0.0.1:8765", "null"])
def test_preflight_from_another_origin_gets_no_allowance(cors_router: LiveRouter, origin: str) -> None:
    r = _preflight(cors_router, origin)
    assert r.status_code == 403
    assert not any(k.startswith("access-control-") for k in r.headers)


def test_invocation_from_the_console_can_be_read_and_others_cannot(cors_router: LiveRouter) -> None:
    url = cors_router.invoke_url("ep-cors")
    ok = httpx.post(url, content=b'{"x": 1}', headers={"Origin": CONSOLE, "Content-Type": "application/json"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == CONSOLE
    assert "X-Amzn-Invoked-Production-Variant" in ok.headers["access-control-expose-headers"]
    assert ok.headers["x-amzn-invoked-production-variant"] == "Blue"
    # An error answer (no such endpoint) is readable by the console too, so it can show why.
    missing = httpx.post(cors_router.invoke_url("nope"), content=b"{}", headers={"Origin": CONSOLE})
    assert missing.status_code >= 400 and missing.headers["access-control-allow-origin"] == CONSOLE
    for headers in ({"Origin": EVIL}, {}):  # another site, and a plain client (SDK, curl)
        r = httpx.post(url, content=b'{"x": 1}', headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 200 and r.headers["x-amzn-invoked-production-variant"] == "Blue"
        assert not any(k.startswith("access-control-") for k in r.headers)


def test_only_the_invoke_path_gets_cors(cors_router: LiveRouter) -> None:
    for path in ("/ping", "/metrics", "/_kamado/stats"):
        r = httpx.get(cors_router.url + path, headers={"Origin": CONSOLE})
        assert "access-control-allow-origin" not in r.headers, path
    r = _preflight(cors_router, CONSOLE, "/_kamado/routes")
    assert "access-control-allow-origin" not in r.headers


def test_a_restarted_control_plane_on_another_port_is_allowed_at_once(cors_router: LiveRouter) -> None:
    home = cors_router.home
    try:
        _write_server_json(home, "http://127.0.0.1:9999")
        assert _preflight(cors_router, "http://localhost:9999").status_code == 204
        assert _preflight(cors_router, CONSOLE).status_code == 403
        (home / "server.json").unlink()  # control plane stopped: only the configured extra origin is left
        assert _preflight(cors_router, CONSOLE).status_code == 403
        assert _preflight(cors_router, EXTRA).status_code == 204
    finally:
        _write_server_json(home, CONSOLE)


def test_origin_parsing() -> None:
    assert origin_of("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert origin_of("HTTP://Example.ORG:80/x") == "http://example.org"
    assert origin_of("https://example.org:443") == "https://example.org"
    assert origin_of("http://[::1]:8765") == "http://[::1]:8765"
    assert origin_of("ftp://example.org") is None and origin_of("*") is None and origin_of("http://h:99999") is None
    assert b"*" not in ALLOW_HEADERS


def test_server_bound_to_all_interfaces_allows_only_what_is_configured(tmp_path: Path) -> None:
    _write_server_json(tmp_path, "http://0.0.0.0:8765")
    origins = ConsoleOrigins.for_home(tmp_path, {"KAMADO_CONSOLE_ORIGINS": "http://ml-box.lan:8765"})
    assert origins.current() == {"http://0.0.0.0:8765", "http://ml-box.lan:8765"}
    assert not origins.allows("http://localhost:8765")
