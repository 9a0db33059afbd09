"""``kamado processing``: run, list, describe, logs and stop processing jobs, thin over the SDK.

Kept out of ``main.py`` so each module stays readable; ``main.py`` imports this one at its end, which
registers these commands on the same ``app``.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from kamado.cli.main import Output, OutputOpt, _fail, _kv, _print_json, _session, app, console

processing = typer.Typer(help="Processing jobs: run, list, describe, logs, stop.", no_args_is_help=True)
app.add_typer(processing, name="processing")

_COLOUR = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}
_DISTRIBUTIONS = {"replicated": "FullyReplicated", "sharded": "ShardedByS3Key"}


def _show(desc: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(desc)
        return
    status = desc.get("ProcessingJobStatus", "?")
    console.print(f"[bold]{desc.get('ProcessingJobName')}[/]  [{_COLOUR.get(status, 'cyan')}]{status}[/]")
    for key in ("FailureReason", "ExitMessage", "CreationTime", "ProcessingStartTime", "ProcessingEndTime"):
        if desc.get(key):
            console.print(f"{key}: {desc[key]}", markup=False)
    for out in (desc.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        console.print(f"Output {out['OutputName']}: {out['S3Output']['S3Uri']}", markup=False)
    for inst in desc.get("Instances") or []:
        line = f"  {inst.get('Host')}: {inst.get('Status')} (exit code {inst.get('ExitCode')})"
        console.print(line + (f" {inst['Reason']}" if inst.get("Reason") else ""), markup=False)


def _input(name: str, value: str) -> Any:
    """``PATH_OR_URI[:replicated|sharded]`` to a ProcessingInput at /opt/ml/processing/input/<NAME>."""
    from kamado.sdk.processing import ProcessingInput

    source, _, mode = value.rpartition(":")
    if mode not in _DISTRIBUTIONS and mode not in _DISTRIBUTIONS.values():
        source, mode = value, "replicated"
    return ProcessingInput(
        source=source,
        destination=f"/opt/ml/processing/input/{name}",
        input_name=name,
        s3_data_distribution_type=_DISTRIBUTIONS.get(mode, mode),
    )


@processing.command("run")
def run(
    script: Annotated[str, typer.Argument(help="Local script, run with --command on every instance.")],
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            help="NAME=PATH_OR_URI[:sharded|replicated], seen at /opt/ml/processing/input/NAME (repeatable).",
        ),
    ] = [],  # noqa: B006
    output_dir: Annotated[
        list[str],
        typer.Option(
            "--output", help="NAME=LOCALPATH under /opt/ml/processing/ uploaded when the job ends (repeatable)."
        ),
    ] = [],  # noqa: B006
    instance_count: Annotated[int, typer.Option(min=1, max=100)] = 1,
    instance_type: Annotated[str, typer.Option()] = "local",
    command: Annotated[str, typer.Option(help="Interpreter that runs the script.")] = "python3",
    env: Annotated[list[str], typer.Option("--env", help="Environment NAME=VALUE (repeatable).")] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option(help="Job name (default: generated).")] = None,
    max_run: Annotated[int, typer.Option(help="MaxRuntimeInSeconds.")] = 86400,
    wait: Annotated[bool, typer.Option(help="Wait and stream the instances' logs.")] = True,
    output: Annotated[Output, typer.Option("--format", "-o", help="How to print the result.")] = Output.table,
    arguments: Annotated[list[str] | None, typer.Argument(help="Arguments passed to the script.")] = None,
) -> None:
    """Run a local script as a processing job (SageMaker ScriptProcessor). Here ``--output`` names an output
    directory, so the result format is ``-o``/``--format``."""
    from kamado.sdk.processing import ProcessingJobFailed, ProcessingOutput, ScriptProcessor

    inputs = [_input(k, v) for k, v in _kv(input, "--input").items()]
    outputs = [ProcessingOutput(source=v, output_name=k) for k, v in _kv(output_dir, "--output").items()]
    with _session() as c:
        processor = ScriptProcessor(
            command=command.split(),
            instance_count=instance_count,
            instance_type=instance_type,
            env=_kv(env, "--env"),
            max_runtime_in_seconds=max_run,
            client=c,
        )
        try:
            processor.run(
                code=script,
                inputs=inputs,
                outputs=outputs,
                arguments=arguments,
                wait=wait,
                logs=wait and output != "json",
                job_name=name,
            )
        except ProcessingJobFailed as exc:
            _show(processor.latest_job.describe() if processor.latest_job else {}, output)
            _fail(exc)
        assert processor.latest_job is not None
        _show(processor.latest_job.describe(), output)


@processing.command("list")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="InProgress, Completed, Failed, Stopping, Stopped")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """List processing jobs, newest first."""
    from rich.table import Table

    with _session() as c:
        items = []
        for item in c.iter_processing_jobs(StatusEquals=status, MaxResults=min(limit, 100)):
            items.append(item)
            if len(items) >= limit:
                break
    if output == "json":
        _print_json(items)
        return
    table = Table()
    for col in ("name", "status", "created", "ended"):
        table.add_column(col)
    for it in items:
        table.add_row(
            it["ProcessingJobName"],
            it["ProcessingJobStatus"],
            str(it.get("CreationTime", "")),
            str(it.get("ProcessingEndTime", "")),
        )
    console.print(table)


@processing.command("describe")
def describe(name: str, output: OutputOpt = Output.table) -> None:
    """Show a job's status, reason, outputs and each instance's outcome."""
    with _session() as c:
        _show(c.describe_processing_job(name), output)


@processing.command("logs")
def logs(name: str) -> None:
    """Print every instance's log, each line prefixed with its host."""
    from kamado.sdk.processing import ProcessingJob

    with _session() as c:
        sys.stdout.write(ProcessingJob(c, name).logs())


@processing.command("stop")
def stop(name: str) -> None:
    """Stop a running processing job (SIGTERM to every instance, SIGKILL after the grace period)."""
    with _session() as c:
        c.stop_processing_job(name)
    console.print(f"Stopping {name}", markup=False)
