// Hash routes (#/training/my-job?x=1), so every page is deep-linkable and the server serves one file.
// A view is an async function (root, params, query, ctx); ctx.every() registers auto-refresh timers
// that are cleared when the user navigates away, and paused while the tab is hidden.

import { fill, h } from "./dom.js";
import { errorBox } from "./ui.js";

const routes = [];

export function route(pattern, view, nav) {
  const keys = [];
  const re = new RegExp("^" + pattern.replace(/:(\w+)/g, (_, k) => {
    keys.push(k);
    return "([^/]+)";
  }) + "$");
  routes.push({ re, keys, view, nav });
}

export function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(qs)) };
}

export function go(path, query = {}) {
  const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  const s = qs.toString();
  window.location.hash = path + (s ? "?" + s : "");
}

let generation = 0;
let timers = [];

function stopTimers() {
  for (const t of timers) clearTimeout(t.handle);
  timers = [];
}

export async function render() {
  stopTimers();
  const gen = ++generation;
  const root = document.getElementById("view");
  const { path, query } = parseHash();
  const found = routes.map((r) => ({ r, m: r.re.exec(path) })).find((x) => x.m);
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", !!found && a.dataset.nav === found.r.nav);
  if (!found) {
    fill(root, h("div", { class: "card" }, h("h1", {}, "Page not found"),
      h("p", {}, `Nothing lives at #${path}. `, h("a", { href: "#/" }, "Go home"), ".")));
    return;
  }
  const params = {};
  found.r.keys.forEach((k, i) => { params[k] = decodeURIComponent(found.m[i + 1]); });
  const ctx = {
    alive: () => gen === generation,
    /** Run fn every ms while this page is shown (after each run completes; skipped while hidden). */
    every(ms, fn) {
      const tick = async () => {
        if (gen !== generation) return;
        if (!document.hidden) {
          try {
            await fn();
            document.getElementById("refresh-state").textContent = `auto-refresh every ${ms / 1000} s`;
          } catch (err) {
            document.getElementById("refresh-state").textContent = `refresh failed: ${err.message}`;
          }
        }
        if (gen === generation) timers.push({ handle: setTimeout(tick, ms) });
      };
      timers.push({ handle: setTimeout(tick, ms) });
    },
  };
  document.getElementById("refresh-state").textContent = "";
  root.dataset.state = "loading";
  try {
    await found.r.view(root, params, query, ctx);
    if (gen === generation) {
      root.dataset.state = "ready";
      performance.mark("kamado:view-ready");
    }
  } catch (err) {
    if (gen !== generation) return;
    fill(root, errorBox(err));
    root.dataset.state = "error";
  }
}
