"""Training-job operations behind the API: validate, persist the desired state, describe.

Nothing here starts a process: the reconciler does the work. A create either stores the whole job or
nothing, after every check that can fail has passed (so bad input never leaves a half-created job).
"""

from __future__ import annotations

import re
import time
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.instance_types import resolve_instance_type
from kamado.compute.taskspec import Resources
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.lifecycle import SecondaryStatus, TrainingJobStatus, sources_for
from kamado.core.names import arn, unique_name, validate_name
from kamado.core.settings import Settings
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord
from kamado.training.secrets import SecretHooks
from kamado.training.spec import CreateTrainingJobRequest

KIND = "training-job"
TREE_KEY = re.compile(r"^trees/([0-9a-f]{64})$")


def secondary_patch(status: dict[str, Any], new: SecondaryStatus | str, message: str, now: float) -> dict[str, Any]:
    """A status patch that moves SecondaryStatus and closes the previous transition, as SageMaker records."""
    transitions = [dict(t) for t in status.get("SecondaryStatusTransitions", [])]
    if transitions and transitions[-1].get("Status") == str(new) and transitions[-1].get("StatusMessage") == message:
        return {}
    if transitions and transitions[-1].get("EndTime") is None:
        transitions[-1]["EndTime"] = now
    transitions.append({"Status": str(new), "StartTime": now, "EndTime": None, "StatusMessage": message})
    return {"SecondaryStatus": str(new), "SecondaryStatusTransitions": transitions}


def resolve_data_uri(artifacts: ArtifactStore, uri: str, *, field: str) -> tuple[str, str | None]:
    """Map a channel or source URI to (artifact key, tree digest or None). Raises InvalidSpec when the URI
    is outside the artifact store or nothing is there."""
    try:
        key = artifacts.key_from_uri(uri).rstrip("/")
    except InvalidSpec as exc:
        raise InvalidSpec(
            f"{field} {uri!r} is not in kamado's artifact store ({artifacts.root_uri}); upload local data with "
            "kamado.Estimator.fit({'train': 'path/to/dir'}) or use a URI the store returned.",
            details=[{"field": field, "message": exc.message}],
        ) from exc
    m = TREE_KEY.match(key)
    if m:
        from kamado.artifacts.trees import tree_exists

        if not tree_exists(artifacts, m.group(1)):
            raise InvalidSpec(
                f"{field} {uri!r} names an upload that does not exist; upload it first.",
                details=[{"field": field, "message": "no such uploaded tree"}],
            )
        return key, m.group(1)
    if not artifacts.exists(key) and next(iter(artifacts.list(key)), None) is None:
        raise InvalidSpec(
            f"{field} {uri!r} does not exist in the artifact store (no object under that prefix).",
            details=[{"field": field, "message": "nothing under this URI"}],
        )
    return key, None


