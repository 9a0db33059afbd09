// Entry point: routes, auth and the footer. Every view lives in views/ and talks only to /api/v1.

import { initAuth, initProjectPicker } from "./api.js";
import { fill } from "./dom.js";
import { timeZone } from "./format.js";
import { render, route } from "./router.js";
import { batchView, functionsView, mapRunView, processingJobView, transformJobView } from "./views/batch.js";
import { endpointListView, endpointView } from "./views/endpoints.js";
import { homeView } from "./views/home.js";
import { executionView, pipelinesView, schedulesView, stateMachineView } from "./views/pipelines.js";
import { trainingCompareView, trainingJobView, trainingListView } from "./views/training.js";
import { tuningJobView, tuningListView } from "./views/tuning.js";

route("/", homeView, "home");
route("/training", trainingListView, "training");
route("/training/compare", trainingCompareView, "training");
route("/training/:name", trainingJobView, "training");
route("/tuning", tuningListView, "tuning");
route("/tuning/:name", tuningJobView, "tuning");
route("/endpoints", endpointListView, "endpoints");
route("/endpoints/:name", endpointView, "endpoints");
route("/batch", batchView, "batch");
route("/map-runs/:name", mapRunView, "batch");
route("/processing/:name", processingJobView, "batch");
route("/transform/:name", transformJobView, "batch");
route("/functions", functionsView, "functions");
route("/pipelines", pipelinesView, "pipelines");
route("/pipelines/:name", stateMachineView, "pipelines");
route("/pipelines/:name/executions/:execution", executionView, "pipelines");
route("/schedules", schedulesView, "pipelines");

initAuth();
initProjectPicker();
fill(document.getElementById("foot"), `Times are shown in your time zone (${timeZone}). `,
  "The console uses only the public API under /api/v1 (and the endpoint's router for a test invocation).");
window.addEventListener("hashchange", render);
render();
