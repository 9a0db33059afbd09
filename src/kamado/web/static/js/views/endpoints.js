// Endpoints: list (with models and endpoint configs), and an endpoint page with variants, per-variant
// invocations/errors/latency, the current deployment's progress, and a "shift traffic" form
// (UpdateEndpointWeightsAndCapacities), and a test-invoke box (views/invoke.js) that calls the router.

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { fmtNum, fmtTime, isLive } from "../format.js";
import { actionButton, badge, empty, errorBox, kv, pageHeader, section, table } from "../ui.js";
import { invokeBox } from "./invoke.js";

export async function endpointListView(root, _params, _query, ctx) {
  const eps = h("div", {});
  const models = h("div", {});
  const configs = h("div", {});
  fill(root, pageHeader("Endpoints"), section(null, eps),
    h("div", { class: "cols" }, section("Models", models), section("Endpoint configs", configs)));
  const draw = async () => {
    const [e, m, c] = await Promise.all([
      api("/endpoints", { params: { MaxResults: 100 } }), api("/models", { params: { MaxResults: 100 } }),
      api("/endpoint-configs", { params: { MaxResults: 100 } })]);
    fill(eps, table([
      { label: "Endpoint", value: (x) => link(`/endpoints/${enc(x.EndpointName)}`, x.EndpointName) },
      { label: "Status", value: (x) => badge(x.EndpointStatus) },
      { label: "Created", value: (x) => fmtTime(x.CreationTime) },
      { label: "Last change", value: (x) => fmtTime(x.LastModifiedTime) },
    ], e.Endpoints, { emptyText: "No endpoints. Deploy a model with Model.deploy() or `kamado endpoints create`." }));
    fill(models, table([{ label: "Model", value: (x) => x.ModelName }, { label: "Created", value: (x) => fmtTime(x.CreationTime) }],
      m.Models, { emptyText: "No models." }));
    fill(configs, table([{ label: "Endpoint config", value: (x) => x.EndpointConfigName }, { label: "Created", value: (x) => fmtTime(x.CreationTime) }],
      c.EndpointConfigs, { emptyText: "No endpoint configs." }));
  };
  await draw();
  ctx.every(5000, draw);
}

const PHASES = [["Starting", "New fleet starting"], ["Baking", "Traffic shifted, baking"], ["TerminationWait", "Old fleet draining"], ["Done", "Done"]];

function deployment(desc) {
  const d = desc.PendingDeploymentSummary;
  if (!d) {
    const last = desc.FailureReason ? h("div", { class: "error", role: "alert", id: "rollback-reason" },
      h("strong", {}, "Failure reason: "), desc.FailureReason) : h("p", { class: "muted" }, "No deployment in progress.");
    return last;
  }
  const idx = d.Phase === "RollingBack" ? -1 : PHASES.findIndex(([p]) => p === d.Phase);
  const pct = Math.round((d.TrafficToNewFleet || 0) * 100);
  return h("div", { id: "deployment" },
    kv([["Deploying config", d.EndpointConfigName], ["Started", fmtTime(d.StartTime)], ["Phase", d.Phase],
      ["Traffic on new fleet", `${pct}%`]]),
    d.Phase === "RollingBack" ? h("div", { class: "error" }, "Rolling back: an alarm fired or the new fleet failed.") :
      h("ol", { class: "stepper" }, PHASES.map(([p, label], i) => h("li", { class: i < idx ? "done" : i === idx ? "current" : "" }, label))),
    h("div", { class: "split-bar", title: `${pct}% of traffic on the new fleet` },
      h("span", { class: "seg old", style: `width:${100 - pct}%` }, `current ${100 - pct}%`),
      h("span", { class: "seg new", style: `width:${pct}%` }, pct ? `new ${pct}%` : "")));
}

