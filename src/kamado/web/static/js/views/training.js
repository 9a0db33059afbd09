// Training jobs: list (server-side filter, sort, pagination), job page (timeline, hyperparameters,
// metric charts, live log tail, lineage, stop and rerun) and a side-by-side comparison.

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { between, fmtDuration, fmtNum, fmtTime, isLive } from "../format.js";
import { trainingListParams } from "../requests.js";
import { go } from "../router.js";
import { actionButton, badge, empty, kv, pageHeader, section, table, tagList } from "../ui.js";
import { chartPoints, lineChart, PALETTE } from "../charts.js";

const STATUSES = ["", "InProgress", "Completed", "Failed", "Stopping", "Stopped"];

function select(name, options, value) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === (value || "") }, label)));
}

function localInput(name, iso) {
  const d = iso ? new Date(iso) : null;
  const local = d && !Number.isNaN(d.getTime())
    ? new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "";
  return h("input", { type: "datetime-local", name, value: local });
}

export async function trainingListView(root, _params, query, ctx) {
  const form = h("form", { class: "filters", id: "job-filters" },
    h("label", {}, "Status ", select("status", STATUSES.map((s) => [s, s || "any"]), query.status)),
    h("label", {}, "Name contains ", h("input", { name: "name", value: query.name || "", maxlength: 63, size: 16 })),
    h("label", {}, "Created after ", localInput("after", query.after)),
    h("label", {}, "before ", localInput("before", query.before)),
    h("label", {}, "Sort ", select("sort", [["CreationTime", "creation time"], ["Name", "name"], ["Status", "status"]], query.sort || "CreationTime")),
    select("order", [["Descending", "descending"], ["Ascending", "ascending"]], query.order || "Descending"),
    h("button", { type: "submit" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = new FormData(form);
    const iso = (v) => (v ? new Date(v).toISOString() : "");
    go("/training", { status: f.get("status"), name: f.get("name").trim(), after: iso(f.get("after")),
      before: iso(f.get("before")), sort: f.get("sort"), order: f.get("order"), size: query.size });
  });
  const compare = h("button", { type: "button", id: "compare-btn", disabled: true, onclick: () => {
    const names = [...root.querySelectorAll("input.pick:checked")].map((c) => c.value);
    go("/training/compare", { jobs: names.join(",") });
  } }, "Compare selected");
  const results = h("div", {});
  fill(root, pageHeader("Training jobs", { actions: [compare] }), section(null, form, results));
  const draw = async () => {
    const page = await api("/training-jobs", { params: trainingListParams(query) });
    const picked = new Set([...root.querySelectorAll("input.pick:checked")].map((c) => c.value));
    const onPick = () => { compare.disabled = root.querySelectorAll("input.pick:checked").length < 2; };
    const rows = page.TrainingJobSummaries;
    fill(results,
      table([
        { label: "", value: (j) => h("input", { type: "checkbox", class: "pick", value: j.TrainingJobName,
          checked: picked.has(j.TrainingJobName), onchange: onPick, "aria-label": `select ${j.TrainingJobName}` }) },
        { label: "Name", value: (j) => link(`/training/${enc(j.TrainingJobName)}`, j.TrainingJobName) },
        { label: "Status", value: (j) => badge(j.TrainingJobStatus) },
        { label: "Stage", value: (j) => j.SecondaryStatus || "—" },
        { label: "Created", value: (j) => fmtTime(j.CreationTime) },
        { label: "Last change", value: (j) => fmtTime(j.LastModifiedTime) },
      ], rows, { emptyText: query.status || query.name || query.after || query.before
        ? "No training job matches these filters." : "No training jobs yet. Start one with Estimator.fit() or `kamado train`.",
      rowAttrs: (j) => ({ dataset: { job: j.TrainingJobName } }) }),
      h("div", { class: "pager row" },
        query.token ? h("button", { type: "button", onclick: () => history.back() }, "← Previous") : null,
        h("span", { class: "muted" }, `${rows.length} shown`),
        page.NextToken ? h("button", { type: "button", id: "next-page", onclick: () => go("/training", { ...query, token: page.NextToken }) }, "Next →") : null));
    onPick();
  };
  await draw();
  if (!query.token) ctx.every(5000, draw);
}

function unquote(v) {
  try {
    const parsed = JSON.parse(v);
    return typeof parsed === "string" ? parsed : JSON.stringify(parsed);
  } catch {
    return String(v);
  }
}

function timeline(transitions) {
  if (!transitions || !transitions.length) return empty("No status transitions yet.");
  const total = transitions.reduce((n, t) => n + (between(t.StartTime, t.EndTime) || 0), 0) || 1;
  return h("div", {},
    h("div", { class: "timeline-bar" }, transitions.map((t) => h("span", {
      class: `tl-seg tl-${t.Status}`, title: `${t.Status}: ${fmtDuration(between(t.StartTime, t.EndTime))}`,
      style: `flex-grow:${Math.max(0.02, (between(t.StartTime, t.EndTime) || 0) / total)}` }, t.Status))),
    h("ol", { class: "timeline" }, transitions.map((t) => h("li", {},
      h("strong", {}, t.Status), " ", h("span", { class: "muted" }, fmtTime(t.StartTime)),
      " · ", fmtDuration(between(t.StartTime, t.EndTime)), h("div", { class: "small" }, t.StatusMessage || "")))));
}

/** Group a metrics answer's points by name into chartable series: x is the step, else the point's position
 * in the full series (`Index`, present when the server thinned it), else its order here. `total` is the
 * series' length before the server thinned it. */
function seriesOf(answer) {
  const by = new Map();
  for (const p of answer.Metrics) {
    let sr = by.get(p.MetricName);
    if (!sr) by.set(p.MetricName, (sr = { name: p.MetricName, xs: [], ys: [], total: answer.TotalPoints?.[p.MetricName] }));
    sr.xs.push(p.Step ?? p.Index ?? sr.xs.length);
    sr.ys.push(p.Value);
  }
  return [...by.values()];
}

/** One job's metrics, thinned by the server to what a chart draws (a 100,000-point series is ~1,100 points). */
function metricsOf(name, metric) {
  return api(`/training-jobs/${enc(name)}/metrics`, { params: { MetricName: metric, MaxPoints: chartPoints() } });
}

function metricCharts(answer) {
  if (!answer.Metrics.length) return empty("No metrics recorded. Add MetricDefinitions (name + regex) to have metrics parsed from the logs.");
  return h("div", { class: "charts" }, seriesOf(answer).map((sr) => lineChart([sr], { title: sr.name })));
}

function logTail(name, live, ctx) {
  const pre = h("pre", { class: "logs", id: "log-tail" });
  const state = { after: 0, lines: 0 };
  const pull = async () => {
    for (let i = 0; i < 20; i++) {
      const page = await api(`/training-jobs/${enc(name)}/logs`, { params: { after: state.after, limit: 1000 } });
      for (const ev of page.Events) {
        pre.append(document.createTextNode(ev.Message));
        state.lines += 1;
      }
      while (pre.childNodes.length > 2000) pre.removeChild(pre.firstChild);
      const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 30;
      state.after = page.NextSeq;
      if (stick) pre.scrollTop = pre.scrollHeight;
      if (page.Complete || !page.Events.length) return page;
    }
    return null;
  };
  // One pull at a time: a refresh tick must not read the same events as a pull still in flight.
  let inflight = null;
  const pullOnce = () => (inflight ||= pull().finally(() => { inflight = null; }));
  const box = section("Logs", pre);
  pullOnce().then(() => { if (!pre.childNodes.length) pre.append("(no output yet)"); }, (err) => pre.append(`could not read logs: ${err.message}`));
  if (live) ctx.every(2000, async () => { if (pre.textContent === "(no output yet)") pre.textContent = ""; await pullOnce(); });
  return box;
}

function rerunForm(name) {
  const input = h("input", { name: "rerun-name", id: "rerun-name", maxlength: 63, size: 28,
    value: `${name.slice(0, 48)}-r${Date.now().toString(36)}` });
  return h("span", { class: "rerun" }, input, actionButton("Rerun", async () => {
    const out = await api(`/training-jobs/${enc(name)}/rerun`, { method: "POST", body: { TrainingJobName: input.value.trim() } });
    go(`/training/${enc(out.TrainingJobName)}`);
  }, { id: "rerun-btn" }));
}

export async function trainingJobView(root, { name }, _query, ctx) {
  const head = h("div", {});
  const overview = h("div", {});
  const charts = section("Metrics", h("p", { class: "muted" }, "Loading metrics…"));
  let desc = await api(`/training-jobs/${enc(name)}`);
  const rerun = rerunForm(name); // made once, so a refresh does not wipe the name being typed
  const drawHead = () => {
    const live = isLive(desc.TrainingJobStatus);
    const actions = [
      live ? actionButton("Stop", async () => {
        await api(`/training-jobs/${enc(name)}/stop`, { method: "POST" });
        desc = await api(`/training-jobs/${enc(name)}`);
        drawHead();
      }, { danger: true, id: "stop-btn", confirmText: `Stop training job ${name}?` }) : null,
      rerun,
    ];
    fill(head, pageHeader(name, { sub: badge(desc.TrainingJobStatus), actions,
      crumbs: [link("/training", "Training jobs"), name] }));
    const hp = Object.entries(desc.HyperParameters || {}).sort();
    fill(overview,
      desc.FailureReason ? h("div", { class: "error", role: "alert" }, h("strong", {}, "Failure reason: "), desc.FailureReason) : null,
      h("div", { class: "cols" },
        section("Summary", kv([
          ["Status", `${desc.TrainingJobStatus} (${desc.SecondaryStatus || "—"})`],
          ["Created", fmtTime(desc.CreationTime)],
          ["Started", fmtTime(desc.TrainingStartTime)],
          ["Ended", fmtTime(desc.TrainingEndTime)],
          ["Duration", fmtDuration(between(desc.TrainingStartTime, desc.TrainingEndTime))],
          ["Instance", `${desc.ResourceConfig?.InstanceCount ?? 1} × ${desc.ResourceConfig?.InstanceType ?? "—"}`],
          ["Retries", String(desc.RetryAttempts ?? 0)],
          ["Tags", tagList(desc.Tags)],
          ["Final metrics", (desc.FinalMetricDataList || []).map((m) => `${m.MetricName}=${fmtNum(m.Value)}`).join(", ")],
        ])),
        section("Status timeline", timeline(desc.SecondaryStatusTransitions))),
      h("div", { class: "cols" },
        section("Hyperparameters", table([
          { label: "Name", value: ([k]) => k },
          { label: "Value", value: ([, v]) => h("code", {}, unquote(v)) },
        ], hp, { emptyText: "No hyperparameters." })),
        section("Lineage", kv([
          ["Source hash", desc.Lineage?.SourceHash],
          ["Input data hashes", Object.entries(desc.Lineage?.InputDataHashes || {}).map(([c, d]) => `${c}: ${String(d).slice(0, 16)}…`).join(", ")],
          ["Packages hash", desc.Lineage?.PackagesHash],
          ["Python", desc.Lineage?.PythonVersion],
          ["Model artifacts", desc.ModelArtifacts?.S3ModelArtifacts],
          ["Log artifact", desc.LogArtifacts],
          ["CPU seconds", fmtNum(desc.ResourceUsage?.CpuSeconds)],
          ["Peak memory", desc.ResourceUsage?.PeakMemoryMB ? `${fmtNum(desc.ResourceUsage.PeakMemoryMB)} MB` : null],
        ]))));
  };
  // One request per metric, drawn as each arrives: a job with many long series shows its first chart
  // without waiting for all of them, and never holds every series in one response. A refresh redraws a
  // chart in place once its new data is in (no flicker back to "Loading").
  const slots = new Map();
  const grid = h("div", { class: "charts" });
  const drawMetrics = async () => {
    const names = [...new Set((desc.FinalMetricDataList || []).map((m) => m.MetricName))].sort();
    if (!names.length) {
      fill(charts, h("h2", {}, "Metrics"), metricCharts({ Metrics: [] }));
      return;
    }
    if (!charts.contains(grid)) fill(charts, h("h2", {}, "Metrics"), grid);
    for (const n of names) {
      if (!slots.has(n)) {
        const slot = h("div", { class: "chart-slot", dataset: { metric: n } }, h("p", { class: "muted" }, `Loading ${n}…`));
        slots.set(n, slot);
        grid.append(slot);
      }
    }
    await Promise.all(names.map(async (n) => {
      const [sr] = seriesOf(await metricsOf(name, n));
      fill(slots.get(n), sr ? lineChart([sr], { title: n }) : empty(`No points for ${n}.`));
    }));
  };
  drawHead();
  const wasLive = isLive(desc.TrainingJobStatus);
  fill(root, head, overview, charts, logTail(name, wasLive, ctx));
  await drawMetrics();
  if (wasLive) {
    ctx.every(3000, async () => {
      desc = await api(`/training-jobs/${enc(name)}`);
      drawHead();
      await drawMetrics();
    });
  }
}

export async function trainingCompareView(root, _params, query) {
  const names = (query.jobs || "").split(",").filter(Boolean);
  if (names.length < 2) {
    fill(root, pageHeader("Compare training jobs"), empty("Pick two or more jobs in the training job list to compare them."));
    return;
  }
  const jobs = await Promise.all(names.map((n) => api(`/training-jobs/${enc(n)}`)));
  const metrics = await Promise.all(names.map((n) => metricsOf(n)));
  const keys = [...new Set(jobs.flatMap((j) => Object.keys(j.HyperParameters || {})))].sort();
  const rows = keys.map((k) => ({ k, vals: jobs.map((j) => (k in (j.HyperParameters || {}) ? unquote(j.HyperParameters[k]) : "—")) }));
  const cols = [{ label: "Hyperparameter", value: (r) => r.k },
    ...jobs.map((j, i) => ({ label: j.TrainingJobName, value: (r) => h("code", {}, r.vals[i]) }))];
  const finals = [...new Set(jobs.flatMap((j) => (j.FinalMetricDataList || []).map((m) => m.MetricName)))].sort();
  const byMetric = new Map();
  metrics.forEach((m, i) => {
    for (const sr of seriesOf(m)) {
      if (!byMetric.has(sr.name)) byMetric.set(sr.name, []);
      byMetric.get(sr.name).push({ ...sr, name: jobs[i].TrainingJobName, color: PALETTE[i % PALETTE.length] });
    }
  });
  fill(root,
    pageHeader(`Compare ${jobs.length} training jobs`, { crumbs: [link("/training", "Training jobs"), "compare"] }),
    section("Hyperparameters (rows that differ are highlighted)", table(cols, rows, {
      rowAttrs: (r) => ({ class: new Set(r.vals).size > 1 ? "differs" : null }), emptyText: "No hyperparameters." })),
    section("Final metrics", table([{ label: "Metric", value: (k) => k },
      ...jobs.map((j) => ({ label: j.TrainingJobName, cls: "num", value: (k) => fmtNum((j.FinalMetricDataList || []).find((m) => m.MetricName === k)?.Value) }))],
    finals, { emptyText: "No final metrics." })),
    section("Metric curves", byMetric.size ? h("div", { class: "charts" },
      [...byMetric.entries()].map(([metric, series]) => lineChart(series, { title: metric }))) : empty("No metrics recorded.")));
}
