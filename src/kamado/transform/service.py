"""Transform-job operations behind the API: validate, persist, describe, list, stop. The reconciler runs them."""

from __future__ import annotations

import time
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.instance_types import resolve_instance_type
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound
from kamado.core.invocation import MAX_INVOCATION_BYTES
from kamado.core.names import arn
from kamado.core.secret_hooks import SecretHooks
from kamado.core.settings import Settings
from kamado.hosting.service import MODEL
from kamado.hosting.spec import CreateModelRequest
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord
from kamado.training.service import resolve_data_uri
from kamado.transform.spec import CreateTransformJobRequest
from kamado.transform.states import ALL, TransformJobStatus, sources

KIND = "transform-job"
INPUT_FIELD = "TransformInput.DataSource.S3DataSource.S3Uri"
OUTPUT_FIELD = "TransformOutput.S3OutputPath"


def zero_progress() -> dict[str, int]:
    """*kamado extension* in DescribeTransformJob: how far the job has got."""
    return {"FilesTotal": 0, "FilesCompleted": 0, "FilesFailed": 0, "RecordsCompleted": 0, "RecordsFailed": 0}


class TransformService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, settings: Settings) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        #: Secret checks at create, plugged in by the API layer (None: Environment passes as written).
        self.secrets: SecretHooks | None = None

    def create(self, req: CreateTransformJobRequest) -> ResourceRecord:
        try:
            model = self.store.get(MODEL, req.ModelName)
        except NotFound:
            raise InvalidSpec(
                f"Could not find model '{req.ModelName}'; create it first (CreateModel, or kamado.Model.create()).",
                details=[{"field": "ModelName", "message": "no such model"}],
            ) from None
        container = CreateModelRequest.model_validate(model.spec).container()
        if self.secrets is not None:
            self.secrets.check_environment(req.Environment, field="Environment")
        resolve_data_uri(self.artifacts, req.TransformInput.DataSource.S3DataSource.S3Uri, field=INPUT_FIELD)
        try:
            self.artifacts.key_from_uri(req.TransformOutput.S3OutputPath)
        except InvalidSpec as exc:
            raise InvalidSpec(
                f"{OUTPUT_FIELD} {req.TransformOutput.S3OutputPath!r} is not in kamado's artifact store "
                f"({self.artifacts.root_uri}).",
                details=[{"field": OUTPUT_FIELD, "message": exc.message}],
            ) from exc
        resolve_instance_type(req.TransformResources.InstanceType)
        limit_mb = MAX_INVOCATION_BYTES // (1024 * 1024)
        if container.Command is None and req.payload_mb() > limit_mb:
            raise InvalidSpec(
                f"MaxPayloadInMB {req.payload_mb()} is over what kamado's model server accepts per request "
                f"({limit_mb} MB); lower it, or serve the model with your own PrimaryContainer.Command.",
                details=[{"field": "MaxPayloadInMB", "message": f"at most {limit_mb}"}],
            )
        status = {
            # The model as it is now: deleting or replacing the model does not change a job already created.
            "Container": container.model_dump(mode="json", exclude_none=True),
            "Attempt": 0,
            "Instances": [],
            "StopRequested": False,
            "Progress": zero_progress(),
        }
        return self.store.create(
            kind=KIND,
            name=req.TransformJobName,
            arn=arn("transform-job", req.TransformJobName, region=self.settings.region, account=self.settings.account),
            state=str(TransformJobStatus.IN_PROGRESS),
            spec=req.model_dump(mode="json", exclude_none=True),
            status=status,
            tags=req.tags_dict(),
        )

    def get(self, name: str) -> ResourceRecord:
        try:
            return self.store.get(KIND, name)
        except NotFound:
            raise NotFound(f"Could not find transform job '{name}'.", details={"TransformJobName": name}) from None

    def describe(self, name: str) -> dict[str, Any]:
        rec = self.get(name)
        st = rec.status
        out: dict[str, Any] = {k: v for k, v in rec.spec.items() if k != "Tags"}
        out.update(
            {
                "TransformJobArn": rec.arn,
                "TransformJobStatus": rec.state,
                "FailureReason": st.get("FailureReason"),
                "CreationTime": iso_time(rec.created_at),
                "LastModifiedTime": iso_time(rec.updated_at),
                "TransformStartTime": iso_time(st.get("TransformStartTime")),
                "TransformEndTime": iso_time(st.get("TransformEndTime")),
                "Progress": st.get("Progress"),
                "FailedRecords": st.get("FailedRecords") or None,
                "Tags": [{"Key": k, "Value": v} for k, v in rec.tags.items()],
            }
        )
        return {k: v for k, v in out.items() if v is not None}

    def list(
        self,
        *,
        status_equals: str | None = None,
        name_contains: str | None = None,
        sort_by: str = "CreationTime",
        sort_order: str = "Descending",
        max_results: int = 50,
        next_token: str | None = None,
    ) -> dict[str, Any]:
        page = self.store.list(
            KIND,
            list_query(
                statuses=ALL,
                status_equals=status_equals,
                name_contains=name_contains,
                sort_by=sort_by,
                sort_order=sort_order,
                max_results=max_results,
                next_token=next_token,
            ),
        )
        summaries = [
            {
                "TransformJobName": r.name,
                "TransformJobArn": r.arn,
                "CreationTime": iso_time(r.created_at),
                "TransformEndTime": iso_time(r.status.get("TransformEndTime")),
                "LastModifiedTime": iso_time(r.updated_at),
                "TransformJobStatus": r.state,
                "FailureReason": r.status.get("FailureReason"),
            }
            for r in page.items
        ]
        out: dict[str, Any] = {"TransformJobSummaries": [{k: v for k, v in s.items() if v} for s in summaries]}
        if page.next_token:
            out["NextToken"] = page.next_token
        return out

    def stop(self, name: str) -> None:
        """Ask a job to stop (idempotent while it stops). Outputs already written stay."""
        rec = self.get(name)
        state = TransformJobStatus(rec.state)
        if state.is_terminal():
            raise IllegalTransition(
                f"Transform job '{name}' is {rec.state} and cannot be stopped; create a new job instead.",
                details={"TransformJobName": name, "TransformJobStatus": rec.state},
            )
        if state == TransformJobStatus.STOPPING:
            return
        self.store.transition(
            KIND,
            name,
            from_states=sources(TransformJobStatus.STOPPING),
            to_state=str(TransformJobStatus.STOPPING),
            status_patch={"StopRequested": True, "StopRequestedAt": time.time()},
        )
