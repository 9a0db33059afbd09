// Batch work: map runs (progress bars, failed items with reasons, stop and redrive), processing jobs and
// transform jobs (status and progress), and functions.

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { between, fmtDuration, fmtNum, fmtTime, isLive } from "../format.js";
import { progressBar } from "../charts.js";
import { render } from "../router.js";
import { actionButton, badge, empty, kv, pageHeader, section, table, tagList } from "../ui.js";

const FAILED_ITEMS_SHOWN = 200;

function mapBar(c) {
  return h("div", { class: "map-progress" }, progressBar([
    { label: "succeeded", value: c.Succeeded, cls: "ok" }, { label: "failed", value: c.Failed, cls: "bad" },
    { label: "running", value: c.Running, cls: "busy" }], c.Total),
  h("div", { class: "small counts" },
    h("span", {}, `total ${fmtNum(c.Total)}`), h("span", { class: "ok-text" }, `succeeded ${fmtNum(c.Succeeded)}`),
    h("span", { class: "bad-text" }, `failed ${fmtNum(c.Failed)}`), h("span", {}, `running ${fmtNum(c.Running)}`),
    h("span", {}, `pending ${fmtNum(c.Pending)}`), c.Retried ? h("span", {}, `retried ${fmtNum(c.Retried)}`) : null));
}

function transformProgress(p) {
  if (!p || !p.FilesTotal) return "—";
  return h("div", {}, progressBar([{ label: "done", value: p.FilesCompleted, cls: "ok" },
    { label: "failed", value: p.FilesFailed, cls: "bad" }], p.FilesTotal),
  h("span", { class: "small" }, `${p.FilesCompleted}/${p.FilesTotal} files, ${fmtNum(p.RecordsCompleted)} records`));
}

export async function batchView(root, _params, _query, ctx) {
  const maps = h("div", {});
  const proc = h("div", {});
  const trans = h("div", {});
  fill(root, pageHeader("Batch and map runs"), section("Map runs", maps), section("Processing jobs", proc),
    section("Transform jobs", trans));
  const draw = async () => {
    const [m, p, t] = await Promise.all([api("/map-runs", { params: { MaxResults: 50 } }),
      api("/processing-jobs", { params: { MaxResults: 50 } }), api("/transform-jobs", { params: { MaxResults: 50 } })]);
    const transforms = await Promise.all(t.TransformJobSummaries.map((s) => api(`/transform-jobs/${enc(s.TransformJobName)}`)));
    fill(maps, table([
      { label: "Map run", value: (r) => link(`/map-runs/${enc(r.MapRunName)}`, r.MapRunName) },
      { label: "Function", value: (r) => r.FunctionName },
      { label: "Status", value: (r) => badge(r.Status) },
      { label: "Progress", cls: "wide", value: (r) => mapBar(r.ItemCounts) },
      { label: "Started", value: (r) => fmtTime(r.StartDate) },
    ], m.MapRuns, { emptyText: "No map runs. Start one with Function.map(items) in the SDK." }));
    fill(proc, table([
      { label: "Processing job", value: (r) => link(`/processing/${enc(r.ProcessingJobName)}`, r.ProcessingJobName) },
      { label: "Status", value: (r) => badge(r.ProcessingJobStatus) },
      { label: "Created", value: (r) => fmtTime(r.CreationTime) },
      { label: "Failure reason", value: (r) => r.FailureReason || "—" },
    ], p.ProcessingJobSummaries, { emptyText: "No processing jobs. Run one with a Processor or `kamado processing run`." }));
    fill(trans, table([
      { label: "Transform job", value: (r) => link(`/transform/${enc(r.TransformJobName)}`, r.TransformJobName) },
      { label: "Status", value: (r) => badge(r.TransformJobStatus) },
      { label: "Progress", cls: "wide", value: (r) => transformProgress(r.Progress) },
      { label: "Created", value: (r) => fmtTime(r.CreationTime) },
    ], transforms, { emptyText: "No transform jobs. Run one with a Transformer in the SDK." }));
  };
  await draw();
  ctx.every(3000, draw);
}

