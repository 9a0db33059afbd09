"""Blue/green traffic steps and alarm verdicts, straight from the policy arithmetic."""

from __future__ import annotations

import pytest

from kamado.hosting.deployment import evaluate_alarm, traffic_steps
from kamado.hosting.spec import AlarmSpec, DeploymentConfigSpec


def _config(routing: dict) -> DeploymentConfigSpec:
    return DeploymentConfigSpec.model_validate({"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing}})


def test_no_policy_and_all_at_once_shift_everything_in_one_step() -> None:
    assert traffic_steps(None, 2) == [1.0]
    assert traffic_steps(_config({"Type": "ALL_AT_ONCE"}), 2) == [1.0]


def test_canary_percent_then_the_rest() -> None:
    cfg = _config(
        {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}, "WaitIntervalInSeconds": 5}
    )
    assert traffic_steps(cfg, 4) == [0.1, 1.0]


def test_canary_by_instance_count_is_a_share_of_the_new_fleet() -> None:
    cfg = _config({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}})
    assert traffic_steps(cfg, 4) == [0.25, 1.0]


def test_linear_steps_are_equal_and_end_at_everything() -> None:
    cfg = _config({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}})
    assert traffic_steps(cfg, 2) == [0.25, 0.5, 0.75, 1.0]
    cfg = _config({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}})
    assert traffic_steps(cfg, 2) == pytest.approx([0.3, 0.6, 0.9, 1.0])


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"Type": "CANARY"}, "CanarySize is required"),
        ({"Type": "LINEAR"}, "LinearStepSize is required"),
        ({"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 60}}, "at most 50%"),
        ({"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 5}}, "10 to 50 percent"),
    ],
)
def test_bad_policies_are_refused_with_the_fix(routing: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(routing)


def test_an_alarm_needs_a_metric_kamado_can_compute() -> None:
    with pytest.raises(ValueError, match="needs Metric and Threshold"):
        AlarmSpec.model_validate({"AlarmName": "cloudwatch-only"})


def _alarm(metric: str, threshold: float, minimum: int = 10) -> AlarmSpec:
    return AlarmSpec.model_validate(
        {"AlarmName": "a", "Metric": metric, "Threshold": threshold, "MinInvocations": minimum}
    )


def test_error_rate_alarm_pools_the_new_fleets_variants() -> None:
    stats = {"A": {"invocations": 50, "invocations_5xx": 1}, "B": {"invocations": 50, "invocations_5xx": 2}}
    assert evaluate_alarm(_alarm("Invocation5XXErrorRate", 0.05), stats) is None
    verdict = evaluate_alarm(_alarm("Invocation5XXErrorRate", 0.02), stats)
    assert verdict is not None and "0.030 > 0.02" in verdict.message


def test_no_verdict_on_too_few_invocations() -> None:
    stats = {"A": {"invocations": 3, "invocations_5xx": 3}}
    assert evaluate_alarm(_alarm("Invocation5XXErrorRate", 0.01), stats) is None
    assert evaluate_alarm(_alarm("Invocation5XXErrorRate", 0.01, minimum=3), stats) is not None


def test_latency_alarm_fires_on_any_slow_variant() -> None:
    stats = {
        "A": {"invocations": 100, "model_latency_p99_ms": 40.0},
        "B": {"invocations": 100, "model_latency_p99_ms": 700.0},
    }
    verdict = evaluate_alarm(_alarm("ModelLatencyP99", 500), stats)
    assert verdict is not None and "variant B" in verdict.message
    assert evaluate_alarm(_alarm("ModelLatencyP99", 800), stats) is None
