// Pipelines: state machines (the definition drawn as a graph, executions, start form, schedules that
// target it), an execution (states coloured by what happened, each state's input and output on click,
// the event history, stop), and schedules and triggers (enable / disable).

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { between, fmtDuration, fmtNum, fmtTime, isLive } from "../format.js";
import { graphLegend, stateGraph } from "../graph.js";
import { go } from "../router.js";
import { actionButton, badge, empty, errorBox, kv, pageHeader, section, table } from "../ui.js";

const EXECUTION_STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const HISTORY_PAGES = 25; // 25,000 events: the per-execution limit

const smPath = (name) => `/state-machines/${enc(name)}`;
const exPath = (sm, ex) => `/state-machines/${enc(sm)}/executions/${enc(ex)}`;
const smRoute = (name) => `/pipelines/${enc(name)}`;
const exRoute = (sm, ex) => `/pipelines/${enc(sm)}/executions/${enc(ex)}`;

/** JSON text pretty-printed; anything that is not JSON is shown as it is. */
export function pretty(text) {
  if (text === null || text === undefined) return "—";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
}

function jsonBlock(text, attrs = {}) {
  return h("pre", { class: "json", ...attrs }, pretty(text));
}

// -- state machines list ----------------------------------------------------------------------------------

export async function pipelinesView(root, _params, query, ctx) {
  const body = h("div", {});
  fill(root, pageHeader("Pipelines", { actions: [link("/schedules", "Schedules and triggers", { class: "button-link" })] }),
    section("State machines", body),
    h("p", { class: "muted small", id: "not-built" },
      "Creating or editing state machines from the console is not built yet: use `kamado pipelines create` or ",
      "StateMachine.create() in the SDK."));
  const draw = async () => {
    const page = await api("/state-machines", { params: { maxResults: 100, nextToken: query.token } });
    fill(body, table([
      { label: "State machine", value: (r) => link(smRoute(r.name), r.name) },
      { label: "Type", value: (r) => r.type },
      { label: "Created", value: (r) => fmtTime(r.creationDate) },
    ], page.stateMachines, { emptyText: "No state machines yet. Create one with `kamado pipelines create NAME definition.json` or StateMachine.create() in the SDK.",
      rowAttrs: (r) => ({ dataset: { sm: r.name } }) }),
    page.nextToken || query.token ? h("div", { class: "pager row" },
      query.token ? h("button", { type: "button", onclick: () => go("/pipelines") }, "First page") : null,
      page.nextToken ? h("button", { type: "button", id: "next-page", onclick: () => go("/pipelines", { token: page.nextToken }) }, "Next page") : null) : null);
  };
  await draw();
  ctx.every(10000, draw);
}

// -- one state machine ----------------------------------------------------------------------------------

function startForm(name) {
  const input = h("textarea", { id: "exec-input", rows: 6, spellcheck: "false", "aria-label": "Execution input (JSON)" });
  input.value = "{}";
  const execName = h("input", { id: "exec-name", placeholder: "optional; a UUID if empty", maxlength: 80 });
  const out = h("div", { id: "start-error" });
  const button = h("button", { type: "submit", id: "start-btn" }, "Start execution");
  const form = h("form", { id: "start-form", class: "start-form", onsubmit: async (ev) => {
    ev.preventDefault();
    fill(out);
    const text = input.value.trim() || "{}";
    try {
      JSON.parse(text);
    } catch (err) {
      fill(out, h("div", { class: "error", role: "alert" }, h("strong", {}, "Input is not valid JSON: "), err.message));
      return;
    }
    button.disabled = true;
    try {
      const started = await api(`${smPath(name)}/executions`, { method: "POST",
        body: { input: text, ...(execName.value.trim() ? { name: execName.value.trim() } : {}) } });
      go(exRoute(name, started.name));
    } catch (err) {
      fill(out, errorBox(err));
    } finally {
      button.disabled = false;
    }
  } },
  h("label", { class: "block" }, "Input (JSON)", input),
  h("div", { class: "row" }, h("label", {}, "Name ", execName), button), out);
  return form;
}

function executionsTable(sm, page) {
  return table([
    { label: "Execution", value: (e) => link(exRoute(sm, e.name), e.name) },
    { label: "Status", value: (e) => badge(e.status) },
    { label: "Started", value: (e) => fmtTime(e.startDate) },
    { label: "Stopped", value: (e) => fmtTime(e.stopDate) },
    { label: "Duration", cls: "num", value: (e) => fmtDuration(between(e.startDate, e.stopDate)) },
  ], page.executions, { emptyText: "No executions match. Start one with the form above or `kamado pipelines start`.",
    rowAttrs: (e) => ({ dataset: { execution: e.name, status: e.status } }) });
}

