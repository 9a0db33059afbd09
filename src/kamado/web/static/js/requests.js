// How the console's API requests are addressed and authorised, with no dependencies, so that early.js can
// start a page's first request before the rest of the console has loaded, byte-for-byte the same request
// api.js would make (api.js then takes the answer instead of asking again).

export const TOKEN_KEY = "kamado.token";
export const BASE = "/api/v1";
export const DEFAULT_PROJECT = "default";

/** The project the console works in: the page address's ?project= (so every view is deep-linkable with
 * its project), else the server's default project. */
export function currentProject() {
  return new URLSearchParams(window.location.search).get("project") || DEFAULT_PROJECT;
}

/** The headers every API call carries: JSON, the tab's token as a Bearer header when there is one, and
 * the project (X-Kamado-Project) when it is not the default one. */
export function authHeaders() {
  const headers = { Accept: "application/json" };
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) headers.Authorization = `Bearer ${t}`;
  const project = currentProject();
  if (project !== DEFAULT_PROJECT) headers["X-Kamado-Project"] = project;
  return headers;
}

/** Path and query of an API call; empty, null and undefined parameters are left out. */
export function apiUrl(path, params) {
  const u = new URL(BASE + path, window.location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

/** ListTrainingJobs parameters for the training list's address (#/training?status=...&sort=...). */
export function trainingListParams(query) {
  return {
    StatusEquals: query.status, NameContains: query.name, CreationTimeAfter: query.after,
    CreationTimeBefore: query.before, SortBy: query.sort, SortOrder: query.order, MaxResults: query.size || 50,
    NextToken: query.token,
  };
}
