"""The routing table: what the control plane tells the router (the data plane) to serve.

The control plane owns it and publishes a complete table after every change (``PUT /_kamado/routes``
on the router's admin port). The router keeps the last table on disk, so a router restarted while
the control plane is down serves the same endpoints. A table carries a monotonically increasing
``version``; the router ignores a table older than the one it holds, so a slow publisher from
before a control-plane restart can never roll traffic back.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kamado.core.invocation import DEFAULT_MODEL_TIMEOUT_S

#: Header the control plane sends on the router's admin routes; its value is in ``router.token``.
ADMIN_TOKEN_HEADER = "X-Kamado-Router-Token"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceRoute(_Model):
    """One model-server worker that passed ``/ping``: the router may send it requests."""

    instance_id: str
    url: str  # e.g. http://127.0.0.1:41234 (the worker's /ping and /invocations live under it)


class CaptureRoute(_Model):
    """Data capture for one variant: sampled request/response pairs as SageMaker JSON lines."""

    sampling_percentage: float = Field(ge=0, le=100)
    #: Artifact-store key prefix; files land at ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``.
    destination_prefix: str
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = ("text/csv",)
    json_content_types: tuple[str, ...] = ("application/json",)


class VariantRoute(_Model):
    variant_name: str
    #: The deployment (fleet) these instances belong to. During a blue/green update an endpoint lists
    #: the same variant name twice, once per fleet; the router reports stats per fleet as well as per
    #: variant name, so alarms can judge the new fleet alone.
    fleet: str = ""
    #: Traffic share is weight / sum of the endpoint's weights; 0 takes no unpinned traffic.
    weight: float = Field(ge=0)
    #: Healthy instances. Empty with ``desired_instances > 0`` means the variant is (re)starting or
    #: scaled to zero: requests for it wait (bounded) instead of failing.
    instances: tuple[InstanceRoute, ...] = ()
    desired_instances: int = Field(default=1, ge=0)
    model_timeout_s: float = Field(default=DEFAULT_MODEL_TIMEOUT_S, gt=0)
    capture: CaptureRoute | None = None


class EndpointRoute(_Model):
    endpoint_name: str
    variants: tuple[VariantRoute, ...]
    #: Requests held while no instance of the chosen variant is up (scale from zero, replacement).
    max_pending: int = Field(default=256, ge=0)
    max_wait_s: float = Field(default=120.0, ge=0)


class RoutingTable(_Model):
    version: int = Field(ge=0)
    endpoints: dict[str, EndpointRoute] = Field(default_factory=dict)
