"""The tuning reconciler: keeps up to MaxParallelTrainingJobs trials running until the budget is spent.

Each pass re-derives everything from the store: the children (training jobs whose parent is the tuning job)
and their objective values. Trial n is named deterministically (``<job>-<NNN>-<hash>``) and created through
the training service, so a crash between "asked the sampler" and "stored the child" just asks again for
trial n, and a create that did land is seen as child n on the next pass: no trial lost, none duplicated.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kamado.core.clock import Clock, SystemClock
from kamado.core.errors import IllegalTransition, NotFound, ResourceInUse
from kamado.core.loop import ReconcileLoop
from kamado.core.projects import project_scope
from kamado.core.settings import Settings
from kamado.store.base import MetadataStore
from kamado.store.records import ResourceRecord
from kamado.training.service import KIND as TRAINING_KIND
from kamado.training.service import TrainingService
from kamado.training.spec import CreateTrainingJobRequest
from kamado.tuning.early_stopping import asha_rule, median_rule
from kamado.tuning.search import PastTrial, suggest
from kamado.tuning.service import (
    ACTIVE,
    KIND,
    TuningService,
    child_name,
    objective_value,
    trial_summary,
    tuned_values,
)
from kamado.tuning.spec import CreateHyperParameterTuningJobRequest

log = logging.getLogger("kamado.tuning")

#: When this many trials in a row have ended without an objective value and none has one yet, the tuning
#: job fails: the objective metric is almost certainly never printed (a wrong regex or metric name).
FAILURES_BEFORE_GIVING_UP = 5


class TuningReconciler(ReconcileLoop):
    name = "tuning-reconciler"

    def __init__(
        self,
        store: MetadataStore,
        tuning: TuningService,
        training: TrainingService,
        settings: Settings,
        *,
        clock: Clock | None = None,
        wake_training: Any = None,
    ) -> None:
        self.store = store
        self.tuning = tuning
        self.training = training
        self.settings = settings
        self.clock = clock or SystemClock()
        self._wake_training = wake_training
        self._objectives: dict[str, float | None] = {}  # terminal children only: they never change
        self._series_cache: dict[str, list[float]] = {}
        self._parents: dict[str, list[tuple[ResourceRecord, float | None]]] = {}
        super().__init__(settings.reconcile_interval_s)

    def idle(self) -> bool:
        return not self.store.list_in_states(KIND, ACTIVE)

    def tick(self) -> None:
        for job in self.store.list_in_states(KIND, ACTIVE):
            try:
                with project_scope(job.project):  # its trials live in the tuning job's project
                    self._step(job)
            except NotFound:
                continue
            except Exception:
                log.exception("reconciling tuning job %s failed", job.name)

    # -- one pass over one tuning job ----------------------------------------------------------------
    def _step(self, job: ResourceRecord) -> None:
        req = CreateHyperParameterTuningJobRequest.model_validate(job.spec)
        config = req.HyperParameterTuningJobConfig
        objective = config.HyperParameterTuningJobObjective
        children = self.tuning.children(job.name)
        running = [c for c in children if c.state in ("InProgress", "Stopping")]
        values = {c.name: self._objective(c, objective.MetricName) for c in children}
        best = self._best(children, values, objective.Type)
        patch: dict[str, Any] = {
            "TrainingJobStatusCounters": _training_counters(children),
            "ObjectiveStatusCounters": _objective_counters(children, values),
            "BestTrainingJob": trial_summary(best, values[best.name], req) if best else None,
        }
        if req.WarmStartConfig and req.WarmStartConfig.WarmStartType == "IdenticalDataAndAlgorithm":
            patch["OverallBestTrainingJob"] = self._overall_best(req, patch["BestTrainingJob"])
        stop_reason = self._stop_reason(job, req, best, values, children)
        if job.state == "Stopping" or stop_reason:
            for child in running:
                if child.state == "InProgress":
                    with contextlib.suppress(IllegalTransition):
                        self.training.stop(child.name)
            if running:
                self._save(job, patch)
                return
            final = "Stopped" if job.state == "Stopping" else stop_reason[0] if stop_reason else "Completed"
            reason = None if job.state == "Stopping" else (stop_reason[1] if stop_reason else None)
            self._finish(job, final, reason, patch)
            return
        self._stop_hopeless_trials(req, children, running)
        budget = config.max_jobs()
        if len(children) >= budget:
            if not running:
                if best is None:
                    self._finish(
                        job,
                        "Failed",
                        f"No training job produced the objective metric "
                        f"'{objective.MetricName}'; check its MetricDefinition regex against a job's log.",
                        patch,
                    )
                else:
                    self._finish(job, "Completed", None, patch)
            else:
                self._save(job, patch)
            return
        free = min(config.ResourceLimits.MaxParallelTrainingJobs - len(running), budget - len(children))
        past = self._warm_start_trials(req) + [self._past(c, values[c.name], req) for c in children]
        created = False
        for i in range(free):
            trial_number = len(children) + i + 1
            tuned = suggest(config, past, base_seed=int(job.status.get("Seed", 0)), trial_number=trial_number)
            name = child_name(job.name, trial_number, tuned)
            try:
                trial = CreateTrainingJobRequest.model_validate(req.child_request(name, tuned))
                self.training.create(trial, parent=job.name)
                created = True
            except ResourceInUse:
                pass  # created by a pass that crashed right after: it is trial n already
            past.append(PastTrial(tuned=tuned, state="running"))
        if created and self._wake_training is not None:
            self._wake_training()
        self._save(job, patch)

    def _stop_reason(
        self,
        job: ResourceRecord,
        req: CreateHyperParameterTuningJobRequest,
        best: ResourceRecord | None,
        values: dict[str, float | None],
        children: list[ResourceRecord],
    ) -> tuple[str, str | None] | None:
        config = req.HyperParameterTuningJobConfig
        target = (
            config.TuningJobCompletionCriteria.TargetObjectiveMetricValue
            if config.TuningJobCompletionCriteria
            else None
        )
        if best is not None and target is not None:
            value = values[best.name]
            assert value is not None
            maximize = config.HyperParameterTuningJobObjective.Type == "Maximize"
            if (value >= target) if maximize else (value <= target):
                return ("Completed", None)
        limit = config.ResourceLimits.MaxRuntimeInSeconds
        if limit is not None and self.clock.now() - job.created_at > limit:
            return (
                ("Completed", None)
                if best
                else (
                    "Failed",
                    f"MaxRuntimeInSeconds ({limit} s) reached before any training job produced the objective metric",
                )
            )
        ended = [c for c in children if c.state in ("Completed", "Failed", "Stopped")]
        if best is None and len(ended) >= min(FAILURES_BEFORE_GIVING_UP, config.max_jobs()):
            reasons = sorted({str(c.status.get("FailureReason") or "no objective metric in the log") for c in ended})
            metric = config.HyperParameterTuningJobObjective.MetricName
            return (
                "Failed",
                f"The first {len(ended)} training jobs ended without the objective metric '{metric}'; "
                f"giving up. Reasons seen: {'; '.join(reasons)[:600]}",
            )
        return None

    def _parent_trials(self, req: CreateHyperParameterTuningJobRequest) -> list[tuple[ResourceRecord, float | None]]:
        """The ended parents' trials with their objective values (cached: parents never change)."""
        out: list[tuple[ResourceRecord, float | None]] = []
        if req.WarmStartConfig is None:
            return out
        metric = req.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName
        for parent in req.WarmStartConfig.ParentHyperParameterTuningJobs:
            name = parent.HyperParameterTuningJobName
            if name not in self._parents:
                self._parents[name] = [(c, self._objective(c, metric)) for c in self.tuning.children(name)]
            out.extend(self._parents[name])
        return out

    def _warm_start_trials(self, req: CreateHyperParameterTuningJobRequest) -> list[PastTrial]:
        # Trials whose values fall outside this job's ranges are dropped by the search when it rebuilds.
        return [self._past(c, v, req) for c, v in self._parent_trials(req) if c.state not in ("InProgress", "Stopping")]

    def _overall_best(
        self, req: CreateHyperParameterTuningJobRequest, own: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        objective = req.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective
        maximize = objective.Type == "Maximize"
        best = own
        for child, value in self._parent_trials(req):
            if value is None:
                continue
            current = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] if best else None
            if current is None or (value > current if maximize else value < current):
                best = trial_summary(child, value, req)
        return best

    def _stop_hopeless_trials(
        self, req: CreateHyperParameterTuningJobRequest, children: list[ResourceRecord], running: list[ResourceRecord]
    ) -> None:
        config = req.HyperParameterTuningJobConfig
        hyperband = config.StrategyConfig.HyperbandStrategyConfig if config.StrategyConfig else None
        if config.Strategy != "Hyperband" and config.TrainingJobEarlyStoppingType != "Auto":
            return
        metric = config.HyperParameterTuningJobObjective.MetricName
        maximize = config.HyperParameterTuningJobObjective.Type == "Maximize"
        series = {c.name: self._series(c, metric) for c in children}
        for child in running:
            if child.state != "InProgress" or child.status.get("StopRequested"):
                continue
            mine = series[child.name]
            if config.Strategy == "Hyperband" and hyperband is not None:
                others = [v for name, v in series.items() if name != child.name]
                reason = asha_rule(
                    mine,
                    others,
                    maximize=maximize,
                    min_resource=hyperband.MinResource,
                    max_resource=hyperband.MaxResource,
                )
            else:
                peers = [series[c.name] for c in children if c.state in ("Completed", "Stopped", "Failed")]
                reason = median_rule(mine, peers, maximize=maximize)
            if reason:
                with contextlib.suppress(IllegalTransition):
                    self.training.stop(child.name, reason=reason)
                    log.info("tuning trial %s: %s", child.name, reason)

    def _series(self, child: ResourceRecord, metric: str) -> list[float]:
        """The objective values a trial reported, in step order (cached once the trial has ended)."""
        cached = self._series_cache.get(child.name)
        if cached is not None:
            return cached
        points = self.store.read_metrics(TRAINING_KIND, child.name, metric)
        if any(p.step is not None for p in points):
            points = sorted((p for p in points if p.step is not None), key=lambda p: p.step or 0)
        values = [p.value for p in points]
        if child.state in ("Completed", "Failed", "Stopped"):
            self._series_cache[child.name] = values
        return values

    def _objective(self, child: ResourceRecord, metric: str) -> float | None:
        if child.name in self._objectives:
            return self._objectives[child.name]
        value = objective_value(self.store, child, metric)
        if child.state in ("Completed", "Failed", "Stopped"):
            self._objectives[child.name] = value
        return value

    @staticmethod
    def _best(children: list[ResourceRecord], values: dict[str, float | None], kind: str) -> ResourceRecord | None:
        scored = [(v, c) for c in children if (v := values[c.name]) is not None]
        if not scored:
            return None
        pick = max if kind == "Maximize" else min
        return pick(scored, key=lambda vc: vc[0])[1]

    @staticmethod
    def _past(child: ResourceRecord, value: float | None, req: CreateHyperParameterTuningJobRequest) -> PastTrial:
        tuned = tuned_values(child, req)
        if child.state in ("InProgress", "Stopping"):
            return PastTrial(tuned=tuned, state="running")
        if value is not None:
            return PastTrial(tuned=tuned, state="complete", value=value)
        return PastTrial(tuned=tuned, state="failed")

    def _save(self, job: ResourceRecord, patch: dict[str, Any]) -> None:
        if any(job.status.get(k) != v for k, v in patch.items()):
            self.store.update_status(KIND, job.name, patch)

    def _finish(self, job: ResourceRecord, state: str, reason: str | None, patch: dict[str, Any]) -> None:
        full = {**patch, "HyperParameterTuningEndTime": self.clock.now()}
        if reason:
            full["FailureReason"] = reason[:1024]
        self.store.transition(KIND, job.name, from_states=ACTIVE, to_state=state, status_patch=full)
        log.info("tuning job %s is %s%s", job.name, state, f": {reason}" if reason else "")


def _training_counters(children: list[ResourceRecord]) -> dict[str, int]:
    counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    for c in children:
        if c.state in ("InProgress", "Stopping"):
            counters["InProgress"] += 1
        elif c.state == "Failed":
            counters["NonRetryableError"] += 1
        elif c.state in counters:
            counters[c.state] += 1
    return counters


def _objective_counters(children: list[ResourceRecord], values: dict[str, float | None]) -> dict[str, int]:
    counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for c in children:
        if values[c.name] is not None:
            counters["Succeeded"] += 1
        elif c.state in ("InProgress", "Stopping"):
            counters["Pending"] += 1
        else:
            counters["Failed"] += 1
    return counters
