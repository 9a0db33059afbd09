"""Everything that waits on the outside world: Task invocations, Wait timers, Retry back-off, timeouts.

Each wait is an entry in ``state["waits"]`` keyed by a token or timer id, so a late or duplicate event for
something already handled finds nothing and is ignored.
"""

from __future__ import annotations

import math
from typing import Any

from kamado.pipelines.asl import dataflow as df
from kamado.pipelines.asl.choice import parse_timestamp
from kamado.pipelines.asl.errors import QUERY_EVALUATION_ERROR, RUNTIME, TIMEOUT, AslError, error_matches
from kamado.pipelines.asl.history import check_size, record_event
from kamado.pipelines.asl.payload import PathNotFound, VariableNotFound, evaluate_template, read_path

Frame = dict[str, Any]


def start_timer(run: Any, frame: Frame, delay: float, kind: str) -> str:
    timer_id = run.token("timer-")
    run.state["waits"][timer_id] = {"frame": frame["id"], "kind": kind}
    run.actions.append({"type": "StartTimer", "timer_id": timer_id, "fire_at": run.state["now"] + delay})
    return timer_id


def clear_frame_waits(run: Any, frame: Frame) -> None:
    """Cancel whatever ``frame`` waits for (its task and timers)."""
    for key, wait in list(run.state["waits"].items()):
        if wait["frame"] != frame["id"]:
            continue
        del run.state["waits"][key]
        if wait["kind"] == "task":
            run.actions.append({"type": "CancelTask", "token": key})
        else:
            run.actions.append({"type": "CancelTimer", "timer_id": key})


def on_event(run: Any, event: dict[str, Any]) -> None:
    key = event.get("timer_id") if event["type"] == "TimerFired" else event.get("token")
    wait = run.state["waits"].get(key)
    if wait is None:
        return
    if wait["kind"] == "execution_timeout":
        del run.state["waits"][key]
        run.time_out()
        return
    frame = run.state["frames"].get(wait["frame"])
    if frame is None:
        del run.state["waits"][key]
        return
    kind = event["type"]
    if kind == "TaskStarted":
        _mark_started(run, frame)
        return
    if kind == "TaskHeartbeat":
        for tid, w in list(run.state["waits"].items()):
            if w["frame"] == frame["id"] and w["kind"] == "heartbeat":
                del run.state["waits"][tid]
                run.actions.append({"type": "CancelTimer", "timer_id": tid})
                start_timer(run, frame, frame["pending"]["heartbeat"], "heartbeat")
        return
    del run.state["waits"][key]
    try:
        if kind == "TimerFired" and wait["kind"] == "wait":
            frame["pending"] = {"waited": True}
            frame["status"] = "run"
        elif kind == "TimerFired" and wait["kind"] == "retry":
            frame.update(status="run", pending=None)
        elif kind == "TimerFired":  # task timeout or missed heartbeat
            clear_frame_waits(run, frame)
            record_event(run, frame, "TaskTimedOut", {"error": TIMEOUT})
            raise AslError(TIMEOUT, None)
        elif kind == "TaskSucceeded":
            clear_frame_waits(run, frame)
            _mark_started(run, frame)
            _task_succeeded(run, frame, event.get("output"))
        elif kind == "TaskFailed":
            clear_frame_waits(run, frame)
            _mark_started(run, frame)
            record_event(run, frame, "TaskFailed", {"error": event.get("error"), "cause": event.get("cause")})
            raise AslError(event.get("error"), event.get("cause"))
    except AslError as exc:
        frame["status"] = "run"
        run.on_error(frame, exc)


# ------------------------------------------------------------------------------------------------ Task


def _seconds(run: Any, frame: Frame, sdef: dict[str, Any], field: str, jsonata: bool) -> int | None:
    if field in sdef:
        value = sdef[field]
        if jsonata:
            value = df.jsonata_template(run, frame, value, df.bindings(run, frame), field)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise AslError(
                RUNTIME if not jsonata else QUERY_EVALUATION_ERROR,
                f"{df.scope(run, frame, None).prefix()}{field} must be a positive integer, got {value!r}.",
            )
        return int(value)
    if f"{field}Path" in sdef:
        path = sdef[f"{field}Path"]
        eff = df.effective_input(run, frame, sdef)
        try:
            value = read_path(path, df.scope(run, frame, eff), eff, use_value=True)
        except (PathNotFound, VariableNotFound):
            raise AslError(RUNTIME, f"{df.scope(run, frame, None).prefix()}Invalid path '{path}'.") from None
        return int(df.parse_count(run, frame, value, f"{field}Path", path))
    return None


