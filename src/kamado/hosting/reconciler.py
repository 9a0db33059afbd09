"""The hosting reconciler: makes each endpoint's fleets, traffic and state match what was asked.

Each pass, for every endpoint: keep every variant of every fleet at its desired instance count
(start, health-check, replace the dead, drain the extra), move deployments along (new fleet healthy →
traffic steps with baking → termination wait → old fleet drained; any alarm → roll back), apply
autoscaling, and publish the routing table to the router when it changed.

Everything it decides is written to the endpoint's status with a compare-and-set before the next
pass acts on it; instance task ids are derived from counters in that status, so a pass repeated after
a crash or a lost race re-submits the same task (idempotent) instead of starting a second one.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from kamado.artifacts.base import ArtifactStore
from kamado.compute.executor import Executor
from kamado.core.errors import ConcurrentModification, IllegalTransition, NotFound
from kamado.core.loop import ReconcileLoop
from kamado.core.settings import Settings
from kamado.hosting import deployment as dep
from kamado.hosting.autoscaler import decide
from kamado.hosting.instances import DRAIN_DELAY_S, MAX_FAILED_PINGS, PING_INTERVAL_S, InstanceOps, last_line
from kamado.hosting.routing import CaptureRoute, EndpointRoute, InstanceRoute, RoutingTable, VariantRoute
from kamado.hosting.service import ENDPOINT, MODEL, HostingService
from kamado.hosting.spec import CreateEndpointConfigRequest, CreateModelRequest, DeploymentConfigSpec, ScalingPolicy
from kamado.hosting.states import EndpointStatus, InstanceState
from kamado.store.base import MetadataStore
from kamado.store.records import ResourceRecord

if TYPE_CHECKING:
    from kamado.hosting.router_process import RouterClient

log = logging.getLogger("kamado.hosting")

#: An instance that fails to come up this many times in a row fails its endpoint's create or update.
MAX_START_FAILURES = 3
LIVE_STATES = [s.value for s in EndpointStatus]


def _now() -> float:
    return time.time()


class HostingReconciler(ReconcileLoop):
    name = "hosting"

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        executor: Executor,
        settings: Settings,
        service: HostingService,
    ) -> None:
        super().__init__(settings.reconcile_interval_s)
        self.store = store
        self.service = service
        self.settings = settings
        self.ops = InstanceOps(executor, artifacts, settings)
        self._router: RouterClient | None = None
        self._router_lock = threading.Lock()
        self._published: dict[str, Any] | None = None
        self._version = 0
        self._stats_cache: dict[float, dict[str, Any]] = {}

    # -- router ---------------------------------------------------------------------------------------------
    def router(self) -> RouterClient:
        from kamado.hosting.router_auth import RouterAuthConfig, requires_token
        from kamado.hosting.router_process import RouterClient, ensure_router, pid_alive

        with self._router_lock:  # the API thread (runtime URL) and the loop may both ask first
            if self._router is None or not pid_alive(self._router.handle.pid):
                s = self.settings
                auth = RouterAuthConfig(requires_token(s.auth, s.host, s.router_host), s.database_url)
                handle = ensure_router(s.home, host=s.router_host, port=s.router_port, auth=auth)
                self._router = RouterClient(handle)
                self._published = None  # maybe a new router process: publish everything again
            return self._router

    def router_url(self) -> str | None:
        return self._router.handle.url if self._router is not None else None

    def stats(self, window_s: float) -> dict[str, Any]:
        window = float(max(1, min(300, round(window_s))))
        if window not in self._stats_cache:
            try:
                self._stats_cache[window] = self.router().stats(window)
            except Exception:
                log.exception("reading the router's statistics failed")
                self._stats_cache[window] = {}
        return self._stats_cache[window]

    def stats_if_running(self, window_s: float) -> dict[str, Any]:
        """For DescribeEndpoint: the router's figures if a router is running; never starts one."""
        return self.stats(window_s) if self._router is not None else {}

    def _variant_stats(self, endpoint: str, window_s: float, fleet: str | None = None) -> dict[str, dict[str, Any]]:
        ep = self.stats(window_s).get("endpoints", {}).get(endpoint, {})
        if fleet is not None:
            return dict(ep.get("fleets", {}).get(fleet, {}))
        return dict(ep.get("variants", {}))

    def idle(self) -> bool:
        """Never idle while an endpoint exists: its instances need health checks and scaling."""
        return not self.store.list_in_states(ENDPOINT, LIVE_STATES)

    def close(self) -> None:
        """On server shutdown: endpoints keep serving (router and instances outlive this process), but
        a router with no endpoint left to serve is stopped rather than left behind."""
        self.ops.close()
        if self._router is not None:
            try:
                if not self.store.list_in_states(ENDPOINT, LIVE_STATES):
                    self._router.stop(timeout_s=10.0)
                else:
                    self._router.close()
            except Exception:
                log.exception("stopping the idle router failed")

    # -- the pass -------------------------------------------------------------------------------------------
    def tick(self) -> None:
        self._stats_cache = {}
        endpoints = self.store.list_in_states(ENDPOINT, LIVE_STATES)
        if not endpoints and self._router is None:
            return
        for rec in endpoints:
            try:
                self._reconcile(rec)
            except (NotFound, ConcurrentModification, IllegalTransition):
                continue  # changed under us: the next pass sees the new state
            except Exception:
                log.exception("reconciling endpoint %s failed", rec.name)
        self._publish()

    def _reconcile(self, rec: ResourceRecord) -> None:
        work = EndpointWork(self, rec)
        work.run()
        work.save()

    # -- routing table --------------------------------------------------------------------------------------
    def _publish(self) -> None:
        # Read again rather than reuse this pass's records: a delete or update that raced the pass must leave
        # the routing table now, not one pass later.
        endpoints = {
            rec.name: route for rec in self.store.list_in_states(ENDPOINT, LIVE_STATES) if (route := _route(rec))
        }
        content = {name: r.model_dump(mode="json") for name, r in endpoints.items()}
        if content == self._published:
            return
        router = self.router()
        self._version = max(self._version + 1, int(time.time() * 1000))
        try:
            router.publish(RoutingTable(version=self._version, endpoints=endpoints))
        except ConcurrentModification as exc:
            # The router holds a newer table (a clock step back since it was published): continue above it.
            held = exc.details.get("version") if isinstance(exc.details, dict) else None
            self._version = max(self._version, int(held or 0))
            raise
        self._published = content


