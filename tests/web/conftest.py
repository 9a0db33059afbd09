"""One real server with real data and one headless Chromium, shared by every console test in the module.

The data is made through the public API only: training jobs (done, running, failed), a tuning job with
failing trials, two endpoints (one split across two variants, one held mid-canary), a map run with
failed items and a processing job.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.sdk.client import Client
from kamado.testing.hosting import stop_hosting_processes
from tests.live_server import start_server
from tests.web import seed

CHROMIUM = "/usr/bin/chromium"
#: Screenshots go to docs/screenshots/ only when asked (KAMADO_SCREENSHOTS=1), so a test run leaves the
#: tree clean; otherwise they are still taken (the page must render) but into the test's temp dir.
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (Debian's package)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install playwright (no `playwright install` needed)"
    return None


@dataclass
class Console:
    url: str
    home: Path
    client: Client
    app: Any
    names: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, **params: Any) -> Any:
        return seed.get(self.url, path, **params)


def seed_platform(c: Client, url: str, tmp: Path) -> dict[str, str]:
    """Create every resource the console tests look at; returns their names. Slow steps run together."""
    from tests.functions.conftest import HANDLERS
    from tests.hosting.endpoint_kit import make_kit

    uri = seed.upload_source(c, tmp / "train", seed.TRAIN)
    post = c._request
    post("POST", "/api/v1/training-jobs", json=seed.training_request("tj-good", uri, lr='"0.2"', epochs='"40"'))
    post("POST", "/api/v1/training-jobs", json=seed.training_request("tj-other", uri, lr='"0.05"', epochs='"40"'))
    post("POST", "/api/v1/training-jobs", json=seed.training_request("tj-long", uri, sleep='"0.5"', epochs='"240"'))
    fail_uri = seed.upload_source(c, tmp / "fail", seed.FAIL)
    bad = seed.training_request("tj-xss", fail_uri, note=f'"{seed.XSS.replace(chr(34), chr(39))}"')
    post("POST", "/api/v1/training-jobs", json=bad)
    post("POST", "/api/v1/training-jobs", json=seed.training_request("big-series", uri, epochs='"2"'))
    q_uri = seed.upload_source(c, tmp / "tune", seed.TUNED_FAILING)
    post("POST", "/api/v1/tuning-jobs", json=seed.tuning_with_failures("hpo", q_uri))

    fn_dir = tmp / "fn"
    fn_dir.mkdir()
    (fn_dir / "app.py").write_text(HANDLERS)
    c.upload_directory(fn_dir)
    from kamado.sdk.functions import Function

    square = Function.create("square", fn_dir, "app.square", client=c)
    square.map([{"x": 1}, {"x": "a"}, {"x": 3}, {"x": "b"}, {"x": 5}], name="squares", max_attempts=1)
    post(
        "POST",
        "/api/v1/processing-jobs",
        json={
            "ProcessingJobName": "prep",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1}},
            "AppSpecification": {"ContainerEntrypoint": [sys.executable, "-c", "print('processed 3 files')"]},
        },
    )

    kit = make_kit(c, tmp / "kit")
    kit.model("m-blue")
    kit.model("m-green", KIT_VERSION="green")
    kit.config("split", [seed.variant("Blue", "m-blue"), seed.variant("Green", "m-green")])
    kit.config("v1", [seed.variant("AllTraffic", "m-blue")])
    kit.config("v2", [seed.variant("AllTraffic", "m-green")])
    kit.model("m-xss", KIT_VERSION=seed.XSS)  # its answers carry markup: the test-invoke box must show text
    kit.config("xss", [seed.variant("AllTraffic", "m-xss")])
    kit.endpoint("ep-split", "split")
    kit.endpoint("ep-canary", "v1")
    kit.endpoint("ep-xss", "xss")
    kit.wait("ep-split")
    kit.wait("ep-canary")
    kit.wait("ep-xss")
    runtime = kit.runtime()
    with httpx.Client(timeout=10) as http:
        for _ in range(12):
            http.post(f"{runtime}/endpoints/ep-split/invocations", content=b"[[5.1, 3.5, 1.4, 0.2]]")
            http.post(f"{runtime}/endpoints/ep-canary/invocations", content=b"[[5.1, 3.5, 1.4, 0.2]]")
    post(
        "POST",
        "/api/v1/endpoints/ep-canary/update",
        json={"EndpointConfigName": "v2", "DeploymentConfig": seed.CANARY_HELD},
    )

    for name in ("tj-good", "tj-other", "tj-xss", "big-series"):
        c.wait_for_training_job(name, poll_s=0.1, timeout_s=90)
    seed.wait_for(
        lambda: seed.get(url, "/api/v1/tuning-jobs/hpo")["HyperParameterTuningJobStatus"] != "InProgress",
        what="tuning job hpo",
    )
    seed.wait_for(lambda: seed.get(url, "/api/v1/map-runs/squares")["Status"] != "InProgress", what="map run")
    seed.wait_for(
        lambda: seed.get(url, "/api/v1/processing-jobs/prep")["ProcessingJobStatus"] != "InProgress",
        what="processing job",
    )
    seed.wait_for(
        lambda: (
            (seed.get(url, "/api/v1/endpoints/ep-canary").get("PendingDeploymentSummary") or {}).get("Phase")
            == "Baking"
        ),
        what="ep-canary baking",
    )
    return {"map_run": "squares"}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("console")
    home = tmp / "home"
    server, thread, url, app = start_server(home)
    # What `kamado server` writes once it listens; the router reads its url to allow the console's origin
    # (the test-invoke box). start_server runs the app in a thread without that step.
    (home / "server.json").write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time()}))
    client = Client(url)
    try:
        names = seed_platform(client, url, tmp)
        yield Console(url=url, home=home, client=client, app=app, names=names)
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        stop_hosting_processes(home)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(console: Console) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    """A page plus what went wrong on it: uncaught errors and console errors fail the test."""

    page: Any
    url: str
    shots: Path
    errors: list[str] = field(default_factory=list)

    def open(self, route: str) -> Any:
        self.page.goto(f"{self.url}/#{route}")
        self.page.wait_for_selector("#view[data-state=ready], #view[data-state=error]", timeout=20_000)
        return self.page

    def shot(self, name: str) -> None:
        self.shots.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture
def tab(browser: Any, console: Console, tmp_path: Path) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="Asia/Tokyo", locale="en-US")
    page = context.new_page()
    shots = DOC_SCREENSHOTS if os.environ.get("KAMADO_SCREENSHOTS") == "1" else tmp_path / "screenshots"
    t = Tab(page=page, url=console.url, shots=shots)
    page.on("pageerror", lambda e: t.errors.append(f"uncaught: {e}"))
    # A refused or missing API call is logged by Chromium as "Failed to load resource"; the error-state
    # tests cause those on purpose. Anything else logged as an error (a CSP violation, say) fails the test.
    page.on(
        "console",
        lambda m: (
            t.errors.append(f"console.{m.type}: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    try:
        yield t
    finally:
        context.close()
    assert not t.errors, t.errors
