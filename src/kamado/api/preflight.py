"""Checks that the server's dependencies answer: run at start-up and by ``kamado doctor``.

Why a separate step: without it an unreachable PostgreSQL or a bucket that does not exist shows up as a
50-line traceback from deep inside SQLAlchemy or botocore, or worse, only at the first job. Each check
here says in one line what it found and, when something is wrong, what to check next. Nothing here
prints or returns a password or a secret key: database URLs are shown with the password masked.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from kamado.core.errors import KamadoError, ServiceUnavailable
from kamado.core.settings import Settings

Status = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True)
class Check:
    """One line of ``kamado doctor``: what was checked, how it went, and what was found."""

    name: str
    status: Status
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kamado_version() -> str:
    """The version of the kamado that runs these checks (the CLI may not import ``kamado`` itself)."""
    import kamado

    return kamado.__version__


def shown_database_url(url: str) -> str:
    """The database URL with its password masked (safe for logs and error messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show only its scheme
        return url.split("://", 1)[0] + "://..."


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split()) or type(orig).__name__
    return text[:300]


def check_database(url: str, *, timeout_s: float = 5.0) -> Check:
    """Connect, then compare the schema revision with the newest migration this kamado ships."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    from kamado.store.sql import normalise_url

    shown = shown_database_url(url)
    full = normalise_url(url)
    if full.startswith("sqlite"):
        path = full.split("sqlite:///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return Check("metadata store", "ok", f"SQLite {path} does not exist yet; the server creates it")
        connect_args: dict[str, Any] = {"timeout": timeout_s}
    elif full.startswith("postgresql"):
        connect_args = {"connect_timeout": max(1, int(timeout_s))}
    else:
        return Check("metadata store", "FAIL", f"{shown}: unsupported scheme; use sqlite:///path or postgresql://...")
    engine = sa.create_engine(full, connect_args=connect_args, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            version = conn.dialect.server_version_info
    except Exception as exc:
        return Check(
            "metadata store",
            "FAIL",
            f"cannot connect to {shown} ({_first_line(exc).rstrip('.')}); check that the database server runs and is "
            "reachable from here, and the host, port, database name, user and password in "
            "--database-url / KAMADO_DATABASE_URL",
        )
    finally:
        engine.dispose()
    head = _migration_head()
    kind = "PostgreSQL" if full.startswith("postgresql") else "SQLite"
    where = f"{kind} {'.'.join(map(str, version or ()))} at {shown}"
    if current == head:
        return Check("metadata store", "ok", f"{where}, schema at head {head}")
    if current is None:
        return Check("metadata store", "ok", f"{where}, empty: the server creates the schema at start")
    if current in _known_revisions():
        return Check("metadata store", "warn", f"{where}, schema at {current}: the server migrates it to {head}")
    return Check(
        "metadata store",
        "FAIL",
        f"{where}, schema at {current}, which this kamado does not know (newer kamado?); upgrade kamado",
    )


def _script() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import kamado.store

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(kamado.store.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg)


def _migration_head() -> str:
    return str(_script().get_current_head())


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def check_artifacts(url: str) -> Check:
    """Write, read back and delete a small probe object (what every job does, in miniature)."""
    from kamado.artifacts.factory import open_artifact_store

    try:
        store = open_artifact_store(url)
        key = f"kamado-probe-{secrets.token_hex(8)}"
        payload = b"kamado doctor probe\n"
        store.put_bytes(key, payload)
        try:
            if store.get_bytes(key) != payload:
                return Check("artifact store", "FAIL", f"{store.root_uri}: the probe object read back differently")
        finally:
            store.delete(key)
    except KamadoError as exc:
        return Check("artifact store", "FAIL", exc.message)
    except OSError as exc:
        return Check("artifact store", "FAIL", f"{url}: {exc.strerror or exc}; check the directory and its rights")
    return Check("artifact store", "ok", f"{store.root_uri}: wrote, read and deleted a probe object")


def check_tcp(name: str, url: str, default_port: int, *, timeout_s: float = 3.0) -> Check:
    """Whether something accepts TCP connections at the URL's host and port (before any protocol)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or default_port
    if not host:
        return Check(name, "FAIL", f"no host in {name} URL")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        return Check(name, "FAIL", f"{host}:{port} does not accept connections ({exc.strerror or exc})")
    return Check(name, "ok", f"{host}:{port} accepts connections")