def _route(rec: ResourceRecord) -> EndpointRoute | None:
    st = rec.status
    if rec.state in (EndpointStatus.DELETING, EndpointStatus.FAILED):
        return None
    fleets: dict[str, Any] = st.get("Fleets", {})
    active = st.get("ActiveFleet")
    deployment = st.get("Deployment") or {}
    new_fleet = deployment.get("NewFleet")
    fraction = float(deployment.get("Fraction", 0.0)) if new_fleet else 0.0
    variants: list[VariantRoute] = []
    scaled = set(st.get("Scaling") or {})
    for fleet_id, share in ((active, 1.0 - fraction), (new_fleet, fraction)):
        fleet = fleets.get(fleet_id or "")
        if not fleet:
            continue
        total = sum(float(v.get("DesiredWeight", 0.0)) for v in fleet["Variants"].values()) or 1.0
        for vname, v in fleet["Variants"].items():
            healthy = [
                InstanceRoute(instance_id=i["InstanceId"], url=i["Url"])
                for i in v.get("Instances", [])
                if i.get("State") == InstanceState.IN_SERVICE
            ]
            weight = float(v.get("DesiredWeight", 0.0)) / total * share
            # A new fleet still starting takes no traffic; in a pinned request it should not be chosen either.
            if fleet_id == new_fleet and deployment.get("Phase") == dep.STARTING:
                continue
            variants.append(
                VariantRoute(
                    variant_name=vname,
                    fleet=fleet_id or "",
                    weight=weight,
                    instances=tuple(healthy),
                    # A variant that autoscaling may wake from zero holds requests rather than refusing them.
                    desired_instances=max(
                        int(v.get("DesiredInstanceCount", 0)), 1 if fleet_id == active and vname in scaled else 0
                    ),
                    capture=_capture_route(fleet.get("Capture"), vname),
                )
            )
    if not variants:
        return None
    return EndpointRoute(endpoint_name=rec.name, variants=tuple(variants))