def run_task(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
    token = run.token("task-")
    frame["task_token"] = token
    if jsonata:
        payload = frame["input"]
        if "Arguments" in sdef:
            payload = df.jsonata_template(run, frame, sdef["Arguments"], df.bindings(run, frame), "Arguments")
    else:
        payload = df.effective_input(run, frame, sdef)
        if "Parameters" in sdef:
            payload = evaluate_template(sdef["Parameters"], df.scope(run, frame, payload))
    check_size(run, payload, f"input to task '{frame['state']}'")
    timeout = _seconds(run, frame, sdef, "TimeoutSeconds", jsonata)
    heartbeat = _seconds(run, frame, sdef, "HeartbeatSeconds", jsonata)
    record_event(
        run,
        frame,
        "TaskScheduled",
        {
            "resource": sdef.get("Resource"),
            "parameters": df.dumps(payload),
            "timeoutInSeconds": timeout,
            "heartbeatInSeconds": heartbeat,
        },
    )
    run.state["waits"][token] = {"frame": frame["id"], "kind": "task"}
    frame["pending"] = {"heartbeat": heartbeat, "started": False, "resource": sdef.get("Resource")}
    frame["status"] = "waiting"
    run.actions.append(
        {
            "type": "InvokeTask",
            "token": token,
            "resource": sdef.get("Resource"),
            "payload": payload,
            "timeout_seconds": timeout,
            "heartbeat_seconds": heartbeat,
            "state": frame["state"],
            "attempt": frame["retry_count"],
        }
    )
    if timeout:
        start_timer(run, frame, timeout, "timeout")
    if heartbeat:
        start_timer(run, frame, heartbeat, "heartbeat")


def _mark_started(run: Any, frame: Frame) -> None:
    """Record ``TaskStarted`` once per attempt: when the runner reports it, or at the latest with the outcome."""
    pending = frame.get("pending") or {}
    if pending.get("started") is False:
        pending["started"] = True
        record_event(run, frame, "TaskStarted", {"resource": pending.get("resource")})


def _task_succeeded(run: Any, frame: Frame, result: Any) -> None:
    sdef = run.sdef(frame)
    record_event(run, frame, "TaskSucceeded", {"output": df.dumps(result)})
    check_size(run, result, f"result of task '{frame['state']}'")
    frame["status"] = "run"
    if run.is_jsonata(frame, sdef):
        output, assigned = df.finish_jsonata(run, frame, sdef, result)
    else:
        output, assigned = df.finish_jsonpath(run, frame, sdef, result)
    run.transition(frame, sdef, output, assigned)


# ------------------------------------------------------------------------------------------------ Retry


def try_retry(run: Any, frame: Frame, sdef: dict[str, Any], exc: AslError) -> bool:
    """Schedule a retry if the first matching retrier has attempts left; AWS counts per retrier."""
    for i, retrier in enumerate(sdef.get("Retry") or []):
        if not error_matches(retrier.get("ErrorEquals") or [], exc.error):
            continue
        count = frame["retries"].get(str(i), 0)
        if count >= retrier.get("MaxAttempts", 3):
            return False
        frame["retries"][str(i)] = count + 1
        frame["retry_count"] += 1
        clear_frame_waits(run, frame)
        start_timer(run, frame, retry_delay(retrier, count, run.rng()), "retry")
        frame["status"] = "waiting"
        return True
    return False


def retry_delay(retrier: dict[str, Any], count: int, rng: Any) -> float:
    """Seconds before retry number ``count + 1``: interval x rate^count, capped, optionally FULL jitter."""
    delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** count
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, float(retrier["MaxDelaySeconds"]))
    if retrier.get("JitterStrategy") == "FULL":
        delay = rng.uniform(0, delay)
    return delay


# ------------------------------------------------------------------------------------------------ Wait


def run_wait(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
    if not (frame["pending"] or {}).get("waited"):
        fire_at = _fire_at(run, frame, sdef, jsonata)
        delay = fire_at - run.state["now"]
        if delay > 0:
            start_timer(run, frame, delay, "wait")
            frame["status"] = "waiting"
            return
    if jsonata:
        output, assigned = df.finish_jsonata(run, frame, sdef, None, has_result=False)
    else:
        eff = df.effective_input(run, frame, sdef)
        assigned = df.compute_assign(run, frame, sdef.get("Assign"), jsonata=False, value=eff)
        output = df.output_path(run, frame, sdef, eff)
    run.transition(frame, sdef, output, assigned)


def _fire_at(run: Any, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> float:
    prefix = df.scope(run, frame, None).prefix()
    now = run.state["now"]
    if jsonata:
        binds = df.bindings(run, frame)
        if "Seconds" in sdef:
            value = df.jsonata_template(run, frame, sdef["Seconds"], binds, "Seconds")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise AslError(QUERY_EVALUATION_ERROR, f"{prefix}The Seconds field must be a non-negative integer.")
            return now + float(value)
        value = df.jsonata_template(run, frame, sdef.get("Timestamp"), binds, "Timestamp")
        ts = parse_timestamp(value)
        if ts is None:
            raise AslError(
                QUERY_EVALUATION_ERROR,
                f"{prefix}The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
                f"string: {value}",
            )
        return ts.timestamp()
    if "Seconds" in sdef:
        return now + float(sdef["Seconds"])
    if "Timestamp" in sdef:
        ts = parse_timestamp(sdef["Timestamp"])
        return ts.timestamp() if ts else now
    eff = df.effective_input(run, frame, sdef)
    scope = df.scope(run, frame, eff)
    field = "SecondsPath" if "SecondsPath" in sdef else "TimestampPath"
    path = sdef[field]
    try:
        value = read_path(path, scope, eff, use_value=True)
    except (PathNotFound, VariableNotFound):
        raise AslError(RUNTIME, f"{prefix}Invalid path '{path}' : No results for path: {path}") from None
    if field == "SecondsPath":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())
        ):
            raise AslError(
                RUNTIME, f"{prefix}The SecondsPath parameter cannot be parsed as a long value: {path} == {_show(value)}"
            )
        if value < 0:
            raise AslError(
                RUNTIME, f"{prefix}The SecondsPath parameter references a negative value: {path} == {_show(value)}"
            )
        return now + float(value)
    ts = parse_timestamp(value)
    if ts is None:
        raise AslError(
            RUNTIME,
            f"{prefix}The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time "
            f"format string: {path} == {_show(value)}",
        )
    return ts.timestamp()


def _show(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else df.dumps(value)
