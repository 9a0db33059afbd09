"""``kamado pipelines``: state machines and their executions, thin over the SDK.

Registered on ``app`` when ``main.py`` imports this module at its end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kamado.cli.hosting import _listing
from kamado.cli.main import Output, OutputOpt, _print_json, _session, app, console, err_console

pipelines = typer.Typer(
    help="Pipelines (Amazon States Language state machines): create, start, watch.", no_args_is_help=True
)
app.add_typer(pipelines, name="pipelines")

_STATUS_COLOUR = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "yellow"}


def _input(value: str | None) -> Any:
    """``--input`` as JSON text, or ``@file.json``."""
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--input is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None


def _show_execution(desc: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(desc)
        return
    status = desc["status"]
    console.print(f"[bold]{desc['name']}[/]  [{_STATUS_COLOUR.get(status, 'cyan')}]{status}[/]")
    for key in ("executionArn", "startDate", "stopDate"):
        if desc.get(key):
            console.print(f"{key}: {desc[key]}", markup=False)
    console.print(f"input: {desc.get('input')}", markup=False)
    if "output" in desc:
        console.print(f"output: {desc['output']}", markup=False)
    if desc.get("error") or desc.get("cause"):
        console.print("error: ", style="red", end="")
        console.print(f"{desc.get('error')}: {desc.get('cause')}", markup=False)


@pipelines.command("create")
def create(
    name: Annotated[str, typer.Argument(help="State machine name.")],
    definition: Annotated[Path, typer.Argument(help="ASL definition file (JSON).", exists=True, dir_okay=False)],
    update: Annotated[bool, typer.Option(help="Update the definition if the state machine exists.")] = False,
) -> None:
    """Create a state machine from an Amazon States Language definition (validated: all errors at once)."""
    from kamado.core.errors import ResourceInUse
    from kamado.sdk.pipelines import StateMachine

    with _session() as c:
        try:
            StateMachine.create(name, definition.read_text(), client=c)
            console.print(f"created state machine {name}", markup=False)
        except ResourceInUse:
            if not update:
                raise
            StateMachine(name, client=c).update(definition.read_text())
            console.print(f"updated state machine {name}", markup=False)


@pipelines.command("list")
def list_(output: OutputOpt = Output.table) -> None:
    """List state machines."""
    from kamado.sdk.pipelines import StateMachine

    with _session() as c:
        items = list(StateMachine.list(client=c))
    _listing(items, {"name": "name", "type": "type", "created": "creationDate"}, output)


@pipelines.command("describe")
def describe(name: str, output: OutputOpt = Output.table) -> None:
    """Show a state machine and its definition."""
    from kamado.sdk.pipelines import StateMachine

    with _session() as c:
        desc = StateMachine(name, client=c).describe()
    if output == "json":
        _print_json(desc)
        return
    console.print(f"[bold]{desc['name']}[/]  {desc['status']}  revision {desc['revisionId']}")
    console.print(desc["definition"], markup=False)


@pipelines.command("delete")
def delete(name: str) -> None:
    """Delete a state machine and its finished executions (refused while executions run)."""
    from kamado.sdk.pipelines import StateMachine

    with _session() as c:
        StateMachine(name, client=c).delete()
    console.print(f"deleted state machine {name}", markup=False)


@pipelines.command("start")
def start(
    name: Annotated[str, typer.Argument(help="State machine name.")],
    input: Annotated[str | None, typer.Option("--input", help="Execution input: JSON text or @file.json.")] = None,
    execution_name: Annotated[str | None, typer.Option("--name", help="Execution name (idempotency key).")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the execution until it ends.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Start an execution; with --wait, print each state as it is entered and exit non-zero on failure."""
    from kamado.sdk.pipelines import StateMachine

    with _session() as c:
        execution = StateMachine(name, client=c).start(_input(input), name=execution_name)
        if not wait:
            if output == "json":
                _print_json({"stateMachine": name, "name": execution.name})
            else:
                console.print(f"started execution {execution.name}", markup=False)
            return
        seen = 0
        while True:
            desc = execution.describe()
            events = execution.history()
            for event in events[seen:]:
                if output != "json" and event["type"].endswith("StateEntered"):
                    state = (event.get("stateEnteredEventDetails") or {}).get("name", "")
                    console.print(f"  → {state}", markup=False)
            seen = len(events)
            if desc["status"] != "RUNNING":
                break
            time.sleep(0.3)
    _show_execution(desc, output)
    if desc["status"] != "SUCCEEDED":
        raise typer.Exit(1)


