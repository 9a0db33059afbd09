"""The ``kamado`` command: thin over the SDK, with rich output and ``--output json``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

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
tuning = typer.Typer(help="Tuning jobs: list, describe (--watch), stop.", no_args_is_help=True)
app.add_typer(tuning, name="tuning")
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Output(StrEnum):
    table = "table"
    json = "json"


OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="How to print the result.")]


#: The project every command acts in (the global ``--project`` option; None: KAMADO_PROJECT or default).
_PROJECT: dict[str, str | None] = {"name": None}


@app.callback()
def _global_options(
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            envvar="KAMADO_PROJECT",
            help="The project to act in (sent as X-Kamado-Project); default: the server's 'default' project.",
        ),
    ] = None,
) -> None:
    """kamado: train, tune and serve ML models on your own machines."""
    _PROJECT["name"] = project


def _client() -> Any:
    from kamado.sdk.client import Client

    return Client(project=_PROJECT["name"])


@contextmanager
def _session() -> Iterator[Any]:
    """A client for one command; any kamado error ends the command with its message and exit code."""
    try:
        with _client() as c:
            yield c
    except KamadoError as exc:
        _fail(exc)


def _fail(exc: KamadoError) -> NoReturn:
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


def _json_or_text(value: str) -> Any:
    """A --hp value as the JSON it spells (8, true, [1, 2]), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to bind (default loopback only).")] = "",
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (0 picks a free one).")] = None,
    home: Annotated[Path | None, typer.Option(help="KAMADO_HOME: metadata, artifacts, job dirs.")] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///path or postgresql://...")] = None,
    artifacts: Annotated[
        str | None, typer.Option(help="Artifact store: a directory, file:// URI or s3://bucket/prefix.")
    ] = None,
    executor: Annotated[str | None, typer.Option(help="Where tasks run (KAMADO_EXECUTOR): local or ray.")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="The Ray head's HOST:PORT for --executor ray (KAMADO_RAY_ADDRESS).")
    ] = None,
    idle_shutdown: Annotated[float, typer.Option(help="Exit after this many idle seconds (0 = never).")] = 0,
    log_level: Annotated[str, typer.Option()] = "info",
    insecure_remote: Annotated[
        bool, typer.Option(help="No effect (kept for old scripts): API tokens protect non-loopback hosts.")
    ] = False,
    auth: Annotated[str | None, typer.Option(help="API tokens: auto (default), required, off (loopback only).")] = None,
    worker_user: Annotated[
        str | None,
        typer.Option(
            help="Who tasks run as (KAMADO_WORKER_USER): auto (nobody when the server is root), a user, uid[:gid], "
            "or root."
        ),
    ] = None,
) -> None:
    """Run the kamado server (control plane and reconcilers) in the foreground."""
    from kamado.api.server import serve
    from kamado.core.settings import Settings

    overrides: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "artifacts_url": artifacts,
        "executor": executor,
        "ray_address": ray_address,
    }
    if host:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if auth:
        overrides["auth"] = auth
    if worker_user:
        overrides["worker_user"] = worker_user
    settings = Settings.from_env(**overrides)
    if home is not None and database_url is None:
        settings = Settings.from_env(
            **{
                **overrides,
                "database_url": os.environ.get("KAMADO_DATABASE_URL")
                or f"sqlite:///{Path(home).resolve() / 'kamado.db'}",
                "artifacts_url": artifacts
                or os.environ.get("KAMADO_ARTIFACTS")
                or str(Path(home).resolve() / "artifacts"),
            }
        )
    try:
        serve(settings, idle_shutdown_s=idle_shutdown or None, log_level=log_level, insecure_remote=insecure_remote)
    except KamadoError as exc:
        _fail(exc)


