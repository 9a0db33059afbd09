// Hand-written SVG charts: line charts (downsampled), trial scatter with best-so-far, parallel
// coordinates and progress bars. Text in charts goes in through text nodes, like everywhere else.

import { h, s } from "./dom.js";
import { lttb } from "./downsample.js";
import { fmtNum } from "./format.js";

export const PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
const PAD = { l: 56, r: 12, t: 12, b: 28 };

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.5, hi + (Math.abs(hi) || 1) * 0.5];
  return [lo, hi];
}

/** "Nice" tick values (1, 2 or 5 times a power of ten) inside [lo, hi]; steps of at least 1 when the
 * axis counts whole things (steps, trials). */
export function ticks(lo, hi, count = 5, integer = false) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((st) => span / st <= count) || 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** A tick label: short, no trailing zeros, thousands separated. */
export function tickLabel(v) {
  if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(1);
  return Number(v.toPrecision(4)).toLocaleString(undefined, { maximumFractionDigits: 4 });
}

function frame(width, height, [x0, x1], [y0, y1], integerX = false) {
  const g = s("g", { class: "axes" });
  const px = (x) => PAD.l + ((x - x0) / (x1 - x0 || 1)) * (width - PAD.l - PAD.r);
  const py = (y) => height - PAD.b - ((y - y0) / (y1 - y0 || 1)) * (height - PAD.t - PAD.b);
  for (const y of ticks(y0, y1)) {
    g.append(s("line", { x1: PAD.l, x2: width - PAD.r, y1: py(y), y2: py(y), class: "grid" }));
    g.append(s("text", { x: PAD.l - 6, y: py(y) + 4, "text-anchor": "end" }, tickLabel(y)));
  }
  for (const x of ticks(x0, x1, 6, integerX)) {
    g.append(s("text", { x: px(x), y: height - 8, "text-anchor": "middle" }, tickLabel(x)));
  }
  return { g, px, py };
}

/**
 * series: [{name, xs, ys, color?}] (xs ascending). Each series is downsampled to ~2 points per pixel
 * column before it is drawn. Returns a figure element; figure.dataset.points says how many were drawn.
 */
/** About two points per pixel column of a chart `width` wide: what lineChart draws, and what the console
 * asks the server for (MaxPoints), so a long series crosses the wire already thinned. */
export function chartPoints(width = 640) {
  return Math.max(50, Math.floor((width - PAD.l - PAD.r) * 2));
}

/** series: [{name, xs, ys, color?, total?}]; `total` is the series' length before the server thinned it. */
export function lineChart(series, { width = 640, height = 220, title = "", xLabel = "step", maxPoints } = {}) {
  maxPoints = maxPoints || chartPoints(width);
  const drawn = series.map((sr) => {
    const [xs, ys] = lttb(sr.xs, sr.ys, maxPoints);
    return { ...sr, xs, ys };
  });
  const [x0, x1] = extent(drawn.flatMap((d) => d.xs));
  const [y0, y1] = extent(drawn.flatMap((d) => d.ys));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  const integerX = series.every((sr) => Number.isInteger(sr.xs[0]) && Number.isInteger(sr.xs[sr.xs.length - 1]));
  const { g, px, py } = frame(width, height, [x0, x1], [y0, y1], integerX);
  svg.append(g);
  drawn.forEach((d, i) => {
    const pts = [];
    for (let k = 0; k < d.xs.length; k++) {
      if (Number.isFinite(d.ys[k])) pts.push(`${px(d.xs[k]).toFixed(1)},${py(d.ys[k]).toFixed(1)}`);
    }
    svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: d.color || PALETTE[i % PALETTE.length],
      "stroke-width": 1.6, class: "series" }));
  });
  const total = series.reduce((n, sr) => n + Math.max(sr.total || 0, sr.xs.length), 0);
  const shown = drawn.reduce((n, d) => n + d.xs.length, 0);
  const legend = h("div", { class: "legend" }, drawn.map((d, i) =>
    h("span", { class: "key" }, h("i", { class: "swatch", style: `background:${d.color || PALETTE[i % PALETTE.length]}` }),
      d.name)));
  const note = total > shown ? h("span", { class: "muted small" }, ` ${total.toLocaleString()} points, ${shown.toLocaleString()} drawn`) : null;
  return h("figure", { class: "chart-box", dataset: { points: String(shown), total: String(total) } },
    h("figcaption", {}, title, h("span", { class: "muted small" }, ` by ${xLabel}`), note), svg,
    series.length > 1 ? legend : null);
}

/**
 * Trials: [{n, value, status, name}] with status one of ok / failed / pruned. Completed trials are dots,
 * pruned ones hollow diamonds, failed ones crosses on the axis floor; a step line tracks the best so far.
 */
