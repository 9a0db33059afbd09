// The only way the console talks to the server: the public REST API under /api/v1, the same calls the
// SDK makes. Auth-aware: a 401 opens the token prompt, the token is kept in sessionStorage (this tab
// only) and sent as a Bearer header on every call. No cookies, so there is no CSRF surface.

import { apiUrl, authHeaders, currentProject, DEFAULT_PROJECT, TOKEN_KEY } from "./requests.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.message || problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || null;
    this.details = problem.details || null;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  document.getElementById("sign-out").hidden = true;
}

let pendingPrompt = null;

/** Show the sign-in dialog once, however many calls were refused at the same time. */
function askForToken(reason) {
  if (pendingPrompt) return pendingPrompt;
  const dialog = document.getElementById("auth-dialog");
  const form = document.getElementById("auth-form");
  const input = document.getElementById("auth-token");
  document.getElementById("auth-reason").textContent = reason;
  input.value = "";
  pendingPrompt = new Promise((resolve) => {
    const done = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      form.removeEventListener("submit", done);
      sessionStorage.setItem(TOKEN_KEY, value);
      document.getElementById("sign-out").hidden = false;
      dialog.close();
      pendingPrompt = null;
      resolve();
    };
    form.addEventListener("submit", done);
  });
  if (!dialog.open) dialog.showModal();
  input.focus();
  return pendingPrompt;
}

/** The answer early.js already asked for, if it asked for exactly this request; taken once. */
function takeEarly(target, method) {
  const early = window.__kamadoEarly;
  if (!early || method !== "GET" || early.url !== target) return null;
  window.__kamadoEarly = null;
  return early.response;
}

/** Call the API; returns parsed JSON (or text for text responses). Throws ApiError on 4xx/5xx. */
export async function api(path, { method = "GET", params, body, text = false } = {}) {
  const target = apiUrl(path, params);
  let early = takeEarly(target, method);
  for (;;) {
    const headers = authHeaders();
    const t = token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = (early && (await early)) || (await fetch(target, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit",
        cache: "no-store",
      }));
      early = null;
    } catch (err) {
      throw new ApiError(0, { message: `The server could not be reached (${err.message}). Is it running?` });
    }
    if (res.status === 401) {
      const problem = await res.json().catch(() => ({}));
      const why = t ? "The token was refused; enter a valid one." : "This server needs an API token.";
      await askForToken(problem.message ? `${why} (${problem.message})` : why);
      continue;
    }
    if (!res.ok) {
      const problem = await res.json().catch(() => ({ message: `HTTP ${res.status} ${res.statusText}` }));
      throw new ApiError(res.status, problem);
    }
    return text ? res.text() : res.json();
  }
}

export function initAuth() {
  const button = document.getElementById("sign-out");
  button.hidden = !token();
  button.addEventListener("click", () => {
    signOut();
    window.location.reload();
  });
}

/** The project picker: lists the projects the caller may see and, on a change, reloads the console in the
 * chosen one (?project=NAME, kept in the address so links carry it). The current project is always listed,
 * even when the caller may not list the others. */
export async function initProjectPicker() {
  const picker = document.getElementById("project-picker");
  const current = currentProject();
  let names = [current];
  try {
    const listed = (await api("/projects")).Projects || [];
    names = [...new Set([DEFAULT_PROJECT, ...listed.map((p) => p.Name), current])].sort();
  } catch (err) {
    picker.title = `Could not list projects: ${err.message}`;
  }
  picker.replaceChildren(...names.map((name) => {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;  // text, never markup
    option.selected = name === current;
    return option;
  }));
  picker.addEventListener("change", () => {
    const url = new URL(window.location.href);
    if (picker.value === DEFAULT_PROJECT) url.searchParams.delete("project");
    else url.searchParams.set("project", picker.value);
    window.location.assign(url.toString());
  });
}
