"""Hosting operations behind the API: models, endpoint configs, endpoints; validate, persist, describe.

As for training, nothing here starts a process: an endpoint is stored with its desired state and the
hosting reconciler makes it so. Every check that can fail runs before anything is stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.instance_types import resolve_instance_type
from kamado.core.clock import iso_time
from kamado.core.errors import IllegalTransition, InvalidSpec, NotFound, ResourceInUse
from kamado.core.invocation import invocations_path
from kamado.core.names import arn
from kamado.core.secret_hooks import SecretHooks
from kamado.core.settings import Settings
from kamado.hosting.spec import (
    CreateEndpointConfigRequest,
    CreateEndpointRequest,
    CreateModelRequest,
    ScalingPolicy,
    UpdateEndpointRequest,
    UpdateEndpointWeightsAndCapacitiesRequest,
)
from kamado.hosting.states import EndpointStatus
from kamado.store.base import MetadataStore
from kamado.store.listing import list_query
from kamado.store.records import ResourceRecord
from kamado.training.service import resolve_data_uri

MODEL = "model"
ENDPOINT_CONFIG = "endpoint-config"
ENDPOINT = "endpoint"
#: Endpoint states from which an update or a weights change may start.
_UPDATABLE = [str(EndpointStatus.IN_SERVICE)]


class HostingService:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        settings: Settings,
        *,
        router_url: Callable[[], str | None] = lambda: None,
        router_stats: Callable[[float], dict[str, Any]] = lambda _w: {},
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        #: Late-bound: the router starts with the first endpoint, after the service exists.
        self.router_url = router_url
        self.router_stats = router_stats
        #: Secret checks at create, plugged in by the API layer (None: Environment passes as written).
        self.secrets: SecretHooks | None = None

    def _arn(self, kind: str, name: str) -> str:
        return arn(kind, name, region=self.settings.region, account=self.settings.account)

    def _get(self, kind: str, name: str, label: str) -> ResourceRecord:
        try:
            return self.store.get(kind, name)
        except NotFound:
            raise NotFound(f"Could not find {label} '{name}'.", details={"name": name}) from None

    # -- models -----------------------------------------------------------------------------------------
    def create_model(self, req: CreateModelRequest) -> ResourceRecord:
        container = req.container()
        if container.ModelDataUrl is None and container.Command is None:
            raise InvalidSpec(
                "PrimaryContainer.ModelDataUrl is required (the model.tar.gz a training job produced), "
                "unless PrimaryContainer.Command names a server that loads the model itself.",
                details=[{"field": "PrimaryContainer.ModelDataUrl"}],
            )
        if container.ModelDataUrl is not None:
            resolve_data_uri(self.artifacts, container.ModelDataUrl, field="PrimaryContainer.ModelDataUrl")
        if self.secrets is not None:
            self.secrets.check_environment(container.Environment, field="PrimaryContainer.Environment")
        submit_dir = container.Environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit_dir:
            resolve_data_uri(
                self.artifacts, submit_dir, field="PrimaryContainer.Environment.SAGEMAKER_SUBMIT_DIRECTORY"
            )
        return self.store.create(
            kind=MODEL,
            name=req.ModelName,
            arn=self._arn("model", req.ModelName),
            state="Created",
            spec=req.model_dump(mode="json", exclude_none=True),
            status={},
            tags={t.Key: t.Value for t in req.Tags},
        )

    def describe_model(self, name: str) -> dict[str, Any]:
        rec = self._get(MODEL, name, "model")
        req = CreateModelRequest.model_validate(rec.spec)
        return {
            "ModelName": rec.name,
            "ModelArn": rec.arn,
            "PrimaryContainer": req.container().model_dump(mode="json", exclude_none=True),
            "ExecutionRoleArn": req.ExecutionRoleArn,
            "EnableNetworkIsolation": req.EnableNetworkIsolation,
            "CreationTime": iso_time(rec.created_at),
        }

    def delete_model(self, name: str) -> None:
        self._get(MODEL, name, "model")
        self.store.delete(MODEL, name)  # as in SageMaker: running endpoints keep their copy

    # -- endpoint configs ---------------------------------------------------------------------------------
    def create_endpoint_config(self, req: CreateEndpointConfigRequest) -> ResourceRecord:
        for i, variant in enumerate(req.ProductionVariants):
            where = f"ProductionVariants[{i}]"
            try:
                self.store.get(MODEL, variant.ModelName)
            except NotFound:
                raise InvalidSpec(
                    f"{where}.ModelName: model '{variant.ModelName}' does not exist; create it first "
                    "(POST /api/v1/models or kamado.Model(...).create()).",
                    details=[{"field": f"{where}.ModelName", "message": "no such model"}],
                ) from None
            resolve_instance_type(variant.InstanceType)
        capture = req.DataCaptureConfig
        if capture is not None:
            try:
                self.artifacts.key_from_uri(capture.DestinationS3Uri)
            except InvalidSpec as exc:
                raise InvalidSpec(
                    f"DataCaptureConfig.DestinationS3Uri {capture.DestinationS3Uri!r} is not in kamado's artifact "
                    f"store ({self.artifacts.root_uri}); use a URI under it, e.g. {self.artifacts.uri('capture')}.",
                    details=[{"field": "DataCaptureConfig.DestinationS3Uri", "message": exc.message}],
                ) from exc
        return self.store.create(
            kind=ENDPOINT_CONFIG,
            name=req.EndpointConfigName,
            arn=self._arn("endpoint-config", req.EndpointConfigName),
            state="Created",
            spec=req.model_dump(mode="json", exclude_none=True),
            status={},
            tags={t.Key: t.Value for t in req.Tags},
        )

    def endpoint_config(self, name: str) -> CreateEndpointConfigRequest:
        return CreateEndpointConfigRequest.model_validate(self._get(ENDPOINT_CONFIG, name, "endpoint config").spec)

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        rec = self._get(ENDPOINT_CONFIG, name, "endpoint config")
        return {
            **{k: v for k, v in rec.spec.items() if k != "Tags"},
            "EndpointConfigArn": rec.arn,
            "CreationTime": iso_time(rec.created_at),
        }

    def delete_endpoint_config(self, name: str) -> None:
        self._get(ENDPOINT_CONFIG, name, "endpoint config")
        users = [
            e.name
            for e in self.store.list_in_states(ENDPOINT, [s.value for s in EndpointStatus])
            if name in _configs_of(e)
        ]
        if users:
            raise ResourceInUse(
                f"Endpoint config '{name}' is in use by endpoint(s) {users}; update or delete them first.",
                details={"EndpointConfigName": name, "Endpoints": users},
            )
        self.store.delete(ENDPOINT_CONFIG, name)

    # -- endpoints --------------------------------------------------------------------------------------
    def create_endpoint(self, req: CreateEndpointRequest) -> ResourceRecord:
        config = self._config_for(req.EndpointConfigName, field="EndpointConfigName")
        self._check_models(config)
        now = time.time()
        return self.store.create(
            kind=ENDPOINT,
            name=req.EndpointName,
            arn=self._arn("endpoint", req.EndpointName),
            state=str(EndpointStatus.CREATING),
            spec=req.model_dump(mode="json", exclude_none=True),
            status={
                "EndpointConfigName": req.EndpointConfigName,
                "Target": {
                    "EndpointConfigName": req.EndpointConfigName,
                    "DeploymentConfig": req.DeploymentConfig.model_dump(mode="json", exclude_none=True)
                    if req.DeploymentConfig
                    else None,
                    "RequestedAt": now,
                },
                "Fleets": {},
                "FailureReason": None,
                "Scaling": {},
            },
            tags={t.Key: t.Value for t in req.Tags},
        )

    def _config_for(self, name: str, *, field: str) -> CreateEndpointConfigRequest:
        try:
            return CreateEndpointConfigRequest.model_validate(self.store.get(ENDPOINT_CONFIG, name).spec)
        except NotFound:
            raise InvalidSpec(
                f"{field}: endpoint config '{name}' does not exist; create it first.",
                details=[{"field": field, "message": "no such endpoint config"}],
            ) from None

    def _check_models(self, config: CreateEndpointConfigRequest) -> None:
        missing = []
        for v in config.ProductionVariants:
            try:
                self.store.get(MODEL, v.ModelName)
            except NotFound:
                missing.append(v.ModelName)
        if missing:
            raise InvalidSpec(
                f"Endpoint config '{config.EndpointConfigName}' names model(s) {missing} that no longer exist; "
                "create them again or use another config.",
                details=[{"field": "EndpointConfigName", "message": f"missing models {missing}"}],
            )

    def get_endpoint(self, name: str) -> ResourceRecord:
        return self._get(ENDPOINT, name, "endpoint")

    def update_endpoint(self, name: str, req: UpdateEndpointRequest) -> ResourceRecord:
        rec = self.get_endpoint(name)
        config = self._config_for(req.EndpointConfigName, field="EndpointConfigName")
        self._check_models(config)
        deployment = req.DeploymentConfig
        if deployment is None and req.RetainDeploymentConfig:
            last = rec.status.get("LastDeploymentConfig")
            deployment_json = last
        else:
            deployment_json = deployment.model_dump(mode="json", exclude_none=True) if deployment else None
        target = {
            "EndpointConfigName": req.EndpointConfigName,
            "DeploymentConfig": deployment_json,
            "RetainAllVariantProperties": req.RetainAllVariantProperties,
            "ExcludeRetainedVariantProperties": [p.VariantPropertyType for p in req.ExcludeRetainedVariantProperties],
            "RequestedAt": time.time(),
        }
        return self._start_change(rec, {"Target": target, "FailureReason": None})

    def update_weights_and_capacities(
        self, name: str, req: UpdateEndpointWeightsAndCapacitiesRequest
    ) -> ResourceRecord:
        rec = self.get_endpoint(name)
        variants = self._active_variants(rec)
        changes = []
        for i, item in enumerate(req.DesiredWeightsAndCapacities):
            if item.VariantName not in variants:
                raise InvalidSpec(
                    f"DesiredWeightsAndCapacities[{i}].VariantName: endpoint '{name}' has no variant "
                    f"'{item.VariantName}'; its variants are {sorted(variants)}.",
                    details=[{"field": f"DesiredWeightsAndCapacities[{i}].VariantName"}],
                )
            if item.DesiredWeight is None and item.DesiredInstanceCount is None:
                raise InvalidSpec(
                    f"DesiredWeightsAndCapacities[{i}]: give DesiredWeight, DesiredInstanceCount or both.",
                    details=[{"field": f"DesiredWeightsAndCapacities[{i}]"}],
                )
            changes.append(item.model_dump(mode="json", exclude_none=True))
        weights = {v: w for v, w in variants.items()}
        for c in changes:
            if "DesiredWeight" in c:
                weights[c["VariantName"]] = c["DesiredWeight"]
        if sum(weights.values()) <= 0:
            raise InvalidSpec(
                "DesiredWeightsAndCapacities: the weights would all be 0, so no request could be served.",
                details=[{"field": "DesiredWeightsAndCapacities"}],
            )
        return self._start_change(rec, {"WeightsChange": changes, "FailureReason": None})

    def _active_variants(self, rec: ResourceRecord) -> dict[str, float]:
        fleet = rec.status.get("Fleets", {}).get(rec.status.get("ActiveFleet") or "")
        if not fleet:
            return {}
        return {v: float(info.get("DesiredWeight", 1.0)) for v, info in fleet["Variants"].items()}

    def _start_change(self, rec: ResourceRecord, patch: dict[str, Any]) -> ResourceRecord:
        if rec.state not in _UPDATABLE:
            raise IllegalTransition(
                f"Endpoint '{rec.name}' is {rec.state}; it can be changed only when InService. "
                + ("Delete it and create it again." if rec.state == EndpointStatus.FAILED else "Wait and try again."),
                details={"EndpointName": rec.name, "EndpointStatus": rec.state},
            )
        return self.store.transition(
            ENDPOINT,
            rec.name,
            from_states=_UPDATABLE,
            to_state=str(EndpointStatus.UPDATING),
            status_patch=patch,
            expected_version=rec.version,
        )

    def delete_endpoint(self, name: str) -> None:
        rec = self.get_endpoint(name)
        if rec.state == EndpointStatus.DELETING:
            return
        self.store.transition(ENDPOINT, name, from_states=None, to_state=str(EndpointStatus.DELETING))

    def put_scaling_policy(self, name: str, variant: str, policy: ScalingPolicy) -> ResourceRecord:
        rec = self.get_endpoint(name)
        variants = self._active_variants(rec) or {
            v.VariantName: v.InitialVariantWeight
            for v in self.endpoint_config(rec.status["EndpointConfigName"]).ProductionVariants
        }
        if variant not in variants:
            raise InvalidSpec(
                f"Endpoint '{name}' has no variant '{variant}'; its variants are {sorted(variants)}.",
                details=[{"field": "VariantName"}],
            )
        scaling = dict(rec.status.get("Scaling", {}))
        scaling[variant] = {"Policy": policy.model_dump(mode="json", exclude_none=True), "AttachedAt": time.time()}
        return self.store.update_status(ENDPOINT, name, {"Scaling": scaling})

    def delete_scaling_policy(self, name: str, variant: str) -> None:
        rec = self.get_endpoint(name)
        scaling = dict(rec.status.get("Scaling", {}))
        if variant not in scaling:
            raise NotFound(
                f"Endpoint '{name}' variant '{variant}' has no scaling policy.", details={"VariantName": variant}
            )
        del scaling[variant]
        self.store.update_status(ENDPOINT, name, {"Scaling": scaling})

    # -- describe and list --------------------------------------------------------------------------------
    def describe_endpoint(self, name: str, *, metrics_window_s: float = 60.0) -> dict[str, Any]:
        rec = self.get_endpoint(name)
        stats = self.router_stats(metrics_window_s).get("endpoints", {}).get(name, {}) if metrics_window_s else {}
        return describe_endpoint_record(rec, self.router_url(), stats)

    def list(
        self,
        kind: str,
        *,
        status_equals: str | None = None,
        name_contains: str | None = None,
        sort_by: str = "CreationTime",
        sort_order: str = "Descending",
        max_results: int = 50,
        next_token: str | None = None,
    ) -> tuple[list[ResourceRecord], str | None]:
        page = self.store.list(
            kind,
            list_query(
                statuses=[s.value for s in EndpointStatus] if kind == ENDPOINT else None,
                status_equals=status_equals,
                name_contains=name_contains,
                sort_by=sort_by,
                sort_order=sort_order,
                max_results=max_results,
                next_token=next_token,
            ),
        )
        return page.items, page.next_token


def _configs_of(endpoint: ResourceRecord) -> set[str]:
    """Every endpoint config an endpoint is serving, deploying or rolling back to."""
    st = endpoint.status
    names = {st.get("EndpointConfigName"), (st.get("Target") or {}).get("EndpointConfigName")}
    names |= {f.get("EndpointConfigName") for f in st.get("Fleets", {}).values()}
    return {n for n in names if n}


def describe_endpoint_record(rec: ResourceRecord, router_url: str | None, stats: dict[str, Any]) -> dict[str, Any]:
    st = rec.status
    fleets: dict[str, Any] = st.get("Fleets", {})
    active = fleets.get(st.get("ActiveFleet") or "")
    variant_stats = stats.get("variants", {})
    variants = []
    for vname, info in (active or {}).get("Variants", {}).items():
        healthy = [i for i in info.get("Instances", []) if i.get("State") == "InService"]
        summary: dict[str, Any] = {
            "VariantName": vname,
            "CurrentWeight": info.get("CurrentWeight", info.get("DesiredWeight")),
            "DesiredWeight": info.get("DesiredWeight"),
            "CurrentInstanceCount": len(healthy),
            "DesiredInstanceCount": info.get("DesiredInstanceCount"),
            "DeployedImages": [],
            "VariantStatus": info.get("VariantStatus", []),
            "Instances": [
                {k: i.get(k) for k in ("InstanceId", "State", "StartedAt", "Restarts")}
                for i in info.get("Instances", [])
            ],
        }
        if vname in variant_stats:
            summary["Metrics"] = variant_stats[vname]
        if vname in st.get("Scaling", {}):
            summary["AutoScaling"] = st["Scaling"][vname]
        variants.append(summary)
    out: dict[str, Any] = {
        "EndpointName": rec.name,
        "EndpointArn": rec.arn,
        "EndpointConfigName": st.get("EndpointConfigName"),
        "ProductionVariants": variants,
        "EndpointStatus": rec.state,
        "FailureReason": st.get("FailureReason"),
        "CreationTime": iso_time(rec.created_at),
        "LastModifiedTime": iso_time(rec.updated_at),
    }
    if st.get("DataCaptureConfig"):
        out["DataCaptureConfig"] = st["DataCaptureConfig"]
    if st.get("LastDeploymentConfig"):
        out["LastDeploymentConfig"] = st["LastDeploymentConfig"]
    deployment = st.get("Deployment")
    if deployment:
        out["PendingDeploymentSummary"] = {
            "EndpointConfigName": deployment.get("EndpointConfigName"),
            "StartTime": iso_time(deployment.get("StartedAt")),
            "Phase": deployment.get("Phase"),
            "TrafficToNewFleet": deployment.get("Fraction", 0.0),
        }
    if router_url:
        out["InvocationUrl"] = router_url + invocations_path(rec.name)
    return out


def summary_endpoint(rec: ResourceRecord) -> dict[str, Any]:
    return {
        "EndpointName": rec.name,
        "EndpointArn": rec.arn,
        "EndpointStatus": rec.state,
        "CreationTime": iso_time(rec.created_at),
        "LastModifiedTime": iso_time(rec.updated_at),
    }