def s3_endpoint(url: str) -> str | None:
    """The endpoint an ``s3://`` artifact URL talks to (its query, else KAMADO_S3_ENDPOINT_URL), if any."""
    from kamado.artifacts.s3 import parse_s3_url  # plain parsing: does not import s3fs

    return parse_s3_url(url)["endpoint_url"]


def check_executor(settings: Settings) -> Check:
    """The executor the server would use, and what it can run at once."""
    from kamado.api.platform import make_executor

    try:
        executor = make_executor(settings)
        cap = executor.capacity()
    except KamadoError as exc:
        return Check("executor", "FAIL", exc.message)
    memory = f"{cap.memory_mb / 1024:.1f} GiB" if cap.memory_mb else "unknown memory"
    detail = f"{settings.executor}: {cap.cpus:g} CPUs, {memory}, {cap.gpus} GPUs"
    task_user = executor.capabilities.task_user if settings.executor == "local" else None
    return Check("executor", "ok", detail + (f"; tasks run as {task_user}" if task_user else ""))


def check_ray(settings: Settings) -> Check:
    """The Ray cluster of the Ray executor: installed, reachable, and the same Ray and Python as here."""
    import importlib.util

    address = settings.ray_address
    if not address:
        return Check("ray cluster", "FAIL", "no address; give --ray-address HOST:PORT or KAMADO_RAY_ADDRESS")
    if importlib.util.find_spec("ray") is None:
        return Check("ray cluster", "FAIL", "ray is not installed here; pip install 'kamado[ray]'")
    from kamado.compute.ray_client import probe
    from kamado.compute.ray_executor import RayExecutor

    why = probe(address)
    if why is not None:
        return Check("ray cluster", "FAIL", f"{why}; check the address and that the head node runs (`ray status`)")
    executor = RayExecutor(address, settings.home / "ray-tasks")
    try:
        hello = executor.hello()
    except KamadoError as exc:
        return Check("ray cluster", "FAIL", exc.message)
    finally:
        executor.close()
    ours = (hello.get("ray_version"), _minor(hello.get("python_version")))
    theirs = (hello.get("cluster_ray_version"), _minor(hello.get("cluster_python_version")))
    where = (
        f"{address}: {hello.get('nodes')} node(s), Ray {ours[0]} (cluster {theirs[0]}), "
        f"Python {hello.get('python_version')} (cluster {hello.get('cluster_python_version')})"
    )
    if theirs[0] and theirs != ours:
        return Check("ray cluster", "FAIL", f"{where}; install the cluster's Ray and Python versions here")
    return Check("ray cluster", "ok", where)


def _minor(version: object) -> str:
    return ".".join(str(version or "").split(".")[:2])


def require_reachable(settings: Settings) -> None:
    """Refuse to start, with one paragraph saying what and where, if the stores or the cluster do not answer."""
    checks = [check_database(settings.database_url), check_artifacts(settings.artifacts_url)]
    if settings.executor == "ray":
        checks.append(check_ray(settings))
    failed = [c for c in checks if c.status == "FAIL"]
    if failed:
        lines = "; ".join(f"the {c.name} failed: {c.detail}" for c in failed)
        flags = "flags --database-url and --artifacts, or KAMADO_DATABASE_URL and KAMADO_ARTIFACTS"
        if settings.executor == "ray":
            flags = (
                "flags --database-url, --artifacts and --ray-address, or KAMADO_DATABASE_URL, KAMADO_ARTIFACTS "
                "and KAMADO_RAY_ADDRESS"
            )
        raise ServiceUnavailable(
            f"kamado server cannot start: {lines}. Fix the configuration ({flags}) and start it again; "
            "`kamado doctor` checks each part.",
            details=[c.to_json() for c in failed],
        )
