// A state machine's definition drawn as a graph in hand-written SVG. Nodes are the top-level states
// (name and type; a Parallel's branches and a Map's iterator are listed inside their node), edges are
// Next, Choice rules, Default and Catch. Layout: rows by breadth-first depth from StartAt, nodes in a row
// in the order they were reached; an edge going back up (a loop) is drawn round the right-hand side.
// Every name goes in through text nodes, like everywhere else.

import { h, s } from "./dom.js";

const NODE_H = 46;
const LINE_H = 16;
const GAP_X = 40;
const GAP_Y = 56;
const MARGIN = 24;
const GUTTER = 60; // room on the left for arrows that skip rows, on the right for loops
const CHAR_W = 7.8; // a generous average for 13px bold names: boxes are sized to fit them

/** The definition as an object; a definition that is not JSON gives an empty graph, not an error. */
export function parseDefinition(text) {
  if (text && typeof text === "object") return text;
  try {
    return JSON.parse(text);
  } catch {
    return { States: {} };
  }
}

function short(text, max) {
  const str = String(text);
  return str.length > max ? str.slice(0, max - 1) + "…" : str;
}

const COMPARE = { Equals: "==", LessThan: "<", GreaterThan: ">", LessThanEquals: "<=", GreaterThanEquals: ">=" };

/** A Choice comparison in a few characters: StringEquals "x" -> == "x", NumericLessThanPath $.y -> < $.y. */
function opText(op, value) {
  const isPath = op.endsWith("Path");
  const base = isPath ? op.slice(0, -4) : op;
  const v = isPath ? String(value) : JSON.stringify(value);
  if (base.startsWith("Is")) return `${value ? "is" : "is not"} ${base.slice(2).toLowerCase()}`;
  if (base.endsWith("Matches")) return `matches ${v}`;
  const sym = COMPARE[base.replace(/^(String|Numeric|Boolean|Timestamp)/, "")];
  return sym ? `${sym} ${v}` : `${op} ${v}`;
}

/** A Choice rule in a few words: $.mode == "wait", a JSONata condition, or "rule N". */
export function choiceLabel(rule, i) {
  if (rule.Condition) return String(rule.Condition);
  if (rule.Variable) {
    const op = Object.keys(rule).find((k) => !["Variable", "Next", "Assign", "Output", "Comment"].includes(k));
    return op ? `${rule.Variable} ${opText(op, rule[op])}` : rule.Variable;
  }
  for (const op of ["And", "Or", "Not"]) if (rule[op]) return `${op}(…)`;
  return `rule ${i + 1}`;
}

/** Edges of one level of a definition: [{from, to, label, kind}]. */
export function edgesOf(states) {
  const edges = [];
  for (const [name, st] of Object.entries(states || {})) {
    if (st.Next) edges.push({ from: name, to: st.Next, label: "", kind: "next" });
    if (st.Type === "Choice") {
      (st.Choices || []).forEach((rule, i) => {
        if (rule.Next) edges.push({ from: name, to: rule.Next, label: choiceLabel(rule, i), kind: "choice" });
      });
      if (st.Default) edges.push({ from: name, to: st.Default, label: "Default", kind: "default" });
    }
    for (const c of st.Catch || []) {
      if (c.Next) edges.push({ from: name, to: c.Next, label: `Catch ${(c.ErrorEquals || []).join(", ")}`, kind: "catch" });
    }
  }
  return edges;
}

/** The inner lines of a Parallel or Map node: [{text, state?}] (state: a name that can be clicked). */
function innerLines(st) {
  const lines = [];
  const list = (sub) => {
    for (const n of Object.keys(sub?.States || {})) lines.push({ text: `  ${n}`, state: n, type: sub.States[n].Type });
  };
  if (st.Type === "Parallel") {
    (st.Branches || []).forEach((b, i) => {
      lines.push({ text: `branch ${i + 1}` });
      list(b);
    });
  } else if (st.Type === "Map") {
    lines.push({ text: "each item:" });
    list(st.ItemProcessor || st.Iterator);
  }
  return lines;
}

