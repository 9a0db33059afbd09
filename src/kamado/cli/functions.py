"""``kamado functions`` and ``kamado map``: Python functions and fan-out map runs, thin over the SDK.

``main.py`` imports this module at its end, which registers these commands on the same ``app``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kamado.cli.main import Output, OutputOpt, _kv, _print_json, _session, app, console, err_console

functions = typer.Typer(help="Python functions: create, list, invoke, dead letters.", no_args_is_help=True)
app.add_typer(functions, name="functions")


@functions.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Function name.")],
    source: Annotated[Path, typer.Argument(help="Directory holding the handler's module.")],
    handler: Annotated[str, typer.Option(help="module.function, called as handler(event, context).")],
    memory: Annotated[int, typer.Option(help="MemorySize in MB (the worker's address-space limit).")] = 512,
    timeout: Annotated[float, typer.Option(help="Timeout in seconds per invocation.")] = 30.0,
    env: Annotated[list[str], typer.Option("--env", help="Environment NAME=VALUE (repeatable).")] = [],  # noqa: B006
    concurrency: Annotated[int | None, typer.Option(help="ReservedConcurrentExecutions (warm workers).")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Upload SOURCE and register NAME; the handler is imported once here to check it."""
    with _session() as c:
        request: dict[str, Any] = {
            "FunctionName": name,
            "Handler": handler,
            "Code": {"Uri": c.upload_directory(source)},
            "MemorySize": memory,
            "Timeout": timeout,
            "Environment": {"Variables": _kv(env, "--env")},
        }
        if concurrency is not None:
            request["ReservedConcurrentExecutions"] = concurrency
        out = c.create_function(request)
    if output == "json":
        _print_json(out)
    else:
        console.print(f"Created function [bold]{name}[/] ({out['FunctionArn']})")


@functions.command("list")
def list_functions(output: OutputOpt = Output.table) -> None:
    """List functions, newest first."""
    from rich.table import Table

    with _session() as c:
        items = c.list_functions(MaxResults=100)["Functions"]
    if output == "json":
        _print_json(items)
        return
    table = Table()
    for col in ("name", "handler", "memory MB", "timeout s", "modified"):
        table.add_column(col)
    for it in items:
        table.add_row(it["FunctionName"], it["Handler"], str(it["MemorySize"]), str(it["Timeout"]), it["LastModified"])
    console.print(table)


@functions.command("invoke")
def invoke(
    name: Annotated[str, typer.Argument(help="Function name.")],
    payload: Annotated[str, typer.Option(help="Event as JSON.")] = "{}",
    asynchronous: Annotated[bool, typer.Option("--async", help="Queue it (InvocationType Event).")] = False,
) -> None:
    """Invoke NAME with --payload and print the result (exit 1 when the handler failed)."""
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise typer.BadParameter(f"--payload is not valid JSON: {exc}") from None
    with _session() as c:
        if asynchronous:
            console.print(f"Queued, request id {c.invoke_function_async(name, event)}")
            return
        out = c.invoke_function(name, event)
    _print_json(out["Payload"])
    if out.get("FunctionError"):
        raise typer.Exit(code=1)


@functions.command("dead-letters")
def dead_letters(
    name: Annotated[str, typer.Argument(help="Function name.")],
    replay: Annotated[list[str], typer.Option("--replay", help="Request id to queue again.")] = [],  # noqa: B006
    output: OutputOpt = Output.table,
) -> None:
    """List asynchronous invocations that failed every attempt, or --replay some of them."""
    with _session() as c:
        for rid in replay:
            c.replay_dead_letter(name, rid)
            console.print(f"Replaying {rid}")
        if replay:
            return
        items = c.list_dead_letters(name)
    if output == "json":
        _print_json(items)
        return
    for it in items:
        err = it.get("Error") or {}
        console.print(
            f"{it['RequestId']}  {it['Attempts']} attempts  {err.get('errorType')}: {err.get('errorMessage')}"
        )


@app.command("map")
def map_command(
    function: Annotated[str, typer.Argument(help="Function to run on every item.")],
    items: Annotated[str | None, typer.Option(help="A .json / .jsonl / .csv file, or an artifact prefix URI.")] = None,
    from_run: Annotated[
        str | None, typer.Option(help="Chain: take a Succeeded map run's outputs (in item order) as the items.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="MaxConcurrency (0: the function's reserved concurrency).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Items per call ({'Items': [...]}).")] = 1,
    tolerated_failure_percentage: Annotated[float, typer.Option(help="Failed items allowed, in %.")] = 0.0,
    max_attempts: Annotated[int, typer.Option(help="Attempts per item.")] = 3,
    wait: Annotated[bool, typer.Option(help="Show a progress bar until the run ends.")] = True,
    output: OutputOpt = Output.table,
) -> None:
    """Run FUNCTION over every item, with a live progress bar (Ctrl-C leaves the run going).

    Items come from --items, or from a finished stage with --from-run: `kamado map clean --items raw.jsonl`
    then `kamado map embed --from-run <that run>`."""
    from kamado.sdk.functions import map as start_map

    if (items is None) == (from_run is None):
        raise typer.BadParameter("give exactly one of --items or --from-run", param_hint="--items / --from-run")
    source: Any
    if from_run is not None:
        source = {"MapRun": from_run}
    else:
        assert items is not None
        source = items if Path(items).is_file() or "://" not in items else {"Uri": items, "Format": "prefix"}
    with _session() as c:
        run = start_map(
            function,
            source,
            max_concurrency=concurrency,
            batch_size=batch_size,
            tolerated_failure_percentage=tolerated_failure_percentage,
            max_attempts=max_attempts,
            client=c,
        )
        err_console.print(f"Map run [bold]{run.name}[/]")
        desc = _follow(run) if wait and output != "json" else run.describe()
    if output == "json":
        _print_json(desc)
        return
    counts = desc["ItemCounts"]
    colour = {"Succeeded": "green", "Failed": "red", "Aborted": "yellow"}.get(desc["Status"], "cyan")
    console.print(
        f"[{colour}]{desc['Status']}[/]: {counts['Succeeded']} succeeded, {counts['Failed']} failed, "
        f"{counts['Retried']} retried of {counts['Total']}. Manifest: {desc['ResultWriterDetails']['Manifest']}"
    )
    if desc["Status"] == "Failed":
        raise typer.Exit(code=1)


def _follow(run: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*columns, TimeRemainingColumn(), console=err_console) as bar:
        desc = run.describe()
        task = bar.add_task(run.name, total=desc["ItemCounts"]["Total"], info="")
        while True:
            counts = desc["ItemCounts"]
            info = f"running {counts['Running']} failed {counts['Failed']} retried {counts['Retried']}"
            bar.update(task, completed=counts["Succeeded"] + counts["Failed"], info=info)
            if desc["Status"] != "InProgress":
                return dict(desc)
            time.sleep(0.25)
            desc = run.describe()
