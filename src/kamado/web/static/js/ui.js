// Small shared widgets: page header, sections, tables, key/value lists, status badges, empty and
// error states, and confirmable action buttons.

import { h } from "./dom.js";
import { statusClass } from "./format.js";

export function badge(status) {
  return h("span", { class: `badge ${statusClass(status)}`, dataset: { status: status || "" } }, status || "—");
}

export function pageHeader(title, { sub, actions = [], crumbs = [] } = {}) {
  return h("div", { class: "page-head" },
    crumbs.length ? h("div", { class: "crumbs" }, crumbs.flatMap((c, i) => (i ? [" / ", c] : [c]))) : null,
    h("div", { class: "row" }, h("h1", {}, title), sub || null, h("span", { class: "spacer" }), ...actions));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function empty(message) {
  return h("p", { class: "empty" }, message);
}

export function errorBox(err) {
  const details = Array.isArray(err.details)
    ? err.details.map((d) => h("li", {}, d.field ? `${d.field}: ${d.message || ""}` : JSON.stringify(d)))
    : [];
  return h("div", { class: "error", role: "alert" },
    h("strong", {}, err.status ? `Error ${err.status}${err.code ? " (" + err.code + ")" : ""}: ` : "Error: "),
    err.message || String(err), details.length ? h("ul", {}, details) : null);
}

/** rows: array of objects; cols: [{label, value: row => node|string, cls?}] */
export function table(cols, rows, { emptyText = "Nothing here yet.", rowAttrs } = {}) {
  if (!rows.length) return empty(emptyText);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", { class: c.cls || null }, c.label)))),
    h("tbody", {}, rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
      cols.map((c) => h("td", { class: c.cls || null }, c.value(r)))))));
}

/** pairs: [[label, value]]; values that are null/undefined show as a dash. */
export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).flatMap(([k, v]) => [
    h("dt", {}, k), h("dd", {}, v === null || v === undefined || v === "" ? "—" : v)]));
}

/** A button running an async action; shows the error next to it instead of failing silently. */
export function actionButton(label, run, { danger = false, confirmText, id } = {}) {
  const out = h("span", { class: "action" });
  const button = h("button", { type: "button", class: danger ? "danger" : null, id: id || null,
    onclick: async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      button.disabled = true;
      const old = out.querySelector(".error");
      if (old) old.remove();
      try {
        await run();
      } catch (err) {
        out.append(errorBox(err));
      } finally {
        button.disabled = false;
      }
    } }, label);
  out.append(button);
  return out;
}

export function tagList(tags) {
  if (!tags || !tags.length) return "—";
  return h("span", { class: "tags" }, tags.map((t) => h("span", { class: "tag" }, `${t.Key}=${t.Value}`)));
}
