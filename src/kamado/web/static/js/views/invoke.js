// The endpoint page's test-invoke box: one request straight to the data-plane router (the endpoint's
// InvocationUrl, another origin; the router allows this console's origin by CORS), never through the control
// plane. It sends the console's token the way api.js does for the control plane. The answer is shown as
// text: a model's output is data, and may contain markup that must never be parsed.

import { token } from "../api.js";
import { fill, h } from "../dom.js";
import { fmtNum } from "../format.js";

const TYPES = ["application/json", "text/csv"];
const PLACEHOLDER = { "application/json": "[[5.1, 3.5, 1.4, 0.2]]", "text/csv": "5.1,3.5,1.4,0.2" };

/** JSON pretty-printed, anything else as it came; always a string, put in the page as a text node. */
function shown(text, contentType) {
  if ((contentType || "").includes("json")) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  return text;
}

async function send(url, { contentType, body, variant }) {
  const headers = { "Content-Type": contentType, Accept: "*/*" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (variant) headers["X-Amzn-SageMaker-Target-Variant"] = variant;
  const started = performance.now();
  const res = await fetch(url, { method: "POST", headers, body, mode: "cors", credentials: "omit", cache: "no-store" });
  const text = await res.text();
  return { res, text, ms: performance.now() - started };
}

/** The box, made once per page (a refresh must not wipe what is being typed); `desc` is DescribeEndpoint. */
export function invokeBox(desc) {
  const url = desc.InvocationUrl;
  const type = h("select", { name: "invoke-type", id: "invoke-type", "aria-label": "Content type" },
    TYPES.map((t) => h("option", { value: t }, t)));
  const input = h("textarea", { id: "invoke-body", rows: 4, spellcheck: "false", "aria-label": "Request body",
    placeholder: PLACEHOLDER[TYPES[0]] });
  type.addEventListener("change", () => { input.placeholder = PLACEHOLDER[type.value] || ""; });
  const variant = h("select", { name: "invoke-variant", id: "invoke-variant", "aria-label": "Target variant" },
    h("option", { value: "" }, "any (by weight)"),
    (desc.ProductionVariants || []).map((v) => h("option", { value: v.VariantName }, v.VariantName)));
  const result = h("div", { id: "invoke-result", "aria-live": "polite" });
  const button = h("button", { type: "submit", id: "invoke-btn" }, "Send");
  const form = h("form", { class: "invoke-form", id: "invoke-form" },
    h("div", { class: "row" },
      h("label", {}, "Content type ", type),
      h("label", {}, "Target variant ", variant),
      h("span", { class: "spacer" }), button),
    input, result);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!url) {
      fill(result, h("div", { class: "error", role: "alert" }, "This endpoint has no invocation URL yet (no router is running)."));
      return;
    }
    button.disabled = true;
    fill(result, h("p", { class: "muted" }, "Sending…"));
    try {
      const { res, text, ms } = await send(url, { contentType: type.value, body: input.value, variant: variant.value });
      const answeredBy = res.headers.get("X-Amzn-Invoked-Production-Variant");
      const ctype = res.headers.get("Content-Type");
      fill(result,
        h("p", { class: res.ok ? "invoke-status ok" : "invoke-status bad", id: "invoke-status", dataset: { status: String(res.status) } },
          h("strong", {}, `${res.status} ${res.statusText}`.trim()), ` · ${fmtNum(ms, 3)} ms`,
          answeredBy ? [" · variant ", h("code", { id: "invoke-variant-used" }, answeredBy)] : null,
          ctype ? ` · ${ctype}` : null),
        h("pre", { class: res.ok ? "json" : "json failed", id: "invoke-response" }, shown(text, ctype)));
    } catch (err) {
      fill(result, h("div", { class: "error", role: "alert" },
        `The router at ${url} could not be reached from this page (${err.message}). If it started or moved after `,
        "this page was loaded, reload the page; the page's security policy names the router it may call."));
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { id: "test-invoke" },
    h("p", { class: "muted small" }, "Sent from your browser straight to the endpoint's router (",
      h("code", {}, url || "no router yet"), "), with your console token; the answer is shown as text."),
    form);
}