async function targeting(name) {
  const [sch, trg] = await Promise.all([api("/schedules", { params: { MaxResults: 100 } }),
    api("/triggers", { params: { MaxResults: 100 } })]);
  return [
    ...sch.Schedules.filter((x) => x.Target?.StateMachine === name).map((x) => ({ kind: "Schedule", name: x.Name, state: x.State,
      what: `${x.ScheduleExpression} (${x.ScheduleExpressionTimezone})`, next: x.NextFireTime })),
    ...trg.Triggers.filter((x) => x.Target?.StateMachine === name).map((x) => ({ kind: "Trigger", name: x.Name, state: x.State,
      what: x.Prefix, next: null })),
  ];
}

export async function stateMachineView(root, { name }, query, ctx) {
  const [desc, targets] = await Promise.all([api(smPath(name)), targeting(name)]);
  const status = EXECUTION_STATUSES.includes(query.status) ? query.status : "";
  const size = Math.min(100, Math.max(1, Number.parseInt(query.size, 10) || 25));
  const keep = { status, size: query.size }; // carried over to the next and first page
  const list = h("div", { id: "executions" });
  const filter = h("select", { name: "status", id: "exec-status", onchange: () => go(smRoute(name), { status: filter.value, size: query.size }) },
    h("option", { value: "" }, "all statuses"),
    EXECUTION_STATUSES.map((st) => h("option", { value: st, selected: st === status }, st)));
  fill(root,
    pageHeader(name, { sub: badge(desc.status), crumbs: [link("/pipelines", "Pipelines"), name] }),
    h("div", { class: "cols graph-cols" },
      section("Definition", stateGraph(desc.definition, { id: "sm" }),
        h("details", {}, h("summary", { class: "muted" }, "Definition as JSON"), h("pre", { class: "json" }, desc.definition))),
      h("div", {},
        section("Start an execution", startForm(name)),
        section("Details", kv([["Type", desc.type], ["Created", fmtTime(desc.creationDate)], ["Updated", fmtTime(desc.updateDate)],
          ["Revision", desc.revisionId], ["Role", desc.roleArn], ["ARN", desc.stateMachineArn]])),
        section("Schedules and triggers", table([
          { label: "Name", cls: "nowrap", value: (t) => h("span", {}, link("/schedules", t.name), h("div", { class: "muted small" }, t.kind)) },
          { label: "State", value: (t) => badge(t.state) },
          { label: "Expression / prefix", value: (t) => h("code", {}, t.what) },
          { label: "Next fire", value: (t) => (t.kind === "Schedule" ? fmtTime(t.next) : "on new objects") },
        ], targets, { emptyText: "Nothing starts this state machine on its own. See `kamado pipelines schedules create`.",
          rowAttrs: (t) => ({ dataset: { target: t.name } }) })))),
    section("Executions", h("div", { class: "filters" }, h("label", {}, "Status ", filter)), list));
  const draw = async () => {
    const page = await api(`${smPath(name)}/executions`, { params: { statusFilter: status, maxResults: size, nextToken: query.token } });
    fill(list, executionsTable(name, page),
      page.nextToken || query.token ? h("div", { class: "pager row" },
        query.token ? h("button", { type: "button", id: "first-page", onclick: () => go(smRoute(name), keep) }, "First page") : null,
        page.nextToken ? h("button", { type: "button", id: "next-page", onclick: () => go(smRoute(name), { ...keep, token: page.nextToken }) },
          "Next page") : null) : null);
  };
  await draw();
  ctx.every(3000, draw);
}

// -- one execution --------------------------------------------------------------------------------------

async function fullHistory(sm, ex) {
  const events = [];
  let token = null;
  for (let i = 0; i < HISTORY_PAGES; i++) {
    const page = await api(`${exPath(sm, ex)}/history`, { params: { maxResults: 1000, nextToken: token } });
    events.push(...page.events);
    token = page.nextToken;
    if (!token) break;
  }
  return events;
}

function detailsOf(ev) {
  const key = Object.keys(ev).find((k) => k.endsWith("EventDetails"));
  return key ? ev[key] : null;
}

/**
 * What happened to each state, from the history: {status: {name: cls}, visits: {name: [{entered, input,
 * exited, output}]}}. Entered and exited: succeeded; entered, not exited: running (failed if the execution
 * failed or timed out, stopped if it was aborted); the state entered last before ExecutionFailed: failed.
 */