@app.command()
def info(output: OutputOpt = Output.table) -> None:
    """Show the server kamado talks to and what it can run."""
    with _session() as c:
        data = {"url": c.url, **c.info()}
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
    output: OutputOpt = Output.table,
) -> None:
    """Start a training job from a local script (SageMaker script mode)."""
    from kamado.sdk.estimator import Estimator, TrainingJobFailed

    hps = {k: _json_or_text(v) for k, v in _kv(hp, "--hp").items()}
    metrics = [{"Name": k, "Regex": v} for k, v in _kv(metric, "--metric").items()]
    channels = _kv(channel, "--channel") or None
    with _session() as c:
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
    output: OutputOpt = Output.table,
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
def jobs_describe(name: str, output: OutputOpt = Output.table) -> None:
    """Show a job's status, timeline, metrics, lineage and model location."""
    with _session() as c:
        _show_job(c.describe_training_job(name), output)


@jobs.command("logs")
def jobs_logs(name: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False) -> None:
    """Print a job's log; with -f keep following until the job ends."""
    with _session() as c:
        for text in c.stream_training_job_logs(name, follow=follow):
            sys.stdout.write(text)
            sys.stdout.flush()


@jobs.command("stop")
def jobs_stop(name: str) -> None:
    """Ask a running job to stop (SIGTERM, then SIGKILL after the grace period)."""
    with _session() as c:
        c.stop_training_job(name)
    console.print(f"Stopping {name}", markup=False)