/** Positions: {nodes: [{name, type, x, y, w, h, depth, lines}], edges, width, height}. */
export function layout(def) {
  const states = def.States || {};
  const names = Object.keys(states);
  const edges = edgesOf(states).filter((e) => e.to in states);
  const depth = {};
  const order = [];
  // Breadth-first from StartAt over the normal flow (Next, Choice, Default) first; only states reached
  // through a Catch alone are then placed from there, so error paths do not pull states up.
  const bfs = (queue, kinds) => {
    while (queue.length) {
      const n = queue.shift();
      if (!order.includes(n)) order.push(n);
      for (const e of edges) {
        if (e.from === n && kinds.includes(e.kind) && !(e.to in depth)) {
          depth[e.to] = depth[n] + 1;
          queue.push(e.to);
        }
      }
    }
  };
  if (def.StartAt in states) {
    depth[def.StartAt] = 0;
    bfs([def.StartAt], ["next", "choice", "default"]);
    bfs([...order], ["next", "choice", "default", "catch"]);
  }
  const maxDepth = order.length ? Math.max(...order.map((n) => depth[n])) : -1;
  for (const n of names) {
    if (!(n in depth)) {
      depth[n] = maxDepth + 1; // not reachable from StartAt: drawn on a last row
      order.push(n);
    }
  }
  const longest = Math.max(8, ...names.map((n) => n.length),
    ...names.flatMap((n) => innerLines(states[n]).map((l) => l.text.length + (l.type ? l.type.length + 2 : 0))));
  const w = Math.round(Math.min(300, Math.max(150, longest * CHAR_W + 24)));
  const rows = [];
  for (const n of order) (rows[depth[n]] ||= []).push(n);
  const rowWidth = (row) => row.length * w + (row.length - 1) * GAP_X;
  const width = Math.max(480, ...rows.filter(Boolean).map(rowWidth)) + 2 * MARGIN + 2 * GUTTER;
  const nodes = {};
  let y = MARGIN + 18;
  for (const row of rows) {
    if (!row) continue;
    const heights = row.map((n) => NODE_H + innerLines(states[n]).length * LINE_H + (innerLines(states[n]).length ? 6 : 0));
    let x = (width - rowWidth(row)) / 2;
    row.forEach((n, i) => {
      nodes[n] = { name: n, type: states[n].Type || "?", x, y, w, h: heights[i], depth: depth[n], lines: innerLines(states[n]),
        end: !!states[n].End || ["Succeed", "Fail"].includes(states[n].Type) };
      x += w + GAP_X;
    });
    y += Math.max(...heights) + GAP_Y;
  }
  return { nodes: order.map((n) => nodes[n]), byName: nodes, edges, width, height: y - GAP_Y + MARGIN + 30, start: def.StartAt };
}

function bezier(p0, c1, c2, p3, tt) {
  const u = 1 - tt;
  return [0, 1].map((k) => u * u * u * p0[k] + 3 * u * u * tt * c1[k] + 3 * u * tt * tt * c2[k] + tt * tt * tt * p3[k]);
}

