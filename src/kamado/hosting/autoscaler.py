"""Target tracking for one variant: how many instances it should have, from the router's figures.

A pure decision (no clock, no I/O) so scaling behaviour is tested directly. The reconciler calls it
each pass with the figures over two windows: a short one to react to bursts (scale out) and a long
one to be sure load has really gone (scale in), as Application Auto Scaling's target tracking does
with its alarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kamado.hosting.spec import ScalingPolicy


@dataclass(frozen=True)
class ScalingDecision:
    desired: int
    reason: str


def _per_minute(stats: dict[str, Any]) -> float:
    window = float(stats.get("window_s") or 0.0)
    return float(stats.get("invocations", 0)) * 60.0 / window if window > 0 else 0.0


def decide(
    policy: ScalingPolicy,
    *,
    desired: int,
    short: dict[str, Any],
    long: dict[str, Any],
    pending: int,
    now: float,
    last_scale_out: float,
    last_scale_in: float,
) -> ScalingDecision | None:
    """A new desired instance count and why, or None to leave it as it is."""
    if desired < policy.MinCapacity:
        return ScalingDecision(policy.MinCapacity, f"below MinCapacity {policy.MinCapacity}")
    if desired > policy.MaxCapacity:
        return ScalingDecision(policy.MaxCapacity, f"above MaxCapacity {policy.MaxCapacity}")
    if desired == 0 and pending > 0:
        # Scale from zero at once: requests are waiting in the router for an instance.
        return ScalingDecision(max(1, policy.MinCapacity), f"{pending} request(s) waiting for a cold variant")
    rate = _per_minute(short)
    needed = math.ceil(rate / policy.TargetValue - 1e-9)
    reason = f"{rate:.0f} invocations/min over {short.get('window_s')} s at a target of {policy.TargetValue:g}/instance"
    raw_p99 = short.get("model_latency_p99_ms")
    p99 = float(raw_p99) if raw_p99 is not None else None
    slow = policy.TargetModelLatencyP99Ms is not None and p99 is not None and p99 > policy.TargetModelLatencyP99Ms
    if slow and desired + 1 > needed:
        needed = desired + 1
        reason = f"p99 model latency {p99:.0f} ms above the target {policy.TargetModelLatencyP99Ms:g} ms"
    if needed > desired and now - last_scale_out >= policy.ScaleOutCooldown:
        return ScalingDecision(min(policy.MaxCapacity, needed), "scale out: " + reason)
    if policy.DisableScaleIn or now - max(last_scale_in, last_scale_out) < policy.ScaleInCooldown:
        return None
    long_rate = _per_minute(long)
    needed_in = math.ceil(long_rate / policy.TargetValue - 1e-9)
    if int(long.get("in_flight", 0)) > 0 or pending > 0:
        needed_in = max(needed_in, 1)
    target = max(policy.MinCapacity, needed_in)
    if target < desired:
        return ScalingDecision(
            target, f"scale in: {long_rate:.0f} invocations/min over {long.get('window_s')} s needs {target}"
        )
    return None
