// Tuning jobs: list, and a job page with its trials, objective by trial with the best so far, and a
// parallel-coordinates plot of hyperparameters against the objective. Pruned and failed trials are
// drawn differently from completed ones everywhere (table rows, scatter markers, lines).

import { api } from "../api.js";
import { enc, fill, h, link } from "../dom.js";
import { fmtNum, fmtTime, isLive } from "../format.js";
import { parallelCoordinates, trialChart } from "../charts.js";
import { actionButton, badge, kv, pageHeader, section, table } from "../ui.js";

export async function tuningListView(root, _params, _query, ctx) {
  const body = h("div", {});
  fill(root, pageHeader("Tuning jobs"), section(null, body));
  const draw = async () => {
    const page = await api("/tuning-jobs", { params: { MaxResults: 100 } });
    fill(body, table([
      { label: "Name", value: (j) => link(`/tuning/${enc(j.HyperParameterTuningJobName)}`, j.HyperParameterTuningJobName) },
      { label: "Status", value: (j) => badge(j.HyperParameterTuningJobStatus) },
      { label: "Strategy", value: (j) => j.Strategy },
      { label: "Trials done / running", value: (j) => `${j.TrainingJobStatusCounters.Completed} / ${j.TrainingJobStatusCounters.InProgress}` },
      { label: "Failed", cls: "num", value: (j) => String(j.TrainingJobStatusCounters.NonRetryableError + j.TrainingJobStatusCounters.RetryableError) },
      { label: "Created", value: (j) => fmtTime(j.CreationTime) },
    ], page.HyperParameterTuningJobSummaries, { emptyText: "No tuning jobs yet. Start one with HyperparameterTuner.fit()." }));
  };
  await draw();
  ctx.every(5000, draw);
}

export function trialStatus(t) {
  if (t.TrainingJobStatus === "Failed" || t.ObjectiveStatus === "Failed") return "failed";
  if (t.TrainingJobStatus === "Stopped" || t.TrainingJobStatus === "Stopping") return "pruned";
  if (t.TrainingJobStatus === "Completed") return "ok";
  return "running";
}

export async function tuningJobView(root, { name }, _query, ctx) {
  const draw = async () => {
    const [desc, trialsPage] = await Promise.all([
      api(`/tuning-jobs/${enc(name)}`), api(`/tuning-jobs/${enc(name)}/training-jobs`)]);
    const cfg = desc.HyperParameterTuningJobConfig;
    const objective = cfg.HyperParameterTuningJobObjective;
    const maximize = objective.Type === "Maximize";
    const trials = [...trialsPage.TrainingJobSummaries].sort((a, b) => new Date(a.CreationTime) - new Date(b.CreationTime))
      .map((t, i) => ({ ...t, n: i + 1, status: trialStatus(t), value: t.FinalHyperParameterTuningJobObjectiveMetric?.Value }));
    const params = [...new Set(trials.flatMap((t) => Object.keys(t.TunedHyperParameters || {})))].sort();
    const best = desc.BestTrainingJob;
    const live = isLive(desc.HyperParameterTuningJobStatus);
    fill(root,
      pageHeader(name, { sub: badge(desc.HyperParameterTuningJobStatus), crumbs: [link("/tuning", "Tuning jobs"), name],
        actions: [live ? actionButton("Stop", async () => {
          await api(`/tuning-jobs/${enc(name)}/stop`, { method: "POST" });
          await draw();
        }, { danger: true, id: "stop-btn", confirmText: `Stop tuning job ${name}?` }) : null] }),
      desc.FailureReason ? h("div", { class: "error", role: "alert" }, h("strong", {}, "Failure reason: "), desc.FailureReason) : null,
      h("div", { class: "cols" },
        section("Summary", kv([
          ["Objective", `${objective.Type} ${objective.MetricName}`],
          ["Strategy", cfg.Strategy],
          ["Early stopping", cfg.TrainingJobEarlyStoppingType],
          ["Trials", `${trials.length} of ${cfg.ResourceLimits.MaxNumberOfTrainingJobs ?? "∞"} (${cfg.ResourceLimits.MaxParallelTrainingJobs} at a time)`],
          ["Created", fmtTime(desc.CreationTime)],
          ["Ended", fmtTime(desc.HyperParameterTuningEndTime)],
        ])),
        section("Best trial", best ? kv([
          ["Training job", link(`/training/${enc(best.TrainingJobName)}`, best.TrainingJobName)],
          [objective.MetricName, fmtNum(best.FinalHyperParameterTuningJobObjectiveMetric?.Value)],
          ...Object.entries(best.TunedHyperParameters || {}).map(([k, v]) => [k, fmtNum(v)]),
        ]) : h("p", { class: "muted" }, "No completed trial yet."))),
      h("div", { class: "cols" },
        section("Objective by trial", trialChart(trials, { maximize, metric: objective.MetricName })),
        section("Parallel coordinates", parallelCoordinates(
          trials.map((t) => ({ name: t.TrainingJobName, values: t.TunedHyperParameters || {}, objective: t.value, status: t.status })),
          params, { metric: objective.MetricName, maximize }))),
      section("Trials", table([
        { label: "#", cls: "num", value: (t) => String(t.n) },
        { label: "Training job", value: (t) => link(`/training/${enc(t.TrainingJobName)}`, t.TrainingJobName) },
        { label: "Status", value: (t) => badge(t.TrainingJobStatus) },
        { label: "Objective", value: (t) => t.ObjectiveStatus || "—" },
        { label: objective.MetricName, cls: "num", value: (t) => fmtNum(t.value) },
        ...params.map((p) => ({ label: p, cls: "num", value: (t) => fmtNum(t.TunedHyperParameters?.[p]) })),
      ], trials, { emptyText: "No trials started yet.",
        rowAttrs: (t) => ({ class: `trial-row trial-${t.status}${best && best.TrainingJobName === t.TrainingJobName ? " best" : ""}`,
          dataset: { trial: t.TrainingJobName, status: t.status } }) })));
    return live;
  };
  const live = await draw();
  if (live) ctx.every(3000, draw);
}