/** The path of an edge from a to b, and where its label goes; lane: the x left of the rows it skips. */
function edgePath(a, b, slot, slots, lane) {
  let p0;
  let c1;
  let c2;
  let p3;
  let at = 0.5;
  if (b.y > a.y && lane !== null) { // down past other rows: out of a's left, down a lane left of them, into b
    const x0 = a.x;
    const y0 = a.y + a.h / 2;
    const x3 = b.x + Math.min(24, b.w / 4);
    const y3 = b.y - 2;
    const d = `M${x0},${y0} C${lane},${y0} ${lane},${y0} ${lane},${y0 + 30} L${lane},${y3 - 40} `
      + `C${lane},${y3 - 10} ${x3},${y3 - 30} ${x3},${y3}`;
    return { d, mid: [lane - 4, (y0 + y3) / 2], anchor: "end" };
  } else if (b.y > a.y) { // down to the next row: bottom of a to the top of b
    p0 = [a.x + (a.w * (slot + 1)) / (slots + 1), a.y + a.h];
    p3 = [b.x + b.w / 2, b.y - 2];
    const dy = Math.max(24, (p3[1] - p0[1]) / 2);
    c1 = [p0[0], p0[1] + dy];
    c2 = [p3[0], p3[1] - dy];
    at = 0.62;
  } else if (b.y === a.y) { // along the same row: a loop under it, into the bottom of b
    const dip = 34 + 8 * slot;
    p0 = [a.x + a.w / 2 + (b.x > a.x ? 20 : -20), a.y + a.h];
    p3 = [b.x + b.w / 2 + (b.x > a.x ? -20 : 20), b.y + b.h + 2];
    c1 = [p0[0], p0[1] + dip];
    c2 = [p3[0], p3[1] + dip];
  } else { // back up (a loop): out of the right side of a, into the right side of b
    const out = 60 + 14 * slot;
    p0 = [a.x + a.w, a.y + a.h / 2];
    p3 = [b.x + b.w + 2, b.y + b.h / 2];
    c1 = [p0[0] + out, p0[1]];
    c2 = [p3[0] + out, p3[1]];
  }
  const f = (p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`;
  return { d: `M${f(p0)} C${f(c1)} ${f(c2)} ${f(p3)}`, mid: bezier(p0, c1, c2, p3, at) };
}

/** Moves labels down until their (estimated) boxes do not overlap. */
function placeLabels(items) {
  const placed = [];
  for (const it of items) {
    const w = it.text.length * 6 + 8;
    const cx = it.anchor === "end" ? it.x - w / 2 : it.anchor === "start" ? it.x + w / 2 : it.x;
    let y = it.y;
    const hits = (p) => Math.abs(p.x - cx) < (p.w + w) / 2 && Math.abs(p.y - y) < 13;
    for (let guard = 0; guard < 8 && placed.some(hits); guard++) y += 14;
    placed.push({ x: cx, y, w });
    it.y = y;
  }
  return items;
}

/**
 * The graph as a figure. statusOf(name) gives a node's class suffix (succeeded, running, failed,
 * aborted, notreached; "plain" when no execution is shown); onSelect(name) is called on a click.
 */
export function stateGraph(definition, { statusOf = () => "plain", onSelect = null, selected = null, id = "g" } = {}) {
  const def = parseDefinition(definition);
  const g = layout(def);
  const marker = `arrow-${id}`;
  const svg = s("svg", { viewBox: `0 0 ${g.width} ${g.height}`, width: g.width, class: "state-graph", role: "img",
    "aria-label": "state machine graph" },
  s("defs", {}, s("marker", { id: marker, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
    orient: "auto-start-reverse" }, s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }))));
  const first = g.byName[g.start];
  if (first) {
    const cx = first.x + first.w / 2;
    svg.append(s("circle", { cx, cy: MARGIN - 4, r: 6, class: "start-dot" }),
      s("line", { x1: cx, y1: MARGIN + 2, x2: cx, y2: first.y - 2, class: "edge", "marker-end": `url(#${marker})` }));
  }
  const outgoing = {};
  for (const e of g.edges) (outgoing[e.from] ||= []).push(e);
  const labels = [];
  const pending = [];
  for (const [from, list] of Object.entries(outgoing)) {
    const down = list.filter((e) => g.byName[e.to].y > g.byName[from].y && g.byName[e.to].depth === g.byName[from].depth + 1);
    const far = list.filter((e) => g.byName[e.to].depth > g.byName[from].depth + 1);
    const side = list.filter((e) => g.byName[e.to].y === g.byName[from].y);
    const back = list.filter((e) => g.byName[e.to].y < g.byName[from].y);
    const draw = (e, slot, slots) => {
      const a = g.byName[e.from];
      const b = g.byName[e.to];
      const between = g.nodes.filter((n) => n.y > a.y && n.y < b.y);
      const lane = between.length ? Math.min(...between.map((n) => n.x), a.x, b.x) - 24 - 12 * slot : null;
      const { d, mid, anchor } = edgePath(a, b, slot, slots, lane);
      svg.append(s("path", { d, class: `edge edge-${e.kind}`, "marker-end": `url(#${marker})`,
        dataset: { from: e.from, to: e.to } }, s("title", {}, `${e.from} → ${e.to}${e.label ? " (" + e.label + ")" : ""}`)));
      if (e.label) {
        const text = short(e.label, 30);
        const end = anchor === "end" && mid[0] > text.length * 6 + 4; // room on the left of the lane, else on its right
        pending.push({ x: anchor === "end" ? (end ? mid[0] : mid[0] + 8) : mid[0], y: mid[1] + 4, text, kind: e.kind,
          anchor: anchor === "end" ? (end ? "end" : "start") : "middle" });
      }
    };
    down.forEach((e, i) => draw(e, i, down.length));
    far.forEach((e, i) => draw(e, i, far.length));
    side.forEach((e, i) => draw(e, i, side.length));
    back.forEach((e, i) => draw(e, i, back.length));
  }
  for (const n of g.nodes) {
    const status = statusOf(n.name);
    const node = s("g", { class: `state-node st-${status}${n.name === selected ? " selected" : ""}${n.end ? " end" : ""}`,
      transform: `translate(${n.x},${n.y})`, tabindex: onSelect ? 0 : null, role: onSelect ? "button" : null,
      dataset: { state: n.name, status } },
    s("title", {}, `${n.name} (${n.type})`),
    s("rect", { width: n.w, height: n.h, rx: 8 }),
    s("text", { x: 10, y: 19, class: "state-name" }, short(n.name, Math.floor((n.w - 20) / CHAR_W))),
    s("text", { x: 10, y: 36, class: "state-type" }, n.type));
    n.lines.forEach((line, i) => {
      const st = line.state ? statusOf(line.state) : null;
      const t = s("text", { x: 12, y: NODE_H + 6 + i * LINE_H, class: line.state ? `inner-state st-${st}` : "inner-head",
        dataset: line.state ? { state: line.state, status: st } : {} },
      short(line.text, Math.floor((n.w - 20) / CHAR_W)), line.type ? s("tspan", { class: "inner-type" }, `  ${line.type}`) : null);
      if (line.state && onSelect) {
        t.addEventListener("click", (ev) => {
          ev.stopPropagation();
          onSelect(line.state);
        });
      }
      node.append(t);
    });
    if (onSelect) {
      node.addEventListener("click", () => onSelect(n.name));
      node.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          onSelect(n.name);
        }
      });
    }
    svg.append(node);
  }
  for (const l of placeLabels(pending)) {
    labels.push(s("text", { x: l.x, y: l.y, "text-anchor": l.anchor, class: `edge-label edge-label-${l.kind}` }, l.text));
  }
  svg.append(...labels); // on top of edges and nodes, so they stay readable
  return h("div", { class: "graph-box" }, svg);
}

/** The legend for an execution's graph. */
export function graphLegend() {
  const key = (cls, label) => h("span", { class: "key" }, h("i", { class: `swatch st-swatch st-${cls}` }), label);
  return h("div", { class: "legend" }, key("succeeded", "succeeded"), key("running", "running"), key("failed", "failed"),
    key("aborted", "stopped"), key("notreached", "not reached"));
}
