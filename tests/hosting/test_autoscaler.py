"""Target-tracking decisions: scale out on bursts, in only after the cooldown, from zero on waiting requests."""

from __future__ import annotations

from kamado.hosting.autoscaler import decide
from kamado.hosting.spec import ScalingPolicy

POLICY = ScalingPolicy(MinCapacity=1, MaxCapacity=4, TargetValue=600, ScaleOutCooldown=10, ScaleInCooldown=60)


def _stats(invocations: int, window: float, **extra: object) -> dict[str, object]:
    return {"invocations": invocations, "window_s": window, **extra}


def _decide(policy: ScalingPolicy = POLICY, **kw: object):  # type: ignore[no-untyped-def]
    args = {
        "desired": 1,
        "short": _stats(0, 5),
        "long": _stats(0, 60),
        "pending": 0,
        "now": 1000.0,
        "last_scale_out": 0.0,
        "last_scale_in": 0.0,
    }
    args.update(kw)
    return decide(policy, **args)  # type: ignore[arg-type]


def test_scales_out_to_what_the_rate_needs_capped_at_max() -> None:
    # 150 calls in 5 s = 1800/min at 600 per instance: 3 instances.
    assert _decide(short=_stats(150, 5)).desired == 3
    assert _decide(short=_stats(1000, 5)).desired == 4


def test_holds_within_the_scale_out_cooldown() -> None:
    assert _decide(short=_stats(150, 5), last_scale_out=995.0) is None


def test_scales_in_only_after_the_cooldown_and_not_below_min() -> None:
    quiet = {"desired": 3, "short": _stats(0, 5), "long": _stats(0, 60)}
    assert _decide(**quiet, last_scale_out=990.0) is None
    decision = _decide(**quiet, last_scale_out=900.0)
    assert decision is not None and decision.desired == 1


def test_scale_in_keeps_what_the_long_window_still_needs() -> None:
    decision = _decide(desired=4, short=_stats(0, 5), long=_stats(1200, 60))  # 1200/min: 2 instances
    assert decision is not None and decision.desired == 2


def test_disable_scale_in() -> None:
    policy = POLICY.model_copy(update={"DisableScaleIn": True})
    assert _decide(policy, desired=3) is None


def test_wakes_from_zero_when_requests_wait() -> None:
    policy = POLICY.model_copy(update={"MinCapacity": 0})
    decision = _decide(policy, desired=0, pending=2)
    assert decision is not None and decision.desired == 1 and "waiting" in decision.reason


def test_goes_to_zero_when_idle_and_min_is_zero() -> None:
    policy = POLICY.model_copy(update={"MinCapacity": 0})
    decision = _decide(policy, desired=1)
    assert decision is not None and decision.desired == 0


def test_never_to_zero_with_requests_in_flight() -> None:
    policy = POLICY.model_copy(update={"MinCapacity": 0})
    assert _decide(policy, desired=1, long=_stats(0, 60, in_flight=1)) is None


def test_latency_target_adds_an_instance() -> None:
    policy = POLICY.model_copy(update={"TargetModelLatencyP99Ms": 100.0})
    decision = _decide(policy, desired=1, short=_stats(10, 5, model_latency_p99_ms=250.0))
    assert decision is not None and decision.desired == 2 and "latency" in decision.reason


def test_policy_bounds_are_enforced_first() -> None:
    assert _decide(desired=0).desired == 1
    assert _decide(desired=9).desired == 4
