"""B12 web console at scale: the training-job list's first page and a job page with a 100,000-point metric
series, rendered in headless Chromium against a real ``kamado server`` holding 100,000 training jobs with 20
metrics each.

The store is filled directly (not through 100k HTTP calls): the jobs as B8 seeds them (``SqlStore.create``
for the first 1,000, then the same row shapes in one bulk insert), their 20 metrics each the same way
(``append_metrics`` for the first 1,000 jobs, then bulk), and one job with a 100,000-point series through
``append_metrics``. B8's planner statistics (ANALYZE) are kept.

Figures, in the browser (Chromium's own clock: ``performance`` marks the console sets when a view is drawn):

- list: a cold page load of ``#/training`` until the first page (50 rows) is in the DOM; then filter and sort
  changes (hash navigation) until the new page is drawn. Comparator: the same List call over HTTP from this
  process (the floor: the console cannot draw before the data arrives).
- series: a cold load of the job page until its chart is drawn, and the longest main-thread task during it
  (a "freeze" is a long task; Chromium reports tasks over 50 ms). Comparator, same page, interleaved: drawing
  the same 100,000 points without downsampling (one SVG polyline with every point). The console asks for
  the series with ``MaxPoints`` (thinned on the server); from Python, the same call with and without it, and
  outside the server what it costs: reading the points from the store, and LTTB.

Goals (from the console's brief): first list page < 1 s; the 100k-point page draws without a long task
that a user would feel as a freeze (we report its length; no hard threshold in PERFORMANCE.md).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result

NAME = "b12_console"
KIND = "training-job"
CHROMIUM = "/usr/bin/chromium"
METRICS_PER_JOB = 20
SERIES_JOB = "b12-long-series"
READY_MS = "performance.getEntriesByName('kamado:view-ready').slice(-1)[0].startTime"
LONGTASKS = """
window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
  .observe({ type: 'longtask', buffered: true });
"""


def seed_metrics(db_url: str, db_path: Path, n_jobs: int, series_points: int) -> dict[str, Any]:
    """20 metrics for every seeded job, and one job with a long series (see the module docstring)."""
    from kamado.store.records import MetricPoint
    from kamado.store.sql import SqlStore

    names = [r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM resources WHERE kind = ?", (KIND,))]
    via_store = min(len(names), 1000)
    store = SqlStore(db_url)
    t0 = time.perf_counter()
    for name in names[:via_store]:
        store.append_metrics(KIND, name, [MetricPoint(f"m{k:02d}", 1.0 / (k + 1), 1.7e9, None) for k in range(20)])
    store_rate = via_store / (time.perf_counter() - t0)
    long_series = [
        MetricPoint("loss", math.exp(-i / 20000) + 0.05 * math.sin(i / 50) + 0.01 * ((i * 7919) % 13), 1.7e9 + i, i)
        for i in range(series_points)
    ]
    t1 = time.perf_counter()
    store.create(
        kind=KIND,
        name=SERIES_JOB,
        arn=f"arn:aws:sagemaker:local:000000000000:training-job/{SERIES_JOB}",
        state="Completed",
        spec={"TrainingJobName": SERIES_JOB, "HyperParameters": {"lr": "0.01"}, "ResourceConfig": {}},
        status={"SecondaryStatus": "Completed", "SecondaryStatusTransitions": [], "FailureReason": None},
        tags={},
    )
    store.append_metrics(KIND, SERIES_JOB, long_series)
    series_s = time.perf_counter() - t1
    store.close()
    con = sqlite3.connect(db_path, isolation_level=None)
    try:
        rows = [(KIND, nm, f"m{k:02d}", 1.0 / (k + 1), 1.7e9, None) for nm in names[via_store:] for k in range(20)]
        t2 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO metrics (kind, name, metric, value, ts, step) VALUES (?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
        bulk_s = time.perf_counter() - t2
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        # B8's seeder runs ANALYZE. The statistics stay: with them SQLite used to answer the reconcilers'
        # list_in_states with a full scan of the resources table every pass (an idle server burnt a core);
        # the store now names the index. `server_idle_cpu_cores` keeps an eye on it.
    finally:
        con.close()
    return {
        "metric_rows": count,
        "jobs_via_append_metrics": via_store,
        "append_metrics_jobs_per_s": round(store_rate, 1),
        "bulk_metric_rows": len(rows),
        "bulk_s": round(bulk_s, 2),
        "series_points": series_points,
        "series_store_s": round(series_s, 2),
        "db_mb": round(db_path.stat().st_size / 2**20, 1),
    }


#: What the console asks for per chart (js/charts.js chartPoints(640): two points per pixel column).
CHART_POINTS = 1144


def store_read(db_url: str, reps: int) -> dict[str, Any]:
    """Where a downsampled /metrics call's server time goes, outside the server: reading the 100,000 points
    from the store, and thinning them with LTTB."""
    from kamado.core.downsample import thin_series
    from kamado.store.sql import SqlStore

    store = SqlStore(db_url)
    read_ms: list[float] = []
    thin_ms: list[float] = []
    try:
        for _ in range(reps):
            t0 = time.perf_counter()
            pts = store.read_metrics(KIND, SERIES_JOB, "loss")
            t1 = time.perf_counter()
            thin_series([p.metric for p in pts], [p.step for p in pts], [p.value for p in pts], CHART_POINTS)
            read_ms.append((t1 - t0) * 1000)
            thin_ms.append((time.perf_counter() - t1) * 1000)
    finally:
        store.close()
    return {"read_metrics_ms": summarize(read_ms), "lttb_ms": summarize(thin_ms)}


def metrics_api(http: Any, reps: int) -> dict[str, Any]:
    """The series' /metrics call from Python, every point vs MaxPoints (interleaved): time and bytes."""
    out: dict[str, list[float]] = {"every_point_ms": [], "max_points_ms": []}
    size = {"every_point_bytes": 0, "max_points_bytes": 0}
    url = f"/api/v1/training-jobs/{SERIES_JOB}/metrics"
    for _ in range(reps):
        for key, params in (
            ("every_point", {"MetricName": "loss"}),
            ("max_points", {"MetricName": "loss", "MaxPoints": CHART_POINTS}),
        ):
            t0 = time.perf_counter()
            r = http.get(url, params=params, timeout=120)
            r.raise_for_status()
            out[f"{key}_ms"].append((time.perf_counter() - t0) * 1000)
            size[f"{key}_bytes"] = len(r.content)
    return {**{k: summarize(v) for k, v in out.items()}, **size}