class TrainingService:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        settings: Settings,
        *,
        capacity: Resources | None = None,
        network_isolation: bool = False,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        #: What the executor can run; used to refuse jobs it could never run (a GPU type without GPUs).
        self.capacity = capacity
        #: Whether the executor can run a task with no network (EnableNetworkIsolation).
        self.network_isolation = network_isolation
        #: Secret references and the credential scanner, plugged in by the API layer (None: no checks).
        self.secrets: SecretHooks | None = None

    # -- create ---------------------------------------------------------------------------------------
    def create(self, req: CreateTrainingJobRequest, *, parent: str | None = None) -> ResourceRecord:
        self.check(req)
        now = time.time()
        status: dict[str, Any] = {
            "FailureReason": None,
            "StopRequested": False,
            "Attempt": 0,
            "AttemptActive": False,
        }
        status.update(secondary_patch(status, SecondaryStatus.STARTING, "Starting the training job", now))
        return self.store.create(
            kind=KIND,
            name=req.TrainingJobName,
            arn=arn(
                "training-job",
                req.TrainingJobName,
                region=self.settings.region,
                account=self.settings.account,
            ),
            state=str(TrainingJobStatus.IN_PROGRESS),
            spec=req.model_dump(mode="json", exclude_none=True),
            status=status,
            tags=req.tags_dict(),
            parent=parent,
        )

    def check(self, req: CreateTrainingJobRequest) -> None:
        """Every check a create makes before it stores anything (also used for tuning-job definitions)."""
        validate_name(req.TrainingJobName, field="TrainingJobName")
        itype = resolve_instance_type(req.ResourceConfig.InstanceType)
        if self.capacity is not None and itype.gpus > self.capacity.gpus:
            raise InvalidSpec(
                f"ResourceConfig.InstanceType {itype.name} needs {itype.gpus} GPU(s) but this server's executor has "
                f"{self.capacity.gpus}; choose a CPU type such as ml.m5.xlarge or run on a machine with GPUs.",
                details=[{"field": "ResourceConfig.InstanceType", "message": "not enough GPUs on this executor"}],
            )
        self._check_inputs(req)
        check_network_isolation(req.EnableNetworkIsolation, self.network_isolation, field="EnableNetworkIsolation")
        if self.secrets is not None:
            self.secrets.check(req.HyperParameters, req.Environment)

    def _check_inputs(self, req: CreateTrainingJobRequest) -> None:
        submit = req.submit_directory()
        program = req.program()
        if submit is not None:
            if not isinstance(submit, str):
                raise InvalidSpec(
                    "HyperParameters.sagemaker_submit_directory must be a URI string.",
                    details=[{"field": "HyperParameters.sagemaker_submit_directory"}],
                )
            _, digest = resolve_data_uri(self.artifacts, submit, field="HyperParameters.sagemaker_submit_directory")
            if digest and isinstance(program, str):
                from kamado.artifacts.trees import load_tree_manifest

                paths = {f.path for f in load_tree_manifest(self.artifacts, digest).files}
                if program not in paths and not any(p.startswith(program.rstrip("/") + "/") for p in paths):
                    raise InvalidSpec(
                        f"Entry point {program!r} is not in the uploaded source directory; check entry_point "
                        "(it is relative to source_dir).",
                        details=[{"field": "HyperParameters.sagemaker_program", "message": "file not found"}],
                    )
        elif program is not None and not req.AlgorithmSpecification.ContainerEntrypoint:
            raise InvalidSpec(
                "Script mode needs HyperParameters.sagemaker_submit_directory (the uploaded source directory).",
                details=[{"field": "HyperParameters.sagemaker_submit_directory", "message": "missing"}],
            )
        for i, ch in enumerate(req.InputDataConfig):
            resolve_data_uri(
                self.artifacts,
                ch.DataSource.S3DataSource.S3Uri,
                field=f"InputDataConfig[{i}].DataSource.S3DataSource.S3Uri",
            )
        for field, uri in (
            ("OutputDataConfig.S3OutputPath", req.OutputDataConfig.S3OutputPath),
            ("CheckpointConfig.S3Uri", req.CheckpointConfig.S3Uri if req.CheckpointConfig else None),
        ):
            if not uri:
                continue
            try:
                self.artifacts.key_from_uri(uri)
            except InvalidSpec as exc:
                raise InvalidSpec(
                    f"{field} must be inside the artifact store ({self.artifacts.root_uri}).",
                    details=[{"field": field, "message": exc.message}],
                ) from exc

    # -- read -----------------------------------------------------------------------------------------
    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(f"Could not find training job '{name}'.", details={"TrainingJobName": name}) from None

    def describe(self, name: str) -> dict[str, Any]:
        return describe_record(self.get(name), self.store.final_metrics(KIND, name))

    def list(
        self,
        *,
        status_equals: str | None = None,
        name_contains: str | None = None,
        creation_time_after: float | None = None,
        creation_time_before: float | None = None,
        sort_by: str = "CreationTime",
        sort_order: str = "Descending",
        max_results: int = 50,
        next_token: str | None = None,
        parent: str | None = None,
    ) -> dict[str, Any]:
        page = self.store.list(
            KIND,
            list_query(
                statuses=[s.value for s in TrainingJobStatus],
                status_equals=status_equals,
                name_contains=name_contains,
                created_after=creation_time_after,
                created_before=creation_time_before,
                parent=parent,
                sort_by=sort_by,
                sort_order=sort_order,
                max_results=max_results,
                next_token=next_token,
            ),
        )
        out: dict[str, Any] = {"TrainingJobSummaries": [summary_record(r) for r in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    # -- change ---------------------------------------------------------------------------------------
    def stop(self, name: str, *, reason: str | None = None) -> None:
        """Ask a job to stop. ``reason`` (e.g. a tuning job's early stopping) is kept as ``StopReason``."""
        rec = self.get(name)
        state = TrainingJobStatus(rec.state)
        if state.is_terminal():
            raise IllegalTransition(
                f"Training job '{name}' is {rec.state} and cannot be stopped; create a new job instead.",
                details={"TrainingJobName": name, "TrainingJobStatus": rec.state},
            )
        if state == TrainingJobStatus.STOPPING:
            return  # already stopping: stop is idempotent
        now = time.time()
        message = f"Stopping the training job: {reason}" if reason else "Stopping the training job"
        patch: dict[str, Any] = {
            "StopRequested": True,
            **secondary_patch(rec.status, SecondaryStatus.STOPPING, message, now),
        }
        if reason:
            patch["StopReason"] = reason
        self.store.transition(
            KIND,
            name,
            from_states=sources_for(TrainingJobStatus.STOPPING),
            to_state=str(TrainingJobStatus.STOPPING),
            status_patch=patch,
        )

    def rerun(self, name: str, new_name: str | None = None) -> ResourceRecord:
        """Create a new job with the same code, data, hyperparameters and resources (all content-addressed)."""
        rec = self.get(name)
        spec = dict(rec.spec)
        spec["TrainingJobName"] = new_name or unique_name(f"{name[:30]}-rerun")
        return self.create(CreateTrainingJobRequest.model_validate(spec), parent=rec.parent)


def summary_record(rec: ResourceRecord) -> dict[str, Any]:
    st = rec.status
    out = {
        "TrainingJobName": rec.name,
        "TrainingJobArn": rec.arn,
        "CreationTime": iso_time(rec.created_at),
        "TrainingEndTime": iso_time(st.get("TrainingEndTime")),
        "LastModifiedTime": iso_time(rec.updated_at),
        "TrainingJobStatus": rec.state,
        "SecondaryStatus": st.get("SecondaryStatus"),
    }
    return {k: v for k, v in out.items() if v is not None}


def describe_record(rec: ResourceRecord, final_metrics: list[Any]) -> dict[str, Any]:
    """DescribeTrainingJob's shape: the request echoed back plus what the platform filled in."""
    st = rec.status
    out: dict[str, Any] = dict(rec.spec)
    out.update(
        {
            "TrainingJobArn": rec.arn,
            "TrainingJobStatus": rec.state,
            "SecondaryStatus": st.get("SecondaryStatus"),
            "CreationTime": iso_time(rec.created_at),
            "LastModifiedTime": iso_time(rec.updated_at),
            "TrainingStartTime": iso_time(st.get("TrainingStartTime")),
            "TrainingEndTime": iso_time(st.get("TrainingEndTime")),
            "SecondaryStatusTransitions": [
                {
                    **{k: v for k, v in t.items() if k not in ("StartTime", "EndTime")},
                    "StartTime": iso_time(t.get("StartTime")),
                    **({"EndTime": iso_time(t["EndTime"])} if t.get("EndTime") else {}),
                }
                for t in st.get("SecondaryStatusTransitions", [])
            ],
            "FinalMetricDataList": [
                {"MetricName": p.metric, "Value": p.value, "Timestamp": iso_time(p.ts)} for p in final_metrics
            ],
            "ModelArtifacts": {"S3ModelArtifacts": st["ModelArtifacts"]} if st.get("ModelArtifacts") else None,
            "OutputDataArtifacts": st.get("OutputDataArtifacts"),
            "LogArtifacts": st.get("LogArtifacts"),
            "StopReason": st.get("StopReason"),
            "FailureReason": st.get("FailureReason"),
            "TrainingTimeInSeconds": st.get("TrainingTimeInSeconds"),
            "BillableTimeInSeconds": st.get("TrainingTimeInSeconds"),
            "RetryAttempts": max(0, int(st.get("Attempt", 0)) - 1),
            "Lineage": st.get("Lineage"),
            "ResourceUsage": st.get("ResourceUsage"),
        }
    )
    if rec.parent:
        out["TuningJobName"] = rec.parent
    out["Tags"] = [{"Key": k, "Value": v} for k, v in rec.tags.items()]
    return {k: v for k, v in out.items() if v is not None}


def check_network_isolation(wanted: bool, supported: bool, *, field: str) -> None:
    """Refuse a job that asks for no network where its tasks cannot be isolated (never run it with one)."""
    if wanted and not supported:
        raise InvalidSpec(
            f"{field} is true, but this server's executor cannot give a task a private network namespace (the "
            "kernel or user refuses it, or the executor does not support it); run the server as root or with "
            "unprivileged user namespaces enabled, or set it to false.",
            details=[{"field": field, "message": "network isolation is not available on this executor"}],
        )
