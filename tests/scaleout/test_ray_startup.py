"""`kamado server --executor ray` refuses to start, quickly and in one paragraph, when the cluster is not there."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.scaleout.server_proc import run_server

pytest.importorskip("ray", reason="the Ray executor needs ray: pip install 'kamado[ray]'")


def test_unreachable_ray_address_exits_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_server(tmp_path / "home", "--executor", "ray", "--ray-address", "127.0.0.1:1", timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert "Traceback" not in result.stderr
    text = " ".join(result.stderr.split())
    assert "ServiceUnavailable: kamado server cannot start: the ray cluster failed" in text, result.stderr
    assert "the Ray cluster at 127.0.0.1:1 does not accept connections" in text
    assert "--ray-address" in text and "kamado doctor" in text
    assert not (tmp_path / "home" / "server.json").exists()


def test_ray_executor_without_an_address_is_refused(tmp_path: Path) -> None:
    result = run_server(tmp_path / "home", "--executor", "ray", timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "no address; give --ray-address HOST:PORT or KAMADO_RAY_ADDRESS" in " ".join(result.stderr.split())