@jobs.command("rerun")
def jobs_rerun(
    name: str,
    new_name: Annotated[str | None, typer.Option("--name", help="Name of the new job.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait and stream the log.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """Reproduce a job: same code, data, hyperparameters and resources, under a new name."""
    with _session() as c:
        new = c.rerun_training_job(name, new_name)["TrainingJobName"]
        if wait:
            desc = c.wait_for_training_job(new, on_log=None if output == "json" else sys.stdout.write)
        else:
            desc = c.describe_training_job(new)
    _show_job(desc, output)
    if wait and desc["TrainingJobStatus"] != "Completed":
        raise typer.Exit(code=1)


# -- tuning ---------------------------------------------------------------------------------------------
_SCALING = {"auto": "Auto", "linear": "Linear", "log": "Logarithmic", "reverselog": "ReverseLogarithmic"}


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"--range {spec!r}: {text!r} is not a number") from None


def _parse_range(spec: str) -> tuple[str, Any]:
    """``NAME=MIN:MAX[:SCALE]`` continuous, ``NAME=int:MIN:MAX[:SCALE]`` integer, ``NAME=a,b,c`` or
    ``NAME=cat:a,b,c`` categorical. SCALE is auto, linear, log or reverselog."""
    from kamado.sdk.tuner import CategoricalParameter, ContinuousParameter, IntegerParameter

    if "=" not in spec or not spec.split("=", 1)[0]:
        raise typer.BadParameter(f"--range {spec!r} must look like NAME=MIN:MAX, NAME=int:MIN:MAX or NAME=a,b,c")
    name, body = spec.split("=", 1)
    if body.startswith("cat:") or ":" not in body:
        values = body.removeprefix("cat:").split(",")
        if not all(values):
            raise typer.BadParameter(f"--range {spec!r}: empty categorical value")
        return name, CategoricalParameter([_json_or_text(v) for v in values])
    integer = body.startswith("int:")
    parts = body.removeprefix("int:").split(":")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(
            f"--range {spec!r}: use MIN:MAX[:SCALE] (continuous), int:MIN:MAX[:SCALE] (integer) "
            "or a,b,c / cat:a,b,c (categorical)"
        )
    scaling = "Auto"
    if len(parts) == 3:
        scaling = _SCALING.get(parts[2].lower(), "")
        if not scaling:
            raise typer.BadParameter(f"--range {spec!r}: scale must be one of {', '.join(_SCALING)}")
    low, high = _number(parts[0], spec), _number(parts[1], spec)
    if integer:
        if low != int(low) or high != int(high):
            raise typer.BadParameter(f"--range {spec!r}: integer bounds must be whole numbers")
        return name, IntegerParameter(int(low), int(high), scaling)
    return name, ContinuousParameter(parts[0], parts[1], scaling)


@app.command()
def tune(
    entry_point: Annotated[str, typer.Argument(help="Script to run, relative to --source-dir.")],
    objective: Annotated[str, typer.Option(help="Objective metric: the Name of one --metric.")],
    range_: Annotated[
        list[str],
        typer.Option(
            "--range",
            help="Tuned hyperparameter (repeatable): NAME=MIN:MAX[:log|reverselog] continuous, "
            "NAME=int:MIN:MAX[:log] integer, NAME=a,b,c (or NAME=cat:a,b,c) categorical.",
        ),
    ],
    source_dir: Annotated[Path | None, typer.Option(help="Directory uploaded as the trials' code.")] = None,
    metric: Annotated[list[str], typer.Option("--metric", help="Metric NAME=REGEX (repeatable).")] = [],  # noqa: B006
    objective_type: Annotated[str, typer.Option(help="Maximize or Minimize.")] = "Maximize",
    hp: Annotated[list[str], typer.Option("--hp", help="Static hyperparameter NAME=VALUE (repeatable).")] = [],  # noqa: B006
    channel: Annotated[list[str], typer.Option("--channel", help="Input NAME=PATH_OR_URI (repeatable).")] = [],  # noqa: B006
    strategy: Annotated[str, typer.Option(help="Bayesian, Random, Grid or Hyperband.")] = "Bayesian",
    max_jobs: Annotated[
        int | None, typer.Option(help="Trials in all (required unless Grid: every combination).")
    ] = None,
    max_parallel: Annotated[int, typer.Option(help="Trials at once.")] = 1,
    max_runtime: Annotated[int | None, typer.Option(help="Seconds for the whole tuning job (>= 120).")] = None,
    target: Annotated[float | None, typer.Option(help="Complete once the best objective reaches this.")] = None,
    early_stopping: Annotated[str, typer.Option(help="Off or Auto.")] = "Off",
    max_resource: Annotated[
        int | None, typer.Option(help="Hyperband: the most steps (epochs) a trial reports (MaxResource).")
    ] = None,
    min_resource: Annotated[int, typer.Option(help="Hyperband: the first rung's steps (MinResource).")] = 1,
    seed: Annotated[int | None, typer.Option(help="RandomSeed, for a reproducible search.")] = None,
    instance_type: Annotated[str, typer.Option()] = "local",
    max_run: Annotated[int, typer.Option(help="MaxRuntimeInSeconds of each trial.")] = 86400,
    name: Annotated[str | None, typer.Option(help="Tuning job name, <= 32 characters (default: generated).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait, showing live progress, then the results.")] = True,
    top: Annotated[int, typer.Option(help="Rows in the results table (0 = all).")] = 20,
    output: OutputOpt = Output.table,
) -> None:
    """Start a hyperparameter tuning job over a local script: each trial is a training job."""
    from kamado.sdk.estimator import Estimator
    from kamado.sdk.tuner import HyperbandStrategyConfig, HyperparameterTuner, StrategyConfig

    if (strategy == "Hyperband") != (max_resource is not None):
        raise typer.BadParameter("--max-resource is required with --strategy Hyperband, and only then")
    strategy_config = (
        StrategyConfig(hyperband_strategy_config=HyperbandStrategyConfig(max_resource, min_resource=min_resource))
        if max_resource is not None
        else None
    )
    if max_jobs is None and strategy != "Grid":
        raise typer.BadParameter(f"--max-jobs is required with --strategy {strategy} (Grid runs every combination)")
    parsed = [_parse_range(r) for r in range_]
    ranges = dict(parsed)
    if len(ranges) != len(parsed):
        raise typer.BadParameter("a hyperparameter is given by --range more than once")
    hps = {k: _json_or_text(v) for k, v in _kv(hp, "--hp").items()}
    metrics = [{"Name": k, "Regex": v} for k, v in _kv(metric, "--metric").items()]
    channels = _kv(channel, "--channel") or None
    with _session() as c:
        est = Estimator(
            entry_point=entry_point,
            source_dir=source_dir,
            hyperparameters=hps,
            instance_type=instance_type,
            metric_definitions=metrics,
            max_run=max_run,
            client=c,
        )
        tuner = HyperparameterTuner(
            est,
            objective_metric_name=objective,
            hyperparameter_ranges=ranges,
            strategy=strategy,
            strategy_config=strategy_config,
            objective_type=objective_type,
            max_jobs=max_jobs,
            max_parallel_jobs=max_parallel,
            max_runtime_in_seconds=max_runtime,
            early_stopping_type=early_stopping,
            random_seed=seed,
            target_objective_metric_value=target,
        )
        tuner.fit(channels, job_name=name, wait=False)
        assert tuner.latest_tuning_job is not None
        job = tuner.latest_tuning_job.name
        if output != "json":
            console.print(f"Tuning job [bold]{job}[/] created", markup=True)
        desc = _watch_tuning(c, job, output) if wait else c.describe_tuning_job(job)
        _show_tuning(c, desc, output, top)
    status = desc["HyperParameterTuningJobStatus"]
    if wait and status != "Completed":
        from kamado.sdk.tuner import TuningJobFailed

        reason = desc.get("FailureReason") or "stopped on request"
        _fail(TuningJobFailed(f"Tuning job {job} ended {status}: {reason}"))


def _watch_tuning(c: Any, name: str, output: str) -> dict[str, Any]:
    """Wait for the tuning job: a live view on a terminal, a progress line per change otherwise."""
    from kamado.sdk.tuner import progress_line

    try:
        if output == "json":
            return c.wait_for_tuning_job(name)
        if not console.is_terminal:
            return c.wait_for_tuning_job(name, on_progress=lambda d: console.print(progress_line(d), markup=False))
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=True) as live:
            return c.wait_for_tuning_job(
                name,
                poll_s=0.5,
                on_progress=lambda d: live.update(_live_view(d, c.list_training_jobs_for_tuning_job(name))),
            )
    except KeyboardInterrupt:
        err_console.print(f"Stopped watching. Tuning job {name} keeps running; `kamado tuning stop {name}` stops it.")
        raise typer.Exit(code=130) from None


def _live_view(desc: dict[str, Any], trials: dict[str, Any]) -> Any:
    from rich.console import Group

    from kamado.sdk.tuner import progress_line

    return Group(progress_line(desc).removeprefix("[kamado] "), _trials_table(desc, trials["TrainingJobSummaries"], 5))


def _trials_table(desc: dict[str, Any], summaries: list[dict[str, Any]], top: int) -> Table:
    from kamado.sdk.tuner import decode_value, objective_value, range_shapes, sort_trials

    objective = desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    names = list(range_shapes(desc))
    ranked = sort_trials(summaries, objective["Type"])
    shown = ranked[:top] if top > 0 else ranked
    title = f"Trials, best first ({len(shown)} of {len(ranked)})" if len(shown) < len(ranked) else "Trials, best first"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("training job")
    table.add_column("status")
    table.add_column(objective["MetricName"], justify="right")
    for n in names:
        table.add_column(n, justify="right")
    for i, s in enumerate(shown, 1):
        value = objective_value(s)
        tuned = s.get("TunedHyperParameters", {})
        table.add_row(
            str(i),
            s["TrainingJobName"],
            s["TrainingJobStatus"],
            f"{value:.6g}" if value is not None else "-",
            *(_cell(decode_value(tuned[n])) if n in tuned else "" for n in names),
        )
    return table


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _show_tuning(c: Any, desc: dict[str, Any], output: str, top: int) -> None:
    from kamado.sdk.tuner import decode_value, max_trials, progress_counts, sort_trials

    name = desc["HyperParameterTuningJobName"]
    summaries = c.list_training_jobs_for_tuning_job(name)["TrainingJobSummaries"]
    if output == "json":
        objective_type = desc["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["Type"]
        _print_json({**desc, "TrainingJobSummaries": sort_trials(summaries, objective_type)})
        return
    status = desc["HyperParameterTuningJobStatus"]
    colour = {"Completed": "green", "Failed": "red", "Stopped": "yellow"}.get(status, "cyan")
    config = desc["HyperParameterTuningJobConfig"]
    objective = config["HyperParameterTuningJobObjective"]
    console.print(f"[bold]{name}[/]  [{colour}]{status}[/]  {config['Strategy']}")
    console.print(f"Objective: {objective['Type']} {objective['MetricName']}", markup=False)
    counts = progress_counts(desc)
    total = max_trials(desc)
    console.print(
        f"Trials: {counts['done']}/{total if total is not None else '?'} done, {counts['running']} running, "
        f"{counts['failed']} failed",
        markup=False,
    )
    training = desc.get("TrainingJobStatusCounters") or {}
    console.print("Training jobs: " + ", ".join(f"{k}={v}" for k, v in training.items()), markup=False)
    if desc.get("FailureReason"):
        console.print("FailureReason: ", style="red", end="")
        console.print(desc["FailureReason"], markup=False)
    best = desc.get("BestTrainingJob")
    if best:
        metric = best["FinalHyperParameterTuningJobObjectiveMetric"]
        tuned = ", ".join(f"{k}={_cell(decode_value(v))}" for k, v in best.get("TunedHyperParameters", {}).items())
        console.print(
            f"Best: {best['TrainingJobName']}  {metric['MetricName']}={metric['Value']:.6g}  ({tuned})", markup=False
        )
    for key in ("CreationTime", "HyperParameterTuningEndTime"):
        if desc.get(key):
            console.print(f"{key}: {desc[key]}", markup=False)
    if summaries:
        console.print(_trials_table(desc, summaries, top))


@tuning.command("list")
def tuning_list(
    status: Annotated[str | None, typer.Option(help="InProgress, Completed, Failed, Stopping, Stopped")] = None,
    name_contains: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many (newest first).")] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """List tuning jobs, newest first."""
    from kamado.sdk.tuner import progress_counts

    try:
        items = []
        with _client() as c:
            for item in c.iter_tuning_jobs(StatusEquals=status, NameContains=name_contains, MaxResults=min(limit, 100)):
                items.append(item)
                if len(items) >= limit:
                    break
    except KamadoError as exc:
        _fail(exc)
    if output == "json":
        _print_json(items)
        return
    table = Table()
    for col in ("name", "status", "strategy", "done", "running", "failed", "created"):
        table.add_column(col)
    for it in items:
        counts = progress_counts(it)
        table.add_row(
            it["HyperParameterTuningJobName"],
            it["HyperParameterTuningJobStatus"],
            it.get("Strategy", ""),
            str(counts["done"]),
            str(counts["running"]),
            str(counts["failed"]),
            str(it.get("CreationTime", "")),
        )
    console.print(table)


@tuning.command("describe")
def tuning_describe(
    name: str,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh live until the tuning job ends.")] = False,
    top: Annotated[int, typer.Option(help="Rows in the results table (0 = all).")] = 20,
    output: OutputOpt = Output.table,
) -> None:
    """Show a tuning job's status, trial counters, best training job and its trials, best first."""
    with _session() as c:
        desc = _watch_tuning(c, name, output) if watch else c.describe_tuning_job(name)
        _show_tuning(c, desc, output, top)


@tuning.command("stop")
def tuning_stop(name: str) -> None:
    """Stop a tuning job: its running trials are stopped and no new ones start."""
    with _session() as c:
        c.stop_tuning_job(name)
    console.print(f"Stopping {name}", markup=False)


@app.command()
def demo() -> None:
    """Train a scikit-learn model end to end on the embedded default and show what kamado recorded."""
    from kamado.demo.run import run_demo

    try:
        run_demo(console)
    except KamadoError as exc:
        _fail(exc)


# Hosting commands live in their own module; importing it registers them on ``app``.
from kamado.cli import doctor as _doctor  # noqa: E402, F401
from kamado.cli import functions as _functions  # noqa: E402, F401
from kamado.cli import hosting as _hosting  # noqa: E402, F401
from kamado.cli import pipelines as _pipelines  # noqa: E402, F401
from kamado.cli import processing as _processing  # noqa: E402, F401
from kamado.cli import security as _security  # noqa: E402, F401
from kamado.cli import transform as _transform  # noqa: E402, F401

if __name__ == "__main__":
    app()
