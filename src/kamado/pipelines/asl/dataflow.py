"""Per-state data flow in both query languages: scopes, variables, templates, ResultPath/Output.

These helpers take the running :class:`~kamado.pipelines.asl.states.Step` and a frame (one running
(sub)machine) so the state handlers stay short and read like the ASL spec's processing order.
"""

from __future__ import annotations

from typing import Any

from kamado.pipelines.asl import jsonata_eval
from kamado.pipelines.asl.errors import RESULT_PATH_MATCH_FAILURE, RUNTIME, AslError
from kamado.pipelines.asl.jsonpath import JsonPathSyntaxError, PathNotFound, compile_path
from kamado.pipelines.asl.payload import Scope, VariableNotFound, apply_input_path, dumps, evaluate_template

Frame = dict[str, Any]


def lookup_var(run: Any, frame: Frame, name: str) -> Any:
    current: Frame | None = frame
    while current is not None:
        if name in current["vars"]:
            return current["vars"][name]
        if current.get("isolated"):
            break
        parent = current.get("parent")
        current = run.state["frames"].get(parent) if parent else None
    raise VariableNotFound(name)


def visible_vars(run: Any, frame: Frame) -> dict[str, Any]:
    chain: list[Frame] = []
    current: Frame | None = frame
    while current is not None:
        chain.append(current)
        if current.get("isolated"):
            break
        parent = current.get("parent")
        current = run.state["frames"].get(parent) if parent else None
    out: dict[str, Any] = {}
    for f in reversed(chain):
        out.update(f["vars"])
    return out


def context_object(run: Any, frame: Frame, map_item: dict[str, Any] | None = None) -> dict[str, Any]:
    ctx = dict(run.state["context"])
    if frame.get("execution_ctx"):
        ctx["Execution"] = frame["execution_ctx"]
    ctx["State"] = {"EnteredTime": frame["entered_time"], "Name": frame["state"]}
    if run.sdef(frame).get("Type") in ("Task", "Parallel", "Map"):  # AWS shows RetryCount only where Retry exists
        ctx["State"]["RetryCount"] = frame["retry_count"]
    if frame.get("task_token"):
        ctx["Task"] = {"Token": frame["task_token"]}
    if map_item is not None:
        ctx["Map"] = {"Item": map_item}
    return ctx


def scope(run: Any, frame: Frame, value: Any, map_item: dict[str, Any] | None = None) -> Scope:
    return Scope(
        input=value,
        context=context_object(run, frame, map_item),
        lookup_var=lambda name: lookup_var(run, frame, name),
        rng=run.rng(),
        state=frame["state"],
        entered=frame["entered"],
        max_array_range=run.interp.limits.max_array_range_items,
    )


# ------------------------------------------------------------------------------------------- JSONata


