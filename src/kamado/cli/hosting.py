"""``kamado endpoints``, ``kamado models`` and ``kamado invoke``: hosting, thin over the SDK.

Kept out of ``main.py`` so each module stays readable; ``main.py`` imports this one at its end, which
registers these commands on the same ``app``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kamado.cli.main import Output, OutputOpt, _kv, _print_json, _session, app, console, err_console

endpoints = typer.Typer(help="Endpoints: create, list, describe, update, scale, logs, delete.", no_args_is_help=True)
app.add_typer(endpoints, name="endpoints")
models = typer.Typer(help="Models: list, describe, delete.", no_args_is_help=True)
app.add_typer(models, name="models")

_STATUS_COLOUR = {"InService": "green", "Failed": "red", "UpdateRollbackFailed": "red", "RollingBack": "yellow"}


def _status_printer(name: str) -> Any:
    return lambda status, _desc: err_console.print(f"[kamado] endpoint {name}: {status}", markup=False)


def _listing(items: list[dict[str, Any]], columns: dict[str, str], output: str) -> None:
    if output == "json":
        _print_json(items)
        return
    table = Table()
    for header in columns:
        table.add_column(header)
    for it in items:
        table.add_row(*(str(it.get(key, "")) for key in columns.values()))
    console.print(table)


def _figure(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _show_endpoint(desc: dict[str, Any], output: str) -> None:
    if output == "json":
        _print_json(desc)
        return
    status = desc["EndpointStatus"]
    console.print(f"[bold]{desc['EndpointName']}[/]  [{_STATUS_COLOUR.get(status, 'cyan')}]{status}[/]")
    if desc.get("FailureReason"):
        console.print("FailureReason: ", style="red", end="")
        console.print(desc["FailureReason"], markup=False)
    for key in ("EndpointConfigName", "InvocationUrl", "CreationTime", "LastModifiedTime"):
        if desc.get(key):
            console.print(f"{key}: {desc[key]}", markup=False)
    table = Table(title="Variants", title_justify="left")
    for col in ("variant", "weight", "instances", "invocations", "4xx", "5xx", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v in desc.get("ProductionVariants", []):
        m = v.get("Metrics") or {}
        table.add_row(
            v["VariantName"],
            f"{_figure(v.get('CurrentWeight'))}/{_figure(v.get('DesiredWeight'))}",
            f"{v.get('CurrentInstanceCount')}/{v.get('DesiredInstanceCount')}",
            *(_figure(m.get(k)) for k in ("invocations", "invocations_4xx", "invocations_5xx")),
            *(_figure(m.get(k)) for k in ("model_latency_p50_ms", "model_latency_p99_ms")),
        )
    console.print(table)
    for v in desc.get("ProductionVariants", []):
        states = ", ".join(f"{i['InstanceId']} {i['State']}" for i in v.get("Instances", []))
        console.print(f"{v['VariantName']} instances: {states or 'none'}", markup=False)
        policy = (v.get("AutoScaling") or {}).get("Policy")
        if policy:
            console.print(
                f"{v['VariantName']} autoscaling: {policy['MinCapacity']}-{policy['MaxCapacity']} instances at "
                f"{policy['TargetValue']:g} invocations/instance/min",
                markup=False,
            )
    pending = desc.get("PendingDeploymentSummary")
    if pending:
        console.print(
            f"Deploying {pending.get('EndpointConfigName')}: {pending.get('Phase')}, "
            f"{float(pending.get('TrafficToNewFleet') or 0):.0%} of traffic on the new fleet",
            markup=False,
        )


@endpoints.command("list")
def endpoints_list(
    status: Annotated[str | None, typer.Option(help="Creating, InService, Updating, Failed, ...")] = None,
    name_contains: Annotated[str | None, typer.Option()] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List endpoints, newest first."""
    with _session() as c:
        items = list(c.iter_endpoints(StatusEquals=status, NameContains=name_contains))
    columns = {"name": "EndpointName", "status": "EndpointStatus", "created": "CreationTime"}
    _listing(items, {**columns, "modified": "LastModifiedTime"}, output)


@endpoints.command("describe")
def endpoints_describe(
    name: str,
    window: Annotated[float, typer.Option(help="Seconds of traffic the metrics cover.")] = 60,
    output: OutputOpt = Output.table,
) -> None:
    """Show an endpoint's status, variants (weights, instances, metrics) and any deployment in progress."""
    with _session() as c:
        _show_endpoint(c.describe_endpoint(name, metrics_window_s=window), output)


@endpoints.command("create")
def endpoints_create(
    name: str,
    model_data: Annotated[str, typer.Option(help="model.tar.gz URI (e.g. a training job's), or a local path.")],
    entry_point: Annotated[str | None, typer.Option(help="Inference script (model_fn, predict_fn, ...).")] = None,
    source_dir: Annotated[Path | None, typer.Option(help="Directory uploaded as the inference code.")] = None,
    env: Annotated[list[str], typer.Option("--env", help="Model environment NAME=VALUE (repeatable).")] = [],  # noqa: B006
    instance_count: Annotated[int, typer.Option(min=1)] = 1,
    instance_type: Annotated[str, typer.Option()] = "local",
    wait: Annotated[bool, typer.Option(help="Wait until InService.")] = True,
    output: OutputOpt = Output.table,
) -> None:
    """Create a model, an endpoint config and an endpoint, all named NAME."""
    from kamado.sdk.model import Model

    with _session() as c:
        model = Model(
            model_data, entry_point=entry_point, source_dir=source_dir, env=_kv(env, "--env"), name=name, client=c
        )
        model.deploy(instance_count, instance_type, endpoint_name=name, wait=False)
        if wait:
            c.wait_for_endpoint(name, timeout=None, on_status=_status_printer(name))
        _show_endpoint(c.describe_endpoint(name), output)


