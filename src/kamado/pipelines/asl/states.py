"""One interpreter step: route an event, then run every ready frame until each waits or finishes.

The handlers follow the ASL processing order for each state type; Map and Parallel live in
:mod:`.fanout`, the data-flow helpers in :mod:`.dataflow`. Everything mutates only ``self.state`` (a deep
copy made by :meth:`Interpreter.step`) and appends to ``self.actions``.
"""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from kamado.pipelines.asl import dataflow as df
from kamado.pipelines.asl import fanout, waits
from kamado.pipelines.asl.choice import evaluate_rule
from kamado.pipelines.asl.errors import NO_CHOICE_MATCHED, QUERY_EVALUATION_ERROR, AslError, error_matches
from kamado.pipelines.asl.history import LazyRandom, check_size, record_event
from kamado.pipelines.asl.payload import evaluate_template, evaluate_value

if TYPE_CHECKING:
    from kamado.pipelines.asl.interpreter import Interpreter

Frame = dict[str, Any]
_RUNNABLE = ("enter", "run")
_FINISHED = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT")


def iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Step:
    """The work of one :meth:`Interpreter.step` call."""

    def __init__(self, interp: Interpreter, state: dict[str, Any]) -> None:
        self.interp = interp
        self.state = state
        self.actions: list[dict[str, Any]] = []

    def rng(self) -> random.Random:
        return cast(random.Random, LazyRandom(self.state))

    def token(self, prefix: str) -> str:
        self.state["tokens"] += 1
        return f"{prefix}{self.state['tokens']}"

    # ------------------------------------------------------------------------------------ events

    def handle(self, event: dict[str, Any]) -> None:
        self.state["now"] = float(event.get("now", self.state["now"]))
        if self.state["status"] in _FINISHED:
            return
        kind = event.get("type")
        try:
            if kind == "ExecutionStarted":
                if self.state["status"] != "PENDING":
                    return
                self._start()
            elif kind == "ExecutionAborted":
                self._abort(event.get("cause"))
                return
            elif kind in ("TaskStarted", "TaskSucceeded", "TaskFailed", "TaskHeartbeat", "TimerFired"):
                waits.on_event(self, event)
            else:
                raise ValueError(f"unknown event type {kind!r}")
            self._drain()
        except AslError as exc:  # caps (history length) tripping outside a state
            self.fail_execution(exc.error, exc.cause)

    def _start(self) -> None:
        self.state["status"] = "RUNNING"
        ctx = self.state["context"]["Execution"]
        record_event(self, None, "ExecutionStarted", {"input": df.dumps(ctx["Input"]), "roleArn": ctx["RoleArn"]})
        check_size(self, ctx["Input"], "execution input")
        self.new_frame(None, "", ctx["Input"], history="")  # the drain loop picks it up
        timeout = self.interp.definition.get("TimeoutSeconds")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            timer_id = self.token("timer-")
            self.state["waits"][timer_id] = {"frame": "", "kind": "execution_timeout"}
            self.actions.append({"type": "StartTimer", "timer_id": timer_id, "fire_at": self.state["now"] + timeout})

    def new_frame(
        self,
        parent: Frame | None,
        machine: str,
        value: Any,
        *,
        history: str,
        isolated: bool = False,
        slot: int = 0,
        execution_ctx: dict[str, Any] | None = None,
    ) -> Frame:
        fid = self.token("f")
        frame: Frame = {
            "id": fid,
            "parent": parent["id"] if parent else None,
            "machine": machine,
            "state": self.interp.machine(machine)["StartAt"],
            "input": value,
            "vars": {},
            "status": "enter",
            "entered": 0,
            "entered_time": iso(self.state["now"]),
            "retry_count": 0,
            "retries": {},
            "history": history,
            "isolated": isolated,
            "slot": slot,
            "pending": None,
            "task_token": None,
            "execution_ctx": execution_ctx,
        }
        self.state["frames"][fid] = frame
        return frame

    def _drain(self) -> None:
        frames = self.state["frames"]
        while self.state["status"] == "RUNNING":
            ready = [f for f in frames.values() if f["status"] in _RUNNABLE]
            if not ready:
                return
            self.run_frame(min(ready, key=lambda f: int(f["id"][1:])))

    # ------------------------------------------------------------------------------------ states

    def sdef(self, frame: Frame) -> dict[str, Any]:
        return dict(self.interp.machine(frame["machine"])["States"][frame["state"]])

    def is_jsonata(self, frame: Frame, sdef: dict[str, Any]) -> bool:
        return self.interp.language(frame["machine"], sdef) == "JSONata"

    def run_frame(self, frame: Frame) -> None:
        sdef = self.sdef(frame)
        try:
            if frame["status"] == "enter":
                frame.update(retry_count=0, retries={}, pending=None, entered_time=iso(self.state["now"]))
                kind = "FailStateEntered" if sdef["Type"] == "Fail" else f"{sdef['Type']}StateEntered"
                frame["entered"] = record_event(
                    self, frame, kind, {"name": frame["state"], "input": df.dumps(frame["input"])}
                )
                frame["status"] = "run"
            handler = getattr(self, f"_run_{sdef['Type'].lower()}")
            handler(frame, sdef, self.is_jsonata(frame, sdef))
        except AslError as exc:
            self.on_error(frame, exc)

    def transition(self, frame: Frame, sdef: dict[str, Any], output: Any, assigned: dict[str, Any]) -> None:
        check_size(self, output, f"output of state '{frame['state']}'")
        if assigned:
            check_size(self, assigned, f"Assign block of state '{frame['state']}'")
        df.apply_assign(frame, assigned)
        record_event(self, frame, f"{sdef['Type']}StateExited", {"name": frame["state"], "output": df.dumps(output)})
        frame["pending"] = None
        if sdef.get("End") or sdef["Type"] == "Succeed":
            self.frame_done(frame, output)
        else:
            frame.update(state=sdef["Next"], input=output, status="enter")

    def _run_pass(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        if jsonata:
            output, assigned = df.finish_jsonata(self, frame, sdef, None, has_result=False)
        else:
            eff = df.effective_input(self, frame, sdef)
            if "Parameters" in sdef:
                eff = evaluate_template(sdef["Parameters"], df.scope(self, frame, eff))
            result = sdef.get("Result", eff)
            assigned = df.compute_assign(self, frame, sdef.get("Assign"), jsonata=False, value=result)
            merged = df.apply_result_path(self, frame, sdef, frame["input"], result)
            output = df.output_path(self, frame, sdef, merged)
        self.transition(frame, sdef, output, assigned)

    def _run_succeed(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        if jsonata:
            output, assigned = df.finish_jsonata(self, frame, sdef, None, has_result=False)
        else:
            output, assigned = df.output_path(self, frame, sdef, df.effective_input(self, frame, sdef)), {}
        self.transition(frame, sdef, output, assigned)

    def _run_fail(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        values: dict[str, Any] = {}
        for field in ("Error", "Cause"):
            if jsonata and field in sdef:
                binds = df.bindings(self, frame)
                values[field] = df.jsonata_template(self, frame, sdef[field], binds, field)
            elif field in sdef:
                values[field] = sdef[field]
            elif f"{field}Path" in sdef:
                scope = df.scope(self, frame, frame["input"])
                values[field] = evaluate_value(sdef[f"{field}Path"], scope, f"{field}Path")
            else:
                values[field] = None
        self.fail_frame(frame, values["Error"], values["Cause"])

    def _run_choice(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        if jsonata:
            binds = df.bindings(self, frame)
            for i, rule in enumerate(sdef.get("Choices") or []):
                cond = df.jsonata_template(self, frame, rule.get("Condition"), binds, f"Choices[{i}]/Condition")
                if not isinstance(cond, bool):
                    raise AslError(
                        QUERY_EVALUATION_ERROR,
                        f"An error occurred while executing the state '{frame['state']}' (entered at the event id "
                        f"#{frame['entered']}). The Condition must evaluate to a boolean, got {df.dumps(cond)}.",
                    )
                if cond:
                    return self._choose(frame, sdef, rule["Next"], rule, binds, rule_assign=rule)
            return self._choose(frame, sdef, self._default(frame, sdef), sdef, binds, rule_assign=sdef)
        eff = df.effective_input(self, frame, sdef)
        scope = df.scope(self, frame, eff)
        # A matching rule applies its own Assign; the state-level Assign goes with the Default transition.
        matched = next((rule for rule in sdef.get("Choices") or [] if evaluate_rule(rule, scope, eff)), None)
        target = matched["Next"] if matched else self._default(frame, sdef)
        assign = matched.get("Assign") if matched else sdef.get("Assign")
        assigned = df.compute_assign(self, frame, assign, jsonata=False, value=eff)
        self._go(frame, sdef, target, df.output_path(self, frame, sdef, eff), assigned)

    def _default(self, frame: Frame, sdef: dict[str, Any]) -> str:
        if "Default" not in sdef:
            raise AslError(
                NO_CHOICE_MATCHED,
                f"{df.scope(self, frame, None).prefix()}Failed to transition out of the state. "
                "The state does not point to a next state.",
            )
        return str(sdef["Default"])

    def _choose(
        self,
        frame: Frame,
        sdef: dict[str, Any],
        target: str,
        fields: dict[str, Any],
        binds: dict[str, Any],
        *,
        rule_assign: dict[str, Any],
    ) -> None:
        assigned = df.compute_assign(self, frame, rule_assign.get("Assign"), jsonata=True, binds=binds)
        output = (
            df.jsonata_template(self, frame, fields["Output"], binds, "Output")
            if "Output" in fields
            else frame["input"]
        )
        self._go(frame, sdef, target, output, assigned)

    def _go(self, frame: Frame, sdef: dict[str, Any], target: str, output: Any, assigned: dict[str, Any]) -> None:
        self.transition(frame, {**sdef, "Next": target, "End": False}, output, assigned)

    def _run_wait(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        waits.run_wait(self, frame, sdef, jsonata)

    def _run_task(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        waits.run_task(self, frame, sdef, jsonata)

    def _run_map(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        fanout.run_map(self, frame, sdef, jsonata)

    def _run_parallel(self, frame: Frame, sdef: dict[str, Any], jsonata: bool) -> None:
        fanout.run_parallel(self, frame, sdef, jsonata)

    # ------------------------------------------------------------------------------------ errors

    def on_error(self, frame: Frame, exc: AslError) -> None:
        """Retry, then Catch, then fail the frame (Retry/Catch exist on Task, Parallel and Map only)."""
        sdef = self.sdef(frame)
        if sdef["Type"] in ("Task", "Parallel", "Map") and frame["status"] != "failed":
            if waits.try_retry(self, frame, sdef, exc):
                return
            for catcher in sdef.get("Catch") or []:
                if error_matches(catcher.get("ErrorEquals") or [], exc.error):
                    try:
                        self._catch(frame, sdef, catcher, exc)
                    except AslError as inner:
                        self.fail_frame(frame, inner.error, inner.cause)
                    return
        self.fail_frame(frame, exc.error, exc.cause)

    def _catch(self, frame: Frame, sdef: dict[str, Any], catcher: dict[str, Any], exc: AslError) -> None:
        error_output = {"Error": exc.error, "Cause": exc.cause}
        if self.is_jsonata(frame, sdef):
            binds = df.bindings(self, frame, error_output=error_output)
            assigned = df.compute_assign(self, frame, catcher.get("Assign"), jsonata=True, binds=binds)
            output = (
                df.jsonata_template(self, frame, catcher["Output"], binds, "Output")
                if "Output" in catcher
                else error_output
            )
        else:
            assigned = df.compute_assign(self, frame, catcher.get("Assign"), jsonata=False, value=error_output)
            output = df.apply_result_path(self, frame, catcher, frame["input"], error_output)
        waits.clear_frame_waits(self, frame)
        self.transition(frame, {**sdef, "Next": catcher["Next"], "End": False}, output, assigned)

    # ------------------------------------------------------------------------------------ endings

    def frame_done(self, frame: Frame, output: Any) -> None:
        frame["status"] = "done"
        if frame["parent"] is None:
            self.end_all()
            record_event(self, None, "ExecutionSucceeded", {"output": df.dumps(output)})
            self.state.update(status="SUCCEEDED", output=output)
            self.actions.append({"type": "ExecutionSucceeded", "output": output})
        else:
            fanout.child_done(self, frame, output)

    def fail_frame(self, frame: Frame, error: str | None, cause: str | None) -> None:
        frame["status"] = "failed"
        waits.clear_frame_waits(self, frame)
        if frame["parent"] is None:
            self.fail_execution(error, cause)
        else:
            fanout.child_failed(self, frame, error, cause)

    def fail_execution(self, error: str | None, cause: str | None) -> None:
        self.end_all()
        details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
        self.state.update(status="FAILED", error=error, cause=cause)
        with contextlib.suppress(AslError):  # the history cap must not stop the execution from ending
            record_event(self, None, "ExecutionFailed", details)
        self.actions.append({"type": "ExecutionFailed", "error": error, "cause": cause})

    def end_all(self) -> None:
        """Cancel every outstanding task and timer (the execution is ending) and drop all frames."""
        for key, wait in sorted(self.state["waits"].items()):
            kind = "CancelTask" if wait["kind"] == "task" else "CancelTimer"
            self.actions.append({"type": kind, ("token" if kind == "CancelTask" else "timer_id"): key})
        self.state["waits"] = {}
        self.state["frames"] = {}

    def time_out(self) -> None:
        """The definition's top-level TimeoutSeconds passed: the execution ends TIMED_OUT."""
        self.end_all()
        cause = "The execution ran longer than the state machine's TimeoutSeconds."
        with contextlib.suppress(AslError):
            record_event(self, None, "ExecutionTimedOut", {"error": "States.Timeout", "cause": cause})
        self.state.update(status="TIMED_OUT", error="States.Timeout", cause=cause)
        self.actions.append({"type": "ExecutionTimedOut", "error": "States.Timeout", "cause": cause})

    def _abort(self, cause: str | None) -> None:
        self.end_all()
        record_event(self, None, "ExecutionAborted", {"cause": cause} if cause else {})
        self.state.update(status="ABORTED", error="States.Aborted", cause=cause)
        self.actions.append({"type": "ExecutionAborted"})