def bindings(
    run: Any,
    frame: Frame,
    *,
    result: Any = None,
    has_result: bool = False,
    error_output: Any = None,
    map_item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    states: dict[str, Any] = {"input": frame["input"], "context": context_object(run, frame, map_item)}
    if has_result:
        states["result"] = result
    if error_output is not None:
        states["errorOutput"] = error_output
    out = visible_vars(run, frame)
    out["states"] = states
    return out


def jsonata_template(run: Any, frame: Frame, template: Any, binds: dict[str, Any], field: str) -> Any:
    """Evaluate every ``{% %}`` string inside ``template``; ``field`` is the error location (``Output/a``)."""
    if isinstance(template, str):
        if jsonata_eval.is_expression(template):
            return jsonata_eval.evaluate(
                jsonata_eval.expression_text(template),
                bindings=binds,
                field=field,
                state=frame["state"],
                entered=frame["entered"],
                rng=run.rng(),
                now=run.state["now"],
            )
        return template
    if isinstance(template, dict):
        return {k: jsonata_template(run, frame, v, binds, f"{field}/{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [jsonata_template(run, frame, v, binds, f"{field}[{i}]") for i, v in enumerate(template)]
    return template


# -------------------------------------------------------------------------------------------- Assign


def compute_assign(
    run: Any, frame: Frame, spec: Any, *, jsonata: bool, value: Any = None, binds: dict[str, Any] | None = None
) -> dict[str, Any]:
    """New variable values (applied after the state completes: Assign sees values as of state entry)."""
    if not isinstance(spec, dict):
        return {}
    if jsonata:
        assert binds is not None
        return {k: jsonata_template(run, frame, v, binds, f"Assign/{k}") for k, v in spec.items()}
    result = evaluate_template(spec, scope(run, frame, value))
    return dict(result)


def apply_assign(frame: Frame, values: dict[str, Any]) -> None:
    if values:
        frame["vars"] = {**frame["vars"], **values}


# ------------------------------------------------------------------------------------------ JSONPath


def effective_input(run: Any, frame: Frame, sdef: dict[str, Any]) -> Any:
    path = sdef.get("InputPath", "$")
    if path == "$":
        return frame["input"]
    return apply_input_path(path, frame["input"], scope(run, frame, frame["input"]))


def apply_result_path(run: Any, frame: Frame, sdef: dict[str, Any], raw_input: Any, result: Any) -> Any:
    if "ResultPath" in sdef and sdef["ResultPath"] is None:
        return raw_input
    path = sdef.get("ResultPath", "$")
    if path == "$":
        return result
    try:
        return compile_path(path).set(raw_input, result)
    except (PathNotFound, JsonPathSyntaxError):
        raise AslError(
            RESULT_PATH_MATCH_FAILURE,
            f"Unable to apply ReferencePath {path} to input {dumps(raw_input)}",
        ) from None


def output_path(run: Any, frame: Frame, sdef: dict[str, Any], value: Any) -> Any:
    if sdef.get("OutputPath", "$") == "$":
        return value
    return apply_input_path(sdef.get("OutputPath", "$"), value, scope(run, frame, value), "OutputPath")


def finish_jsonpath(run: Any, frame: Frame, sdef: dict[str, Any], result: Any) -> tuple[Any, dict[str, Any]]:
    """ResultSelector -> Assign -> ResultPath -> OutputPath for Task/Parallel/Map results."""
    if "ResultSelector" in sdef:
        result = evaluate_template(sdef["ResultSelector"], scope(run, frame, result))
    assigned = compute_assign(run, frame, sdef.get("Assign"), jsonata=False, value=result)
    merged = apply_result_path(run, frame, sdef, frame["input"], result)
    return output_path(run, frame, sdef, merged), assigned


def finish_jsonata(
    run: Any, frame: Frame, sdef: dict[str, Any], result: Any, *, has_result: bool = True
) -> tuple[Any, dict[str, Any]]:
    """``Assign`` and ``Output`` (default: the result, or the input when there is none)."""
    binds = bindings(run, frame, result=result, has_result=has_result)
    assigned = compute_assign(run, frame, sdef.get("Assign"), jsonata=True, binds=binds)
    if "Output" in sdef:
        output = jsonata_template(run, frame, sdef["Output"], binds, "Output")
    else:
        output = result if has_result else frame["input"]
    return output, assigned


def parse_count(run: Any, frame: Frame, value: Any, field: str, path: str, *, as_float: bool = False) -> float:
    """A ``*Path`` number: ints (or numeric strings) for counts, floats for percentages."""
    kind = "float" if as_float else "integer"
    number: float
    try:
        if isinstance(value, bool | dict | list) or value is None:
            raise ValueError
        number = float(value) if as_float else int(value) if not isinstance(value, float) else _int_float(value)
    except (TypeError, ValueError):
        shown = dumps(value) if not isinstance(value, str) else value
        raise AslError(
            RUNTIME,
            f'{scope(run, frame, None).prefix()}The {field} field refers to value "{shown}" which is not a valid '
            f"{kind}: {path}",
        ) from None
    return number


def _int_float(value: float) -> int:
    if not value.is_integer():
        raise ValueError
    return int(value)
