// Home: what is running now (jobs, map runs, pipeline executions), what failed recently and why, endpoints and their health, capacity.

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { ago, fmtNum } from "../format.js";
import { badge, empty, kv, pageHeader, section, table } from "../ui.js";

/** Running pipeline executions: one list call per state machine, for the first 20 state machines only. */
async function runningExecutions() {
  const sms = await api("/state-machines", { params: { maxResults: 20 } });
  const pages = await Promise.all(sms.stateMachines.map((sm) =>
    api(`/state-machines/${enc(sm.name)}/executions`, { params: { statusFilter: "RUNNING", maxResults: 20 } })
      .then((p) => p.executions.map((e) => ({ sm: sm.name, ...e })))));
  return pages.flat();
}

async function running() {
  const [tj, hpo, pj, tr, maps, executions] = await Promise.all([
    api("/training-jobs", { params: { StatusEquals: "InProgress", MaxResults: 20 } }),
    api("/tuning-jobs", { params: { StatusEquals: "InProgress", MaxResults: 20 } }),
    api("/processing-jobs", { params: { StatusEquals: "InProgress", MaxResults: 20 } }),
    api("/transform-jobs", { params: { StatusEquals: "InProgress", MaxResults: 20 } }),
    api("/map-runs", { params: { MaxResults: 20 } }),
    runningExecutions(),
  ]);
  return [
    ...tj.TrainingJobSummaries.map((j) => ({ kind: "Training job", name: j.TrainingJobName, route: `/training/${enc(j.TrainingJobName)}`, status: j.SecondaryStatus || j.TrainingJobStatus, since: j.CreationTime })),
    ...hpo.HyperParameterTuningJobSummaries.map((j) => ({ kind: "Tuning job", name: j.HyperParameterTuningJobName, route: `/tuning/${enc(j.HyperParameterTuningJobName)}`, status: j.HyperParameterTuningJobStatus, since: j.CreationTime })),
    ...pj.ProcessingJobSummaries.map((j) => ({ kind: "Processing job", name: j.ProcessingJobName, route: `/processing/${enc(j.ProcessingJobName)}`, status: j.ProcessingJobStatus, since: j.CreationTime })),
    ...tr.TransformJobSummaries.map((j) => ({ kind: "Transform job", name: j.TransformJobName, route: `/transform/${enc(j.TransformJobName)}`, status: j.TransformJobStatus, since: j.CreationTime })),
    ...maps.MapRuns.filter((m) => m.Status === "InProgress").map((m) => ({ kind: "Map run", name: m.MapRunName, route: `/map-runs/${enc(m.MapRunName)}`, status: m.Status, since: m.StartDate })),
    ...executions.map((e) => ({ kind: "Pipeline execution", name: `${e.sm} / ${e.name}`, route: `/pipelines/${enc(e.sm)}/executions/${enc(e.name)}`, status: e.status, since: e.startDate })),
  ];
}

async function failures() {
  const page = await api("/training-jobs", { params: { StatusEquals: "Failed", MaxResults: 8 } });
  const described = await Promise.all(page.TrainingJobSummaries.map((j) => api(`/training-jobs/${enc(j.TrainingJobName)}`)));
  const maps = await api("/map-runs", { params: { MaxResults: 20 } });
  return [
    ...described.map((d) => ({ kind: "Training job", name: d.TrainingJobName, route: `/training/${enc(d.TrainingJobName)}`, when: d.TrainingEndTime || d.LastModifiedTime, reason: d.FailureReason })),
    ...maps.MapRuns.filter((m) => m.Status === "Failed").slice(0, 5).map((m) => ({ kind: "Map run", name: m.MapRunName, route: `/map-runs/${enc(m.MapRunName)}`, when: m.StopDate, reason: `${m.Error || ""}: ${m.Cause || ""}` })),
  ];
}

async function endpoints() {
  const page = await api("/endpoints", { params: { MaxResults: 10 } });
  return Promise.all(page.Endpoints.map((e) => api(`/endpoints/${enc(e.EndpointName)}`)));
}

function endpointRows(list) {
  return table([
    { label: "Endpoint", value: (e) => link(`/endpoints/${enc(e.EndpointName)}`, e.EndpointName) },
    { label: "Status", value: (e) => badge(e.EndpointStatus) },
    { label: "Instances", value: (e) => e.ProductionVariants.map((v) => `${v.VariantName}: ${v.CurrentInstanceCount}/${v.DesiredInstanceCount}`).join(", ") },
    { label: "Invocations (60 s)", cls: "num", value: (e) => fmtNum(e.ProductionVariants.reduce((n, v) => n + (v.Metrics?.invocations || 0), 0)) },
    { label: "Errors (60 s)", cls: "num", value: (e) => fmtNum(e.ProductionVariants.reduce((n, v) => n + (v.Metrics?.invocations_5xx || 0) + (v.Metrics?.invocations_4xx || 0), 0)) },
    { label: "Health", value: (e) => e.FailureReason ? h("span", { class: "bad-text" }, e.FailureReason)
      : e.PendingDeploymentSummary ? `deploying: ${e.PendingDeploymentSummary.Phase}` : "healthy" },
  ], list, { emptyText: "No endpoints. Deploy a model with the SDK (Model.deploy) or `kamado endpoints create`." });
}

export async function homeView(root, _params, _query, ctx) {
  const body = h("div", { class: "home" });
  fill(root, pageHeader("Overview"), body);
  const draw = async () => {
    const [info, run, failed, eps] = await Promise.all([api("/info"), running(), failures(), endpoints()]);
    const instances = eps.reduce((n, e) => n + e.ProductionVariants.reduce((m, v) => m + (v.CurrentInstanceCount || 0), 0), 0);
    fill(body,
      h("div", { class: "cols" },
        section("Running now", table([
          { label: "Kind", value: (r) => r.kind },
          { label: "Name", value: (r) => link(r.route, r.name) },
          { label: "Status", value: (r) => badge(r.status) },
          { label: "Started", value: (r) => ago(r.since) },
        ], run, { emptyText: "Nothing is running." })),
        section("Resources", kv([
          ["Server", `kamado ${info.version}`],
          ["Executor", info.executor],
          ["CPUs", fmtNum(info.capacity.cpus)],
          ["Memory", `${fmtNum(info.capacity.memoryMB / 1024, 3)} GiB`],
          ["GPUs", fmtNum(info.capacity.gpus)],
          ["Running jobs", String(run.length)],
          ["Model-server instances", String(instances)],
          ["Database", info.database],
        ]))),
      section("Failed recently", failed.length ? table([
        { label: "Kind", value: (r) => r.kind },
        { label: "Name", value: (r) => link(r.route, r.name) },
        { label: "When", value: (r) => ago(r.when) },
        { label: "Why (FailureReason)", value: (r) => h("span", { class: "reason" }, r.reason || "—") },
      ], failed) : empty("No recent failures.")),
      section("Endpoints", endpointRows(eps)));
  };
  await draw();
  ctx.every(5000, draw);
}