def idle_cpu(pid: int, seconds: float = 3.0) -> float:
    """CPU cores the server process burns while nobody calls it (its background loops over the store)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    before, t0 = used(), time.monotonic()
    time.sleep(seconds)
    return round((used() - before) / (time.monotonic() - t0), 2)


def _wait(page: Any, selector: str, timeout_s: float = 120.0) -> None:
    """Wait inside the page (Playwright's injected watcher), not by polling from here: a tight polling loop
    in this process would take CPU from the server and the browser on a small machine and skew the figures."""
    page.wait_for_selector(selector, timeout=timeout_s * 1000)


#: Where a page load's time went, from Chromium's navigation and resource timing (ms from navigation start).
BREAKDOWN = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const apiCalls = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/'));
  const assets = performance.getEntriesByType('resource').filter((e) => e.name.includes('/console/'));
  return {
    page_response_end: nav.responseEnd,
    assets_loaded: Math.max(0, ...assets.map((e) => e.responseEnd)),
    dom_content_loaded: nav.domContentLoadedEventEnd,
    api_start: apiCalls.length ? apiCalls[0].startTime : 0,
    api_end: apiCalls.length ? apiCalls[apiCalls.length - 1].responseEnd : 0,
    ready: performance.getEntriesByName('kamado:view-ready').slice(-1)[0].startTime,
  };
})()"""


def list_load(context: Any, url: str, breakdown: list[dict[str, float]] | None = None) -> float:
    """ms from navigation start to the first page of jobs drawn, in a new tab of ``context``."""
    page = context.new_page()
    try:
        page.goto(url + "/#/training")
        _wait(page, "#view[data-state=ready] tbody tr:nth-child(50)")
        if breakdown is not None:
            breakdown.append({k: round(float(v), 1) for k, v in page.evaluate(BREAKDOWN).items()})
        return float(page.evaluate(READY_MS))
    finally:
        page.close()


def first_visit(browser: Any, url: str, breakdown: list[dict[str, float]] | None = None) -> float:
    """A first visit: a new browser context, so nothing is cached."""
    context = browser.new_context()
    try:
        return list_load(context, url, breakdown)
    finally:
        context.close()


def hash_nav(page: Any, route: str) -> float:
    """ms from a hash change to the view being drawn again (filter, sort, next page)."""
    page.evaluate(
        "performance.clearMarks('kamado:view-ready'); document.getElementById('view').dataset.state = 'stale';"
        "window.__t0 = performance.now()"
    )
    page.evaluate(f"location.hash = {json.dumps(route)}")
    _wait(page, "#view[data-state=ready]")
    return float(page.evaluate(READY_MS + " - window.__t0"))


def cold_series(browser: Any, url: str) -> dict[str, float]:
    page = browser.new_page()  # a new context: a first visit
    try:
        page.add_init_script(LONGTASKS)
        page.goto(url + f"/#/training/{SERIES_JOB}")
        _wait(page, "#view[data-state=ready] figure.chart-box[data-total]")
        page.wait_for_timeout(100)  # let the observer deliver the last entries
        fetch_ms = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => e.name.includes('/metrics'))"
            ".map(e => e.responseEnd - e.startTime)[0] || 0"
        )
        return {
            "ready_ms": float(page.evaluate(READY_MS)),
            "metrics_fetch_ms": float(fetch_ms),
            "longest_task_ms": float(page.evaluate("Math.max(0, ...window.__long)")),
            "drawn_points": float(page.get_attribute("figure.chart-box", "data-points") or 0),
        }
    finally:
        page.close()


