"""`kamado doctor` against real parts: a live server, SQLite/PostgreSQL, a directory or S3 (moto)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kamado.cli.main import app
from tests.live_server import LiveServer
from tests.scaleout.s3server import S3Server, s3_server  # noqa: F401

runner = CliRunner()


def _doctor(*args: str, **env: str | None) -> tuple[int, str]:
    base: dict[str, str | None] = {
        "KAMADO_URL": None,
        "KAMADO_DATABASE_URL": None,
        "KAMADO_ARTIFACTS": None,
        "KAMADO_S3_ENDPOINT_URL": None,
    }
    result = runner.invoke(app, ["doctor", *args], env={**base, **env})
    return result.exit_code, result.output


def _checks(output: str) -> dict[str, dict[str, Any]]:
    data = json.loads(output)
    return {c["name"]: c for c in data["checks"]}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthy_local_setup_exits_0(live: LiveServer) -> None:
    code, out = _doctor("--home", str(live.home), KAMADO_URL=live.url)
    assert code == 0, out
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}
    assert lines["python"] == lines["kamado"] == lines["server"] == "ok"
    assert "FAIL" not in out
    code, out = _doctor("--home", str(live.home), "--output", "json", KAMADO_URL=live.url)
    assert code == 0
    assert json.loads(out)["ok"] is True
    checks = _checks(out)
    assert checks["server"]["detail"] == f"{live.url} answers /healthz"
    assert checks["metadata store"]["status"] == "ok"
    assert "schema at head" in checks["metadata store"]["detail"]  # the live server migrated it
    assert checks["artifact store"]["status"] == "ok"
    assert "probe object" in checks["artifact store"]["detail"]
    assert checks["executor"]["detail"].startswith("local: ")
    assert {"extra s3fs", "extra ray"} <= set(checks)
    assert not [p for p in (live.home / "artifacts").rglob("kamado-probe-*")]


def test_bad_database_url_is_a_fail_line_and_exit_1(tmp_path: Path) -> None:
    url = f"postgresql://kamado:hunter2@127.0.0.1:{_closed_port()}/meta"
    code, out = _doctor("--home", str(tmp_path), "--database-url", url)
    assert code == 1
    fail_lines = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert any("metadata store" in line and "cannot connect" in line for line in fail_lines), out
    assert any("postgresql" in line and "does not accept connections" in line for line in fail_lines), out
    assert "hunter2" not in out
    code, out = _doctor("--home", str(tmp_path), "--database-url", url, "-o", "json")
    assert code == 1
    assert json.loads(out)["ok"] is False
    assert _checks(out)["metadata store"]["status"] == "FAIL"


def test_unreachable_server_url_fails(tmp_path: Path) -> None:
    code, out = _doctor("--home", str(tmp_path), "-o", "json", KAMADO_URL=f"http://127.0.0.1:{_closed_port()}")
    assert code == 1
    assert _checks(out)["server"]["status"] == "FAIL"


def test_no_local_server_is_only_a_warning(tmp_path: Path) -> None:
    code, out = _doctor("--home", str(tmp_path), "-o", "json")
    assert code == 0
    assert _checks(out)["server"]["status"] == "warn"


def test_postgresql_metadata_store(tmp_path: Path, pg_url: str) -> None:
    code, out = _doctor("--home", str(tmp_path), "--database-url", pg_url, "-o", "json")
    assert code == 0, out
    checks = _checks(out)
    assert checks["postgresql"]["status"] == "ok"
    assert checks["metadata store"]["detail"].startswith("PostgreSQL ")
    assert "creates the schema" in checks["metadata store"]["detail"]  # a brand-new database


def test_s3_artifact_store(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    prefix = s3_server.new_prefix()
    code, out = _doctor(
        "--home",
        str(tmp_path),
        "--artifacts",
        f"s3://{s3_server.bucket}/{prefix}",
        "-o",
        "json",
        KAMADO_S3_ENDPOINT_URL=s3_server.endpoint,
    )
    assert code == 0, out
    checks = _checks(out)
    assert checks["s3 endpoint"]["status"] == "ok"
    assert checks["artifact store"]["detail"].startswith(f"s3://{s3_server.bucket}/{prefix}: wrote, read")
    assert checks["extra s3fs"]["status"] == "ok"
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    assert listed.get("KeyCount", 0) == 0  # the probe was deleted


def test_missing_bucket_fails(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    url = f"s3://not-a-bucket/p?endpoint_url={s3_server.endpoint}"
    code, out = _doctor("--home", str(tmp_path), "--artifacts", url)
    assert code == 1
    assert any(
        line.startswith("FAIL") and "artifact store" in line and "does not exist" in line for line in out.splitlines()
    ), out


def test_doctor_runs_as_a_real_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kamado", "doctor", "--home", str(tmp_path), "--database-url", "mysql://x/y"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "unsupported scheme" in result.stdout


@pytest.mark.parametrize("flag", ["--database-url", "--artifacts", "--executor"])
def test_server_has_the_configuration_flags(flag: str) -> None:
    result = runner.invoke(app, ["server", "--help"], env={"COLUMNS": "200"})
    assert flag in result.output
