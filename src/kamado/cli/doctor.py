"""``kamado doctor``: is this machine's kamado set up right? One plain line per check.

Why: moving from a laptop to PostgreSQL + S3 adds parts that can each be wrong (a firewall, a password, a
bucket policy). The doctor checks them in the order a request meets them, with the same configuration
the server would use (flags, then ``KAMADO_*`` variables, then defaults), and says ok, warn or FAIL with
what to check next. The exit code is 1 when anything FAILs, so scripts and CI can gate on it.

The checks themselves live in :mod:`kamado.api.preflight` (the server runs the same ones at start-up);
they are imported lazily, inside the command, so the rest of the CLI stays light.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

from kamado.cli.main import Output, OutputOpt, _print_json, app, console

if TYPE_CHECKING:
    from kamado.api.preflight import Check
    from kamado.core.settings import Settings

_COLOURS = {"ok": "green", "warn": "yellow", "FAIL": "bold red"}
MIN_PYTHON = (3, 11)


def _python() -> Check:
    from kamado.api.preflight import Check

    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "FAIL", f"{version}; kamado needs Python 3.11 or newer")
    return Check("python", "ok", f"{version} ({sys.executable})")


def _kamado() -> Check:
    from kamado.api.preflight import Check, kamado_version

    return Check("kamado", "ok", f"{kamado_version()} ({Path(__file__).resolve().parents[1]})")


def _server(settings: Settings) -> Check:
    """The server the SDK and CLI would talk to: KAMADO_URL, else the one recorded in KAMADO_HOME."""
    from kamado.api.preflight import Check
    from kamado.sdk.local_server import running_server_url

    url = os.environ.get("KAMADO_URL")
    if not url:
        local = running_server_url(settings.home)
        if local is None:
            return Check(
                "server",
                "warn",
                f"no server running for {settings.home}; `kamado server` starts one "
                "(the SDK also starts one on first use)",
            )
        url = local
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthz", timeout=3.0)
    except httpx.HTTPError as exc:
        return Check("server", "FAIL", f"{url} does not answer ({type(exc).__name__}); check KAMADO_URL")
    if response.status_code != 200:
        return Check("server", "FAIL", f"{url}/healthz answered HTTP {response.status_code}")
    return Check("server", "ok", f"{url} answers /healthz")


def _extra(module: str, purpose: str, *, needed: bool) -> Check:
    from kamado.api.preflight import Check

    if importlib.util.find_spec(module) is not None:
        return Check(f"extra {module}", "ok", f"installed ({purpose})")
    if needed:
        return Check(f"extra {module}", "FAIL", f"not installed but configured; pip install 'kamado[{purpose}]'")
    return Check(f"extra {module}", "warn", f"not installed (only needed for {purpose})")


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a request meets the parts; each is independent of the others' results."""
    from kamado.api import preflight

    checks = [_python(), _kamado(), _server(settings)]
    if settings.database_url.startswith(("postgresql", "postgres://")):
        checks.append(preflight.check_tcp("postgresql", settings.database_url, 5432))
    checks.append(preflight.check_database(settings.database_url))
    is_s3 = settings.artifacts_url.startswith("s3://")
    if is_s3:
        endpoint = _s3_endpoint(settings.artifacts_url)
        if endpoint:
            checks.append(preflight.check_tcp("s3 endpoint", endpoint, 443 if endpoint.startswith("https") else 80))
    checks.append(preflight.check_artifacts(settings.artifacts_url))
    if settings.executor == "ray":
        checks.append(preflight.check_ray(settings))
    checks.append(preflight.check_executor(settings))
    checks.append(_extra("s3fs", "s3", needed=is_s3))
    checks.append(_extra("ray", "ray", needed=settings.executor == "ray"))
    return checks


def _s3_endpoint(url: str) -> str | None:
    try:
        from kamado.api.preflight import s3_endpoint

        return s3_endpoint(url)
    except Exception:  # a malformed URL: the artifact store check reports it properly
        return None


@app.command()
def doctor(
    home: Annotated[Path | None, typer.Option(help="KAMADO_HOME to check (default: the usual one).")] = None,
    database_url: Annotated[str | None, typer.Option(help="Check this database instead of the configured one.")] = None,
    artifacts: Annotated[
        str | None, typer.Option(help="Check this artifact store instead of the configured one.")
    ] = None,
    executor: Annotated[str | None, typer.Option(help="Check this executor instead of the configured one.")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Check this Ray cluster (HOST:PORT) instead.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Check Python, the server, the metadata and artifact stores, the executor and extras; exit 1 on FAIL."""
    from kamado.core.settings import Settings

    settings = Settings.from_env(
        home=home, database_url=database_url, artifacts_url=artifacts, executor=executor, ray_address=ray_address
    )
    checks = run_checks(settings)
    failed = any(c.status == "FAIL" for c in checks)
    if output == "json":
        data: dict[str, Any] = {"ok": not failed, "checks": [c.to_json() for c in checks]}
        _print_json(data)
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            console.print(f"[{_COLOURS[c.status]}]{c.status:<4}[/]  {c.name:<{width}}  ", end="")
            console.print(c.detail, markup=False)
    if failed:
        raise typer.Exit(code=1)