@endpoints.command("update")
def endpoints_update(
    name: str,
    config: Annotated[str, typer.Option("--config", help="Endpoint config to deploy (blue/green).")],
    canary_percent: Annotated[int | None, typer.Option(help="Canary: this % of traffic first.")] = None,
    linear_percent: Annotated[int | None, typer.Option(help="Linear: this % more traffic per step.")] = None,
    wait_interval: Annotated[float, typer.Option(help="Seconds each traffic step bakes.")] = 0,
    termination_wait: Annotated[float, typer.Option(help="Seconds the old fleet stays after the shift.")] = 0,
    rollback_on_5xx_rate: Annotated[
        float | None, typer.Option(help="Roll back if the new fleet's 5xx rate exceeds this (0.01 = 1%).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the update is done or rolled back.")] = True,
    output: OutputOpt = Output.table,
) -> None:
    """Deploy another endpoint config: all at once, canary or linear, with optional auto-rollback."""
    from kamado.sdk.predictor import Predictor, blue_green_config

    with _session() as c:
        deployment = blue_green_config(
            canary_percent=canary_percent,
            linear_percent=linear_percent,
            wait_interval_s=wait_interval,
            termination_wait_s=termination_wait,
            rollback_on_5xx_rate=rollback_on_5xx_rate,
        )
        Predictor(name, client=c).update_endpoint(endpoint_config_name=config, deployment_config=deployment, wait=wait)
        _show_endpoint(c.describe_endpoint(name), output)


@endpoints.command("delete")
def endpoints_delete(name: str, wait: Annotated[bool, typer.Option(help="Wait until it is gone.")] = False) -> None:
    """Delete an endpoint: its instances drain and stop. Its config and model are kept."""
    with _session() as c:
        c.delete_endpoint(name)
        if wait:
            c.wait_for_endpoint_deleted(name, timeout=None)
    console.print(f"Deleted {name}" if wait else f"Deleting {name}", markup=False)


@endpoints.command("logs")
def endpoints_logs(name: str, instance: Annotated[str | None, typer.Option(help="One instance's log.")] = None) -> None:
    """Print the recent output of the endpoint's model servers."""
    with _session() as c:
        sys.stdout.write(c.endpoint_logs(name, instance))


@endpoints.command("scale")
def endpoints_scale(
    name: str,
    variant: Annotated[str, typer.Option(help="Variant to scale (e.g. AllTraffic).")],
    min_: Annotated[int, typer.Option("--min", min=0, help="Fewest instances; 0 allows scale to zero.")] = 1,
    max_: Annotated[int, typer.Option("--max", min=1, help="Most instances.")] = 1,
    target: Annotated[float, typer.Option(help="Invocations per instance per minute to hold.")] = 0,
    off: Annotated[bool, typer.Option("--off", help="Remove the variant's scaling policy.")] = False,
) -> None:
    """Autoscale a variant on invocations per instance (target tracking)."""
    from kamado.sdk.predictor import Predictor

    if not off and target <= 0:
        raise typer.BadParameter("--target must be above 0 (invocations per instance per minute)")
    with _session() as c:
        if off:
            Predictor(name, client=c).disable_autoscaling(variant)
        else:
            Predictor(name, client=c).enable_autoscaling(variant, min_, max_, target)
    console.print(f"{name}/{variant}: " + ("autoscaling off" if off else f"{min_}-{max_} at {target:g}/min"))


@models.command("list")
def models_list(name_contains: Annotated[str | None, typer.Option()] = None, output: OutputOpt = Output.table) -> None:
    """List models, newest first."""
    with _session() as c:
        items = list(c.iter_models(NameContains=name_contains))
    _listing(items, {"name": "ModelName", "created": "CreationTime"}, output)


@models.command("describe")
def models_describe(name: str, output: OutputOpt = Output.table) -> None:
    """Show a model: its data, environment and command."""
    with _session() as c:
        desc = c.describe_model(name)
    if output == "json":
        _print_json(desc)
        return
    console.print(f"[bold]{desc['ModelName']}[/]  {desc.get('CreationTime', '')}")
    container = desc.get("PrimaryContainer", {})
    for key in ("ModelDataUrl", "Command"):
        if container.get(key):
            console.print(f"{key}: {container[key]}", markup=False)
    for k, v in container.get("Environment", {}).items():
        console.print(f"  {k}={v}", markup=False)


@models.command("delete")
def models_delete(name: str) -> None:
    """Delete a model; endpoints already serving it keep their copy."""
    with _session() as c:
        c.delete_model(name)
    console.print(f"Deleted {name}", markup=False)


@app.command()
def invoke(
    name: str,
    body: Annotated[str, typer.Option(help="Request body, or @FILE to send a file's bytes.")],
    content_type: Annotated[str, typer.Option()] = "application/json",
    accept: Annotated[str | None, typer.Option()] = None,
    variant: Annotated[str | None, typer.Option(help="Send to this variant (TargetVariant).")] = None,
    custom_attributes: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Invoke an endpoint: print the response body; the variant that answered goes to stderr."""
    data = Path(body[1:]).read_bytes() if body.startswith("@") else body.encode()
    with _session() as c:
        result = c.invoke_endpoint(
            name, data, content_type, accept=accept, target_variant=variant, custom_attributes=custom_attributes
        )
    sys.stdout.buffer.write(result.body)
    if not result.body.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()
    err_console.print(f"variant: {result.invoked_variant}", markup=False)
