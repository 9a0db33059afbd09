"""The pure interpreter's event/action contract: tasks, retries, catches, timeouts, determinism, resume."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from kamado.pipelines.asl import Interpreter, new_execution
from kamado.pipelines.asl.driver import PENDING, TaskFailure, run_local
from kamado.pipelines.asl.waits import retry_delay

T0 = 1_700_000_000.0


def _task_machine(**task: Any) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {
            "Work": {"Type": "Task", "Resource": "fn:work", "End": True, **task},
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_task_round_trip_through_parameters_result_selector_and_result_path() -> None:
    definition = _task_machine(
        Parameters={"n.$": "$.x", "id.$": "$$.Execution.Name"},
        ResultSelector={"doubled.$": "$.y"},
        ResultPath="$.out",
        OutputPath="$.out",
    )
    interp = Interpreter(definition)
    state, actions = interp.step(new_execution({"x": 21}, execution_name="e1"), {"type": "ExecutionStarted", "now": T0})
    invoke = next(a for a in actions if a["type"] == "InvokeTask")
    assert invoke["resource"] == "fn:work" and invoke["payload"] == {"n": 21, "id": "e1"}
    assert [a["event"]["type"] for a in actions if a["type"] == "RecordEvent"] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
    ]
    state, actions = interp.step(
        state, {"type": "TaskSucceeded", "token": invoke["token"], "output": {"y": 42}, "now": T0}
    )
    assert state["status"] == "SUCCEEDED" and state["output"] == {"doubled": 42}
    assert actions[-1] == {"type": "ExecutionSucceeded", "output": {"doubled": 42}}
    recorded = [a["event"] for a in actions if a["type"] == "RecordEvent"]
    assert [e["type"] for e in recorded] == ["TaskStarted", "TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    assert [e["id"] for e in recorded] == [4, 5, 6, 7]  # numbered on from the first step, like AWS


def test_step_never_mutates_its_input_and_is_deterministic() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Pass",
                "Parameters": {"u.$": "States.UUID()", "r.$": "States.MathRandom(0, 1000)"},
                "End": True,
            }
        },
    }
    interp = Interpreter(definition)
    start = new_execution({}, seed=7)
    frozen = json.dumps(start, sort_keys=True)
    first = interp.step(start, {"type": "ExecutionStarted", "now": T0})
    second = interp.step(start, {"type": "ExecutionStarted", "now": T0})
    assert json.dumps(start, sort_keys=True) == frozen
    assert first == second
    other = interp.step(new_execution({}, seed=8), {"type": "ExecutionStarted", "now": T0})
    assert other[0]["output"]["u"] != first[0]["output"]["u"]


def test_retry_backoff_follows_interval_rate_and_cap() -> None:
    retrier = {"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxDelaySeconds": 30}
    rng = random.Random(1)
    assert [retry_delay(retrier, n, rng) for n in range(4)] == [2.0, 6.0, 18.0, 30.0]


def test_full_jitter_stays_within_bounds_and_is_seeded() -> None:
    retrier = {"ErrorEquals": ["Boom"], "IntervalSeconds": 4, "BackoffRate": 2.0, "JitterStrategy": "FULL"}
    delays = [retry_delay(retrier, 2, random.Random(seed)) for seed in range(200)]
    assert all(0.0 <= d <= 16.0 for d in delays)
    assert len(set(delays)) > 150  # really random across seeds
    assert retry_delay(retrier, 2, random.Random(5)) == retry_delay(retrier, 2, random.Random(5))


def test_retries_wait_on_the_fake_clock_then_succeed() -> None:
    calls: list[float] = []

    def flaky(resource: str, payload: Any) -> Any:
        calls.append(payload["attempt"] if isinstance(payload, dict) and "attempt" in payload else len(calls))
        if len(calls) < 3:
            raise TaskFailure("Boom", "not yet")
        return {"ok": True}

    definition = _task_machine(
        Retry=[{"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 3}]
    )
    result = run_local(definition, {}, tasks=flaky, start=T0)
    assert result.status == "SUCCEEDED" and result.output == {"ok": True}
    assert len(calls) == 3
    assert result.clock - T0 == pytest.approx(1 + 2)  # two back-offs: 1 s, then 2 s
    timers = [a["fire_at"] - T0 for a in result.actions if a["type"] == "StartTimer"]
    assert timers == [1.0, 3.0]


def test_exhausted_retries_fall_through_to_catch_with_result_path() -> None:
    def always_fails(resource: str, payload: Any) -> Any:
        raise TaskFailure("ValueError", "x must be positive")

    definition = _task_machine(
        Retry=[{"ErrorEquals": ["ValueError"], "MaxAttempts": 1, "IntervalSeconds": 1}],
        Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
    )
    result = run_local(definition, {"x": -1}, tasks=always_fails, start=T0)
    assert result.status == "SUCCEEDED"
    assert result.output == {"x": -1, "error": {"Error": "ValueError", "Cause": "x must be positive"}}
    assert result.states_entered() == ["Work", "Caught"]


def test_task_timeout_fires_on_the_fake_clock_and_is_catchable() -> None:
    definition = _task_machine(
        TimeoutSeconds=30, Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.err", "Next": "Caught"}]
    )
    result = run_local(definition, {}, tasks=lambda r, p: PENDING, start=T0)
    assert result.status == "SUCCEEDED" and result.output == {"err": {"Error": "States.Timeout", "Cause": None}}
    assert result.clock - T0 == 30
    assert any(a["type"] == "CancelTask" for a in result.actions)
    assert "TaskTimedOut" in [e["type"] for e in result.history]


def test_states_all_does_not_catch_a_timeout_when_task_failed_is_used() -> None:
    definition = _task_machine(TimeoutSeconds=5, Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "Caught"}])
    result = run_local(definition, {}, tasks=lambda r, p: PENDING, start=T0)
    assert result.status == "FAILED" and result.error == "States.Timeout"


def test_heartbeat_resets_and_a_missed_one_times_out() -> None:
    interp = Interpreter(_task_machine(HeartbeatSeconds=10, TimeoutSeconds=100))
    state, actions = interp.step(new_execution({}), {"type": "ExecutionStarted", "now": T0})
    token = next(a["token"] for a in actions if a["type"] == "InvokeTask")
    hb = [a for a in actions if a["type"] == "StartTimer" and a["fire_at"] == T0 + 10]
    assert len(hb) == 1
    state, actions = interp.step(state, {"type": "TaskHeartbeat", "token": token, "now": T0 + 8})
    assert {a["type"] for a in actions} == {"CancelTimer", "StartTimer"}
    new_hb = next(a for a in actions if a["type"] == "StartTimer")
    assert new_hb["fire_at"] == T0 + 18
    # the old heartbeat timer firing late is ignored; the new one times the task out
    state, actions = interp.step(state, {"type": "TimerFired", "timer_id": hb[0]["timer_id"], "now": T0 + 10})
    assert actions == [] and state["status"] == "RUNNING"
    state, actions = interp.step(state, {"type": "TimerFired", "timer_id": new_hb["timer_id"], "now": T0 + 18})
    assert state["status"] == "FAILED" and state["error"] == "States.Timeout"


def test_duplicate_and_unknown_events_are_ignored() -> None:
    interp = Interpreter(_task_machine())
    state, actions = interp.step(new_execution({}), {"type": "ExecutionStarted", "now": T0})
    token = next(a["token"] for a in actions if a["type"] == "InvokeTask")
    done, _ = interp.step(state, {"type": "TaskSucceeded", "token": token, "output": 1, "now": T0})
    again, actions = interp.step(done, {"type": "TaskSucceeded", "token": token, "output": 2, "now": T0})
    assert again["output"] == 1 and actions == []
    same, actions = interp.step(state, {"type": "TaskFailed", "token": "task-999", "error": "X", "now": T0})
    assert actions == [] and same["status"] == "RUNNING"


def test_resume_from_persisted_state_after_a_crash_gives_the_same_result() -> None:
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "StartAt": "Nap",
                    "States": {
                        "Nap": {"Type": "Wait", "Seconds": 5, "Next": "Sq"},
                        "Sq": {"Type": "Task", "Resource": "fn:square", "End": True},
                    },
                },
                "Next": "Done",
            },
            "Done": {
                "Type": "Pass",
                "Parameters": {"sum.$": "States.MathAdd($[0], $[2])", "id.$": "States.UUID()"},
                "End": True,
            },
        },
    }
    uninterrupted = run_local(definition, {"items": [1, 2, 3]}, tasks=lambda r, p: p * p, seed=3)
    assert uninterrupted.status == "SUCCEEDED" and uninterrupted.output["sum"] == 10

    # Same run, but every step goes through JSON on "disk" and a brand-new Interpreter (a restarted process).
    resumed = run_local(definition, {"items": [1, 2, 3]}, tasks=lambda r, p: p * p, seed=3, persist=True)
    assert resumed.output == uninterrupted.output
    assert [e["type"] for e in resumed.history] == [e["type"] for e in uninterrupted.history]
    assert resumed.clock - T0 == pytest.approx(uninterrupted.clock - T0)


def test_map_concurrency_is_capped_and_results_keep_item_order() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 3,
                "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "fn", "End": True}}},
                "End": True,
            }
        },
    }
    interp = Interpreter(definition)
    state, actions = interp.step(new_execution([5, 4, 3, 2, 1]), {"type": "ExecutionStarted", "now": T0})
    invokes = [a for a in actions if a["type"] == "InvokeTask"]
    assert [a["payload"] for a in invokes] == [5, 4, 3]
    # finish the middle one first: one more iteration starts
    state, actions = interp.step(
        state, {"type": "TaskSucceeded", "token": invokes[1]["token"], "output": "b", "now": T0}
    )
    assert [a["payload"] for a in actions if a["type"] == "InvokeTask"] == [2]
    result = run_local(definition, [5, 4, 3, 2, 1], tasks=lambda r, p: p * 10)
    assert result.output == [50, 40, 30, 20, 10]


def test_parallel_branch_failure_is_caught_with_the_branch_error() -> None:
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Ok", "States": {"Ok": {"Type": "Pass", "Result": 1, "End": True}}},
                    {"StartAt": "Bad", "States": {"Bad": {"Type": "Fail", "Error": "Custom", "Cause": "why"}}},
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    result = run_local(definition, {})
    assert result.status == "SUCCEEDED" and result.output == {"Error": "Custom", "Cause": "why"}


def test_execution_timeout_and_abort_end_the_execution_and_cancel_work() -> None:
    definition = {**_task_machine(), "TimeoutSeconds": 60}
    result = run_local(definition, {}, tasks=lambda r, p: PENDING, start=T0)
    assert result.status == "TIMED_OUT" and result.error == "States.Timeout" and result.clock - T0 == 60
    assert any(a["type"] == "CancelTask" for a in result.actions)

    interp = Interpreter(_task_machine())
    state, _ = interp.step(new_execution({}), {"type": "ExecutionStarted", "now": T0})
    state, actions = interp.step(state, {"type": "ExecutionAborted", "now": T0 + 1, "cause": "user asked"})
    assert state["status"] == "ABORTED"
    assert [a["type"] for a in actions] == ["CancelTask", "RecordEvent", "ExecutionAborted"]


def test_jsonata_task_arguments_output_and_variables() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "fn",
                "Arguments": {"n": "{% $states.input.x + 1 %}"},
                "Assign": {"seen": "{% $states.result.y %}"},
                "Output": {"y": "{% $states.result.y %}"},
                "Next": "Use",
            },
            "Use": {"Type": "Pass", "Output": "{% $seen * 2 %}", "End": True},
        },
    }
    result = run_local(definition, {"x": 1}, tasks=lambda r, p: {"y": p["n"] * 10})
    assert result.status == "SUCCEEDED" and result.output == 40
