"""The console's Pipelines views in a real headless Chromium against a real server with real executions.

One state machine (Pass -> Parallel -> Map -> Choice -> Wait / Fail / Succeed) with a SUCCEEDED, a FAILED
and a RUNNING execution, one whose state names, input and Fail cause carry markup, a schedule and a
trigger; all made through the SDK. Each test opens a view, checks what it shows against the API, clicks
its action and checks the effect through the API. This module brings its own small server (the `console`
fixture below overrides the conftest one, so the shared browser and tab fixtures are reused without the
training/endpoint seed).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kamado.sdk.client import Client
from kamado.sdk.pipelines import Execution, Schedule, StateMachine, Trigger
from tests.live_server import start_server
from tests.web.conftest import Console, Tab, _browser_missing
from tests.web.seed import wait_for

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=window.__xss=1>"

FLOW = {
    "Comment": "Pass, Parallel, Map, then a Choice between waiting, failing and succeeding.",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"ok": True}, "ResultPath": "$.prep", "Next": "Fan out"},
        "Fan out": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "End": True}}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "End": True}}},
            ],
            "ResultPath": "$.branches",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Broken"}],
            "Next": "Each item",
        },
        "Each item": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "Double", "States": {"Double": {"Type": "Pass", "End": True}}},
            "ResultPath": "$.mapped",
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.mode", "StringEquals": "wait", "Next": "Hold"},
                {"Variable": "$.mode", "StringEquals": "fail", "Next": "Broken"},
            ],
            "Default": "Done",
        },
        "Hold": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
        "Broken": {"Type": "Fail", "Error": "BadInput", "Cause": "mode was fail"},
        "Done": {"Type": "Succeed"},
    },
}
TOP = list(FLOW["States"])
XSS_FLOW = {
    "StartAt": XSS,
    "States": {XSS: {"Type": "Pass", "Next": "Stop"}, "Stop": {"Type": "Fail", "Error": "Bad", "Cause": XSS}},
}


def until(page: Any, expression: str, timeout: float = 20.0) -> None:
    """Poll a JS expression from Python (the console's CSP forbids Playwright's string wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Overrides conftest's `console`: a server holding only pipelines, schedules and triggers."""
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    tmp = tmp_path_factory.mktemp("pipelines-console")
    home = tmp / "home"
    server, thread, url, app = start_server(home)
    client = Client(url)
    try:
        flow = StateMachine.create("flow", FLOW, client=client)
        ok = flow.start({"mode": "ok", "items": [1, 2]}, name="ok-run")
        bad = flow.start({"mode": "fail", "items": []}, name="bad-run")
        ok.wait(timeout_s=60)
        bad.wait(timeout_s=60, raise_on_failure=False)
        hold = flow.start({"mode": "wait", "items": [3]}, name="hold-run")
        xss = StateMachine.create("xss-flow", XSS_FLOW, client=client)
        xss.start({"note": XSS}, name="xss-run").wait(timeout_s=60, raise_on_failure=False)
        Schedule.create("daily", "rate(1 day)", "flow", client=client)
        root = client._request("GET", "/api/v1/info")["artifactStore"].rstrip("/")
        Trigger.create("landing", f"{root}/landing", "flow", client=client)
        wait_for(lambda: any(e["type"] == "WaitStateEntered" for e in hold.history()), what="hold-run waiting")
        yield Console(url=url, home=home, client=client, app=app)
    finally:
        client.close()
        server.should_exit = True
        thread.join(30)
        shutil.rmtree(tmp, ignore_errors=True)


def _statuses(page: Any) -> dict[str, str]:
    return {
        g.get_attribute("data-state"): g.get_attribute("data-status")
        for g in page.query_selector_all("svg.state-graph g.state-node")
    }


def test_state_machine_page_draws_the_graph_and_lists_executions(console: Console, tab: Tab) -> None:
    page = tab.open("/pipelines")
    assert "Pipelines" in page.inner_text("#nav") and "not built yet" not in page.inner_text("#nav")
    assert [r.get_attribute("data-sm") for r in page.query_selector_all("tbody tr")] == ["flow", "xss-flow"]
    page.click("a:text-is('flow')")
    page.wait_for_selector("#view[data-state=ready] svg.state-graph")
    assert set(_statuses(page)) == set(TOP)
    inner = [t.text_content() for t in page.query_selector_all("svg.state-graph text.inner-state")]
    assert [i.split()[0] for i in inner] == ["Left", "Right", "Double"]
    labels = page.eval_on_selector_all("svg.state-graph text.edge-label", "els => els.map(e => e.textContent)")
    assert {"Default", '$.mode == "wait"', '$.mode == "fail"'} <= set(labels)
    edges = {(p.get_attribute("data-from"), p.get_attribute("data-to")) for p in page.query_selector_all("path.edge")}
    assert {("Route", "Hold"), ("Route", "Broken"), ("Route", "Done"), ("Hold", "Done"), ("Fan out", "Broken")} <= edges
    assert "Catch States.ALL" in labels
    # Executions, newest first, as the API lists them.
    listed = [r.get_attribute("data-execution") for r in page.query_selector_all("#executions tbody tr")]
    api = [e["name"] for e in console.get("/api/v1/state-machines/flow/executions")["executions"]]
    assert listed == api and set(listed) >= {"ok-run", "bad-run", "hold-run"}
    assert listed.index("hold-run") < listed.index("ok-run")
    page.select_option("#exec-status", "FAILED")
    until(page, "location.hash.includes('status=FAILED')")
    page.wait_for_selector("#view[data-state=ready]")
    until(page, "document.querySelectorAll('#executions tbody tr').length === 1")
    assert page.get_attribute("#executions tbody tr", "data-execution") == "bad-run"
    # Paging follows the server's nextToken.
    page = tab.open("/pipelines/flow?size=2")
    first = [r.get_attribute("data-execution") for r in page.query_selector_all("#executions tbody tr")]
    page.click("#next-page")
    until(page, "location.hash.includes('token=')")
    page.wait_for_selector("#view[data-state=ready] #first-page")
    second = [r.get_attribute("data-execution") for r in page.query_selector_all("#executions tbody tr")]
    assert first + second == api[:4] and len(first) == 2
    # What starts it on its own.
    targets = {r.get_attribute("data-target") for r in page.query_selector_all("tr[data-target]")}
    assert targets == {"daily", "landing"}
    page = tab.open("/pipelines/flow")
    tab.shot("pipeline")


def test_succeeded_execution_colours_states_and_shows_their_input_and_output(console: Console, tab: Tab) -> None:
    page = tab.open("/pipelines/flow/executions/ok-run")
    statuses = _statuses(page)
    assert statuses == {n: "notreached" if n in ("Hold", "Broken") else "succeeded" for n in TOP}
    assert page.query_selector(".page-head .badge[data-status=SUCCEEDED]") is not None
    page.click("svg.state-graph g.state-node[data-state=Prepare]")
    panel = page.inner_text("#state-panel")
    assert "Prepare" in panel
    assert '"mode": "ok"' in page.inner_text("#state-panel .state-input")
    assert '"prep": {\n    "ok": true\n  }' in page.inner_text("#state-panel .state-output")
    # A state inside the Map ran twice: both visits are listed.
    page.click("svg.state-graph text.inner-state[data-state=Double]")
    assert "Visit 2 of 2" in page.inner_text("#state-panel")
    events = console.client._request("GET", "/api/v1/state-machines/flow/executions/ok-run/history")["events"]
    rows = page.query_selector_all("tr[data-event]")
    assert [r.get_attribute("data-type") for r in rows] == [e["type"] for e in events]
    assert "GMT+9" in rows[0].inner_text()  # the user's time zone (Asia/Tokyo on this context)
    assert "input: {" in page.inner_text("tr[data-type=PassStateEntered]")
    page.click("svg.state-graph g.state-node[data-state=Route]")
    tab.shot("pipeline-execution")


def test_failed_execution_shows_error_cause_and_the_failing_state(console: Console, tab: Tab) -> None:
    page = tab.open("/pipelines/flow/executions/bad-run")
    error = page.inner_text("#exec-error")
    assert "BadInput" in error and "mode was fail" in error
    statuses = _statuses(page)
    assert statuses["Broken"] == "failed" and statuses["Route"] == "succeeded" and statuses["Hold"] == "notreached"
    assert "Broken" in page.inner_text("#failed-state")
    assert page.query_selector("tr[data-type=ExecutionFailed] .bad-text") is not None


def test_stop_a_running_execution_from_its_page(console: Console, tab: Tab) -> None:
    page = tab.open("/")
    running = page.inner_text("section:has(h2:text('Running now'))")
    assert "Pipeline execution" in running and "flow / hold-run" in running
    page.click("a:text-is('flow / hold-run')")
    until(page, "location.hash === '#/pipelines/flow/executions/hold-run'")
    page.wait_for_selector("#view[data-state=ready] svg.state-graph")
    statuses = _statuses(page)
    assert statuses["Hold"] == "running" and statuses["Route"] == "succeeded" and statuses["Done"] == "notreached"
    page.on("dialog", lambda d: d.accept())
    page.click("#stop-btn")
    wait_for(
        lambda: Execution("flow", "hold-run", client=console.client).status == "ABORTED",
        what="hold-run aborted",
    )
    page.wait_for_selector(".page-head .badge[data-status=ABORTED]", timeout=20_000)
    assert _statuses(page)["Hold"] == "aborted" and page.query_selector("#stop-btn") is None


def test_start_an_execution_from_the_form(console: Console, tab: Tab) -> None:
    def count() -> int:
        return len(console.get("/api/v1/state-machines/flow/executions", maxResults=100)["executions"])

    before = count()
    page = tab.open("/pipelines/flow")
    page.fill("#exec-input", '{"mode": "ok", "items": [1,')
    page.click("#start-btn")
    assert "not valid JSON" in page.inner_text("#start-error")
    assert count() == before and page.evaluate("location.hash") == "#/pipelines/flow"
    page.fill("#exec-input", '{"mode": "ok", "items": [7], "from": "console"}')
    page.fill("#exec-name", "from-console")
    page.click("#start-btn")
    until(page, "location.hash === '#/pipelines/flow/executions/from-console'")
    out = Execution("flow", "from-console", client=console.client).wait(timeout_s=60)
    assert out["from"] == "console" and out["mapped"] == [7] and count() == before + 1
    page.wait_for_selector(".page-head .badge[data-status=SUCCEEDED]", timeout=20_000)
    # The same name again: the server's refusal is shown in place, nothing new is created.
    page = tab.open("/pipelines/flow")
    page.fill("#exec-input", '{"other": 1}')
    page.fill("#exec-name", "from-console")
    page.click("#start-btn")
    page.wait_for_selector("#start-error .error")
    assert "already exists" in page.inner_text("#start-error") and count() == before + 1


def test_schedules_and_triggers_list_and_disable(console: Console, tab: Tab) -> None:
    page = tab.open("/schedules")
    row = page.inner_text("tr[data-schedule=daily]")
    api = console.get("/api/v1/schedules/daily")
    assert "rate(1 day)" in row and "ENABLED" in row and api["NextFireTime"]
    assert "GMT+9" in row  # the next fire, in the user's time zone
    assert "landing" in page.inner_text("tr[data-trigger=landing]")
    tab.shot("schedules")
    page.click("tr[data-schedule=daily] button")
    wait_for(lambda: console.get("/api/v1/schedules/daily")["State"] == "DISABLED", what="daily disabled")
    page.wait_for_selector("tr[data-schedule=daily][data-state=DISABLED]")
    assert console.get("/api/v1/schedules/daily")["NextFireTime"] is None
    page.click("tr[data-trigger=landing] button")
    wait_for(lambda: console.get("/api/v1/triggers/landing")["State"] == "DISABLED", what="landing disabled")
    page.click("tr[data-schedule=daily] button")
    wait_for(lambda: console.get("/api/v1/schedules/daily")["State"] == "ENABLED", what="daily enabled again")


def test_markup_in_state_names_input_and_cause_is_rendered_as_text(console: Console, tab: Tab) -> None:
    page = tab.open("/pipelines/xss-flow")
    names = page.eval_on_selector_all("svg.state-graph g.state-node", "gs => gs.map(g => g.dataset.state)")
    assert XSS in names
    assert "<img src=x" in page.text_content("svg.state-graph")
    page = tab.open("/pipelines/xss-flow/executions/xss-run")
    assert XSS in page.inner_text("#exec-input-text") and XSS in page.inner_text("#exec-error")
    page.click(f"svg.state-graph g.state-node[data-state='{XSS}']")
    assert XSS in page.inner_text("#state-panel")
    assert XSS in page.inner_text("tr[data-type=PassStateEntered]")
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None
    assert page.query_selector("img[src=x]") is None