function shiftForm(name, variants, redraw) {
  const rows = variants.map((v) => ({
    v, weight: h("input", { type: "number", min: 0, step: "any", value: v.DesiredWeight ?? v.CurrentWeight, name: `weight-${v.VariantName}`, size: 6 }),
    count: h("input", { type: "number", min: 0, max: 64, step: 1, value: v.DesiredInstanceCount ?? v.CurrentInstanceCount, name: `count-${v.VariantName}`, size: 4 }),
  }));
  const box = h("div", { id: "shift-traffic" },
    table([{ label: "Variant", value: (r) => r.v.VariantName }, { label: "Weight", value: (r) => r.weight },
      { label: "Instances", value: (r) => r.count }], rows),
    actionButton("Apply weights and capacities", async () => {
      const body = { DesiredWeightsAndCapacities: rows.map((r) => ({ VariantName: r.v.VariantName,
        DesiredWeight: Number(r.weight.value), DesiredInstanceCount: Number(r.count.value) })) };
      await api(`/endpoints/${enc(name)}/weights-and-capacities`, { method: "POST", body });
      await redraw(true);
    }, { id: "shift-btn" }));
  return box;
}

export async function endpointView(root, { name }, _query, ctx) {
  const body = h("div", {});
  const form = h("div", {});
  const draw = async () => {
    const desc = await api(`/endpoints/${enc(name)}`);
    const variants = desc.ProductionVariants || [];
    const weightSum = variants.reduce((n, v) => n + (v.CurrentWeight || 0), 0) || 1;
    fill(body,
      pageHeader(name, { sub: badge(desc.EndpointStatus), crumbs: [link("/endpoints", "Endpoints"), name] }),
      h("div", { class: "cols" },
        section("Summary", kv([["Config", desc.EndpointConfigName], ["Created", fmtTime(desc.CreationTime)],
          ["Last change", fmtTime(desc.LastModifiedTime)], ["Invocation URL", desc.InvocationUrl]])),
        section("Deployment", deployment(desc))),
      section("Variants (last 60 s)", table([
        { label: "Variant", value: (v) => v.VariantName },
        { label: "Weight", cls: "num", value: (v) => `${fmtNum(v.CurrentWeight)} (${Math.round((100 * (v.CurrentWeight || 0)) / weightSum)}%)` },
        { label: "Instances", cls: "num", value: (v) => `${v.CurrentInstanceCount} / ${v.DesiredInstanceCount}` },
        { label: "Instance states", value: (v) => (v.Instances || []).map((i) => `${i.InstanceId}: ${i.State}`).join(", ") || "—" },
        { label: "Invocations", cls: "num", value: (v) => fmtNum(v.Metrics?.invocations) },
        { label: "4xx", cls: "num", value: (v) => fmtNum(v.Metrics?.invocations_4xx) },
        { label: "5xx", cls: "num", value: (v) => fmtNum(v.Metrics?.invocations_5xx) },
        { label: "p50 ms", cls: "num", value: (v) => fmtNum(v.Metrics?.model_latency_p50_ms, 3) },
        { label: "p99 ms", cls: "num", value: (v) => fmtNum(v.Metrics?.model_latency_p99_ms, 3) },
      ], variants, { rowAttrs: (v) => ({ dataset: { variant: v.VariantName } }) })));
    return desc;
  };
  let lastStatus = null;
  const redrawForm = async (force = false) => {
    const desc = await draw();
    if (desc.EndpointStatus === lastStatus && !force) return desc;
    lastStatus = desc.EndpointStatus;
    fill(form, section("Shift traffic", desc.EndpointStatus === "InService"
      ? shiftForm(name, desc.ProductionVariants, redrawForm)
      : empty(`Weights and capacities can be changed when the endpoint is InService (it is ${desc.EndpointStatus}).`)));
    return desc;
  };
  const invoke = section("Test invoke", h("p", { class: "muted" }, "Loading…"));
  fill(root, body, form, invoke);
  let first = null;
  try {
    first = await redrawForm();
    fill(invoke, h("h2", {}, "Test invoke"), invokeBox(first));
  } catch (err) {
    fill(form, errorBox(err));
  }
  ctx.every(first && !isLive(first.EndpointStatus) ? 5000 : 2000, redrawForm);
}