export function stateStatuses(events, executionStatus) {
  const visits = {};
  const open = {};
  let lastEntered = null;
  let failedState = null;
  for (const ev of events) {
    const d = detailsOf(ev) || {};
    if (ev.type.endsWith("StateEntered") && d.name !== undefined) {
      const v = { entered: ev.timestamp, input: d.input ?? null, exited: null, output: null, id: ev.id };
      (visits[d.name] ||= []).push(v);
      (open[d.name] ||= []).push(v);
      lastEntered = d.name;
    } else if (ev.type.endsWith("StateExited") && d.name !== undefined) {
      const v = (open[d.name] || []).shift() || { entered: null, input: null };
      if (!visits[d.name]) visits[d.name] = [v];
      v.exited = ev.timestamp;
      v.output = d.output ?? null;
    } else if (ev.type === "ExecutionFailed" || ev.type === "ExecutionTimedOut") {
      failedState = lastEntered;
    }
  }
  const status = {};
  const unfinished = executionStatus === "ABORTED" ? "aborted"
    : executionStatus === "FAILED" || executionStatus === "TIMED_OUT" ? "failed" : "running";
  for (const [name, list] of Object.entries(visits)) {
    status[name] = list.some((v) => !v.exited) ? unfinished : "succeeded";
  }
  if (failedState) status[failedState] = "failed";
  return { status, visits, failedState };
}

function eventDetailsText(ev) {
  const d = detailsOf(ev);
  if (!d) return "";
  return Object.entries(d).map(([k, v]) => {
    if ((k === "input" || k === "output") && typeof v === "string") {
      try {
        return `${k}: ${JSON.stringify(JSON.parse(v))}`;
      } catch {
        return `${k}: ${v}`;
      }
    }
    return `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`;
  }).join("\n");
}

function statePanel(name, info) {
  if (!name) return empty("Click a state in the graph to see its input and output.");
  const visits = info.visits[name] || [];
  const st = info.status[name] || "notreached";
  return h("div", { dataset: { state: name } },
    h("div", { class: "row" }, h("h3", { class: "panel-title" }, name), h("span", { class: `badge st-badge st-${st}` }, st === "notreached" ? "not reached" : st)),
    visits.length ? visits.slice(0, 50).map((v, i) => h("div", { class: "visit" },
      visits.length > 1 ? h("div", { class: "muted small" }, `Visit ${i + 1} of ${visits.length}`) : null,
      h("div", { class: "muted small" }, `entered ${fmtTime(v.entered)}${v.exited ? ", exited " + fmtTime(v.exited) : ""}`),
      h("h4", {}, "Input"), jsonBlock(v.input, { class: "json state-input" }),
      h("h4", {}, "Output"), v.exited ? jsonBlock(v.output, { class: "json state-output" })
        : h("p", { class: "muted state-output" }, "Not exited (no output).")))
      : empty("This state was not reached in this execution."),
    visits.length > 50 ? h("p", { class: "muted" }, `First 50 of ${visits.length} visits.`) : null);
}

export async function executionView(root, { name: sm, execution }, _query, ctx) {
  const smDesc = await api(smPath(sm));
  let selected = null;
  let shown = { status: null, events: -1 };
  const draw = async () => {
    const [desc, events] = await Promise.all([api(exPath(sm, execution)), fullHistory(sm, execution)]);
    if (desc.status === shown.status && events.length === shown.events) return;
    shown = { status: desc.status, events: events.length };
    const info = stateStatuses(events, desc.status);
    const panel = h("div", { id: "state-panel" });
    const graphBox = h("div", {});
    const select = (n) => {
      selected = n;
      fill(graphBox, graph());
      fill(panel, statePanel(n, info));
    };
    const graph = () => stateGraph(smDesc.definition, { id: "ex", selected, onSelect: select,
      statusOf: (n) => info.status[n] || "notreached" });
    fill(graphBox, graph());
    fill(panel, statePanel(selected, info));
    const live = isLive(desc.status);
    fill(root,
      pageHeader(execution, { sub: badge(desc.status), crumbs: [link("/pipelines", "Pipelines"), link(smRoute(sm), sm), execution], actions: [
        live && !desc.stopRequested ? actionButton("Stop", async () => {
          await api(`${exPath(sm, execution)}/stop`, { method: "POST", body: { cause: "Stopped from the console" } });
          shown = { status: null, events: -1 };
          await draw();
        }, { danger: true, id: "stop-btn", confirmText: `Stop execution ${execution}?` }) : null,
        desc.stopRequested ? h("span", { class: "muted" }, "stop requested…") : null] }),
      desc.error || desc.cause ? h("div", { class: "error", role: "alert", id: "exec-error" },
        h("strong", {}, `${desc.error || "Error"}: `), desc.cause || "") : null,
      h("div", { class: "cols graph-cols" },
        section("States", graphLegend(), graphBox,
          info.failedState ? h("p", { class: "bad-text", id: "failed-state" }, `Failed in state: ${info.failedState}`) : null,
          h("p", { class: "muted small" }, "The graph is the state machine's current definition; an execution keeps the one it started with.")),
        h("div", {},
          section("Selected state", panel),
          section("Summary", kv([["State machine", link(smRoute(sm), sm)], ["Status", badge(desc.status)], ["Started", fmtTime(desc.startDate)],
            ["Stopped", fmtTime(desc.stopDate)], ["Duration", fmtDuration(between(desc.startDate, desc.stopDate))],
            ["Events", fmtNum(events.length)], ["ARN", desc.executionArn]])),
          section("Input", jsonBlock(desc.input, { class: "json", id: "exec-input-text" })),
          section("Output", desc.output !== undefined ? jsonBlock(desc.output, { class: "json", id: "exec-output-text" })
            : empty(live ? "Not finished yet." : "No output.")))),
      section("Event history", table([
        { label: "ID", cls: "num nowrap", value: (e) => String(e.id) },
        { label: "Time", cls: "nowrap", value: (e) => fmtTime(e.timestamp) },
        { label: "Type", cls: "nowrap", value: (e) => h("span", { class: e.type.endsWith("Failed") || e.type.endsWith("Aborted") || e.type.endsWith("TimedOut") ? "bad-text" : null }, e.type) },
        { label: "Details", cls: "wide", value: (e) => h("span", { class: "reason event-details" }, eventDetailsText(e)) },
      ], events, { emptyText: "No events yet.", rowAttrs: (e) => ({ dataset: { event: String(e.id), type: e.type } }) })));
    return live;
  };
  await draw();
  ctx.every(2000, async () => {
    if (isLive(shown.status)) await draw();
  });
}

