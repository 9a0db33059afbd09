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
const CHAR_W = 7.2;

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

/** A Choice rule in a few words: "$.mode StringEquals "wait"", a JSONata condition, or "rule N". */
export function choiceLabel(rule, i) {
  if (rule.Condition) return String(rule.Condition);
  if (rule.Variable) {
    const op = Object.keys(rule).find((k) => !["Variable", "Next", "Assign", "Output", "Comment"].includes(k));
    return op ? `${rule.Variable} ${op} ${JSON.stringify(rule[op])}` : rule.Variable;
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
  const queue = [];
  if (def.StartAt in states) {
    depth[def.StartAt] = 0;
    queue.push(def.StartAt);
  }
  while (queue.length) {
    const n = queue.shift();
    order.push(n);
    for (const e of edges) {
      if (e.from === n && !(e.to in depth)) {
        depth[e.to] = depth[n] + 1;
        queue.push(e.to);
      }
    }
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
  const width = Math.max(480, ...rows.filter(Boolean).map(rowWidth)) + 2 * MARGIN + 90;
  const nodes = {};
  let y = MARGIN + 18;
  for (const row of rows) {
    if (!row) continue;
    const heights = row.map((n) => NODE_H + innerLines(states[n]).length * LINE_H + (innerLines(states[n]).length ? 6 : 0));
    let x = (width - 90 - rowWidth(row)) / 2;
    row.forEach((n, i) => {
      nodes[n] = { name: n, type: states[n].Type || "?", x, y, w, h: heights[i], depth: depth[n], lines: innerLines(states[n]),
        end: !!states[n].End || ["Succeed", "Fail"].includes(states[n].Type) };
      x += w + GAP_X;
    });
    y += Math.max(...heights) + GAP_Y;
  }
  return { nodes: order.map((n) => nodes[n]), byName: nodes, edges, width, height: y - GAP_Y + MARGIN, start: def.StartAt };
}

function edgePath(a, b, slot, slots) {
  if (b.y > a.y) {
    const x1 = a.x + (a.w * (slot + 1)) / (slots + 1);
    const y1 = a.y + a.h;
    const x2 = b.x + b.w / 2;
    const y2 = b.y;
    const dy = Math.max(24, (y2 - y1) / 2);
    return { d: `M${x1},${y1} C${x1},${y1 + dy} ${x2},${y2 - dy} ${x2},${y2 - 2}`,
      mid: [(x1 + x2) / 2, (y1 + y2) / 2] };
  }
  // Back (or sideways) edge: out of the right side of a, into the right side of b.
  const x1 = a.x + a.w;
  const y1 = a.y + a.h / 2;
  const x2 = b.x + b.w + 2;
  const y2 = b.y + b.h / 2;
  const out = 60 + 14 * slot;
  return { d: `M${x1},${y1} C${x1 + out},${y1} ${x2 + out},${y2} ${x2 + 4},${y2}`,
    mid: [Math.max(x1, x2) + out * 0.75, (y1 + y2) / 2] };
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
  for (const [from, list] of Object.entries(outgoing)) {
    const down = list.filter((e) => g.byName[e.to].y > g.byName[from].y);
    const back = list.filter((e) => g.byName[e.to].y <= g.byName[from].y);
    const draw = (e, slot, slots) => {
      const { d, mid } = edgePath(g.byName[e.from], g.byName[e.to], slot, slots);
      svg.append(s("path", { d, class: `edge edge-${e.kind}`, "marker-end": `url(#${marker})`,
        dataset: { from: e.from, to: e.to } }, s("title", {}, `${e.from} → ${e.to}${e.label ? " (" + e.label + ")" : ""}`)));
      if (e.label) labels.push(s("text", { x: mid[0], y: mid[1] + 4, "text-anchor": "middle", class: `edge-label edge-label-${e.kind}` },
        short(e.label, 30)));
    };
    down.forEach((e, i) => draw(e, i, down.length));
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
  svg.append(...labels); // on top of edges and nodes, so they stay readable
  return h("div", { class: "graph-box" }, svg);
}

/** The legend for an execution's graph. */
export function graphLegend() {
  const key = (cls, label) => h("span", { class: "key" }, h("i", { class: `swatch st-swatch st-${cls}` }), label);
  return h("div", { class: "legend" }, key("succeeded", "succeeded"), key("running", "running"), key("failed", "failed"),
    key("aborted", "stopped"), key("notreached", "not reached"));
}
