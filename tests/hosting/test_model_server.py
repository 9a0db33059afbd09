"""The worker as the control plane runs it: a real process, real HTTP on loopback, real signals."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
LABELS = [0, 2]
JSON = {"Content-Type": "application/json"}

#: A user predict_fn with two sentinel inputs: -1 raises, -2 announces itself in a file and takes 1 s.
INFERENCE = """
import os
import time
from pathlib import Path

def predict_fn(input_data, model):
    if input_data[0][0] == -1:
        raise ValueError("the model refuses negative sepals")
    if input_data[0][0] == -2:
        Path(os.environ["STARTED_MARKER"]).touch()
        time.sleep(1)
    return model.predict(input_data)
"""


@dataclass(frozen=True)
class Worker:
    process: subprocess.Popen[bytes]
    url: str
    stderr: Path

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/invocations", content=body, headers=headers or {}, timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    return env | extra


def command(model_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kamado.hosting.model_server", "--model-dir", str(model_dir), *args]


def wait_until_ready(process: subprocess.Popen[bytes], url: str, stderr: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"model server exited {process.returncode}: {stderr.read_text()}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail(f"model server not ready after 30 s: {stderr.read_text()}")


@contextmanager
def running_worker(model_dir: Path, logs: Path, env: dict[str, str], port_flag: bool = True) -> Iterator[Worker]:
    """A started worker that is killed on the way out, whatever the test did to it."""
    port = free_port()
    if not port_flag:
        env = env | {"SAGEMAKER_BIND_TO_PORT": str(port)}
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / "stdout", logs / "stderr"
    args = ["--port", str(port)] if port_flag else []
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command(model_dir, *args), env=env, stdout=out, stderr=err)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(process, url, stderr)
        yield Worker(process, url, stderr)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("model")
    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), directory / "model.joblib")
    (directory / "code").mkdir()
    (directory / "code" / "inference.py").write_text(INFERENCE)
    return directory


@pytest.fixture(scope="module")
def worker(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    logs = tmp_path_factory.mktemp("logs")
    with running_worker(model_dir, logs, worker_env(STARTED_MARKER=str(logs / "started"))) as started:
        yield started


def npy(array: object) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def test_ping_is_200_and_empty(worker: Worker) -> None:
    response = httpx.get(f"{worker.url}/ping")
    assert (response.status_code, response.content) == (200, b"")


def test_startup_line(worker: Worker) -> None:
    stdout = (worker.stderr.parent / "stdout").read_text()
    assert stdout.startswith("kamado model server: model loaded from ")
    assert stdout.rstrip().endswith(f"listening on {worker.url}")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(ROWS).encode(), "application/json"),
        (json.dumps({"instances": ROWS}).encode(), "application/json; charset=utf-8"),
        (b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv"),
        (npy(ROWS), "application/x-npy"),
    ],
)
def test_each_content_type(worker: Worker, body: bytes, content_type: str) -> None:
    response = worker.post(body, {"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == LABELS


@pytest.mark.parametrize(
    ("accept", "decode"),
    [
        ("text/csv", lambda content: [int(line) for line in content.decode().splitlines()]),
        ("application/x-npy", lambda content: np.load(io.BytesIO(content)).tolist()),
        ("*/*", json.loads),
    ],
)
def test_each_accept(worker: Worker, accept: str, decode: object) -> None:
    response = worker.post(json.dumps(ROWS).encode(), JSON | {"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == ("application/json" if accept == "*/*" else accept)
    assert decode(response.content) == LABELS  # type: ignore[operator]


def test_user_code_exception_is_500_with_its_message(worker: Worker) -> None:
    response = worker.post(b"[[-1, 0, 0, 0]]", JSON)
    assert response.status_code == 500
    assert response.text == "ValueError: the model refuses negative sepals"
    assert "Traceback" in worker.stderr.read_text()


@pytest.mark.parametrize(
    ("status", "body", "headers", "needle"),
    [
        (415, b"hello", {"Content-Type": "text/plain"}, "'text/plain' is not supported"),
        (406, b"[[1, 2, 3, 4]]", JSON | {"Accept": "application/xml"}, "'application/xml' is not supported"),
        (400, b"1,2,x,4", {"Content-Type": "text/csv"}, "could not convert string to float"),
    ],
)
def test_refused_requests(worker: Worker, status: int, body: bytes, headers: dict[str, str], needle: str) -> None:
    response = worker.post(body, headers)
    assert response.status_code == status
    assert needle in response.text


def test_bodies_over_6_mb_are_413(worker: Worker) -> None:
    body = b"0" * (7 * 1024 * 1024)
    assert worker.post(body, JSON).status_code == 413
    chunked = httpx.post(f"{worker.url}/invocations", content=iter([body[:4_000_000], body[4_000_000:]]), timeout=30)
    assert chunked.status_code == 413
    assert worker.post(json.dumps(ROWS).encode(), JSON).status_code == 200


def test_other_paths_and_methods(worker: Worker) -> None:
    assert httpx.get(f"{worker.url}/models").status_code == 404
    assert httpx.get(f"{worker.url}/invocations").status_code == 405


def test_sigterm_finishes_the_request_in_flight_and_exits_0(model_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    env = worker_env(STARTED_MARKER=str(marker))
    with running_worker(model_dir, tmp_path, env, port_flag=False) as worker, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(worker.post, b"[[-2, 3.5, 1.4, 0.2]]", JSON)
        deadline = time.monotonic() + 10
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), worker.stderr.read_text()
        worker.process.send_signal(signal.SIGTERM)
        response = slow.result(timeout=30)
        assert (response.status_code, response.json()) == (200, [0])
        assert worker.process.wait(timeout=30) == 0


def test_failing_model_fn_exits_1_with_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(
        textwrap.dedent(
            """
            def model_fn(model_dir):
                raise RuntimeError("weights are corrupt")
            """
        )
    )
    done = subprocess.run(
        command(tmp_path, "--port", str(free_port())), env=worker_env(), capture_output=True, timeout=60
    )
    assert done.returncode == 1
    stderr = done.stderr.decode()
    assert "Traceback" in stderr
    assert "RuntimeError: weights are corrupt" in stderr


def test_missing_explicit_program_exits_non_zero_with_a_clear_message(model_dir: Path) -> None:
    env = worker_env(SAGEMAKER_PROGRAM="serve.py")
    done = subprocess.run(command(model_dir, "--port", str(free_port())), env=env, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert "SAGEMAKER_PROGRAM='serve.py' was not found" in done.stderr.decode()