def _capture_route(capture: dict[str, Any] | None, variant: str) -> CaptureRoute | None:
    if not capture:
        return None
    return CaptureRoute(
        sampling_percentage=float(capture["SamplingPercentage"]),
        destination_prefix=capture["Prefix"],
        capture_input="Input" in capture["Modes"],
        capture_output="Output" in capture["Modes"],
        csv_content_types=tuple(capture.get("CsvContentTypes") or ("text/csv",)),
        json_content_types=tuple(capture.get("JsonContentTypes") or ("application/json",)),
    )


class EndpointWork:
    """One pass over one endpoint: mutates a copy of its status, then saves it with a compare-and-set."""

    def __init__(self, owner: HostingReconciler, rec: ResourceRecord) -> None:
        self.owner = owner
        self.ops = owner.ops
        self.rec = rec
        self.st: dict[str, Any] = copy.deepcopy(rec.status)
        self.state = EndpointStatus(rec.state)
        self.now = _now()
        self.delete_record = False

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self) -> None:
        store = self.owner.store
        if self.delete_record:
            store.delete(ENDPOINT, self.rec.name)
            return
        changed = {k: v for k, v in self.st.items() if self.rec.status.get(k) != v}
        if self.state != self.rec.state:
            store.transition(
                ENDPOINT,
                self.rec.name,
                from_states=[self.rec.state],
                to_state=str(self.state),
                status_patch=changed,
                expected_version=self.rec.version,
            )
        elif changed:
            store.update_status(ENDPOINT, self.rec.name, changed, expected_version=self.rec.version)

    def fleets(self) -> dict[str, Any]:
        return self.st.setdefault("Fleets", {})

    # -- the state machine -----------------------------------------------------------------------------------
    def run(self) -> None:
        if self.state == EndpointStatus.DELETING:
            self._delete()
            return
        target = self.st.get("Target")
        if target and self.state == EndpointStatus.CREATING and not self.st.get("ActiveFleet"):
            self.st["ActiveFleet"] = self._new_fleet(target["EndpointConfigName"], retain=None)
            self.st["LastDeploymentConfig"] = target.get("DeploymentConfig")
            self.st["Target"] = None
        elif target and self.state == EndpointStatus.UPDATING and not self.st.get("Deployment"):
            self._begin_deployment(target)
        if self.st.get("WeightsChange") and self.state == EndpointStatus.UPDATING:
            self._apply_weights(self.st.pop("WeightsChange"))
            self.st["WeightsChange"] = None
        if self.state == EndpointStatus.IN_SERVICE:
            self._autoscale()  # before the fleets are maintained, so a decision takes effect in this pass
        for fleet_id in list(self.fleets()):
            self._maintain_fleet(fleet_id)
        if self.state == EndpointStatus.CREATING:
            self._creating()
        elif self.state in (EndpointStatus.UPDATING, EndpointStatus.ROLLING_BACK) and self.st.get("Deployment"):
            self._deploying()
        elif self.state == EndpointStatus.UPDATING and self._fleet_ready(self.st.get("ActiveFleet")):
            self.state = EndpointStatus.IN_SERVICE
        self._drop_stopped_fleets()

    # -- fleets -----------------------------------------------------------------------------------------------
    def _new_fleet(self, config_name: str, *, retain: dict[str, Any] | None) -> str:
        config = CreateEndpointConfigRequest.model_validate(self.owner.store.get("endpoint-config", config_name).spec)
        seq = int(self.st.get("FleetSeq", 0)) + 1
        self.st["FleetSeq"] = seq
        fleet_id = f"f{seq}"
        variants: dict[str, Any] = {}
        for pv in config.ProductionVariants:
            model = CreateModelRequest.model_validate(self.owner.store.get(MODEL, pv.ModelName).spec)
            count, weight = pv.InitialInstanceCount, pv.InitialVariantWeight
            if retain and pv.VariantName in retain:
                count = retain[pv.VariantName].get("DesiredInstanceCount", count)
                weight = retain[pv.VariantName].get("DesiredWeight", weight)
            variants[pv.VariantName] = {
                "VariantName": pv.VariantName,
                "ModelName": pv.ModelName,
                # A copy: the model record may be deleted while the endpoint keeps serving it, as in SageMaker.
                "Container": model.container().model_dump(mode="json", exclude_none=True),
                "InstanceType": pv.InstanceType,
                "DesiredInstanceCount": count,
                "DesiredWeight": weight,
                "StartupTimeout": pv.ContainerStartupHealthCheckTimeoutInSeconds,
                "Instances": [],
                "InstanceSeq": 0,
                "StartFailures": 0,
                "VariantStatus": [{"Status": "Creating", "StatusMessage": "Starting instances", "StartTime": self.now}],
            }
        capture = None
        if config.DataCaptureConfig is not None and config.DataCaptureConfig.EnableCapture:
            dc = config.DataCaptureConfig
            header = dc.CaptureContentTypeHeader
            capture = {
                "SamplingPercentage": dc.InitialSamplingPercentage,
                "Prefix": self.owner.service.artifacts.key_from_uri(dc.DestinationS3Uri),
                "DestinationS3Uri": dc.DestinationS3Uri,
                "Modes": sorted(dc.modes()),
                "CsvContentTypes": header.CsvContentTypes if header else None,
                "JsonContentTypes": header.JsonContentTypes if header else None,
            }
        self.fleets()[fleet_id] = {
            "EndpointConfigName": config_name,
            "Variants": variants,
            "Capture": capture,
            "CreatedAt": self.now,
        }
        return fleet_id

    def _maintain_fleet(self, fleet_id: str) -> None:
        fleet = self.fleets()[fleet_id]
        for vname, variant in fleet["Variants"].items():
            self._maintain_variant(fleet_id, vname, variant)

    def _maintain_variant(self, fleet_id: str, vname: str, variant: dict[str, Any]) -> None:
        kept: list[dict[str, Any]] = []
        for inst in variant["Instances"]:
            if self._check_instance(variant, inst):
                kept.append(inst)
        variant["Instances"] = kept
        live = [i for i in kept if i["State"] != InstanceState.DRAINING]
        desired = int(variant["DesiredInstanceCount"])
        if variant.get("Stopping"):
            desired = 0
        failed = variant.get("StartFailures", 0) >= MAX_START_FAILURES
        while len(live) < desired and not failed:
            variant["InstanceSeq"] = int(variant.get("InstanceSeq", 0)) + 1
            instance_id = f"{vname}-{fleet_id}-{variant['InstanceSeq']}"
            inst = self.ops.start(self.rec.name, fleet_id, variant, instance_id, project=self.rec.project)
            kept.append(inst)
            live.append(inst)
        # Scale in: drain the newest first (the oldest have warm caches); starting ones go before serving ones.
        surplus = len(live) - desired
        for inst in sorted(live, key=lambda i: (i["State"] == InstanceState.IN_SERVICE, -float(i["StartedAt"])))[
            :surplus
        ]:
            inst["State"] = str(InstanceState.DRAINING)
            inst["DrainStartedAt"] = self.now

    def _check_instance(self, variant: dict[str, Any], inst: dict[str, Any]) -> bool:
        """Advance one instance; False when it is gone for good (drained and stopped, or dead)."""
        status = self.ops.poll(inst)
        if inst["State"] == InstanceState.DRAINING:
            if status.state.is_terminal():
                self.ops.cleanup(inst)
                return False
            if self.now - float(inst.get("DrainStartedAt", self.now)) >= DRAIN_DELAY_S and not inst.get("StopSent"):
                self.ops.stop(inst)
                inst["StopSent"] = True
            return True
        if status.state.is_terminal():
            tail = self.ops.log_tail(inst)
            why = last_line(tail) or (status.reason or f"exit code {status.exit_code}")
            log.warning("endpoint %s instance %s ended: %s", self.rec.name, inst["InstanceId"], why)
            if inst["State"] == InstanceState.STARTING:
                variant["StartFailures"] = int(variant.get("StartFailures", 0)) + 1
            variant["LastInstanceFailure"] = f"instance {inst['InstanceId']} ended ({status.reason or 'exited'}): {why}"
            variant["Restarts"] = int(variant.get("Restarts", 0)) + 1
            self.ops.cleanup(inst)
            return False
        if inst["State"] == InstanceState.STARTING:
            if self.ops.ping(inst):
                inst["State"] = str(InstanceState.IN_SERVICE)
                inst["ReadyAt"] = self.now
                inst["LastPingAt"] = self.now
                variant["StartFailures"] = 0
            elif self.now - float(inst["StartedAt"]) > float(variant.get("StartupTimeout", 300)):
                variant["StartFailures"] = int(variant.get("StartFailures", 0)) + 1
                variant["LastInstanceFailure"] = (
                    f"instance {inst['InstanceId']} did not answer /ping within "
                    f"{variant.get('StartupTimeout')} s (ContainerStartupHealthCheckTimeoutInSeconds)"
                )
                inst["State"] = str(InstanceState.DRAINING)
                inst["DrainStartedAt"] = self.now - DRAIN_DELAY_S
            return True
        if self.now - float(inst.get("LastPingAt", 0)) >= PING_INTERVAL_S:
            inst["LastPingAt"] = self.now
            if self.ops.ping(inst):
                inst["FailedPings"] = 0
            else:
                inst["FailedPings"] = int(inst.get("FailedPings", 0)) + 1
                if inst["FailedPings"] >= MAX_FAILED_PINGS:
                    variant["LastInstanceFailure"] = f"instance {inst['InstanceId']} stopped answering /ping"
                    variant["Restarts"] = int(variant.get("Restarts", 0)) + 1
                    inst["State"] = str(InstanceState.DRAINING)
                    inst["DrainStartedAt"] = self.now - DRAIN_DELAY_S
        return True

    def _fleet_ready(self, fleet_id: str | None) -> bool:
        fleet = self.fleets().get(fleet_id or "")
        if not fleet:
            return False
        for variant in fleet["Variants"].values():
            healthy = [i for i in variant["Instances"] if i["State"] == InstanceState.IN_SERVICE]
            if len(healthy) < int(variant["DesiredInstanceCount"]):
                return False
        return True

    def _fleet_failure(self, fleet_id: str | None) -> str | None:
        fleet = self.fleets().get(fleet_id or "")
        if not fleet:
            return None
        for vname, variant in fleet["Variants"].items():
            if int(variant.get("StartFailures", 0)) >= MAX_START_FAILURES:
                return f"variant {vname}: {variant.get('LastInstanceFailure')}"
        return None

    def _stop_fleet(self, fleet_id: str) -> None:
        fleet = self.fleets().get(fleet_id)
        if not fleet:
            return
        for variant in fleet["Variants"].values():
            variant["Stopping"] = True
            for inst in variant["Instances"]:
                if inst["State"] != InstanceState.DRAINING:
                    inst["State"] = str(InstanceState.DRAINING)
                    inst["DrainStartedAt"] = self.now
        fleet["Stopping"] = True

    def _drop_stopped_fleets(self) -> None:
        for fleet_id, fleet in list(self.fleets().items()):
            if fleet.get("Stopping") and not any(v["Instances"] for v in fleet["Variants"].values()):
                del self.fleets()[fleet_id]

    # -- create -----------------------------------------------------------------------------------------------
    def _creating(self) -> None:
        active = str(self.st.get("ActiveFleet") or "")
        failure = self._fleet_failure(active)
        if failure:
            self.state = EndpointStatus.FAILED
            self.st["FailureReason"] = f"The endpoint's instances failed to start: {failure}"[:1024]
            self._stop_fleet(active)
            return
        if self._fleet_ready(active):
            self._activate(active)
            self.state = EndpointStatus.IN_SERVICE

    def _activate(self, fleet_id: str) -> None:
        fleet = self.fleets()[fleet_id]
        self.st["ActiveFleet"] = fleet_id
        self.st["EndpointConfigName"] = fleet["EndpointConfigName"]
        for variant in fleet["Variants"].values():
            variant["CurrentWeight"] = variant["DesiredWeight"]
            variant["VariantStatus"] = []
        capture = fleet.get("Capture")
        self.st["DataCaptureConfig"] = (
            {
                "EnableCapture": True,
                "CaptureStatus": "Started",
                "CurrentSamplingPercentage": capture["SamplingPercentage"],
                "DestinationS3Uri": capture["DestinationS3Uri"],
            }
            if capture
            else None
        )

    # -- update: blue/green -----------------------------------------------------------------------------------
    def _begin_deployment(self, target: dict[str, Any]) -> None:
        retain = None
        active = self.fleets().get(self.st.get("ActiveFleet") or "")
        if target.get("RetainAllVariantProperties") and active:
            excluded = set(target.get("ExcludeRetainedVariantProperties") or [])
            retain = {
                vname: {k: v[k] for k in ("DesiredInstanceCount", "DesiredWeight") if k not in excluded and k in v}
                for vname, v in active["Variants"].items()
            }
        new_fleet = self._new_fleet(target["EndpointConfigName"], retain=retain)
        config = target.get("DeploymentConfig")
        instances = sum(int(v["DesiredInstanceCount"]) for v in self.fleets()[new_fleet]["Variants"].values())
        parsed = DeploymentConfigSpec.model_validate(config) if config else None
        self.st["Deployment"] = {
            "NewFleet": new_fleet,
            "EndpointConfigName": target["EndpointConfigName"],
            "DeploymentConfig": config,
            "Steps": dep.traffic_steps(parsed, instances),
            "Step": -1,
            "Fraction": 0.0,
            "Phase": dep.STARTING,
            "PhaseStartedAt": self.now,
            "StartedAt": self.now,
        }
        self.st["Target"] = None

    def _deploying(self) -> None:
        d = self.st["Deployment"]
        config = DeploymentConfigSpec.model_validate(d["DeploymentConfig"]) if d.get("DeploymentConfig") else None
        new_fleet = d["NewFleet"]
        if self.state == EndpointStatus.ROLLING_BACK:
            self._rolling_back()
            return
        if d["Phase"] == dep.STARTING:
            failure = self._fleet_failure(new_fleet)
            if failure:
                self._roll_back(f"the new fleet failed to start: {failure}")
            elif self._fleet_ready(new_fleet):
                self._next_step(d)
            return
        if d["Phase"] == dep.BAKING:
            verdict = self._alarm(config, d)
            if verdict is not None:
                self._roll_back(f"alarm {verdict.alarm} fired: {verdict.message}")
                return
            if self.now - float(d["PhaseStartedAt"]) >= dep.bake_seconds(config):
                if d["Step"] + 1 < len(d["Steps"]):
                    self._next_step(d)
                else:
                    d["Phase"] = dep.TERMINATION_WAIT
                    d["PhaseStartedAt"] = self.now
            return
        if d["Phase"] == dep.TERMINATION_WAIT and self.now - float(d["PhaseStartedAt"]) >= dep.termination_wait_seconds(
            config
        ):
            old = self.st.get("ActiveFleet")
            self._activate(new_fleet)
            if old and old != new_fleet:
                self._stop_fleet(old)
            self.st["Deployment"] = None
            self.st["LastDeploymentConfig"] = d.get("DeploymentConfig")
            self.state = EndpointStatus.IN_SERVICE

    def _next_step(self, d: dict[str, Any]) -> None:
        d["Step"] += 1
        d["Fraction"] = d["Steps"][d["Step"]]
        d["Phase"] = dep.BAKING
        d["PhaseStartedAt"] = self.now
        d.setdefault("TrafficStartedAt", self.now)
        for variant in self.fleets()[d["NewFleet"]]["Variants"].values():
            variant["VariantStatus"] = [
                {
                    "Status": "Baking",
                    "StatusMessage": f"{d['Fraction']:.0%} of traffic on the new fleet",
                    "StartTime": self.now,
                }
            ]

    def _alarm(self, config: DeploymentConfigSpec | None, d: dict[str, Any]) -> dep.AlarmVerdict | None:
        for alarm in dep.alarms_of(config):
            since_traffic = self.now - float(d.get("TrafficStartedAt", self.now))
            window = max(1.0, min(float(alarm.WindowSeconds), since_traffic))
            stats = self.owner._variant_stats(self.rec.name, window, fleet=d["NewFleet"])
            verdict = dep.evaluate_alarm(alarm, stats)
            if verdict is not None:
                return verdict
        return None

    def _roll_back(self, why: str) -> None:
        d = self.st["Deployment"]
        log.warning("endpoint %s: rolling back the update to %s: %s", self.rec.name, d["EndpointConfigName"], why)
        d["Fraction"] = 0.0
        d["Phase"] = "RollingBack"
        d["PhaseStartedAt"] = self.now
        d["RollbackReason"] = why
        self.state = EndpointStatus.ROLLING_BACK

    def _rolling_back(self) -> None:
        d = self.st["Deployment"]
        active = self.st.get("ActiveFleet")
        reason = f"Update to endpoint config {d['EndpointConfigName']} rolled back: {d.get('RollbackReason')}"
        if self._fleet_ready(active):
            self._stop_fleet(d["NewFleet"])
            self.st["Deployment"] = None
            self.st["FailureReason"] = reason[:1024]
            self.state = EndpointStatus.IN_SERVICE
            return
        failure = self._fleet_failure(active)
        timeout = max(
            [
                float(v.get("StartupTimeout", 300))
                for v in self.fleets().get(active or "", {}).get("Variants", {}).values()
            ]
            or [300.0]
        )
        if failure or self.now - float(d["PhaseStartedAt"]) > timeout:
            # The old fleet cannot take the traffic back: leave both serving and say so loudly.
            d["Fraction"] = 0.5
            self.st["FailureReason"] = (
                f"{reason}; the rollback failed too: the previous fleet is not healthy "
                f"({failure or 'not ready in time'}). Both fleets are serving; update or delete the endpoint."
            )[:1024]
            self.state = EndpointStatus.UPDATE_ROLLBACK_FAILED

    # -- weights and capacities -------------------------------------------------------------------------------
    def _apply_weights(self, changes: list[dict[str, Any]]) -> None:
        fleet = self.fleets().get(self.st.get("ActiveFleet") or "")
        if not fleet:
            return
        for change in changes:
            variant = fleet["Variants"].get(change["VariantName"])
            if variant is None:
                continue
            if "DesiredWeight" in change:
                variant["DesiredWeight"] = change["DesiredWeight"]
                variant["CurrentWeight"] = change["DesiredWeight"]
            if "DesiredInstanceCount" in change:
                variant["DesiredInstanceCount"] = change["DesiredInstanceCount"]
                variant["StartFailures"] = 0

    # -- autoscaling ------------------------------------------------------------------------------------------
    def _autoscale(self) -> None:
        scaling: dict[str, Any] = self.st.get("Scaling") or {}
        fleet = self.fleets().get(self.st.get("ActiveFleet") or "")
        if not scaling or not fleet:
            return
        endpoint_stats = self.owner.stats(1).get("endpoints", {}).get(self.rec.name, {})
        for vname, entry in scaling.items():
            variant = fleet["Variants"].get(vname)
            if variant is None:
                continue
            policy = ScalingPolicy.model_validate(entry["Policy"])
            short = self.owner._variant_stats(self.rec.name, policy.EvaluationWindowSeconds).get(vname, {})
            long = self.owner._variant_stats(self.rec.name, min(300.0, policy.ScaleInCooldown)).get(vname, {})
            pending = int(endpoint_stats.get("variants", {}).get(vname, {}).get("pending", 0))
            decision = decide(
                policy,
                desired=int(variant["DesiredInstanceCount"]),
                short=short,
                long=long,
                pending=pending,
                now=self.now,
                last_scale_out=float(entry.get("LastScaleOutAt", 0)),
                # The scale-in cooldown also runs from when the policy was attached: a variant that had no
                # traffic yet is not scaled in the moment a policy appears.
                last_scale_in=max(float(entry.get("LastScaleInAt", 0)), float(entry.get("AttachedAt", 0))),
            )
            if decision is None or decision.desired == variant["DesiredInstanceCount"]:
                continue
            key = "LastScaleOutAt" if decision.desired > variant["DesiredInstanceCount"] else "LastScaleInAt"
            log.info(
                "endpoint %s variant %s: %d -> %d instances (%s)",
                self.rec.name,
                vname,
                variant["DesiredInstanceCount"],
                decision.desired,
                decision.reason,
            )
            variant["DesiredInstanceCount"] = decision.desired
            variant["StartFailures"] = 0
            scaling[vname] = {**entry, key: self.now, "LastDecision": decision.reason, "LastDecisionAt": self.now}
        self.st["Scaling"] = scaling

    # -- delete -----------------------------------------------------------------------------------------------
    def _delete(self) -> None:
        for fleet_id in list(self.fleets()):
            self._stop_fleet(fleet_id)
            self._maintain_fleet(fleet_id)
        self._drop_stopped_fleets()
        if not self.fleets():
            self.delete_record = True
