"""Server and client settings, read once from the environment.

Everything has a default that works on a laptop with nothing set up: metadata in SQLite and
artifacts in a directory, both under ``KAMADO_HOME`` (``~/.kamado``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"


def kamado_home() -> Path:
    return Path(os.environ.get("KAMADO_HOME") or Path.home() / ".kamado").expanduser().resolve()


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path
    database_url: str
    artifacts_url: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    executor: str = "local"
    #: The Ray cluster's head (GCS) ``host:port`` for ``executor="ray"``.
    ray_address: str | None = None
    max_cpus: float | None = None
    max_memory_mb: int | None = None
    reconcile_interval_s: float = 0.2
    max_request_bytes: int = 1 << 20
    #: Grace between SIGTERM and SIGKILL when a job is stopped (SageMaker waits 120 s).
    stop_grace_s: float = 120.0
    #: Per-task process-count ceiling (a fork-bomb backstop; the kernel does not apply it to root).
    max_processes: int = 8192
    #: Private ``/opt/ml`` per job: "auto" (use it where the kernel allows), "require", "off".
    opt_ml_namespace: str = "auto"
    #: Where the inference router (the data plane) listens; port 0 picks a free one at its first start.
    router_host: str = DEFAULT_HOST
    router_port: int = 0
    #: API tokens: "auto" (required unless bound to loopback), "required", "off" (loopback only).
    auth: str = "auto"
    #: Host names the API answers to (comma-separated, ``*`` = any); empty: loopback names where no
    #: token is needed, any name where tokens are required (see api/hosts.py).
    allowed_hosts: str = ""
    #: Who the local executor runs tasks as: "auto" (``nobody`` when the server runs as root, else the server's
    #: own user), a user name or ``uid[:gid]``, or "root" to keep a root server's tasks as root.
    worker_user: str = "auto"
    region: str = "local"
    account: str = "000000000000"

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        home = Path(str(overrides.pop("home", None) or kamado_home()))
        env = os.environ
        values: dict[str, object] = {
            "home": home,
            "database_url": env.get("KAMADO_DATABASE_URL") or f"sqlite:///{home / 'kamado.db'}",
            "artifacts_url": env.get("KAMADO_ARTIFACTS") or str(home / "artifacts"),
            "host": env.get("KAMADO_HOST", DEFAULT_HOST),
            "port": int(env.get("KAMADO_PORT", DEFAULT_PORT)),
            "executor": env.get("KAMADO_EXECUTOR", "local"),
            "ray_address": env.get("KAMADO_RAY_ADDRESS") or None,
            "opt_ml_namespace": env.get("KAMADO_OPT_ML_NAMESPACE", "auto"),
            "router_host": env.get("KAMADO_ROUTER_HOST", DEFAULT_HOST),
            "router_port": int(env.get("KAMADO_ROUTER_PORT", "0")),
            "auth": env.get("KAMADO_AUTH", "auto"),
            "allowed_hosts": env.get("KAMADO_ALLOWED_HOSTS", ""),
            "worker_user": env.get("KAMADO_WORKER_USER") or "auto",
        }
        if env.get("KAMADO_MAX_CPUS"):
            values["max_cpus"] = float(env["KAMADO_MAX_CPUS"])
        if env.get("KAMADO_MAX_MEMORY_MB"):
            values["max_memory_mb"] = int(env["KAMADO_MAX_MEMORY_MB"])
        if env.get("KAMADO_MAX_PROCESSES"):
            values["max_processes"] = int(env["KAMADO_MAX_PROCESSES"])
        if env.get("KAMADO_STOP_GRACE_S"):
            values["stop_grace_s"] = float(env["KAMADO_STOP_GRACE_S"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
