"""Map and Parallel: start child frames, collect their results in order, fail or tolerate failures.

Inline iterations write into the parent's history; DISTRIBUTED iterations get their own history (AWS runs
them as child executions) and cannot see the parent's variables. Concurrency is ``MaxConcurrency`` capped
by :attr:`AslLimits.max_map_concurrency`.
"""

from __future__ import annotations

import math
from typing import Any

from kamado.pipelines.asl import dataflow as df
from kamado.pipelines.asl.errors import (
    EXCEED_TOLERATED_FAILURE_THRESHOLD,
    ITEM_READER_FAILED,
    QUERY_EVALUATION_ERROR,
    RESULT_WRITER_FAILED,
    RUNTIME,
    AslError,
)
from kamado.pipelines.asl.history import record_event
from kamado.pipelines.asl.payload import PathNotFound, VariableNotFound, evaluate_template, read_path

Frame = dict[str, Any]

_JSON_TYPES = (
    (dict, "object"),
    (list, "array"),
    (str, "string"),
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return next(name for kind, name in _JSON_TYPES if isinstance(value, kind))


def _items(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> tuple[list[Any], Any]:
    prefix = df.scope(run, frame, None).prefix()
    if jsonata:
        if "Items" not in sdef:
            value = frame["input"]
            if not isinstance(value, list):
                raise AslError(
                    QUERY_EVALUATION_ERROR, f"{prefix}Map state input must be an array but was: {df.dumps(value)}"
                )
            return value, value
        raw = sdef["Items"]
        value = df.jsonata_template(run, frame, raw, df.bindings(run, frame), "Items")
        if not isinstance(value, list):
            text = raw[2:-2].strip() if isinstance(raw, str) else df.dumps(raw)
            raise AslError(
                QUERY_EVALUATION_ERROR,
                f"{prefix}The JSONata expression '{text}' specified for the field 'Items' returned an unexpected "
                f"result type. Expected 'array', but was '{_type_name(value)}' for value: {df.dumps(value)}",
            )
        return value, frame["input"]
    eff = df.effective_input(run, frame, sdef)
    path = sdef.get("ItemsPath", "$")
    try:
        value = read_path(path, df.scope(run, frame, eff), eff, use_value=True)
    except (PathNotFound, VariableNotFound):
        raise AslError(RUNTIME, f"{prefix}Invalid path '{path}' : No results for path: {path}") from None
    if not isinstance(value, list):
        raise AslError(RUNTIME, f"{prefix}Map state input must be an array but was: {df.dumps(value)}")
    return value, eff


def _number(
    run: Any, frame: Frame, sdef: dict[str, Any], field: str, jsonata: bool, *, as_float: bool = False
) -> float | None:
    if field in sdef:
        value = sdef[field]
        if jsonata and isinstance(value, str):
            value = df.jsonata_template(run, frame, value, df.bindings(run, frame), field)
        return df.parse_count(run, frame, value, field, field, as_float=as_float)
    if f"{field}Path" in sdef:
        path = sdef[f"{field}Path"]
        eff = df.effective_input(run, frame, run.sdef(frame))  # *Path fields read the input after InputPath
        try:
            value = read_path(path, df.scope(run, frame, eff), eff, use_value=True)
        except (PathNotFound, VariableNotFound):
            raise AslError(RUNTIME, f"{df.scope(run, frame, None).prefix()}Invalid path '{path}'.") from None
        return df.parse_count(run, frame, value, f"{field}Path", path, as_float=as_float)
    return None


def run_map(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
    prefix = df.scope(run, frame, None).prefix()
    processor = sdef.get("ItemProcessor") or sdef.get("Iterator") or {}
    distributed = (processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"
    if "ItemReader" in sdef:
        raise AslError(
            ITEM_READER_FAILED, f"{prefix}ItemReader is not supported by kamado yet; pass the items in the state input."
        )
    if "ResultWriter" in sdef:
        raise AslError(
            RESULT_WRITER_FAILED,
            f"{prefix}ResultWriter is not supported by kamado yet; remove it to get the results in the state output.",
        )
    items, selector_input = _items(run, frame, sdef, jsonata)
    concurrency = _number(run, frame, sdef, "MaxConcurrency", jsonata)
    if concurrency is not None and concurrency < 0:
        raise AslError(
            RUNTIME, f"{prefix}Expected non-negative integer for MaxConcurrency, got '{int(concurrency)}' instead."
        )
    tol_count = _number(run, frame, sdef, "ToleratedFailureCount", jsonata)
    if tol_count is not None and tol_count < 0:
        raise AslError(RUNTIME, f"{prefix}ToleratedFailureCount cannot be negative.")
    tol_pct = _number(run, frame, sdef, "ToleratedFailurePercentage", jsonata, as_float=True)
    if tol_pct is not None and not 0 <= tol_pct <= 100:
        raise AslError(RUNTIME, f"{prefix}ToleratedFailurePercentage must be between 0 and 100.")
    selector = sdef.get("ItemSelector", sdef.get("Parameters"))
    inputs = []
    for index, item in enumerate(items):
        map_item = {"Index": index, "Value": item}
        if selector is None:
            inputs.append(item)
        elif jsonata:
            binds = df.bindings(run, frame, map_item=map_item)
            inputs.append(df.jsonata_template(run, frame, selector, binds, "ItemSelector"))
        else:
            inputs.append(evaluate_template(selector, df.scope(run, frame, selector_input, map_item)))
    if "ItemBatcher" in sdef:
        inputs = _batches(run, frame, sdef["ItemBatcher"], inputs, jsonata)
    limit = run.interp.limits.max_map_concurrency
    frame["pending"] = {
        "kind": "map",
        "inputs": inputs,
        "results": [None] * len(inputs),
        "next": 0,
        "running": [],
        "finished": 0,
        "failed": 0,
        "max": min(int(concurrency), limit) if concurrency else limit,
        "distributed": distributed,
        "tolerated_count": tol_count,
        "tolerated_pct": tol_pct,
    }
    record_event(run, frame, "MapStateStarted", {"length": len(inputs)})
    if distributed:
        record_event(run, frame, "MapRunStarted", {})
    frame["status"] = "waiting"
    if not inputs:
        _finish(run, frame, [])
    else:
        _launch(run, frame)


def _batches(run: Any, frame: Frame, batcher: dict[str, Any], inputs: list[Any], jsonata: bool) -> list[Any]:
    """Group items into ``{"Items": [...], "BatchInput": ...}`` by count and/or serialised size."""
    if not inputs:
        return []
    size = _number(run, frame, batcher, "MaxItemsPerBatch", jsonata) or len(inputs) or 1
    max_bytes = _number(run, frame, batcher, "MaxInputBytesPerBatch", jsonata)
    batch_input = batcher.get("BatchInput")
    if batch_input is not None and jsonata:
        batch_input = df.jsonata_template(run, frame, batch_input, df.bindings(run, frame), "ItemBatcher/BatchInput")
    elif batch_input is not None:
        batch_input = evaluate_template(
            batch_input, df.scope(run, frame, df.effective_input(run, frame, run.sdef(frame)))
        )
    batches: list[list[Any]] = [[]]
    for item in inputs:
        candidate = [*batches[-1], item]
        too_big = max_bytes is not None and len(df.dumps(candidate).encode()) > max_bytes and batches[-1]
        if len(batches[-1]) >= size or too_big:
            batches.append([item])
        else:
            batches[-1] = candidate
    out = []
    for batch in batches:
        entry: dict[str, Any] = {"Items": batch}
        if batch_input is not None:
            entry["BatchInput"] = batch_input
        out.append(entry)
    return out


def _launch(run: Any, frame: Frame) -> None:
    pending = frame["pending"]
    sub = f"{frame['machine']}/{frame['state']}/p"
    while pending["next"] < len(pending["inputs"]) and len(pending["running"]) < pending["max"]:
        index = pending["next"]
        pending["next"] += 1
        value = pending["inputs"][index]
        if pending["distributed"]:
            history = run.token("child-")
            run.state["histories"][history] = 0
            ctx = dict(
                run.state["context"]["Execution"], Input=value, Id=f"{run.state['context']['Execution']['Id']}/{index}"
            )
            child = run.new_frame(frame, sub, value, history=history, isolated=True, slot=index, execution_ctx=ctx)
            record_event(run, child, "ExecutionStarted", {"input": df.dumps(value)})
        else:
            record_event(run, frame, "MapIterationStarted", {"index": index, "name": frame["state"]})
            child = run.new_frame(frame, sub, value, history=frame["history"], slot=index)
        pending["running"].append(child["id"])


def run_parallel(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
    if jsonata:
        value = frame["input"]
        if "Arguments" in sdef:
            value = df.jsonata_template(run, frame, sdef["Arguments"], df.bindings(run, frame), "Arguments")
    else:
        value = df.effective_input(run, frame, sdef)
        if "Parameters" in sdef:
            value = evaluate_template(sdef["Parameters"], df.scope(run, frame, value))
    branches = sdef.get("Branches") or []
    frame["pending"] = {
        "kind": "parallel",
        "results": [None] * len(branches),
        "running": [],
        "finished": 0,
        "failed": 0,
        "distributed": False,
    }
    record_event(run, frame, "ParallelStateStarted", {})
    frame["status"] = "waiting"
    for i in range(len(branches)):
        child = run.new_frame(
            frame, f"{frame['machine']}/{frame['state']}/{i}", value, history=frame["history"], slot=i
        )
        frame["pending"]["running"].append(child["id"])


def child_done(run: Any, child: Frame, output: Any) -> None:
    parent = run.state["frames"][child["parent"]]
    del run.state["frames"][child["id"]]
    pending = parent["pending"]
    pending["running"].remove(child["id"])
    pending["results"][child["slot"]] = output
    pending["finished"] += 1
    if pending["distributed"]:
        record_event(run, child, "ExecutionSucceeded", {"output": df.dumps(output)})
    if pending["kind"] == "map" and not pending["distributed"]:
        record_event(run, parent, "MapIterationSucceeded", {"index": child["slot"], "name": parent["state"]})
    _maybe_finish(run, parent)


def child_failed(run: Any, child: Frame, error: str | None, cause: str | None) -> None:
    parent = run.state["frames"][child["parent"]]
    del run.state["frames"][child["id"]]
    pending = parent["pending"]
    pending["running"].remove(child["id"])
    pending["finished"] += 1
    pending["failed"] += 1
    if pending["distributed"]:
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        record_event(run, child, "ExecutionFailed", details)
    if pending["kind"] == "map" and pending["distributed"]:
        total = len(pending["inputs"])
        pending["results"][child["slot"]] = {"Error": error, "Cause": cause}
        count, pct = pending["tolerated_count"], pending["tolerated_pct"]
        breached = [
            count is not None and pending["failed"] > count,
            pct is not None and pending["failed"] * 100.0 / total > pct,
            count is None and pct is None,
        ]
        if any(breached):
            _abort_children(run, parent)
            record_event(run, parent, "MapRunFailed", {})
            _fail(
                run,
                parent,
                EXCEED_TOLERATED_FAILURE_THRESHOLD,
                "The specified tolerated failure threshold was exceeded",
            )
            return
        _maybe_finish(run, parent)
        return
    if pending["kind"] == "map":
        record_event(run, parent, "MapIterationFailed", {"index": child["slot"], "name": parent["state"]})
    _abort_children(run, parent)
    kind = "MapStateFailed" if pending["kind"] == "map" else "ParallelStateFailed"
    record_event(run, parent, kind, {})
    _fail(run, parent, error, cause)


def _fail(run: Any, frame: Frame, error: str | None, cause: str | None) -> None:
    frame["status"] = "run"
    frame["pending"] = None
    run.on_error(frame, AslError(error, cause))


def _abort_children(run: Any, frame: Frame) -> None:
    from kamado.pipelines.asl.waits import clear_frame_waits

    for fid in list(frame["pending"]["running"]):
        child = run.state["frames"].get(fid)
        if child is None:
            continue
        if child.get("pending") and child["pending"].get("running"):
            _abort_children(run, child)
        clear_frame_waits(run, child)
        del run.state["frames"][fid]
    frame["pending"]["running"] = []


def _maybe_finish(run: Any, frame: Frame) -> None:
    pending = frame["pending"]
    total = len(pending["results"])
    if pending["finished"] < total:
        if pending["kind"] == "map":
            _launch(run, frame)
        return
    _finish(run, frame, pending["results"])


def _finish(run: Any, frame: Frame, results: list[Any]) -> None:
    pending = frame["pending"]
    sdef = run.sdef(frame)
    frame["status"] = "run"
    if pending["kind"] == "map":
        if pending["distributed"]:
            record_event(run, frame, "MapRunSucceeded", {})
        record_event(run, frame, "MapStateSucceeded", {})
    else:
        record_event(run, frame, "ParallelStateSucceeded", {})
    try:
        if run.is_jsonata(frame, sdef):
            output, assigned = df.finish_jsonata(run, frame, sdef, results)
        else:
            output, assigned = df.finish_jsonpath(run, frame, sdef, results)
        run.transition(frame, sdef, output, assigned)
    except AslError as exc:
        run.on_error(frame, exc)


__all__ = ["child_done", "child_failed", "math", "run_map", "run_parallel"]