async function failedItems(desc) {
  const uri = desc.ResultWriterDetails?.Manifest;
  if (!uri || !desc.ItemCounts.Failed || desc.Status === "InProgress") return null;
  try {
    const text = await api("/artifacts/content", { params: { uri }, text: true });
    return JSON.parse(text).FailedItems || [];
  } catch {
    return null;
  }
}

export async function mapRunView(root, { name }, _query, ctx) {
  const draw = async () => {
    const desc = await api(`/map-runs/${enc(name)}`);
    const items = await failedItems(desc);
    const live = isLive(desc.Status);
    const canRedrive = desc.Status === "Failed" || desc.Status === "Aborted";
    fill(root,
      pageHeader(name, { sub: badge(desc.Status), crumbs: [link("/batch", "Batch and map runs"), name], actions: [
        live ? actionButton("Stop", async () => { await api(`/map-runs/${enc(name)}/stop`, { method: "POST" }); await draw(); },
          { danger: true, id: "stop-btn", confirmText: `Stop map run ${name}?` }) : null,
        canRedrive ? actionButton("Redrive failed items", async () => {
          await api(`/map-runs/${enc(name)}/redrive`, { method: "POST" });
          await draw();
        }, { id: "redrive-btn" }) : null] }),
      desc.Error ? h("div", { class: "error", role: "alert" }, h("strong", {}, `${desc.Error}: `), desc.Cause || "") : null,
      section("Progress", mapBar(desc.ItemCounts)),
      section("Details", kv([["Function", desc.FunctionName], ["Started", fmtTime(desc.StartDate)], ["Stopped", fmtTime(desc.StopDate)],
        ["Duration", fmtDuration(between(desc.StartDate, desc.StopDate))], ["Batch size", String(desc.BatchSize)],
        ["Max concurrency", desc.MaxConcurrency ? String(desc.MaxConcurrency) : "unlimited"],
        ["Max attempts", String(desc.MaxAttempts)], ["Tolerated failures", `${desc.ToleratedFailurePercentage}%`],
        ["Redrives", String(desc.Redrives)], ["Results", desc.ResultWriterDetails?.Prefix]])),
      section("Failed items", items === null ? empty(desc.ItemCounts.Failed ? "Failed items are listed once the run has stopped." : "No failed items.")
        : h("div", {}, items.length > FAILED_ITEMS_SHOWN ? h("p", { class: "muted" }, `First ${FAILED_ITEMS_SHOWN} of ${items.length} failed items.`) : null,
          table([{ label: "Item", cls: "num", value: (f) => String(f.Index) }, { label: "Error", value: (f) => f.Error },
            { label: "Cause", value: (f) => h("span", { class: "reason" }, f.Cause || "") }, { label: "Attempts", cls: "num", value: (f) => String(f.Attempts) }],
          items.slice(0, FAILED_ITEMS_SHOWN), { emptyText: "No failed items." }))));
    return live;
  };
  await draw();
  ctx.every(2000, async () => { if (ctx.alive()) await draw(); });
}

function logBox(path, live, ctx) {
  const pre = h("pre", { class: "logs" });
  let after = 0;
  const pull = async () => {
    for (let i = 0; i < 20; i++) {
      const page = await api(path, { params: { after, limit: 1000 } });
      for (const ev of page.Events) pre.append(document.createTextNode(ev.Host ? prefix(ev.Host, ev.Message) : ev.Message));
      after = page.NextSeq;
      if (page.Complete || !page.Events.length) return;
    }
  };
  let inflight = null;
  const pullOnce = () => (inflight ||= pull().finally(() => { inflight = null; }));
  pullOnce().catch((err) => pre.append(`could not read logs: ${err.message}`));
  if (live) ctx.every(2000, pullOnce);
  return section("Logs", pre);
}

function prefix(host, text) {
  return text.split("\n").map((l) => (l ? `[${host}] ${l}` : l)).join("\n");
}

