"""B13 pipelines: what durability costs a state machine, measured against the same work without it.

Three parts, each interleaved A B A B over repetitions, against a real ``python -m kamado server``:

- **Pass chain**: executions of a 50-state Pass chain, 10 at once. Figure: state transitions per second
  (states entered, end to end through the API and the durable runner). Comparator: the same interpreter
  stepping the same chain in memory, with no store (the ceiling a durable engine gives up).
- **Task overhead**: one execution of a chain of 20 ``lambda:invoke`` Tasks of a no-op function, per Task,
  against invoking the same function 20 times directly through the API (``InvokeFunction``).
- **Map**: an inline Map of 1,000 items, each a Task invoking the no-op function (the interpreter runs at
  most 40 at once), against ``kamado.map`` of the same items on the same function; then once at 10,000
  items (the size the pipelines issue names) as a DISTRIBUTED Map (10,000 inline iterations would pass the
  25,000-event history cap, as on AWS), which takes too long here to repeat five times.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import LocalServer, log, ratio, smoke, summarize, write_result

NAME = "b13_pipelines"
NOOP = "def handler(event, context):\n    return event\n"


def _chain(n: int) -> dict[str, Any]:
    states: dict[str, dict[str, Any]] = {f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(n - 1)}
    states[f"S{n - 1}"] = {"Type": "Pass", "End": True}
    return {"StartAt": "S0", "States": states}


def _task_chain(n: int) -> dict[str, Any]:
    def task(i: int) -> dict[str, Any]:
        state: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "noop", "Payload.$": "$"},
            "OutputPath": "$.Payload",
        }
        return {**state, "Next": f"T{i + 1}"} if i < n - 1 else {**state, "End": True}

    return {"StartAt": "T0", "States": {f"T{i}": task(i) for i in range(n)}}


def _map(concurrency: int, mode: str = "INLINE") -> dict[str, Any]:
    inner = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "noop", "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": concurrency,
                "ItemProcessor": {"ProcessorConfig": {"Mode": mode}, "StartAt": "Call", "States": {"Call": inner}},
                "End": True,
            }
        },
    }


def _in_memory_chain(definition: dict[str, Any], executions: int) -> float:
    """Seconds to step ``executions`` runs of the chain through the interpreter alone."""
    from kamado.pipelines.asl import Interpreter, new_execution

    interp = Interpreter(definition)
    t0 = time.perf_counter()
    for i in range(executions):
        state = new_execution({"i": i})
        state, _actions = interp.step(state, {"type": "ExecutionStarted", "now": 0.0})
        assert state["status"] == "SUCCEEDED", state["status"]
    return time.perf_counter() - t0


def _run_all(client: Any, machine: str, inputs: list[Any], timeout: float = 600.0) -> float:
    from kamado.sdk.pipelines import StateMachine

    sm = StateMachine(machine, client=client)
    t0 = time.perf_counter()
    runs = [sm.start(x) for x in inputs]
    for r in runs:
        r.wait(timeout_s=timeout, poll_s=0.02)
    return time.perf_counter() - t0


def run() -> tuple[Path, dict[str, Any]]:
    from kamado.sdk.client import Client
    from kamado.sdk.functions import map as kamado_map
    from kamado.sdk.pipelines import StateMachine

    started = time.monotonic()
    tiny = smoke()
    reps = 2 if tiny else 5
    chain_len, concurrent = (10, 2) if tiny else (50, 10)
    tasks = 3 if tiny else 20
    items = 50 if tiny else 1000
    figures: dict[str, list[float]] = {"chain_tps": [], "task_ms": [], "map_items_per_s": []}
    floors: dict[str, list[float]] = {"chain_tps": [], "task_ms": [], "map_items_per_s": []}
    with tempfile.TemporaryDirectory(prefix="kamado-b13-") as tmp, LocalServer(Path(tmp) / "home") as srv:
        src = Path(tmp) / "fn"
        src.mkdir()
        (src / "app.py").write_text(NOOP)
        with Client(srv.url) as c:
            c.create_function(
                {"FunctionName": "noop", "Handler": "app.handler", "Code": {"Uri": c.upload_directory(src)}}
            )
            StateMachine.create("chain", _chain(chain_len), client=c)
            StateMachine.create("tasks", _task_chain(tasks), client=c)
            StateMachine.create("fan", _map(40), client=c)
            # 10,000 inline iterations would pass the 25,000-event history cap (as on AWS): DISTRIBUTED keeps
            # each iteration's events in its own child history.
            StateMachine.create("fan-distributed", _map(40, "DISTRIBUTED"), client=c)
            log(f"{NAME}: warm-up")
            _run_all(c, "chain", [{}])
            _run_all(c, "tasks", [{"x": 1}])
            for _ in range(3):
                c.invoke_function("noop", {"x": 1})
            for rep in range(reps):
                wall = _run_all(c, "chain", [{"i": i} for i in range(concurrent)])
                figures["chain_tps"].append(chain_len * concurrent / wall)
                floors["chain_tps"].append(chain_len * concurrent / _in_memory_chain(_chain(chain_len), concurrent))

                wall = _run_all(c, "tasks", [{"x": 1}])
                figures["task_ms"].append(wall / tasks * 1000)
                t0 = time.perf_counter()
                for _ in range(tasks):
                    c.invoke_function("noop", {"x": 1})
                floors["task_ms"].append((time.perf_counter() - t0) / tasks * 1000)

                wall = _run_all(c, "fan", [{"items": [{"x": i} for i in range(items)]}])
                figures["map_items_per_s"].append(items / wall)
                t0 = time.perf_counter()
                kamado_map("noop", [{"x": i} for i in range(items)], client=c).wait(poll_s=0.02, timeout_s=600)
                floors["map_items_per_s"].append(items / (time.perf_counter() - t0))
                log(
                    f"{NAME}: rep {rep + 1}/{reps}: chain {figures['chain_tps'][-1]:.0f} transitions/s "
                    f"(in memory {floors['chain_tps'][-1]:.0f}); task {figures['task_ms'][-1]:.1f} ms "
                    f"(direct {floors['task_ms'][-1]:.1f}); map {figures['map_items_per_s'][-1]:.0f} items/s "
                    f"(kamado.map {floors['map_items_per_s'][-1]:.0f})"
                )
            # The size once (each side takes a minute or more here, so not five times).
            big = 200 if tiny else 10_000
            wall = _run_all(c, "fan-distributed", [{"items": [{"x": i} for i in range(big)]}], timeout=1800)
            t0 = time.perf_counter()
            kamado_map("noop", [{"x": i} for i in range(big)], client=c).wait(poll_s=0.05, timeout_s=1800)
            big_pair = {
                "items": big,
                "mode": "DISTRIBUTED",
                "map_state_s": round(wall, 2),
                "kamado_map_s": round(time.perf_counter() - t0, 2),
            }
            log(
                f"{NAME}: {big} items once: DISTRIBUTED Map {big_pair['map_state_s']} s, "
                f"kamado.map {big_pair['kamado_map_s']} s"
            )
    fig: dict[str, Any] = {
        "pass_chain": {"states": chain_len, "concurrent_executions": concurrent,
                       "transitions_per_s": summarize(figures["chain_tps"], 1)},
        "task": {"tasks_per_execution": tasks, "ms_per_task": summarize(figures["task_ms"], 2)},
        "map": {"items": items, "items_per_s": summarize(figures["map_items_per_s"], 1)},
    }  # fmt: skip
    comp: dict[str, Any] = {
        "pass_chain": {"name": "the interpreter in memory, no store",
                       "transitions_per_s": summarize(floors["chain_tps"], 1)},
        "task": {"name": "InvokeFunction over the API, sequential", "ms_per_task": summarize(floors["task_ms"], 2)},
        "map": {"name": "kamado.map of the same items", "items_per_s": summarize(floors["map_items_per_s"], 1)},
    }  # fmt: skip
    task_overhead = fig["task"]["ms_per_task"]["p50"] - comp["task"]["ms_per_task"]["p50"]
    ratios: dict[str, Any] = {
        "pass_chain": ratio(
            fig["pass_chain"]["transitions_per_s"]["p50"], comp["pass_chain"]["transitions_per_s"]["p50"]
        ),
        "task": ratio(comp["task"]["ms_per_task"]["p50"], fig["task"]["ms_per_task"]["p50"]),
        "map": ratio(fig["map"]["items_per_s"]["p50"], comp["map"]["items_per_s"]["p50"]),
        "meaning": (
            "durable/in-memory transitions per s; direct/pipeline time per Task; inline Map/kamado.map items per s"
        ),
    }  # fmt: skip
    data = {
        "figures": {**fig, "task_overhead_ms_p50": round(task_overhead, 2), "map_once_at_full_size": big_pair},
        "comparator": comp,
        "ratio": ratios,
        "goal": {"note": "no goal set in PERFORMANCE.md; reported for the pipelines issue", "met": None},
    }
    path = write_result(NAME, data, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    print(json.dumps(run()[1], indent=2))
