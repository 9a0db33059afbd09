"""`kamado server` refuses to start, with one clear paragraph and no traceback, when a store is unreachable.

Real subprocesses, exactly as a user starts the server; the S3 cases talk to moto over HTTP.
"""

from __future__ import annotations

import socket
from pathlib import Path

from tests.scaleout.s3server import FAKE_ENV, S3Server, s3_server  # noqa: F401
from tests.scaleout.server_proc import run_server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_one_clear_paragraph(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr, stderr
    text = " ".join(stderr.split())
    assert "ServiceUnavailable: kamado server cannot start" in text, stderr
    for needle in needles:
        assert needle in text, f"{needle!r} not in: {stderr}"
    assert "kamado doctor" in text


def test_unreachable_database_flag(tmp_path: Path) -> None:
    url = f"postgresql://kamado:hunter2@127.0.0.1:{_closed_port()}/meta"
    result = run_server(tmp_path / "home", "--database-url", url)
    assert result.returncode == 1
    _assert_one_clear_paragraph(result.stderr, "the metadata store failed", "cannot connect to postgresql://")
    assert "hunter2" not in result.stderr + result.stdout  # the password is masked
    assert not (tmp_path / "home" / "server.json").exists()


def test_unreachable_database_variable(tmp_path: Path) -> None:
    url = f"postgresql://kamado@127.0.0.1:{_closed_port()}/meta"
    result = run_server(tmp_path / "home", KAMADO_DATABASE_URL=url)
    assert result.returncode == 1
    _assert_one_clear_paragraph(result.stderr, "the metadata store failed", "KAMADO_DATABASE_URL")


def test_missing_bucket(tmp_path: Path, s3_server: S3Server) -> None:  # noqa: F811
    artifacts = f"s3://no-such-bucket/kamado?endpoint_url={s3_server.endpoint}"
    result = run_server(tmp_path / "home", "--artifacts", artifacts, **FAKE_ENV)
    assert result.returncode == 1
    _assert_one_clear_paragraph(result.stderr, "the artifact store failed", "'no-such-bucket' does not exist")


def test_unreachable_s3_endpoint(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    result = run_server(
        tmp_path / "home", KAMADO_ARTIFACTS="s3://bucket/kamado", KAMADO_S3_ENDPOINT_URL=dead, **FAKE_ENV
    )
    assert result.returncode == 1
    _assert_one_clear_paragraph(result.stderr, "the artifact store failed", f"endpoint {dead} cannot be reached")
    assert FAKE_ENV["AWS_SECRET_ACCESS_KEY"] not in result.stderr


def test_bad_artifact_url_is_a_validation_error(tmp_path: Path) -> None:
    result = run_server(tmp_path / "home", "--artifacts", "s3://key:secret@bucket/p")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "credentials in the URL are not accepted" in " ".join(result.stderr.split())
    assert "secret@" not in result.stderr


def test_home_flag_keeps_the_configured_database(tmp_path: Path) -> None:
    """`--home` moves the defaults only: KAMADO_DATABASE_URL still names the database."""
    url = f"postgresql://kamado@127.0.0.1:{_closed_port()}/meta"
    result = run_server(tmp_path / "x", "--home", str(tmp_path / "home"), KAMADO_DATABASE_URL=url)
    assert result.returncode == 1
    _assert_one_clear_paragraph(result.stderr, "the metadata store failed", f"127.0.0.1:{url.split(':')[2]}")
    assert not (tmp_path / "home" / "kamado.db").exists()
