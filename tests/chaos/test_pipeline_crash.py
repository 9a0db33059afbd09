"""T4: pipeline executions survive `kill -9` of the server.

Executions mixing Pass, Wait, function Tasks (with a Retry), an inline Map and a Parallel run while the
server is SIGKILLed at seeded moments and restarted. Every execution must end SUCCEEDED with the output a
never-killed run of the same input gives, its history must be the same multiset of transitions as that
reference run (each transition recorded exactly once, ids without gaps), and every Task must have run at
least once (at-least-once work).
"""

from __future__ import annotations

import collections
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from tests.chaos.test_crash_recovery import Server
from tests.live_server import task_visible_dir

from kamado.sdk.client import Client
from kamado.sdk.pipelines import StateMachine

HANDLER = """
import os, time

def bump(event, context):
    with open(os.environ["CALLS"], "a") as f:
        f.write(f"{event['tag']} {event['x']}\\n")
    time.sleep(0.15)
    return event["x"] + 1
"""


def _task(tag: str, next_state: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "bump", "Payload": {"tag": tag, "x.$": "$.x"}},
        "ResultSelector": {"x.$": "$.Payload"},
        "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 1, "MaxAttempts": 2}],
    }
    return {**state, "Next": next_state} if next_state else {**state, "End": True}


DEFINITION: dict[str, Any] = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Parameters": {"x.$": "$.x", "items.$": "States.ArrayRange(1, 4, 1)"},
            "Next": "One",
        },
        "One": {**_task("one", "Nap"), "ResultPath": "$.one"},
        "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Fan"},
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"x.$": "$$.Map.Item.Value"},
            "MaxConcurrency": 2,
            "ItemProcessor": {"StartAt": "Inner", "States": {"Inner": _task("map", None)}},
            "ResultPath": "$.fanned",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Left", "States": {"Left": _task("left", None)}},
                {"StartAt": "Right", "States": {"Right": {"Type": "Pass", "Result": {"x": 0}, "End": True}}},
            ],
            "ResultPath": "$.both",
            "Next": "Sum",
        },
        "Sum": {
            "Type": "Pass",
            "Parameters": {
                "x.$": "$.one.x",
                "fanned.$": "$.fanned[*].x",
                "left.$": "$.both[0].x",
            },
            "End": True,
        },
    },
}


def _expected(x: int) -> dict[str, Any]:
    return {"x": x + 1, "fanned": [2, 3, 4, 5], "left": x + 1}


def _transitions(history: list[dict[str, Any]]) -> collections.Counter[tuple[str, str]]:
    out: collections.Counter[tuple[str, str]] = collections.Counter()
    for e in history:
        details = next((v for k, v in e.items() if k.endswith("EventDetails")), {}) or {}
        out[(e["type"], str(details.get("name", "")))] += 1
    return out


def _seeds() -> list[int]:
    return [int(s) for s in os.environ.get("KAMADO_CHAOS_SEEDS", "11").split(",") if s]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", _seeds())
def test_executions_survive_server_kills(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    calls = task_visible_dir("kamado-chaos-calls-") / "calls.txt"  # appended to by the function's workers,
    calls.touch(mode=0o666)  # which may run as different uids (a root server gives each task its own)
    calls.chmod(0o666)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")}
    server = Server(home, logs, env)
    src = tmp_path / "fn"
    src.mkdir()
    (src / "app.py").write_text(HANDLER)
    inputs = list(range(10, 16))
    try:
        server.start()
        with Client(server.url) as c:
            c.create_function(
                {
                    "FunctionName": "bump",
                    "Handler": "app.bump",
                    "Code": {"Uri": c.upload_directory(src)},
                    "Environment": {"Variables": {"CALLS": str(calls)}},
                }
            )
            sm = StateMachine.create("crashy", DEFINITION, client=c)
            reference = sm.start({"x": 1}, name="reference")
            assert reference.wait(timeout_s=60) == _expected(1)
            ref_transitions = _transitions(reference.history())
            for x in inputs:
                sm.start({"x": x}, name=f"run-{x}")
        kills = 0
        for _ in range(3):
            time.sleep(rng.uniform(0.3, 1.6))
            assert server.kill9() is not None
            kills += 1
            server.start()
        with Client(server.url) as c:
            deadline = time.monotonic() + 120
            for x in inputs:
                machine = StateMachine("crashy", client=c)
                execution = next(e for e in machine.executions() if e.name == f"run-{x}")
                left = deadline - time.monotonic()
                output = execution.wait(timeout_s=max(1.0, left), raise_on_failure=False)
                desc = execution.describe()
                assert desc["status"] == "SUCCEEDED", f"seed {seed}: run-{x}: {json.dumps(desc)[:600]}"
                assert output == _expected(x), f"seed {seed}: run-{x}"
                history = execution.history()
                assert [e["id"] for e in history] == list(range(1, len(history) + 1)), f"seed {seed}: run-{x} ids"
                assert _transitions(history) == ref_transitions, f"seed {seed}: run-{x} transitions differ"
        assert kills == 3
        # At-least-once work: every Task of every execution ran, some perhaps twice around a kill.
        ran = collections.Counter(line.split()[0] for line in calls.read_text().splitlines())
        per_execution = {"one": 1, "map": 4, "left": 1}
        for tag, n in per_execution.items():
            assert ran[tag] >= n * (len(inputs) + 1), f"seed {seed}: {tag} ran {ran[tag]} times"
    finally:
        server.kill9()