@pipelines.command("executions")
def executions(
    name: str,
    status: Annotated[str | None, typer.Option(help="RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List a state machine's executions, newest first."""
    with _session() as c:
        page = c._list(f"/api/v1/state-machines/{name}/executions", {"statusFilter": status, "maxResults": 100})
    _listing(
        page["executions"], {"name": "name", "status": "status", "started": "startDate", "stopped": "stopDate"}, output
    )


@pipelines.command("execution")
def execution(name: str, execution_name: str, output: OutputOpt = Output.table) -> None:
    """Describe one execution: status, input, output or error."""
    from kamado.sdk.pipelines import Execution

    with _session() as c:
        desc = Execution(name, execution_name, client=c).describe()
    _show_execution(desc, output)


@pipelines.command("history")
def history(name: str, execution_name: str, output: OutputOpt = Output.table) -> None:
    """An execution's event history, as Step Functions records it."""
    from kamado.sdk.pipelines import Execution

    with _session() as c:
        events = Execution(name, execution_name, client=c).history()
    if output == "json":
        _print_json(events)
        return
    table = Table()
    for col in ("id", "time", "type", "details"):
        table.add_column(col)
    for e in events:
        details: Any = next((v for k, v in e.items() if k.endswith("EventDetails")), {})
        table.add_row(str(e["id"]), e["timestamp"], e["type"], json.dumps(details)[:100])
    console.print(table)


@pipelines.command("stop")
def stop(
    name: str,
    execution_name: str,
    error: Annotated[str | None, typer.Option(help="Error name recorded on the aborted execution.")] = None,
    cause: Annotated[str | None, typer.Option(help="Cause recorded on the aborted execution.")] = None,
) -> None:
    """Stop a running execution (it ends ABORTED)."""
    from kamado.sdk.pipelines import Execution

    with _session() as c:
        Execution(name, execution_name, client=c).stop(error=error, cause=cause)
    err_console.print(f"stopping execution {execution_name}", markup=False)


schedules = typer.Typer(help="Schedules that start a pipeline on a clock (rate, cron, at).", no_args_is_help=True)
pipelines.add_typer(schedules, name="schedules")
triggers = typer.Typer(help="Triggers that start a pipeline for each new object under a prefix.", no_args_is_help=True)
pipelines.add_typer(triggers, name="triggers")


@schedules.command("create")
def schedule_create(
    name: Annotated[str, typer.Argument(help="Schedule name.")],
    expression: Annotated[str, typer.Argument(help="rate(7 days), cron(0 3 ? * MON *) or at(2026-12-01T03:00:00).")],
    state_machine: Annotated[str, typer.Argument(help="The state machine to start.")],
    input: Annotated[str | None, typer.Option("--input", help="Execution input: JSON text or @file.json.")] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the expression.")] = "UTC",
    skip_missed: Annotated[
        bool, typer.Option(help="Skip fires missed while down (default: run the latest once).")
    ] = False,
    disabled: Annotated[bool, typer.Option(help="Create it disabled.")] = False,
) -> None:
    """Create a schedule; prints when it fires next."""
    from kamado.sdk.pipelines import Schedule

    with _session() as c:
        schedule = Schedule.create(
            name,
            expression,
            state_machine,
            input=_input(input),
            timezone=timezone,
            missed_run_policy="SKIP" if skip_missed else "RUN_ONCE",
            enabled=not disabled,
            client=c,
        )
        desc = schedule.describe()
    console.print(f"created schedule {name}; next fire: {desc.get('NextFireTime') or '-'}", markup=False)


@schedules.command("list")
def schedule_list(output: OutputOpt = Output.table) -> None:
    """List schedules with their next fire times."""
    with _session() as c:
        items = c._list("/api/v1/schedules", {"MaxResults": 100})["Schedules"]
    _listing(
        items,
        {"name": "Name", "state": "State", "expression": "ScheduleExpression", "zone": "ScheduleExpressionTimezone",
         "target": "Target", "next": "NextFireTime", "fires": "Fires"},
        output,
    )  # fmt: skip


@schedules.command("enable")
def schedule_enable(name: str, off: Annotated[bool, typer.Option("--off", help="Disable it instead.")] = False) -> None:
    """Enable (or with --off disable) a schedule. Fires missed while disabled are not owed."""
    from kamado.sdk.pipelines import Schedule

    with _session() as c:
        Schedule(name, client=c).enable(not off)
    console.print(f"schedule {name} {'disabled' if off else 'enabled'}", markup=False)


@schedules.command("delete")
def schedule_delete(name: str) -> None:
    from kamado.sdk.pipelines import Schedule

    with _session() as c:
        Schedule(name, client=c).delete()
    console.print(f"deleted schedule {name}", markup=False)


@triggers.command("create")
def trigger_create(
    name: Annotated[str, typer.Argument(help="Trigger name.")],
    prefix: Annotated[str, typer.Argument(help="Artifact-store URI prefix to watch.")],
    state_machine: Annotated[str, typer.Argument(help="The state machine to start for each new object.")],
    poll_interval: Annotated[float, typer.Option(help="Seconds between looks at the prefix.", min=1)] = 5.0,
) -> None:
    """Create a trigger; objects already under the prefix do not fire."""
    from kamado.sdk.pipelines import Trigger

    with _session() as c:
        desc = Trigger.create(name, prefix, state_machine, poll_interval_s=poll_interval, client=c).describe()
    console.print(f"created trigger {name}; {desc['ObjectsSeen']} object(s) already there will not fire", markup=False)


@triggers.command("list")
def trigger_list(output: OutputOpt = Output.table) -> None:
    with _session() as c:
        items = c._list("/api/v1/triggers", {"MaxResults": 100})["Triggers"]
    _listing(items, {"name": "Name", "state": "State", "prefix": "Prefix", "fires": "Fires"}, output)


@triggers.command("delete")
def trigger_delete(name: str) -> None:
    from kamado.sdk.pipelines import Trigger

    with _session() as c:
        Trigger(name, client=c).delete()
    console.print(f"deleted trigger {name}", markup=False)