// -- schedules and triggers -----------------------------------------------------------------------------

function toggle(kind, item, redraw) {
  const enabled = item.State === "ENABLED";
  return actionButton(enabled ? "Disable" : "Enable", async () => {
    await api(`/${kind}/${enc(item.Name)}/state`, { method: "POST", body: { State: enabled ? "DISABLED" : "ENABLED" } });
    await redraw();
  }, { danger: enabled });
}

export async function schedulesView(root, _params, _query, ctx) {
  const sched = h("div", {});
  const trig = h("div", {});
  fill(root, pageHeader("Schedules and triggers", { crumbs: [link("/pipelines", "Pipelines"), "Schedules and triggers"] }),
    section("Schedules", sched), section("Triggers", trig));
  const draw = async () => {
    const [s, t] = await Promise.all([api("/schedules", { params: { MaxResults: 100 } }), api("/triggers", { params: { MaxResults: 100 } })]);
    fill(sched, table([
      { label: "Schedule", cls: "nowrap", value: (r) => r.Name },
      { label: "State", value: (r) => badge(r.State) },
      { label: "Expression", value: (r) => h("span", {}, h("code", {}, r.ScheduleExpression), h("span", { class: "muted small" }, ` ${r.ScheduleExpressionTimezone}`)) },
      { label: "Starts", value: (r) => link(smRoute(r.Target.StateMachine), r.Target.StateMachine) },
      { label: "Next fire", value: (r) => (r.NextFireTime ? fmtTime(r.NextFireTime) : "—") },
      { label: "Last fire", value: (r) => (r.LastExecution ? link(exRoute(r.Target.StateMachine, r.LastExecution), fmtTime(r.LastFireTime)) : fmtTime(r.LastFireTime)) },
      { label: "Fires", cls: "num", value: (r) => fmtNum(r.Fires) },
      { label: "", value: (r) => toggle("schedules", r, draw) },
    ], s.Schedules, { emptyText: "No schedules. Create one with `kamado pipelines schedules create NAME 'rate(1 day)' STATE_MACHINE`.",
      rowAttrs: (r) => ({ dataset: { schedule: r.Name, state: r.State } }) }));
    fill(trig, table([
      { label: "Trigger", cls: "nowrap", value: (r) => r.Name },
      { label: "State", value: (r) => badge(r.State) },
      { label: "Prefix", value: (r) => h("code", {}, r.Prefix) },
      { label: "Starts", value: (r) => link(smRoute(r.Target.StateMachine), r.Target.StateMachine) },
      { label: "Polls every", cls: "num", value: (r) => `${fmtNum(r.PollIntervalSeconds)} s` },
      { label: "Last poll", value: (r) => fmtTime(r.LastPoll) },
      { label: "Objects seen", cls: "num", value: (r) => fmtNum(r.ObjectsSeen) },
      { label: "Fires", cls: "num", value: (r) => (r.LastExecution ? link(exRoute(r.Target.StateMachine, r.LastExecution), fmtNum(r.Fires)) : fmtNum(r.Fires)) },
      { label: "", value: (r) => toggle("triggers", r, draw) },
    ], t.Triggers, { emptyText: "No triggers. Create one with `kamado pipelines triggers create NAME PREFIX STATE_MACHINE`.",
      rowAttrs: (r) => ({ dataset: { trigger: r.Name, state: r.State } }) }));
  };
  await draw();
  ctx.every(5000, draw);
}
