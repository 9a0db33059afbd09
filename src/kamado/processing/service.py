"""Processing-job operations behind the API: validate, persist the desired state, describe, list, stop.

Nothing here starts a process: the reconciler does. A create stores the whole job or nothing, after every
check that needs the stores has passed (instance type, every input URI, every output URI).
"""

from __future__ import annotations

from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.instance_types import resolve_instance_type
from kamado.compute.taskspec import Resources
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.lifecycle import TrainingJobStatus, sources_for
from kamado.core.names import arn, validate_name
from kamado.core.secret_hooks import SecretHooks
from kamado.core.settings import Settings
from kamado.processing.spec import CreateProcessingJobRequest
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord
from kamado.training.service import check_network_isolation, resolve_data_uri

KIND = "processing-job"
#: Processing jobs go through the same SageMaker statuses as training jobs, so they share the lifecycle.
ProcessingJobStatus = TrainingJobStatus


class ProcessingService:
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
        self.capacity = capacity
        self.network_isolation = network_isolation
        #: Secret checks at create, plugged in by the API layer (None: Environment passes as written).
        self.secrets: SecretHooks | None = None

    def create(self, req: CreateProcessingJobRequest) -> ResourceRecord:
        self.check(req)
        status: dict[str, Any] = {"Phase": "Starting", "StopRequested": False, "AttemptActive": False}
        return self.store.create(
            kind=KIND,
            name=req.ProcessingJobName,
            arn=arn(KIND, req.ProcessingJobName, region=self.settings.region, account=self.settings.account),
            state=str(ProcessingJobStatus.IN_PROGRESS),
            spec=req.model_dump(mode="json", exclude_none=True),
            status=status,
            tags=req.tags_dict(),
        )

    def check(self, req: CreateProcessingJobRequest) -> None:
        validate_name(req.ProcessingJobName, field="ProcessingJobName")
        field = "ProcessingResources.ClusterConfig.InstanceType"
        try:
            itype = resolve_instance_type(req.ProcessingResources.ClusterConfig.InstanceType)
        except InvalidSpec as exc:
            raise InvalidSpec(exc.message, details=[{"field": field, "message": "not a known instance type"}]) from None
        if self.capacity is not None and itype.gpus > self.capacity.gpus:
            raise InvalidSpec(
                f"{field} {itype.name} needs {itype.gpus} GPU(s) but this server's executor has {self.capacity.gpus}; "
                "choose a CPU type such as ml.m5.xlarge.",
                details=[{"field": field, "message": "not enough GPUs on this executor"}],
            )
        check_network_isolation(
            req.network_isolation(), self.network_isolation, field="NetworkConfig.EnableNetworkIsolation"
        )
        if self.secrets is not None:
            self.secrets.check_environment(req.Environment, field="Environment")
        for i, item in enumerate(req.ProcessingInputs):
            resolve_data_uri(self.artifacts, item.S3Input.S3Uri, field=f"ProcessingInputs[{i}].S3Input.S3Uri")
        for i, out in enumerate(req.outputs()):
            field = f"ProcessingOutputConfig.Outputs[{i}].S3Output.S3Uri"
            try:
                key = self.artifacts.key_from_uri(out.S3Output.S3Uri).rstrip("/")
            except InvalidSpec as exc:
                raise InvalidSpec(
                    f"{field} {out.S3Output.S3Uri!r} must be inside the artifact store ({self.artifacts.root_uri}).",
                    details=[{"field": field, "message": exc.message}],
                ) from exc
            if not key or key.split("/", 1)[0] == "trees":
                raise InvalidSpec(
                    f"{field} must name a prefix of its own in the artifact store, not its root or an upload.",
                    details=[{"field": field, "message": "reserved prefix"}],
                )

    # -- read -----------------------------------------------------------------------------------------
    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(f"Could not find processing job '{name}'.", details={"ProcessingJobName": name}) from None

    def describe(self, name: str) -> dict[str, Any]:
        return describe_record(self.get(name))

    def list(self, **filters: Any) -> dict[str, Any]:
        """ListProcessingJobs: the keyword arguments of :func:`kamado.store.listing.list_query`."""
        page = self.store.list(KIND, list_query(statuses=[s.value for s in ProcessingJobStatus], **filters))
        out: dict[str, Any] = {"ProcessingJobSummaries": [summary_record(r) for r in page.items]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    # -- change ---------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        rec = self.get(name)
        state = ProcessingJobStatus(rec.state)
        if state.is_terminal():
            raise IllegalTransition(
                f"Processing job '{name}' is {rec.state} and cannot be stopped; create a new job instead.",
                details={"ProcessingJobName": name, "ProcessingJobStatus": rec.state},
            )
        if state == ProcessingJobStatus.STOPPING:
            return  # stop is idempotent
        self.store.transition(
            KIND,
            name,
            from_states=sources_for(ProcessingJobStatus.STOPPING),
            to_state=str(ProcessingJobStatus.STOPPING),
            status_patch={"StopRequested": True},
        )


def summary_record(rec: ResourceRecord) -> dict[str, Any]:
    out = {
        "ProcessingJobName": rec.name,
        "ProcessingJobArn": rec.arn,
        "CreationTime": iso_time(rec.created_at),
        "ProcessingEndTime": iso_time(rec.status.get("ProcessingEndTime")),
        "LastModifiedTime": iso_time(rec.updated_at),
        "ProcessingJobStatus": rec.state,
        "FailureReason": rec.status.get("FailureReason"),
        "ExitMessage": rec.status.get("ExitMessage"),
    }
    return {k: v for k, v in out.items() if v is not None}


def describe_record(rec: ResourceRecord) -> dict[str, Any]:
    """DescribeProcessingJob's shape: the request echoed back plus what the platform filled in, and
    kamado's per-instance outcomes (``Instances``: host, state, exit code, reason)."""
    st = rec.status
    out: dict[str, Any] = dict(rec.spec)
    out.update(
        {
            "ProcessingJobArn": rec.arn,
            "ProcessingJobStatus": rec.state,
            "CreationTime": iso_time(rec.created_at),
            "LastModifiedTime": iso_time(rec.updated_at),
            "ProcessingStartTime": iso_time(st.get("ProcessingStartTime")),
            "ProcessingEndTime": iso_time(st.get("ProcessingEndTime")),
            "FailureReason": st.get("FailureReason"),
            "ExitMessage": st.get("ExitMessage"),
            "Instances": st.get("Instances"),
            "ResourceUsage": st.get("ResourceUsage"),
        }
    )
    out["Tags"] = [{"Key": k, "Value": v} for k, v in rec.tags.items()]
    return {k: v for k, v in out.items() if v is not None}
