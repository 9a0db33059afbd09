"""Blue/green deployment arithmetic: the traffic steps of a policy, and alarms judged from router figures.

Pure functions, so the policy can be tested exhaustively without processes; the reconciler applies them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kamado.hosting.spec import AlarmSpec, CapacitySizeSpec, DeploymentConfigSpec

#: Deployment phases, in order. ``Baking`` follows every traffic step (the last one included).
STARTING = "Starting"
BAKING = "Baking"
TERMINATION_WAIT = "TerminationWait"


def _fraction(size: CapacitySizeSpec, fleet_instances: int) -> float:
    if size.Type == "CAPACITY_PERCENT":
        return min(1.0, size.Value / 100.0)
    return min(1.0, size.Value / max(1, fleet_instances))


def traffic_steps(config: DeploymentConfigSpec | None, fleet_instances: int) -> list[float]:
    """The cumulative share of traffic on the new fleet after each step; always ends at 1.0."""
    policy = config.BlueGreenUpdatePolicy if config else None
    if policy is None:
        return [1.0]
    routing = policy.TrafficRoutingConfiguration
    if routing.Type == "CANARY" and routing.CanarySize is not None:
        return [_fraction(routing.CanarySize, fleet_instances), 1.0]
    if routing.Type == "LINEAR" and routing.LinearStepSize is not None:
        step = _fraction(routing.LinearStepSize, fleet_instances)
        count = math.ceil(1.0 / step - 1e-9)
        return [min(1.0, step * (i + 1)) for i in range(count)]
    return [1.0]


def bake_seconds(config: DeploymentConfigSpec | None) -> float:
    policy = config.BlueGreenUpdatePolicy if config else None
    return float(policy.TrafficRoutingConfiguration.WaitIntervalInSeconds) if policy else 0.0


def termination_wait_seconds(config: DeploymentConfigSpec | None) -> float:
    policy = config.BlueGreenUpdatePolicy if config else None
    return float(policy.TerminationWaitInSeconds) if policy else 0.0


def alarms_of(config: DeploymentConfigSpec | None) -> list[AlarmSpec]:
    rollback = config.AutoRollbackConfiguration if config else None
    return list(rollback.Alarms) if rollback else []


@dataclass(frozen=True)
class AlarmVerdict:
    alarm: str
    message: str


def evaluate_alarm(alarm: AlarmSpec, variants: dict[str, dict[str, Any]]) -> AlarmVerdict | None:
    """Judge one alarm over the new fleet's variants (router stats over the alarm's window).

    Error rates pool the variants (errors / invocations); latency alarms fire if any variant is over.
    Too few invocations means no verdict: an alarm never fires on a handful of requests.
    """
    invocations = sum(int(v.get("invocations", 0)) for v in variants.values())
    if invocations < alarm.MinInvocations:
        return None
    threshold = float(alarm.Threshold or 0.0)
    if alarm.Metric in ("Invocation5XXErrorRate", "Invocation4XXErrorRate"):
        key = "invocations_5xx" if alarm.Metric == "Invocation5XXErrorRate" else "invocations_4xx"
        rate = sum(int(v.get(key, 0)) for v in variants.values()) / invocations
        if rate > threshold:
            return AlarmVerdict(
                alarm.AlarmName, f"{alarm.Metric} {rate:.3f} > {threshold:g} over {invocations} invocations"
            )
        return None
    key = "model_latency_p99_ms" if alarm.Metric == "ModelLatencyP99" else "model_latency_p50_ms"
    for name, v in variants.items():
        value = v.get(key)
        if value is not None and float(value) > threshold:
            return AlarmVerdict(
                alarm.AlarmName, f"{alarm.Metric} of variant {name} {float(value):.1f} ms > {threshold:g} ms"
            )
    return None
