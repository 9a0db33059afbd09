"""Tuning-job operations behind the API: validate, persist, describe, stop. The reconciler does the work."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.names import arn
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ListQuery, ResourceRecord
from kamado.training.service import KIND as TRAINING_KIND
from kamado.training.service import TrainingService
from kamado.training.spec import CreateTrainingJobRequest
from kamado.tuning.spec import CreateHyperParameterTuningJobRequest, TuningJobConfig

KIND = "tuning-job"
ACTIVE = ["InProgress", "Stopping"]
TERMINAL = {"Completed", "Failed", "Stopped"}


def objective_value(store: MetadataStore, child: ResourceRecord, metric: str) -> float | None:
    """A trial's objective: its final value of ``metric`` if it completed, or was stopped by early stopping
    (its last reported value, as SageMaker counts it). One rule for counters, best job and listings."""
    early_stopped = child.state == "Stopped" and str(child.status.get("StopReason", "")).startswith("early stopping")
    if child.state != "Completed" and not early_stopped:
        return None
    points = [p for p in store.final_metrics(TRAINING_KIND, child.name) if p.metric == metric]
    return points[0].value if points else None


def tuned_values(child: ResourceRecord, req: CreateHyperParameterTuningJobRequest) -> dict[str, str]:
    """The hyperparameters the search chose for a trial (its static ones left out)."""
    names = set(req.HyperParameterTuningJobConfig.ParameterRanges.names())
    return {k: v for k, v in child.spec.get("HyperParameters", {}).items() if k in names}


def trial_summary(
    child: ResourceRecord, value: float | None, req: CreateHyperParameterTuningJobRequest
) -> dict[str, Any]:
    """SageMaker's HyperParameterTrainingJobSummary of one trial (listings and BestTrainingJob alike)."""
    objective = req.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective
    summary: dict[str, Any] = {
        "TrainingJobName": child.name,
        "TrainingJobArn": child.arn,
        "TuningJobName": child.parent,
        "CreationTime": iso_time(child.created_at),
        "TrainingStartTime": iso_time(child.status.get("TrainingStartTime")),
        "TrainingEndTime": iso_time(child.status.get("TrainingEndTime")),
        "TrainingJobStatus": child.state,
        "TunedHyperParameters": tuned_values(child, req),
        "ObjectiveStatus": "Succeeded" if value is not None else ("Pending" if child.state in ACTIVE else "Failed"),
        "FailureReason": child.status.get("FailureReason"),
        "StopReason": child.status.get("StopReason"),
    }
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective.Type,
            "MetricName": objective.MetricName,
            "Value": value,
        }
    return {k: v for k, v in summary.items() if v is not None}


def child_name(tuning_job: str, trial_number: int, tuned: dict[str, str]) -> str:
    """SageMaker's ``<tuning job>-<NNN>-<8 hex>``; deterministic, so a retried create is a duplicate (409)."""
    digest = hashlib.sha256(f"{tuning_job}:{trial_number}:{sorted(tuned.items())}".encode()).hexdigest()[:8]
    return f"{tuning_job}-{trial_number:03d}-{digest}"


def sample_tuned(config: TuningJobConfig) -> dict[str, str]:
    """One valid assignment (the lower bounds), used to validate the training definition at create."""
    out = {r.Name: str(int(r.bounds()[0])) for r in config.ParameterRanges.IntegerParameterRanges}
    out.update({r.Name: str(r.bounds()[0]) for r in config.ParameterRanges.ContinuousParameterRanges})
    out.update({r.Name: r.Values[0] for r in config.ParameterRanges.CategoricalParameterRanges})
    return out


