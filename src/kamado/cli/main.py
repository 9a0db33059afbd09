"""The ``kamado`` command: thin over the SDK, with rich output and ``--output json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kamado.core.errors import KamadoError

app = typer.Typer(
    help="kamado: train, tune and serve ML models on your own machines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
jobs = typer.Typer(help="Training jobs: list, describe, logs, stop, rerun.", no_args_is_help=True)
app.add_typer(jobs, name="jobs")
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json")]


def _client() -> Any:
    from kamado.sdk.client import Client

    return Client()


def _fail(exc: KamadoError) -> None:
    err_console.print(f"[bold red]{exc.code}[/]: {exc.message}", markup=True)
    if isinstance(exc.details, list):
        for d in exc.details[:20]:
            if isinstance(d, dict) and "field" in d:
                err_console.print(f"  - {d['field']}: {d.get('message', '')}", markup=False)
    raise typer.Exit(code=2 if exc.http_status < 500 else 1)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _kv(pairs: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in pairs:
        if "=" not in item:
            raise typer.BadParameter(f"{what} {item!r} must look like NAME=VALUE")
        k, v = item.split("=", 1)
        out[k] = v
    return out


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to bind (default loopback only).")] = "",
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = None,
    home: Annotated[Path | None, typer.Option(help="KAMADO_HOME: metadata, artifacts, job dirs.")] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://...")] = None,
    artifacts: Annotated[str | None, typer.Option(help="Artifact store: a directory or file:// URI.")] = None,
    idle_shutdown: Annotated[float, typer.Option(help="Exit after this many idle seconds (0 = never).")] = 0,
    log_level: Annotated[str, typer.Option()] = "info",
    insecure_remote: Annotated[
        bool, typer.Option(help="Allow a non-loopback --host although there is no authentication yet.")
    ] = False,
) -> None:
    """Run the kamado server (control plane and reconcilers) in the foreground."""
    from kamado.api.server import serve
    from kamado.core.settings import Settings

    overrides: dict[str, Any] = {"home": home, "database_url": database_url, "artifacts_url": artifacts}
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = Settings.from_env(**overrides)
    if home is not None and database_url is None:
        settings = Settings.from_env(
            **{
                **overrides,
                "database_url": f"sqlite:///{Path(home).resolve() / 'kamado.db'}",
                "artifacts_url": artifacts or str(Path(home).resolve() / "artifacts"),
            }
        )
    try:
        serve(settings, idle_shutdown_s=idle_shutdown or None, log_level=log_level, insecure_remote=insecure_remote)
    except KamadoError as exc:
        _fail(exc)


@app.command()
def info(output: OutputOpt = "table") -> None:
    """Show the server kamado talks to and what it can run."""
    try:
        with _client() as c:
            data = {"url": c.url, **c.info()}
    except KamadoError as exc:
        _fail(exc)
    if output == "json":
        _print_json(data)
        return
    for k, v in data.items():
        console.print(f"[bold]{k}[/]: {v}")


@app.command()
def train(
    entry_point: Annotated[str, typer.Argument(help="Script to run, relative to --source-dir.")],
    source_dir: Annotated[Path | None, typer.Option(help="Directory uploaded as the job's code.")] = None,
    hp: Annotated[list[str], typer.Option("--hp", help="Hyperparameter NAME=VALUE (repeatable).")] = [],  # noqa: B006
    channel: Annotated[list[str], typer.Option("--channel", help="Input NAME=PATH_OR_URI (repeatable).")] = [],  # noqa: B006
    metric: Annotated[list[str], typer.Option("--metric", help="Metric NAME=REGEX (repeatable).")] = [],  # noqa: B006
    instance_type: Annotated[str, typer.Option()] = "local",
    name: Annotated[str | None, typer.Option(help="Job name (default: generated).")] = None,
    max_run: Annotated[int, typer.Option(help="MaxRuntimeInSeconds.")] = 86400,
    wait: Annotated[bool, typer.Option(help="Wait and stream the log.")] = True,
    output: OutputOpt = "table",
) -> None:
    """Start a training job from a local script (SageMaker script mode)."""
    from kamado.sdk.estimator import Estimator, TrainingJobFailed

    hps: dict[str, Any] = {}
    for k, v in _kv(hp, "--hp").items():
        try:
            hps[k] = json.loads(v)
        except ValueError:
            hps[k] = v
    metrics = [{"Name": k, "Regex": v} for k, v in _kv(metric, "--metric").items()]
    channels = _kv(channel, "--channel") or None
    try:
        with _client() as c:
            est = Estimator(
                entry_point=entry_point,
                source_dir=source_dir,
                hyperparameters=hps,
                instance_type=instance_type,
                metric_definitions=metrics,
                max_run=max_run,
                client=c,
            )
            try:
                est.fit(channels, wait=wait, logs=wait and output != "json", job_name=name)
            except TrainingJobFailed as exc:
                _show_job(est.latest_training_job.describe() if est.latest_training_job else {}, output)
                _fail(exc)
            assert est.latest_training_job is not None
            _show_job(est.latest_training_job.describe(), output)
    except KamadoError as exc:
        _fail(exc)


def _show_job(desc: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(desc)
        return
    if not desc:
        return
    status = desc.get("TrainingJobStatus", "?")
    colour = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(status, "cyan")
    console.print(f"[bold]{desc.get('TrainingJobName')}[/]  [{colour}]{status}[/] / {desc.get('SecondaryStatus')}")
    if desc.get("FailureReason"):
        console.print("FailureReason: ", style="red", end="")
        console.print(desc["FailureReason"], markup=False)
    for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime", "TrainingTimeInSeconds"):
        if desc.get(key) is not None:
            console.print(f"{key}: {desc[key]}", markup=False)
    if desc.get("ModelArtifacts"):
        console.print(f"Model: {desc['ModelArtifacts']['S3ModelArtifacts']}", markup=False)
    metrics = desc.get("FinalMetricDataList") or []
    if metrics:
        table = Table(title="Final metrics", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for m in metrics:
            table.add_row(m["MetricName"], f"{m['Value']:.6g}")
        console.print(table)
    lineage = desc.get("Lineage")
    if lineage:
        console.print("Lineage:", style="bold")
        for k, v in lineage.items():
            console.print(f"  {k}: {json.dumps(v) if isinstance(v, dict) else v}", markup=False)
    usage = desc.get("ResourceUsage")
    if usage:
        console.print(
            "Resources: "
            + ", ".join(
                f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in usage.items() if v is not None
            ),
            markup=False,
        )
    transitions = desc.get("SecondaryStatusTransitions") or []
    if transitions:
        console.print("Timeline:", style="bold")
        for t in transitions:
            console.print(f"  {t.get('StartTime', '')}  {t['Status']:<12} {t.get('StatusMessage', '')}", markup=False)


@jobs.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="InProgress, Completed, Failed, Stopping, Stopped")] = None,
    name_contains: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    output: OutputOpt = "table",
) -> None:
    """List training jobs, newest first."""
    try:
        items = []
        with _client() as c:
            for item in c.iter_training_jobs(
                StatusEquals=status, NameContains=name_contains, MaxResults=min(limit, 100)
            ):
                items.append(item)
                if len(items) >= limit:
                    break
    except KamadoError as exc:
        _fail(exc)
    if output == "json":
        _print_json(items)
        return
    table = Table()
    for col in ("name", "status", "secondary", "created"):
        table.add_column(col)
    for it in items:
        table.add_row(
            it["TrainingJobName"],
            it["TrainingJobStatus"],
            it.get("SecondaryStatus", ""),
            str(it.get("CreationTime", "")),
        )
    console.print(table)


@jobs.command("describe")
def jobs_describe(name: str, output: OutputOpt = "table") -> None:
    """Show a job's status, timeline, metrics, lineage and model location."""
    try:
        with _client() as c:
            _show_job(c.describe_training_job(name), output)
    except KamadoError as exc:
        _fail(exc)


