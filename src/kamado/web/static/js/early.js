// Loaded as an async module with one tiny dependency, so it runs as soon as it arrives, while main.js's
// import graph (a dozen modules) is still loading: it starts the first API call of a page whose request
// is known from its address alone (the training list, the console's largest page). api.js takes that
// answer for the identical request instead of asking again; a first visit no longer waits for the modules
// *and then* for the server, but for whichever is slower.

import { apiUrl, authHeaders, trainingListParams } from "./requests.js";

const FIRST_CALL = {
  "/training": (query) => apiUrl("/training-jobs", trainingListParams(query)),
};

const raw = window.location.hash.replace(/^#/, "") || "/";
const [path, qs = ""] = raw.split("?");
const make = FIRST_CALL[path];
if (make) {
  const url = make(Object.fromEntries(new URLSearchParams(qs)));
  const response = fetch(url, { headers: authHeaders(), credentials: "omit", cache: "no-store" }).catch(() => null);
  window.__kamadoEarly = { url, response };
}
