"""``kamado transform`` and ``kamado transform-jobs``: batch transform, thin over the SDK.

Registered on ``app`` when ``main.py`` imports this module at its end.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from kamado.cli.hosting import _listing
from kamado.cli.main import Output, OutputOpt, _kv, _print_json, _session, app, console, err_console

transform_jobs = typer.Typer(help="Transform jobs: list, describe, stop.", no_args_is_help=True)
app.add_typer(transform_jobs, name="transform-jobs")

_STATUS_COLOUR = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}


def _show(desc: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(desc)
        return
    status = desc["TransformJobStatus"]
    console.print(f"[bold]{desc['TransformJobName']}[/]  [{_STATUS_COLOUR.get(status, 'cyan')}]{status}[/]")
    if desc.get("FailureReason"):
        console.print("FailureReason: ", style="red", end="")
        console.print(desc["FailureReason"], markup=False)
    p = desc.get("Progress") or {}
    console.print(
        f"Progress: {p.get('FilesCompleted', 0)}/{p.get('FilesTotal', 0)} files, "
        f"{p.get('RecordsCompleted', 0)} records done, {p.get('RecordsFailed', 0)} failed",
        markup=False,
    )
    for key in ("ModelName", "CreationTime", "TransformStartTime", "TransformEndTime"):
        if desc.get(key):
            console.print(f"{key}: {desc[key]}", markup=False)
    console.print(f"Input: {desc['TransformInput']['DataSource']['S3DataSource']['S3Uri']}", markup=False)
    console.print(f"Output: {desc['TransformOutput']['S3OutputPath']}", markup=False)
    for failure in desc.get("FailedRecords") or []:
        console.print(f"  failed: {failure['File']} {failure['Lines']}: {failure['Error']}", markup=False)


@app.command()
def transform(
    model: Annotated[str, typer.Argument(help="The model (CreateModel) whose inference code runs.")],
    input: Annotated[str, typer.Option("--input", help="A URI in the artifact store, or a local file or directory.")],
    output_path: Annotated[str | None, typer.Option("--output", help="Output URI (default: a new prefix).")] = None,
    content_type: Annotated[str | None, typer.Option(help="Content type of the records, e.g. text/csv.")] = None,
    split_type: Annotated[str | None, typer.Option(help="Line (one record per line) or None.")] = None,
    strategy: Annotated[str | None, typer.Option(help="MultiRecord or SingleRecord.")] = None,
    accept: Annotated[str | None, typer.Option(help="Accept header for the model's answers.")] = None,
    assemble_with: Annotated[str | None, typer.Option(help="Line or None.")] = None,
    instance_count: Annotated[int, typer.Option(min=1)] = 1,
    instance_type: Annotated[str, typer.Option()] = "local",
    max_concurrent_transforms: Annotated[int | None, typer.Option(min=1)] = None,
    max_payload: Annotated[int | None, typer.Option(min=1, help="MaxPayloadInMB.")] = None,
    input_filter: Annotated[str | None, typer.Option(help="JSONPath, e.g. '$[1:]'.")] = None,
    output_filter: Annotated[str | None, typer.Option(help="JSONPath, e.g. '$[0,-1]'.")] = None,
    join_source: Annotated[str | None, typer.Option(help="Input to join each output with its input.")] = None,
    env: Annotated[list[str], typer.Option("--env", help="Environment NAME=VALUE (repeatable).")] = [],  # noqa: B006
    job_name: Annotated[str | None, typer.Option()] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the job ends.")] = False,
    output: Annotated[Output, typer.Option("--format", help="How to print the result.")] = Output.table,
) -> None:
    """Run a batch transform job: MODEL over every object under --input, `<object>.out` under --output."""
    from kamado.sdk.transformer import Transformer, TransformJobFailed

    with _session() as c:
        transformer = Transformer(
            model,
            instance_count,
            instance_type,
            strategy=strategy,
            assemble_with=assemble_with,
            output_path=output_path,
            accept=accept,
            max_concurrent_transforms=max_concurrent_transforms,
            max_payload=max_payload,
            env=_kv(env, "--env"),
            client=c,
        )
        with contextlib.suppress(TransformJobFailed):  # shown below, exit code 1
            transformer.transform(
                input,
                content_type=content_type,
                split_type=split_type,
                input_filter=input_filter,
                output_filter=output_filter,
                join_source=join_source,
                wait=wait,
                logs=wait and output != "json",
                job_name=job_name,
            )
        assert transformer.latest_transform_job is not None
        desc = transformer.latest_transform_job.describe()
        _show(desc, output)
        if wait and desc["TransformJobStatus"] != "Completed":
            raise typer.Exit(code=1)
        if not wait and output != "json":
            err_console.print(f"kamado transform-jobs describe {desc['TransformJobName']}", markup=False)


@transform_jobs.command("list")
def transform_jobs_list(
    status: Annotated[str | None, typer.Option(help="InProgress, Completed, Failed, Stopping, Stopped.")] = None,
    name_contains: Annotated[str | None, typer.Option()] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List transform jobs, newest first."""
    with _session() as c:
        items = list(c.iter_transform_jobs(StatusEquals=status, NameContains=name_contains))
    columns = {"name": "TransformJobName", "status": "TransformJobStatus", "created": "CreationTime"}
    _listing(items, {**columns, "ended": "TransformEndTime"}, output)


@transform_jobs.command("describe")
def transform_jobs_describe(name: str, output: OutputOpt = Output.table) -> None:
    """Show a transform job: status, progress, failed records."""
    with _session() as c:
        _show(c.describe_transform_job(name), output)


@transform_jobs.command("stop")
def transform_jobs_stop(name: str) -> None:
    """Stop a transform job; outputs already written stay."""
    with _session() as c:
        c.stop_transform_job(name)
    console.print(f"Stopping {name}", markup=False)