class TuningService:
    def __init__(self, store: MetadataStore, training: TrainingService) -> None:
        self.store = store
        self.training = training

    def create(self, req: CreateHyperParameterTuningJobRequest) -> ResourceRecord:
        config = req.HyperParameterTuningJobConfig
        probe_name = child_name(req.HyperParameterTuningJobName, 1, {})
        try:
            child = CreateTrainingJobRequest.model_validate(req.child_request(probe_name, sample_tuned(config)))
            self.training.check(child)
        except InvalidSpec as exc:
            raise InvalidSpec(f"TrainingJobDefinition: {exc.message}", details=exc.details) from exc
        except ValueError as exc:  # pydantic's ValidationError
            raise InvalidSpec(
                f"TrainingJobDefinition is not a valid training job: {exc}",
                details=[{"field": "TrainingJobDefinition"}],
            ) from exc
        self._check_warm_start(req)
        seed = config.RandomSeed if config.RandomSeed is not None else secrets.randbelow(2**31)
        status = {
            "Seed": seed,
            "StopRequested": False,
            "FailureReason": None,
            "TrainingJobStatusCounters": _zero_training_counters(),
            "ObjectiveStatusCounters": {"Succeeded": 0, "Pending": 0, "Failed": 0},
            "BestTrainingJob": None,
        }
        return self.store.create(
            kind=KIND,
            name=req.HyperParameterTuningJobName,
            arn=arn(
                "hyper-parameter-tuning-job",
                req.HyperParameterTuningJobName,
                region=self.training.settings.region,
                account=self.training.settings.account,
            ),
            state="InProgress",
            spec=req.model_dump(mode="json", exclude_none=True),
            status=status,
            tags=req.tags_dict(),
        )

    def _check_warm_start(self, req: CreateHyperParameterTuningJobRequest) -> None:
        """SageMaker's rules: parents exist, have ended, and optimised the same objective."""
        if req.WarmStartConfig is None:
            return
        objective = req.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective
        tuned = set(req.HyperParameterTuningJobConfig.ParameterRanges.names())
        for i, parent in enumerate(req.WarmStartConfig.ParentHyperParameterTuningJobs):
            field = f"WarmStartConfig.ParentHyperParameterTuningJobs[{i}].HyperParameterTuningJobName"
            try:
                rec = self.store.get(KIND, parent.HyperParameterTuningJobName)
            except NotFound:
                raise InvalidSpec(
                    f"Parent tuning job '{parent.HyperParameterTuningJobName}' does not exist.",
                    details=[{"field": field, "message": "not found"}],
                ) from None
            if rec.state not in TERMINAL:
                raise InvalidSpec(
                    f"Parent tuning job '{rec.name}' is {rec.state}; warm start needs ended parents.",
                    details=[{"field": field, "message": "parent still running"}],
                )
            parent_config = rec.spec["HyperParameterTuningJobConfig"]
            if parent_config["HyperParameterTuningJobObjective"] != objective.model_dump():
                raise InvalidSpec(
                    f"Parent tuning job '{rec.name}' optimised another objective; warm start needs the "
                    "same HyperParameterTuningJobObjective.",
                    details=[{"field": field, "message": "objective differs"}],
                )
            parent_tuned = {
                r["Name"]
                for key in ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
                for r in parent_config["ParameterRanges"].get(key, [])
            }
            if not parent_tuned & tuned:
                raise InvalidSpec(
                    f"Parent tuning job '{rec.name}' tuned none of the same hyperparameters.",
                    details=[{"field": field, "message": "no shared tuned hyperparameters"}],
                )

    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(
                f"Could not find tuning job '{name}'.", details={"HyperParameterTuningJobName": name}
            ) from None

    def children(self, name: str) -> list[ResourceRecord]:
        """Every training job of the tuning job, in trial order."""
        out: list[ResourceRecord] = []
        token = None
        while True:
            page = self.store.list(
                TRAINING_KIND, ListQuery(parent=name, sort_by="name", sort_order="asc", limit=100, page_token=token)
            )
            out.extend(page.items)
            token = page.next_token
            if not token:
                return out

    def trial_summaries(self, name: str) -> list[dict[str, Any]]:
        """ListTrainingJobsForHyperParameterTuningJob: every trial with its tuned values and objective."""
        req = CreateHyperParameterTuningJobRequest.model_validate(self.get(name).spec)
        metric = req.HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName
        return [trial_summary(child, objective_value(self.store, child, metric), req) for child in self.children(name)]

    def describe(self, name: str) -> dict[str, Any]:
        rec = self.get(name)
        st = rec.status
        out: dict[str, Any] = {k: v for k, v in rec.spec.items() if k != "Tags"}
        out.update(
            {
                "HyperParameterTuningJobArn": rec.arn,
                "HyperParameterTuningJobStatus": rec.state,
                "CreationTime": iso_time(rec.created_at),
                "LastModifiedTime": iso_time(rec.updated_at),
                "HyperParameterTuningEndTime": iso_time(st.get("HyperParameterTuningEndTime")),
                "TrainingJobStatusCounters": st.get("TrainingJobStatusCounters"),
                "ObjectiveStatusCounters": st.get("ObjectiveStatusCounters"),
                "BestTrainingJob": st.get("BestTrainingJob"),
                "OverallBestTrainingJob": st.get("OverallBestTrainingJob"),
                "FailureReason": st.get("FailureReason"),
                "RandomSeed": st.get("Seed"),
                "Tags": [{"Key": k, "Value": v} for k, v in rec.tags.items()],
            }
        )
        return {k: v for k, v in out.items() if v is not None}

    def list(
        self,
        *,
        status_equals: str | None = None,
        name_contains: str | None = None,
        max_results: int = 50,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        page = self.store.list(
            KIND,
            list_query(
                statuses=(*ACTIVE, *TERMINAL),
                status_equals=status_equals,
                name_contains=name_contains,
                max_results=max_results,
                next_token=next_token,
            ),
        )
        out: dict[str, Any] = {
            "HyperParameterTuningJobSummaries": [
                {
                    "HyperParameterTuningJobName": r.name,
                    "HyperParameterTuningJobArn": r.arn,
                    "HyperParameterTuningJobStatus": r.state,
                    "Strategy": r.spec["HyperParameterTuningJobConfig"]["Strategy"],
                    "CreationTime": iso_time(r.created_at),
                    "TrainingJobStatusCounters": r.status.get("TrainingJobStatusCounters"),
                    "ObjectiveStatusCounters": r.status.get("ObjectiveStatusCounters"),
                }
                for r in page.items
            ]
        }
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def stop(self, name: str) -> None:
        rec = self.get(name)
        if rec.state in TERMINAL:
            raise IllegalTransition(
                f"Tuning job '{name}' is {rec.state} and cannot be stopped.",
                details={"HyperParameterTuningJobName": name, "Status": rec.state},
            )
        if rec.state == "Stopping":
            return
        self.store.transition(
            KIND, name, from_states=["InProgress"], to_state="Stopping", status_patch={"StopRequested": True}
        )


def _zero_training_counters() -> dict[str, int]:
    return {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