export async function processingJobView(root, { name }, _query, ctx) {
  const d = await api(`/processing-jobs/${enc(name)}`);
  const live = isLive(d.ProcessingJobStatus);
  fill(root,
    pageHeader(name, { sub: badge(d.ProcessingJobStatus), crumbs: [link("/batch", "Batch and map runs"), name], actions: [
      live ? actionButton("Stop", async () => { await api(`/processing-jobs/${enc(name)}/stop`, { method: "POST" }); }, { danger: true, id: "stop-btn" }) : null] }),
    d.FailureReason ? h("div", { class: "error", role: "alert" }, h("strong", {}, "Failure reason: "), d.FailureReason) : null,
    section("Summary", kv([["Created", fmtTime(d.CreationTime)], ["Started", fmtTime(d.ProcessingStartTime)], ["Ended", fmtTime(d.ProcessingEndTime)],
      ["Duration", fmtDuration(between(d.ProcessingStartTime, d.ProcessingEndTime))],
      ["Instances", `${d.ProcessingResources?.ClusterConfig?.InstanceCount ?? 1}`], ["Exit message", d.ExitMessage], ["Tags", tagList(d.Tags)]])),
    section("Instances", table([{ label: "Host", value: (i) => i.Host || i.HostName || "—" }, { label: "State", value: (i) => i.State || i.Status || "—" },
      { label: "Exit code", cls: "num", value: (i) => (i.ExitCode ?? "—").toString() }], d.Instances || [], { emptyText: "No instances started yet." })),
    logBox(`/processing-jobs/${enc(name)}/logs`, live, ctx));
  if (live) ctx.every(3000, async () => {
    const now = await api(`/processing-jobs/${enc(name)}`);
    if (now.ProcessingJobStatus !== d.ProcessingJobStatus) await render();
  });
}

export async function transformJobView(root, { name }, _query, ctx) {
  const draw = async () => {
    const d = await api(`/transform-jobs/${enc(name)}`);
    fill(root,
      pageHeader(name, { sub: badge(d.TransformJobStatus), crumbs: [link("/batch", "Batch and map runs"), name], actions: [
        isLive(d.TransformJobStatus) ? actionButton("Stop", async () => { await api(`/transform-jobs/${enc(name)}/stop`, { method: "POST" }); await draw(); }, { danger: true, id: "stop-btn" }) : null] }),
      d.FailureReason ? h("div", { class: "error", role: "alert" }, h("strong", {}, "Failure reason: "), d.FailureReason) : null,
      section("Progress", transformProgress(d.Progress)),
      section("Summary", kv([["Model", d.ModelName], ["Created", fmtTime(d.CreationTime)], ["Started", fmtTime(d.TransformStartTime)],
        ["Ended", fmtTime(d.TransformEndTime)], ["Input", d.TransformInput?.DataSource?.S3DataSource?.S3Uri], ["Output", d.TransformOutput?.S3OutputPath]])),
      section("Failed records", table([{ label: "File", value: (f) => f.File || f.Key || JSON.stringify(f) }, { label: "Reason", value: (f) => f.Reason || f.Error || "—" }],
        d.FailedRecords || [], { emptyText: "No failed records." })));
  };
  await draw();
  ctx.every(3000, draw);
}

export async function functionsView(root, _params, _query, ctx) {
  const body = h("div", {});
  fill(root, pageHeader("Functions"), section(null, body));
  const draw = async () => {
    const page = await api("/functions", { params: { MaxResults: 100 } });
    fill(body, table([
      { label: "Function", value: (f) => f.FunctionName }, { label: "State", value: (f) => badge(f.State) },
      { label: "Handler", value: (f) => h("code", {}, f.Handler) }, { label: "Memory", cls: "num", value: (f) => `${f.MemorySize} MB` },
      { label: "Timeout", cls: "num", value: (f) => `${f.Timeout} s` }, { label: "Modified", value: (f) => fmtTime(f.LastModified) },
    ], page.Functions, { emptyText: "No functions. Create one with Function.create() or `kamado functions create`." }));
  };
  await draw();
  ctx.every(10000, draw);
}
