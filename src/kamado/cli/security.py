"""``kamado tokens``, ``kamado secrets``, ``kamado principals`` and ``kamado audit``, thin over the SDK.

Secret values are read from a file or standard input (hidden prompt on a terminal), never from the
command line, where shell history and ``ps`` would keep them.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kamado.cli.main import Output, OutputOpt, _print_json, _session, app, console, err_console

tokens = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
secrets = typer.Typer(
    help="Encrypted secrets: create, rotate, list, describe, delete, rotate-key.", no_args_is_help=True
)
principals = typer.Typer(help="Users and service accounts, and their roles.", no_args_is_help=True)
app.add_typer(tokens, name="tokens")
app.add_typer(secrets, name="secrets")
app.add_typer(principals, name="principals")
projects = typer.Typer(help="Projects: create, list (resources live in one; see --project).", no_args_is_help=True)
app.add_typer(projects, name="projects")


def _when(ts: Any) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[dict[str, Any]], columns: list[str], output: Output, times: tuple[str, ...] = ()) -> None:
    if output == "json":
        _print_json(rows)
        return
    table = Table(*columns)
    for r in rows:
        table.add_row(
            *[_when(r.get(c)) if c in times else str(r.get(c) if r.get(c) is not None else "") for c in columns]
        )
    console.print(table)


# -- tokens -----------------------------------------------------------------------------------------------
@tokens.command("create")
def tokens_create(
    principal: Annotated[str | None, typer.Option(help="Who the token is for (default: yourself).")] = None,
    expires_in: Annotated[int | None, typer.Option(min=1, help="Lifetime in seconds (default: no expiry).")] = None,
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    role: Annotated[
        str | None, typer.Option(help="Limit the token to this role (viewer, editor, admin, invoker).")
    ] = None,
    project: Annotated[str, typer.Option(help="With --role: the project the limit applies to.")] = "default",
    resource: Annotated[str, typer.Option(help="With --role: a resource name pattern, e.g. 'prod-*'.")] = "*",
    output: OutputOpt = Output.table,
) -> None:
    """Create a token. Its value is printed once: kamado keeps only a salted hash. With --role the token is
    limited to that role (within its principal's rights), e.g. a read-only token for a dashboard."""
    scope = [{"Project": project, "Role": role, "Resource": resource}] if role else None
    with _session() as c:
        rec = c.create_token(principal=principal, expires_in_s=expires_in, description=description, role_bindings=scope)
    if output == "json":
        _print_json(rec)
        return
    err_console.print(f"Token {rec['TokenId']} for {rec['Principal']} (shown once; store it now):")
    sys.stdout.write(rec["Token"] + "\n")


@tokens.command("list")
def tokens_list(output: OutputOpt = Output.table) -> None:
    with _session() as c:
        rows = c.list_tokens()
    cols = ["TokenId", "Principal", "Description", "CreationTime", "ExpirationTime", "RevocationTime"]
    _table(rows, cols, output, times=("CreationTime", "ExpirationTime", "RevocationTime"))


@tokens.command("revoke")
def tokens_revoke(token_id: Annotated[str, typer.Argument(help="The TokenId (not the token value).")]) -> None:
    """Revoke a token; it stops working at once."""
    with _session() as c:
        c.revoke_token(token_id)
    console.print(f"Revoked {token_id}.")


# -- secrets ----------------------------------------------------------------------------------------------
def _read_value(value_file: Path | None) -> str:
    if value_file is not None:
        return value_file.read_text().rstrip("\n")
    if sys.stdin.isatty():
        return str(typer.prompt("Secret value", hide_input=True, confirmation_prompt=True))
    return sys.stdin.read().rstrip("\n")


ValueFile = Annotated[
    Path | None,
    typer.Option("--value-file", exists=True, dir_okay=False, help="Read the value from this file (default: stdin)."),
]


@secrets.command("create")
def secrets_create(
    name: str,
    value_file: ValueFile = None,
    description: Annotated[str, typer.Option()] = "",
    output: OutputOpt = Output.table,
) -> None:
    """Store a new secret, encrypted; reference it in a job as {{resolve:secretsmanager:NAME}}."""
    value = _read_value(value_file)
    with _session() as c:
        meta = c.create_secret(name, value, description=description)
    _print_json(meta) if output == "json" else console.print(f"Created {name} (version {meta['Version']}).")


@secrets.command("rotate")
def secrets_rotate(name: str, value_file: ValueFile = None, output: OutputOpt = Output.table) -> None:
    """Store a new version of a secret; jobs started from now on receive it."""
    value = _read_value(value_file)
    with _session() as c:
        meta = c.rotate_secret(name, value)
    _print_json(meta) if output == "json" else console.print(f"Rotated {name} (version {meta['Version']}).")


@secrets.command("list")
def secrets_list(output: OutputOpt = Output.table) -> None:
    with _session() as c:
        rows = c.list_secrets()
    _table(rows, ["Name", "Version", "Description", "LastModifiedTime"], output, times=("LastModifiedTime",))


@secrets.command("describe")
def secrets_describe(name: str) -> None:
    """A secret's metadata (never its value)."""
    with _session() as c:
        _print_json(c.describe_secret(name))


@secrets.command("delete")
def secrets_delete(name: str) -> None:
    with _session() as c:
        c.delete_secret(name)
    console.print(f"Deleted {name}.")


@secrets.command("rotate-key")
def secrets_rotate_key() -> None:
    """Re-encrypt every secret under a new master key (admin only)."""
    with _session() as c:
        out = c.rotate_master_key()
    console.print(f"Master key is now {out['KeyId']}; {out['ReencryptedVersions']} secret version(s) re-encrypted.")


# -- principals -------------------------------------------------------------------------------------------
@principals.command("create")
def principals_create(
    name: str,
    role: Annotated[str | None, typer.Option(help="viewer, editor, admin or invoker.")] = None,
    project: Annotated[str, typer.Option()] = "default",
    resource: Annotated[str, typer.Option(help="Resource name pattern, e.g. 'prod-*'.")] = "*",
    service_account: Annotated[bool, typer.Option(help="A service account rather than a user.")] = False,
) -> None:
    bindings = [{"Project": project, "Role": role, "Resource": resource}] if role else []
    with _session() as c:
        c.create_principal(name, type="ServiceAccount" if service_account else "User", role_bindings=bindings)
    console.print(f"Created {name}; mint its token with `kamado tokens create --principal {name}`.")


@principals.command("list")
def principals_list(output: OutputOpt = Output.table) -> None:
    with _session() as c:
        rows = c.list_principals()
    for r in rows:
        r["Roles"] = ", ".join(f"{b['Role']}@{b['Project']}:{b['Resource']}" for b in r["RoleBindings"])
    _table(rows, ["Name", "Type", "Roles", "CreationTime"], output, times=("CreationTime",))


@projects.command("create")
def projects_create(name: str, description: Annotated[str, typer.Option(help="What the project is for.")] = "") -> None:
    """Create a project (admins); then bind roles on it with `kamado principals create --project NAME`."""
    with _session() as c:
        c.create_project(name, description)
    console.print(f"Created project {name}; act in it with `kamado --project {name} ...` or KAMADO_PROJECT={name}.")


@projects.command("list")
def projects_list(output: OutputOpt = Output.table) -> None:
    with _session() as c:
        rows = c.list_projects()
    _table(rows, ["Name", "Description", "CreationTime"], output, times=("CreationTime",))


# -- audit ------------------------------------------------------------------------------------------------
@app.command("audit")
def audit(
    principal: Annotated[str | None, typer.Option()] = None,
    action: Annotated[str | None, typer.Option(help="e.g. CreateTrainingJob")] = None,
    denied: Annotated[bool, typer.Option(help="Only denied calls.")] = False,
    since: Annotated[float | None, typer.Option(help="Only events in the last SINCE seconds.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """Who did what, when, from where, allowed or denied (newest first)."""
    import itertools
    import time

    params: dict[str, Any] = {"Principal": principal, "Action": action, "MaxResults": min(limit, 100)}
    if denied:
        params["Outcome"] = "Denied"
    if since is not None:
        params["StartTime"] = time.time() - since
    with _session() as c:
        rows = list(itertools.islice(c.iter_audit_events(**params), limit))
    cols = ["EventTime", "Principal", "Action", "Resource", "Project", "Outcome", "HttpStatus", "SourceIp"]
    _table(rows, cols, output, times=("EventTime",))