#: Draws the series with the console's own chart module (found next to main.js, under the asset digest).
DRAW = """async ([full, job]) => {
  const main = document.querySelector('script[type=module]').src;
  const { lineChart } = await import(new URL('charts.js', main).href);
  window.__pts ||= (await (await fetch(`/api/v1/training-jobs/${job}/metrics`)).json()).Metrics;
  const pts = window.__pts;
  const xs = pts.map((p) => p.Step), ys = pts.map((p) => p.Value);
  const box = document.getElementById('view');
  box.replaceChildren();  // tear down the previous chart before the clock starts
  await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
  const t0 = performance.now();
  const fig = lineChart([{ name: 'loss', xs, ys }], { title: 'loss', maxPoints: full ? xs.length : undefined });
  box.replaceChildren(fig);
  fig.getBoundingClientRect();
  await new Promise((res) => requestAnimationFrame(() => requestAnimationFrame(res)));
  return { ms: performance.now() - t0, points: Number(fig.dataset.points) };
}"""


def draw_in_page(page: Any, full: bool) -> dict[str, float]:
    out = page.evaluate(DRAW, [full, SERIES_JOB])
    return {"ms": float(out["ms"]), "points": float(out["points"])}


def run() -> tuple[Path, dict[str, Any]]:
    from playwright.sync_api import sync_playwright

    from benchmarks.b8_metric_ingest import seed_jobs

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    started = time.monotonic()
    tiny = smoke()
    n_jobs = 2_000 if tiny else 100_000
    series_points = 5_000 if tiny else 100_000
    reps = 2 if tiny else 10
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="kamado-b12-"))
    try:
        home = tmp / "home"
        home.mkdir()
        db = home / "kamado.db"
        log(f"{NAME}: seeding {n_jobs} jobs with {METRICS_PER_JOB} metrics each")
        jobs_seed = seed_jobs(f"sqlite:///{db}", db, n_jobs)
        metrics_seed = seed_metrics(f"sqlite:///{db}", db, n_jobs, series_points)
        log(f"{NAME}: seeded {jobs_seed} {metrics_seed}")
        read_cost = store_read(f"sqlite:///{db}", 3)
        log(f"{NAME}: store read of the series {read_cost}")
        import httpx

        with LocalServer(home) as server, sync_playwright() as p, httpx.Client(base_url=server.url) as http:
            assert server.proc is not None
            server_idle_cpu = idle_cpu(server.proc.pid)
            log(f"{NAME}: the idle server uses {server_idle_cpu} CPU cores")
            browser = p.chromium.launch(executable_path=CHROMIUM)
            first_visit(browser, server.url)  # warm-up: the server's first requests, SQLite page cache
            http.get("/api/v1/training-jobs", params={"MaxResults": 50})
            returning = browser.new_context()
            list_load(returning, server.url)  # fills this context's cache with the (immutable) assets
            list_ms: list[float] = []
            return_ms: list[float] = []
            api_ms: list[float] = []
            first_parts: list[dict[str, float]] = []
            return_parts: list[dict[str, float]] = []
            for _ in range(reps):
                list_ms.append(first_visit(browser, server.url, first_parts))
                return_ms.append(list_load(returning, server.url, return_parts))
                t0 = time.perf_counter()
                http.get("/api/v1/training-jobs", params={"MaxResults": 50}).raise_for_status()
                api_ms.append((time.perf_counter() - t0) * 1000)
            returning.close()
            log(
                f"{NAME}: list first visit p50 {summarize(list_ms)['p50']} ms, returning "
                f"{summarize(return_ms)['p50']} ms (API alone {summarize(api_ms)['p50']} ms)"
            )
            nav: dict[str, list[float]] = {"StatusEquals=Failed": [], "SortBy=Name": [], "NameContains": []}
            page = browser.new_page()
            page.goto(server.url + "/#/training")
            _wait(page, "#view[data-state=ready]")
            for r in range(reps):
                nav["StatusEquals=Failed"].append(hash_nav(page, f"/training?status=Failed&r={r}"))
                nav["SortBy=Name"].append(hash_nav(page, f"/training?sort=Name&order=Ascending&r={r}"))
                nav["NameContains"].append(hash_nav(page, f"/training?name=churn&r={r}"))
            page.close()
            log(f"{NAME}: hash navigation p50 { {k: summarize(v)['p50'] for k, v in nav.items()} }")
            api_series = metrics_api(http, max(2, reps // 3))
            log(f"{NAME}: /metrics from Python {api_series}")
            cold_series(browser, server.url)  # warm-up
            series = [cold_series(browser, server.url) for _ in range(max(2, reps // 2))]
            log(f"{NAME}: series page p50 {summarize([s['ready_ms'] for s in series])['p50']} ms")
            page = browser.new_page()
            page.goto(server.url + "/#/pipelines")
            _wait(page, "#view[data-state=ready]")
            draws: dict[str, list[float]] = {"downsampled": [], "every_point": []}
            drawn = {"downsampled": 0.0, "every_point": 0.0}
            for _ in range(reps):
                for key, full in (("downsampled", False), ("every_point", True)):
                    out = draw_in_page(page, full)
                    draws[key].append(out["ms"])
                    drawn[key] = out["points"]
            page.close()
            browser.close()
        list_p50 = summarize(list_ms)["p50"]
        return_p50 = summarize(return_ms)["p50"]
        long_tasks = [s["longest_task_ms"] for s in series]
        data = {
            "description": __doc__.splitlines()[0],
            "method": (
                "List loads: a first visit is a new browser context (empty cache); a returning visit is a new "
                "tab in one context whose cache holds the console's immutable assets. One warm-up first; times "
                "are Chromium's performance marks set by the console when a view is drawn. Hash navigations "
                "in one tab. Drawing comparator: the "
                "console's own chart module called in the page with and without downsampling, alternating, "
                "timed to the second animation frame after insertion."
            ),
            "load_generator": "headless Chromium (Debian package) driven by Playwright from this process",
            "config": {
                "jobs": n_jobs,
                "metrics_per_job": METRICS_PER_JOB,
                "series_points": series_points,
                "reps": reps,
                "page_size": 50,
                "chromium": CHROMIUM,
                "load_average_at_start": load_at_start,
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
                "server_idle_cpu_cores": server_idle_cpu,
            },
            "seeding": {**jobs_seed, **metrics_seed},
            "figures": {
                "list_first_page_first_visit_ms": summarize(list_ms),
                "list_first_page_returning_visit_ms": summarize(return_ms),
                "list_load_breakdown_p50_ms": {
                    "what": "ms from navigation start: page received, console assets loaded, modules run "
                    "(DOMContentLoaded), API call start and end, list drawn",
                    "first_visit": {k: summarize([p[k] for p in first_parts])["p50"] for k in first_parts[0]},
                    "returning_visit": {k: summarize([p[k] for p in return_parts])["p50"] for k in return_parts[0]},
                },
                "list_hash_navigation_ms": {k: summarize(v) for k, v in nav.items()},
                "series_page_ready_ms": summarize([s["ready_ms"] for s in series]),
                "series_metrics_fetch_ms": summarize([s["metrics_fetch_ms"] for s in series]),
                "series_longest_main_thread_task_ms": summarize(long_tasks),
                "series_points_drawn": series[-1]["drawn_points"],
                "series_metrics_api_from_python": {
                    "what": "GET /metrics?MetricName=loss of the 100,000-point series: every point vs "
                    f"MaxPoints={CHART_POINTS}",
                    **api_series,
                },
                "series_server_side_cost_in_process": {
                    "what": "outside the server: SqlStore.read_metrics of the 100,000 points, then LTTB to "
                    f"{CHART_POINTS} points (kamado.core.downsample)",
                    **read_cost,
                },
                "draw_downsampled_ms": summarize(draws["downsampled"]),
                "draw_every_point_ms": summarize(draws["every_point"]),
                "points_drawn": drawn,
            },
            "comparator": {
                "list_api_call_alone_ms": summarize(api_ms),
                "what": "the same ListTrainingJobs call over HTTP from Python (the floor for the list), and "
                "drawing all points without downsampling (for the series)",
            },
            "ratio": {
                "list_render_vs_api_call": ratio(list_p50, summarize(api_ms)["p50"]),
                "draw_every_point_vs_downsampled": ratio(
                    summarize(draws["every_point"])["p50"], summarize(draws["downsampled"])["p50"]
                ),
            },
            "goal": {
                "list_first_page_under_ms": 1000,
                "list_first_page_met_first_visit": list_p50 < 1000,
                "list_first_page_met_returning_visit": return_p50 < 1000,
                "series_page_note": "draws without freezing: longest main-thread task reported, no hard bound set",
            },
        }
        path = write_result(NAME, data, started)
        return path, json.loads(path.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
