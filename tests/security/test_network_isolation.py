"""Worker sandbox: ``EnableNetworkIsolation`` (training) and ``NetworkConfig.EnableNetworkIsolation``
(processing) run the job in a network namespace of its own: its loopback works, the host is unreachable."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import kamado
from tests.live_server import LiveServer, write_script

PROBE = """
import os, socket, sys
port = int(os.environ["HOST_PORT"])
inside = socket.create_server(("127.0.0.1", 0))
print("own loopback works", flush=True)
try:
    socket.create_connection(("127.0.0.1", port), timeout=3)
    print("REACHED THE HOST", flush=True)
except OSError as exc:
    print("host unreachable:", type(exc).__name__, flush=True)
"""


@pytest.fixture
def host_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def _isolation_available(live: LiveServer) -> bool:
    return bool(live.client._request("GET", "/api/v1/info").get("networkIsolation"))


def test_isolated_training_job_cannot_reach_the_host(live: LiveServer, tmp_path: Path, host_port: int) -> None:
    if not _isolation_available(live):
        pytest.skip("this kernel refuses private network namespaces; the refusal is tested below")
    outputs = {}
    for isolated in (True, False):
        est = kamado.Estimator(
            entry_point="train.py",
            source_dir=write_script(tmp_path / f"src-{isolated}", PROBE),
            environment={"HOST_PORT": str(host_port)},
            enable_network_isolation=isolated,
            client=live.client,
        )
        est.fit(wait=True, logs=False)
        job = est.latest_training_job
        assert job is not None and job.describe()["TrainingJobStatus"] == "Completed"
        assert job.describe()["EnableNetworkIsolation"] is isolated
        outputs[isolated] = job.logs()
    assert "own loopback works" in outputs[True] and "host unreachable" in outputs[True]
    assert "REACHED THE HOST" not in outputs[True]
    assert "REACHED THE HOST" in outputs[False], "the same script without isolation does reach it"


def test_isolated_processing_job_cannot_reach_the_host(live: LiveServer, tmp_path: Path, host_port: int) -> None:
    if not _isolation_available(live):
        pytest.skip("this kernel refuses private network namespaces")
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    processor = kamado.ScriptProcessor(
        command=["python3"],
        instance_count=1,
        env={"HOST_PORT": str(host_port)},
        network_config={"EnableNetworkIsolation": True},
        client=live.client,
    )
    processor.run(code=str(script), logs=False)
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    logs = processor.latest_job.logs()
    assert "host unreachable" in logs and "REACHED THE HOST" not in logs


def test_isolation_is_refused_where_the_executor_cannot_give_it() -> None:
    from kamado.core.errors import InvalidSpec
    from kamado.training.service import check_network_isolation

    check_network_isolation(False, False, field="EnableNetworkIsolation")
    check_network_isolation(True, True, field="EnableNetworkIsolation")
    with pytest.raises(InvalidSpec, match="private network namespace") as exc:
        check_network_isolation(True, False, field="NetworkConfig.EnableNetworkIsolation")
    assert exc.value.details == [
        {
            "field": "NetworkConfig.EnableNetworkIsolation",
            "message": "network isolation is not available on this executor",
        }
    ]
