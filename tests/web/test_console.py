"""The console in a real headless Chromium against a real server with real jobs, endpoints and map runs.

Each test opens a view, checks what it shows against the API, clicks its main action and checks the
effect through the API. Screenshots of each view land in docs/screenshots/.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.live_server import start_server
from tests.web.conftest import Console, Tab
from tests.web.seed import wait_for

pytestmark = pytest.mark.browser


def until(page: Any, expression: str, timeout: float = 20.0) -> None:
    """Poll a JS expression from Python. (Playwright's own wait_for_function evaluates strings in the page,
    which the console's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def _rows(page: Any, selector: str = "table.grid tbody tr") -> list[str]:
    return [r.inner_text() for r in page.query_selector_all(selector)]


def test_home_shows_running_failed_endpoints_and_capacity(console: Console, tab: Tab) -> None:
    page = tab.open("/")
    text = page.inner_text("#view")
    assert "tj-long" in page.inner_text("section:has(h2:text('Running now'))")
    failed = page.inner_text("section:has(h2:text('Failed recently'))")
    assert "tj-xss" in failed and "bad data" in failed, (
        failed,
        [
            j["TrainingJobName"]
            for j in console.get("/api/v1/training-jobs", StatusEquals="Failed")["TrainingJobSummaries"]
        ],
        console.get("/api/v1/training-jobs/tj-xss")["TrainingJobStatus"],
    )
    endpoints = page.inner_text("section:has(h2:text('Endpoints'))")
    assert "ep-split" in endpoints and "ep-canary" in endpoints and "deploying: Baking" in endpoints
    cpus = console.get("/api/v1/info")["capacity"]["cpus"]
    assert f"CPUs\n{cpus:g}" in text
    tab.shot("home")


def test_training_list_filters_sorts_and_pages_on_the_server(console: Console, tab: Tab) -> None:
    tab.open("/training")
    tab.shot("training-list")
    page = tab.open("/training?status=Completed")
    names = [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")]
    completed = console.get("/api/v1/training-jobs", StatusEquals="Completed", MaxResults=100)["TrainingJobSummaries"]
    assert names == [j["TrainingJobName"] for j in completed] and "tj-good" in names and "tj-long" not in names
    # Filter by name through the form, then sort by name ascending.
    page.fill("input[name=name]", "tj-")
    page.select_option("select[name=status]", "")
    page.select_option("select[name=sort]", "Name")
    page.select_option("select[name=order]", "Ascending")
    page.click("#job-filters button[type=submit]")
    until(page, "location.hash.includes('sort=Name')")
    page.wait_for_selector("#view[data-state=ready]")
    names = [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")]
    assert names == sorted(names) and set(names) == {"tj-good", "tj-other", "tj-long", "tj-xss"}
    # Pagination: two per page, "Next" follows the server's NextToken.
    page = tab.open("/training?size=2&sort=Name&order=Ascending&name=tj-")
    first = [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")]
    page.click("#next-page")
    until(page, "document.querySelector('tbody tr[data-job=tj-other]') !== null")
    second = [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")]
    assert first == ["tj-good", "tj-long"] and second == ["tj-other", "tj-xss"]
    # Empty state.
    page = tab.open("/training?name=no-such-job")
    assert "No training job matches these filters." in page.inner_text("#view")


def test_job_page_shows_timeline_hyperparameters_metrics_logs_and_lineage(console: Console, tab: Tab) -> None:
    page = tab.open("/training/tj-good")
    desc = console.get("/api/v1/training-jobs/tj-good")
    timeline = page.inner_text("section:has(h2:text('Status timeline'))")
    for t in desc["SecondaryStatusTransitions"]:
        assert t["Status"] in timeline
    hp = page.inner_text("section:has(h2:text('Hyperparameters'))")
    assert "lr\n0.2" in hp.replace("\t", "\n")
    figures = page.query_selector_all("figure.chart-box")
    assert sorted(f.query_selector("figcaption").inner_text().split()[0] for f in figures) == ["acc", "loss"]
    assert all(f.get_attribute("data-total") == "40" for f in figures)
    until(page, "document.querySelector('#log-tail').textContent.includes('epoch=39')")
    logs = page.inner_text("#log-tail")
    assert "<b>log line with markup</b>" in logs  # shown as text, not as bold markup
    assert desc["Lineage"]["SourceHash"] in page.inner_text("section:has(h2:text('Lineage'))")
    # Times are shown in the browser's time zone (Asia/Tokyo here, set on the context).
    assert "GMT+9" in page.inner_text("section:has(h2:text('Summary'))")
    tab.shot("training-job")


def test_stop_a_running_job_from_its_page(console: Console, tab: Tab) -> None:
    page = tab.open("/training/tj-long")
    page.on("dialog", lambda d: d.accept())
    page.click("#stop-btn")
    wait_for(
        lambda: console.get("/api/v1/training-jobs/tj-long")["TrainingJobStatus"] in ("Stopping", "Stopped"),
        what="tj-long stopping",
    )
    page.wait_for_selector(".page-head .badge[data-status=Stopping], .page-head .badge[data-status=Stopped]")


def test_rerun_creates_a_new_job_from_the_same_spec(console: Console, tab: Tab) -> None:
    page = tab.open("/training/tj-other")
    page.fill("#rerun-name", "tj-other-again")
    page.click("#rerun-btn")
    until(page, "location.hash === '#/training/tj-other-again'")
    page.wait_for_selector("#view[data-state=ready]")
    new = console.client.wait_for_training_job("tj-other-again", poll_s=0.1, timeout_s=60)
    old = console.get("/api/v1/training-jobs/tj-other")
    assert new["HyperParameters"] == old["HyperParameters"] and new["TrainingJobStatus"] == "Completed"
    page.wait_for_selector(".page-head h1:text('tj-other-again')")


def test_compare_two_jobs_side_by_side(console: Console, tab: Tab) -> None:
    page = tab.open("/training?name=tj-&status=Completed")
    page.check("input.pick[value=tj-good]")
    page.check("input.pick[value=tj-other]")
    page.click("#compare-btn")
    until(page, "location.hash.startsWith('#/training/compare')")
    page.wait_for_selector("#view[data-state=ready] tr.differs")
    differs = _rows(page, "tr.differs")
    assert any(r.startswith("lr") and "0.2" in r and "0.05" in r for r in differs)
    assert not any(r.startswith("epochs") for r in differs)  # the same in both: not highlighted
    curves = page.query_selector_all("section:has(h2:text('Metric curves')) figure")
    assert len(curves) == 2 and all(len(f.query_selector_all("polyline.series")) == 2 for f in curves)
    tab.shot("training-compare")


def test_tuning_page_plots_trials_and_marks_failed_ones(console: Console, tab: Tab) -> None:
    page = tab.open("/tuning/hpo")
    trials = console.get("/api/v1/tuning-jobs/hpo/training-jobs")["TrainingJobSummaries"]
    failed = {t["TrainingJobName"] for t in trials if t["TrainingJobStatus"] == "Failed"}
    assert failed and len(failed) < len(trials), "the seed should give some failed and some completed trials"
    rows = page.query_selector_all("tr.trial-row")
    assert len(rows) == len(trials)
    assert {r.get_attribute("data-trial") for r in rows if r.get_attribute("data-status") == "failed"} == failed
    assert len(page.query_selector_all("svg .trial-failed")) == len(failed)
    assert len(page.query_selector_all("svg .trial-ok")) == len(trials) - len(failed)
    assert page.query_selector("svg polyline.best-line") is not None
    assert len(page.query_selector_all("svg polyline.pc-line")) == len(trials)
    best = console.get("/api/v1/tuning-jobs/hpo")["BestTrainingJob"]["TrainingJobName"]
    assert page.query_selector("tr.best").get_attribute("data-trial") == best
    tab.shot("tuning-job")


def test_endpoint_mid_canary_shows_the_deployment(console: Console, tab: Tab) -> None:
    page = tab.open("/endpoints/ep-canary")
    dep = page.inner_text("#deployment")
    assert "Baking" in dep and "10%" in dep and "v2" in dep
    assert page.inner_text("ol.stepper li.current") == "Traffic shifted, baking"
    variant = page.inner_text("tr[data-variant=AllTraffic]")
    assert "AllTraffic" in variant and "1 / 1" in variant
    assert page.query_selector("#invoke-form") is not None
    tab.shot("endpoint-canary")


def _invoke(page: Any, body: str, *, variant: str = "", content_type: str = "application/json") -> dict[str, str]:
    page.wait_for_selector("#invoke-form")
    page.select_option("#invoke-type", content_type)
    page.select_option("#invoke-variant", variant)
    page.fill("#invoke-body", body)
    page.click("#invoke-btn")
    page.wait_for_selector("#invoke-status, #invoke-result .error", timeout=20_000)
    error = page.query_selector("#invoke-result .error")
    assert error is None, error.inner_text()
    used = page.query_selector("#invoke-variant-used")
    return {
        "status": page.get_attribute("#invoke-status", "data-status") or "",
        "line": page.inner_text("#invoke-status"),
        "variant": used.inner_text() if used else "",
        "response": page.inner_text("#invoke-response"),
    }


def test_test_invoke_box_calls_the_router_and_shows_the_answer(console: Console, tab: Tab) -> None:
    page = tab.open("/endpoints/ep-split")
    target = page.inner_text("#test-invoke code")
    assert target.startswith("http://127.0.0.1:") and target.endswith("/endpoints/ep-split/invocations")
    out = _invoke(page, "[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]", variant="Green")
    assert out["status"] == "200" and "ms" in out["line"]
    assert out["variant"] == "Green"
    assert '"version": "green"' in out["response"] and '"labels": [' in out["response"]
    tab.shot("endpoint-invoke")
    out = _invoke(page, "[[5.1, 3.5, 1.4, 0.2]]", variant="Blue")
    assert out["variant"] == "Blue" and '"version": "v1"' in out["response"]
    # A refusal from the router is shown too (status and its message), not swallowed.
    out = _invoke(page, "not,a,number", variant="Blue", content_type="text/csv")
    assert int(out["status"]) >= 400 and "Message" in out["response"], out
    assert page.query_selector("#invoke-status.bad") is not None


def test_test_invoke_sends_the_console_token_as_bearer(console: Console, tab: Tab) -> None:
    token = (console.home / "admin.token").read_text().strip()  # a real one: the page's API calls use it too
    tab.page.add_init_script(f"sessionStorage.setItem('kamado.token', {token!r})")
    page = tab.open("/endpoints/ep-split")
    with page.expect_request("**/endpoints/ep-split/invocations") as caught:
        _invoke(page, "5.1,3.5,1.4,0.2", variant="Blue", content_type="text/csv")
    sent = caught.value.headers
    assert sent["authorization"] == f"Bearer {token}"  # exactly as api.js sends it to the control plane
    assert sent["content-type"] == "text/csv" and sent["x-amzn-sagemaker-target-variant"] == "Blue"


def test_test_invoke_shows_markup_in_an_answer_as_text(console: Console, tab: Tab) -> None:
    page = tab.open("/endpoints/ep-xss")
    out = _invoke(page, "[[5.1, 3.5, 1.4, 0.2]]")
    assert out["status"] == "200" and "<img src=x onerror=" in out["response"]
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None
    assert page.query_selector("img[src=x]") is None


def test_shift_traffic_changes_the_weights(console: Console, tab: Tab) -> None:
    page = tab.open("/endpoints/ep-split")
    invocations = page.inner_text("tr[data-variant=Blue]")
    assert "Blue" in invocations
    page.fill("input[name=weight-Blue]", "3")
    page.fill("input[name=weight-Green]", "1")
    page.click("#shift-btn")

    def weights() -> dict[str, float] | None:
        desc = console.get("/api/v1/endpoints/ep-split")
        w = {v["VariantName"]: v["CurrentWeight"] for v in desc["ProductionVariants"]}
        return w if desc["EndpointStatus"] == "InService" and w == {"Blue": 3.0, "Green": 1.0} else None

    wait_for(weights, what="weights 3:1")
    until(page, "document.querySelector('tr[data-variant=Blue]').textContent.includes('(75%)')")
    tab.shot("endpoint")


def test_map_run_shows_failed_items_and_redrives_them(console: Console, tab: Tab) -> None:
    page = tab.open("/batch")
    assert page.query_selector("table.grid .progress .seg.bad") is not None
    assert "prep" in page.inner_text("section:has(h2:text('Processing jobs'))")
    tab.shot("batch")
    page = tab.open("/map-runs/squares")
    page.wait_for_selector("section:has(h2:text('Failed items')) tbody tr")
    failed = _rows(page, "section:has(h2:text('Failed items')) tbody tr")
    assert [r.split("\t")[0] for r in failed] == ["1", "3"] and all("TypeError" in r for r in failed)
    assert "succeeded 3" in page.inner_text(".counts") and "failed 2" in page.inner_text(".counts")
    tab.shot("map-run")
    page.click("#redrive-btn")
    wait_for(lambda: console.get("/api/v1/map-runs/squares")["Redrives"] == 1, what="redrive")


def test_user_content_is_rendered_as_text_never_as_markup(console: Console, tab: Tab) -> None:
    page = tab.open("/training/tj-xss")
    until(page, "document.querySelector('#log-tail').textContent.includes('about to fail')")
    reason = page.inner_text("div.error")
    assert "<img src=x onerror=" in reason  # the FailureReason, literally
    assert "onerror=" in page.inner_text("section:has(h2:text('Hyperparameters'))")
    page = tab.open("/")
    assert "<img src=x" in page.inner_text("section:has(h2:text('Failed recently'))")
    time.sleep(0.3)
    assert page.evaluate("window.__xss") is None
    assert page.query_selector("img[src=x]") is None


def test_errors_and_unknown_pages(console: Console, tab: Tab) -> None:
    page = tab.open("/training/no-such-job")
    assert page.get_attribute("#view", "data-state") == "error"
    assert "404" in page.inner_text("#view .error") and "no-such-job" in page.inner_text("#view .error")
    page = tab.open("/nowhere")
    assert "Page not found" in page.inner_text("#view")
    page = tab.open("/pipelines/no-such-machine")
    assert page.get_attribute("#view", "data-state") == "error"
    assert "no-such-machine" in page.inner_text("#view .error")


def test_a_100k_point_series_is_downsampled_and_renders(console: Console, tab: Tab) -> None:
    from kamado.store.records import MetricPoint

    n = 100_000
    points = [MetricPoint("throughput", 1000 + (i % 977) * 0.1 + i * 0.001, 1.7e9 + i, i) for i in range(n)]
    console.app.state.platform.store.append_metrics("training-job", "big-series", points)
    fetched: list[tuple[str, int]] = []
    tab.page.on("response", lambda r: fetched.append((r.url, len(r.body()))) if "/metrics" in r.url else None)
    started = time.monotonic()
    page = tab.open("/training/big-series")
    fig = page.wait_for_selector("figure.chart-box[data-total='100000']", timeout=30_000)
    took = time.monotonic() - started
    drawn = int(fig.get_attribute("data-points"))
    assert 100 < drawn <= 2000, drawn  # LTTB: about two points per pixel column, not 100,000 SVG vertices
    assert "100,000 points" in fig.inner_text()
    # Thinned on the server: the browser received about a chart's worth of points, not 100,000 (~8 MB).
    series = [(url, size) for url, size in fetched if "MetricName=throughput" in url]
    assert series and all("MaxPoints=" in url and size < 300_000 for url, size in series), series
    assert took < 30  # a loose bound: rendering time is measured in benchmarks/b12_console.py
    tab.shot("training-job-100k")


def test_a_401_opens_the_token_prompt_and_the_token_is_sent_as_bearer(browser: Any, tmp_path: Path) -> None:
    """Against a server that requires tokens (auth=required): the page loads, the first API call gets 401,
    the prompt asks for a token, a wrong one is refused, the right one is kept for the tab and sent."""
    home = tmp_path / "auth-home"
    server, thread, url, _app = start_server(home, auth="required")
    token = (home / "admin.token").read_text().strip()
    context = browser.new_context()
    page = context.new_page()
    sent: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda r: (
            sent.append((r.url.split("/api/v1", 1)[1], r.headers.get("authorization"))) if "/api/v1/" in r.url else None
        ),
    )
    try:
        page.goto(url + "/#/training")
        page.wait_for_selector("#auth-dialog[open]")
        page.fill("#auth-token", "not-a-token")
        page.click("#auth-submit")
        page.wait_for_selector("#auth-dialog[open]")
        until(page, "document.querySelector('#auth-reason').textContent.includes('refused')")
        page.fill("#auth-token", token)
        page.click("#auth-submit")
        page.wait_for_selector("#view[data-state=ready]")
        assert "No training jobs yet" in page.inner_text("#view")
        assert page.evaluate("sessionStorage.getItem('kamado.token')") == token
        # The list's call (the project picker's /projects call waits on the same prompt beside it).
        listing = [auth for path, auth in sent if path.startswith("/training-jobs")]
        assert listing[:3] == [None, "Bearer not-a-token", f"Bearer {token}"], sent
        assert [auth for _, auth in sent][:2] == [None, None], "nothing is sent before a token is entered"
        assert all(auth == f"Bearer {token}" for _, auth in sent[sent.index(("/projects", f"Bearer {token}")) :])
        assert page.evaluate("document.cookie") == ""  # no cookies: nothing for a cross-site form to ride on
        page.click("#sign-out")
        page.wait_for_selector("#auth-dialog[open]")
        assert page.evaluate("sessionStorage.getItem('kamado.token')") is None
    finally:
        context.close()
        server.should_exit = True
        thread.join(30)


def test_the_project_picker_switches_project_and_the_address_keeps_it(
    console: Console, tab: Tab, tmp_path: Path
) -> None:
    """A job made in project team-a shows in the console only in team-a; the picker lists the projects,
    switching reloads the view in the chosen one with ?project= in the address, and such a link opens
    straight into that project."""
    from kamado.sdk.client import Client
    from tests.web import seed

    if "team-a" not in [p["Name"] for p in console.client.list_projects()]:
        console.client._request("POST", "/api/v1/projects", json={"Name": "team-a"})
    with Client(console.url, project="team-a") as team:
        uri = seed.upload_source(team, tmp_path / "team", seed.TRAIN)
        team._request("POST", "/api/v1/training-jobs", json=seed.training_request("tj-team-a", uri, epochs='"2"'))
    page = tab.open("/training")
    listed = [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")]
    assert "tj-team-a" not in listed and "tj-good" in listed, "default shows only default's jobs"
    until(page, "document.querySelectorAll('#project-picker option').length >= 2")
    options = page.eval_on_selector_all("#project-picker option", "os => os.map(o => o.value)")
    assert "team-a" in options and "default" in options
    page.select_option("#project-picker", "team-a")
    page.wait_for_url("**/?project=team-a#/training", timeout=20_000)  # a reload into the chosen project
    page.wait_for_selector("tbody tr[data-job=tj-team-a]", timeout=20_000)
    assert [r.get_attribute("data-job") for r in page.query_selector_all("tbody tr")] == ["tj-team-a"]
    assert page.eval_on_selector("#project-picker", "s => s.value") == "team-a"
    page.goto(f"{console.url}/?project=team-a#/training/tj-team-a")  # a deep link carries its project
    page.wait_for_selector("#view[data-state=ready]", timeout=20_000)
    assert "tj-team-a" in page.inner_text("#view")
    page.goto(f"{console.url}/#/training/tj-team-a")  # without it, the job is another project's: not found
    page.wait_for_selector("#view[data-state=ready], #view[data-state=error]", timeout=20_000)
    assert page.get_attribute("#view", "data-state") == "error"
    tab.errors.clear()  # the 404 just asked for is logged by Chromium as a failed resource load