@jobs.command("logs")
def jobs_logs(name: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print a job's log; with -f keep following until the job ends."""
    try:
        with _client() as c:
            for text in c.stream_training_job_logs(name, follow=follow):
                sys.stdout.write(text)
                sys.stdout.flush()
    except KamadoError as exc:
        _fail(exc)


@jobs.command("stop")
def jobs_stop(name: str) -> None:
    """Ask a running job to stop (SIGTERM, then SIGKILL after the grace period)."""
    try:
        with _client() as c:
            c.stop_training_job(name)
    except KamadoError as exc:
        _fail(exc)
    console.print(f"Stopping {name}", markup=False)


@jobs.command("rerun")
def jobs_rerun(
    name: str,
    new_name: Annotated[str | None, typer.Option("--name", help="Name of the new job.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and stream the log.")] = False,
    output: OutputOpt = "table",
) -> None:
    """Reproduce a job: same code, data, hyperparameters and resources, under a new name."""
    try:
        with _client() as c:
            new = c.rerun_training_job(name, new_name)["TrainingJobName"]
            if wait:
                desc = c.wait_for_training_job(new, on_log=None if output == "json" else sys.stdout.write)
            else:
                desc = c.describe_training_job(new)
    except KamadoError as exc:
        _fail(exc)
    _show_job(desc, output)
    if wait and desc["TrainingJobStatus"] != "Completed":
        raise typer.Exit(code=1)


@app.command()
def demo() -> None:
    """Train a scikit-learn model end to end on the embedded default and show what kamado recorded."""
    from kamado.demo.run import run_demo

    try:
        run_demo(console)
    except KamadoError as exc:
        _fail(exc)


if __name__ == "__main__":
    app()