export function trialChart(trials, { maximize = true, width = 640, height = 240, metric = "objective" } = {}) {
  const ok = trials.filter((t) => Number.isFinite(t.value));
  const [x0, x1] = extent([1, ...trials.map((t) => t.n), 2]);
  const [y0, y1] = extent(ok.map((t) => t.value));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": `${metric} by trial` });
  const { g, px, py } = frame(width, height, [x0, x1], [y0, y1], true);
  svg.append(g);
  let best = null;
  const steps = [];
  for (const t of [...ok].sort((a, b) => a.n - b.n)) {
    if (t.status !== "ok") continue;
    if (best === null || (maximize ? t.value > best : t.value < best)) best = t.value;
    steps.push(`${px(t.n).toFixed(1)},${py(best).toFixed(1)}`);
  }
  if (steps.length) {
    const last = steps[steps.length - 1].split(",")[1];
    steps.push(`${px(x1).toFixed(1)},${last}`);
    svg.append(s("polyline", { points: stepify(steps), fill: "none", class: "best-line" }));
  }
  for (const t of trials) {
    const cx = px(t.n);
    const title = s("title", {}, `${t.name}: ${t.status}${Number.isFinite(t.value) ? " " + fmtNum(t.value) : ""}`);
    if (t.status === "failed" || !Number.isFinite(t.value)) {
      const cy = height - PAD.b - 6;
      svg.append(s("path", { d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}`,
        class: "trial trial-failed", dataset: { trial: t.name } }, title));
    } else if (t.status === "pruned") {
      const cy = py(t.value);
      svg.append(s("path", { d: `M${cx},${cy - 5}L${cx + 5},${cy}L${cx},${cy + 5}L${cx - 5},${cy}Z`,
        class: "trial trial-pruned", dataset: { trial: t.name } }, title));
    } else {
      svg.append(s("circle", { cx, cy: py(t.value), r: 4, class: "trial trial-ok", dataset: { trial: t.name } }, title));
    }
  }
  const legend = h("div", { class: "legend" },
    h("span", { class: "key" }, h("i", { class: "swatch dot-ok" }), "completed"),
    h("span", { class: "key" }, h("i", { class: "swatch dot-pruned" }), "pruned / stopped early"),
    h("span", { class: "key" }, h("i", { class: "swatch dot-failed" }), "failed (no objective)"),
    h("span", { class: "key" }, h("i", { class: "swatch line-best" }), "best so far"));
  return h("figure", { class: "chart-box" }, h("figcaption", {}, `${metric} by trial number`), svg, legend);
}

function stepify(points) {
  const out = [points[0]];
  for (let i = 1; i < points.length; i++) {
    const [x] = points[i].split(",");
    const [, yPrev] = points[i - 1].split(",");
    out.push(`${x},${yPrev}`, points[i]);
  }
  return out.join(" ");
}

/**
 * Parallel coordinates: one vertical axis per hyperparameter plus the objective; one polyline per trial.
 * rows: [{values: {param: value}, objective, status, name}]. Categorical axes space their values evenly.
 */
export function parallelCoordinates(rows, params, { width = 600, height = 260, metric = "objective", maximize = true } = {}) {
  const axes = [...params, metric];
  const pad = { l: 40, r: 60, t: 24, b: 24 };
  const ax = (i) => pad.l + (i * (width - pad.l - pad.r)) / Math.max(1, axes.length - 1);
  const scales = axes.map((p, i) => {
    const vals = rows.map((r) => (i === axes.length - 1 ? r.objective : r.values[p])).filter((v) => v !== undefined && v !== null);
    const numeric = vals.every((v) => Number.isFinite(Number(v)));
    if (numeric) {
      const [lo, hi] = extent(vals.map(Number));
      return { numeric, lo, hi, y: (v) => height - pad.b - ((Number(v) - lo) / (hi - lo || 1)) * (height - pad.t - pad.b) };
    }
    const cats = [...new Set(vals.map(String))].sort();
    return { numeric, cats, y: (v) => height - pad.b - ((cats.indexOf(String(v)) + 0.5) / cats.length) * (height - pad.t - pad.b) };
  });
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": "parallel coordinates" });
  const objScale = scales[scales.length - 1];
  for (const r of rows) {
    const pts = [];
    axes.forEach((p, i) => {
      const v = i === axes.length - 1 ? r.objective : r.values[p];
      if (v === undefined || v === null || (i === axes.length - 1 && !Number.isFinite(v))) return;
      pts.push(`${ax(i).toFixed(1)},${scales[i].y(v).toFixed(1)}`);
    });
    let color = "#9ca3af";
    if (r.status === "ok" && objScale.numeric && Number.isFinite(r.objective)) {
      let t = (r.objective - objScale.lo) / (objScale.hi - objScale.lo || 1);
      if (!maximize) t = 1 - t;
      color = `hsl(${Math.round(10 + 200 * t)}, 70%, 45%)`;
    }
    svg.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5,
      class: `pc-line pc-${r.status}`, dataset: { trial: r.name } }, s("title", {}, r.name)));
  }
  axes.forEach((p, i) => {
    const x = ax(i);
    svg.append(s("line", { x1: x, x2: x, y1: pad.t, y2: height - pad.b, class: "pc-axis" }));
    svg.append(s("text", { x, y: 14, "text-anchor": "middle", class: "axis-label" }, p));
    const sc = scales[i];
    const labels = sc.numeric ? [[sc.lo, tickLabel(sc.lo)], [sc.hi, tickLabel(sc.hi)]] : sc.cats.map((c) => [c, c]);
    for (const [v, label] of labels) svg.append(s("text", { x: x + 5, y: sc.y(v) + 4, class: "pc-tick" }, label));
  });
  return h("figure", { class: "chart-box" }, h("figcaption", {}, "Hyperparameters vs objective (colour: better is blue; grey dashed: failed or pruned)"), svg);
}

/** A stacked bar: parts [{label, value, cls}] out of total. */
export function progressBar(parts, total) {
  const bar = h("div", { class: "progress", role: "progressbar", "aria-valuemax": String(total) });
  for (const p of parts) {
    if (!p.value) continue;
    const pct = total ? (100 * p.value) / total : 0;
    bar.append(h("span", { class: `seg ${p.cls}`, style: `width:${pct.toFixed(2)}%`, title: `${p.label}: ${p.value}` }));
  }
  return bar;
}
