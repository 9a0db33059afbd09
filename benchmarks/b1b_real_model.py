"""B1b real model: a scikit-learn model behind a full kamado endpoint against ``mlflow models serve`` of it.

The model: a ``StandardScaler`` + ``LogisticRegression`` pipeline on scikit-learn's breast-cancer data (30
features), saved with joblib in a ``model.tar.gz``, served by a real kamado endpoint (``python -m kamado server``
on a private home, the model registered and deployed over the API, one model-server instance behind the router,
the default SageMaker handlers: no inference script). The peer, in the same run: ``mlflow models serve
--env-manager local`` of the same pickle (saved with ``mlflow.sklearn.save_model``, cloudpickle format), from a
separate virtual environment (``.venv-bench-mlflow``) that this benchmark creates and fills from PyPI with the
scikit-learn version kamado's environment has; MLflow is never a kamado dependency. If MLflow cannot be
installed the kamado side still runs and the result records ``"peer": null`` with the reason (the smoke mode
never installs it).

Both are sent the same JSON body, one row as ``{"inputs": [[...]]}`` (both servers read that form), from one
client process: keep-alive connections on one uvloop event loop (:class:`LoadGen`, also used by B9 and B10),
1 and 8 connections sending back to back. kamado and MLflow runs are interleaved (A B A B ...) after a warm-up
round, 5 repetitions each; ratios are taken per repetition, then the median. The model's own cost is measured
in process too (``predict`` alone, and kamado's default handler chain without HTTP) as the floor.
Goal (PERFORMANCE.md): >= 2x MLflow's req/s and <= 0.5x its p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import REPO, LocalServer, log, percentile, ratio, smoke, summarize, write_result

NAME = "b1b_real_model"
CONNECTIONS = (1, 8)
GOAL_RPS_RATIO = 2.0
GOAL_P50_RATIO = 0.5
MLFLOW_VENV = REPO / ".venv-bench-mlflow"

# ------------------------------------------------------------------------------------------- the load


#: One finished request: (sent at, done at) on ``time.perf_counter``, the outcome (the status code as text,
#: or ``timeout``, ``reset``, ``refused``), and the response body when the generator keeps bodies.
Record = tuple[float, float, str, bytes | None]


class _Worker:
    __slots__ = ("interval_s", "stopped", "task")

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.stopped = False
        self.task: asyncio.Task[None] | None = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server closes the connection after this response."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    low = head.lower()
    close = b"\r\nconnection: close" in low
    if b"\r\ntransfer-encoding: chunked" in low:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            chunks.append(chunk[:-2])
        return status, b"".join(chunks), close
    at = low.find(b"\r\ncontent-length:")
    if at >= 0:
        return status, await reader.readexactly(int(low[at + 17 :].split(b"\r\n", 1)[0])), close
    return status, (await reader.read() if close else b""), close


class LoadGen:
    """Keep-alive HTTP/1.1 connections POSTing one body, on one event loop (uvloop when installed) in a thread
    of its own, so the caller can watch, resize or poll a control plane meanwhile.

    Every request ends as one :data:`Record`, failures included: a non-2xx answer, a connection the server
    reset or refused (the connection is opened again), or no answer within ``timeout_s``. A connection with
    ``interval_s`` > 0 starts a request at most every ``interval_s`` (paced, never catching up in bursts);
    with 0 it sends back to back. Connect time counts in the latency of the request that needed it.
    """

    def __init__(self, url: str, body: bytes, *, timeout_s: float = 10.0, keep_bodies: bool = False) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.timeout_s = timeout_s
        self.keep_bodies = keep_bodies
        self.records: list[Record] = []
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- control (any thread) ------------------------------------------------------------------------------

    def start(self, connections: int, interval_s: float = 0.0) -> LoadGen:
        ready = threading.Event()

        def main() -> None:
            try:
                import uvloop

                loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            except ImportError:
                loop = asyncio.new_event_loop()
            self._loop = loop
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="bench-load", daemon=True)
        self._thread.start()
        ready.wait(10)
        self.resize(connections, interval_s)
        return self

    def resize(self, connections: int, interval_s: float = 0.0) -> None:
        """Hold ``connections`` connections from now on, all at ``interval_s``."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._resize(connections, interval_s), self._loop).result(10)

    def stop(self) -> LoadGen:
        """Let every connection finish its request in flight, then end the loop and its thread."""
        if self._loop is None:
            return self
        asyncio.run_coroutine_threadsafe(self._resize(0, 0.0), self._loop).result(self.timeout_s + 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        return self

    def run_for(self, connections: int, seconds: float, interval_s: float = 0.0) -> dict[str, Any]:
        """A fixed-length run: the records and the elapsed time, from the first request to the last answer."""
        t0 = time.perf_counter()
        self.start(connections, interval_s)
        time.sleep(seconds)
        self.stop()
        return {"records": self.records, "elapsed_s": time.perf_counter() - t0}

    # -- the loop's side ----------------------------------------------------------------------------------

    async def _resize(self, connections: int, interval_s: float) -> None:
        live = [w for w in self._workers if not w.stopped]
        for w in live:
            w.interval_s = interval_s
        for w in live[connections:]:
            w.stopped = True
        for _ in range(connections - len(live)):
            w = _Worker(interval_s)
            w.task = asyncio.get_running_loop().create_task(self._connection(w))
            self._workers.append(w)
        if connections == 0:
            await asyncio.gather(*(w.task for w in self._workers if w.task is not None), return_exceptions=True)
            self._workers = []

    async def _connection(self, w: _Worker) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        next_at = time.perf_counter()
        records, request, keep = self.records, self.request, self.keep_bodies
        try:
            while not w.stopped:
                if w.interval_s > 0:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        if w.stopped:
                            break
                    next_at = max(next_at + w.interval_s, time.perf_counter())
                t0 = time.perf_counter()
                body: bytes | None = None
                try:
                    async with asyncio.timeout(self.timeout_s):
                        if writer is None or reader is None:
                            reader, writer = await asyncio.open_connection(self.host, self.port)
                        writer.write(request)
                        status, body, close = await _read_response(reader)
                    outcome = str(status)
                except TimeoutError:
                    outcome, close = "timeout", True
                except ConnectionRefusedError:
                    outcome, close = "refused", True
                except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    outcome, close = "reset", True
                records.append((t0, time.perf_counter(), outcome, body if keep else None))
                if close and writer is not None:
                    writer.close()
                    reader = writer = None
                if outcome in ("refused", "reset"):
                    await asyncio.sleep(0.01)  # do not spin on a port nobody listens on
        finally:
            if writer is not None:
                writer.close()


def figures(records: Sequence[Record], elapsed_s: float) -> dict[str, Any]:
    """req/s of successful answers and latency percentiles (ms, successes only); failures by kind."""
    ok = sorted(done - sent for sent, done, outcome, _ in records if outcome.startswith("2"))
    failed = Counter(outcome for _, _, outcome, _ in records if not outcome.startswith("2"))
    return {
        "requests": len(records),
        "failed": sum(failed.values()),
        "failures": dict(failed),
        "rps": len(ok) / elapsed_s if elapsed_s > 0 else 0.0,
        "p50_ms": percentile(ok, 50) * 1000.0 if ok else float("nan"),
        "p99_ms": percentile(ok, 99) * 1000.0 if ok else float("nan"),
        "max_ms": ok[-1] * 1000.0 if ok else float("nan"),
    }


# ------------------------------------------------------------------------------------------ the model


#: B9 and B10's inference script: the same model, with a predict that may sleep, answering which version
#: (the model's ``BENCH_VERSION``) and which instance (kamado sets ``KAMADO_INSTANCE_ID``) served it.
INFERENCE = """
import json, os, time
import joblib

VERSION = os.environ.get("BENCH_VERSION", "v1")
INSTANCE = os.environ.get("KAMADO_INSTANCE_ID", "?")
SLEEP_S = float(os.environ.get("BENCH_SLEEP_S", "0"))

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def predict_fn(data, model):
    if SLEEP_S:
        time.sleep(SLEEP_S)
    return model.predict(data)

def output_fn(prediction, accept):
    return json.dumps({"v": VERSION, "i": INSTANCE, "y": prediction.tolist()}), "application/json"
"""


@dataclass(frozen=True)
class ModelFiles:
    directory: Path
    joblib_path: Path
    archive: Path
    code_dir: Path
    row: list[float]
    body: bytes
    expected: list[int]


def build_model(directory: Path) -> ModelFiles:
    """Fit the benchmark's model, save it with joblib in a ``model.tar.gz``, and write B9/B10's script."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    directory.mkdir(parents=True, exist_ok=True)
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    path = directory / "model.joblib"
    joblib.dump(model, path)
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname="model.joblib")
    code = directory / "code"
    code.mkdir(exist_ok=True)
    (code / "inference.py").write_text(INFERENCE)
    row = [float(v) for v in x[0]]
    return ModelFiles(
        directory=directory,
        joblib_path=path,
        archive=archive,
        code_dir=code,
        row=row,
        body=json.dumps({"inputs": [row]}).encode(),
        expected=[int(v) for v in model.predict([row])],
    )


def in_process_floor(files: ModelFiles, n: int) -> dict[str, float]:
    """Per-call ms of ``predict`` alone and of kamado's default handler chain (decode, predict, encode)."""
    import joblib
    import numpy as np

    from kamado.hosting.handlers import InferenceHandlers

    model = joblib.load(files.joblib_path)
    handlers = InferenceHandlers()
    array = np.asarray([files.row])
    out = {}
    for key, call in (
        ("predict_ms", lambda: model.predict(array)),
        ("handler_chain_ms", lambda: handlers.invoke(model, files.body, "application/json", None)),
    ):
        for _ in range(max(10, n // 10)):
            call()
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                call()
            samples.append((time.perf_counter() - t0) / n * 1000.0)
        out[key] = round(statistics.median(samples), 4)
    return out


# --------------------------------------------------------------------------------------- kamado hosting


class Hosting:
    """A real kamado server (``python -m kamado server``) on a private home, with the few API calls the hosting
    benchmarks make; on exit it stops the server and every router and model server the home started."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.server = LocalServer(home)
        self.client: Any = None

    def __enter__(self) -> Hosting:
        from kamado.sdk.client import Client

        self.server.start()
        self.client = Client(self.server.url, autostart=False)
        return self

    def __exit__(self, *exc: object) -> None:
        from kamado.testing.hosting import stop_hosting_processes

        with contextlib.suppress(Exception):
            self.client.close()
        self.server.stop()
        stop_hosting_processes(self.home)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        return self.client._request(method, "/api/v1" + path, **kw)

    def model(self, name: str, files: ModelFiles, *, script: bool = False, **env: str) -> None:
        container: dict[str, Any] = {"ModelDataUrl": self.client.upload_file(files.archive)}
        environment = {"OMP_NUM_THREADS": "1", **env}  # instances get a fresh environment: pin it there too
        if script:
            environment |= {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": self.client.upload_directory(files.code_dir),
            }
        container["Environment"] = environment
        self.call("POST", "/models", json={"ModelName": name, "PrimaryContainer": container})

    def config(self, name: str, model: str, instances: int = 1) -> None:
        variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": instances}
        self.call("POST", "/endpoint-configs", json={"EndpointConfigName": name, "ProductionVariants": [variant]})

    def endpoint(self, name: str, config: str, timeout: float = 120.0) -> str:
        """Create the endpoint, wait until it is InService, and return its invocation URL."""
        self.call("POST", "/endpoints", json={"EndpointName": name, "EndpointConfigName": config})
        self.wait(name, timeout=timeout)
        return str(self.call("GET", "/runtime")["Url"]) + f"/endpoints/{name}/invocations"

    def describe(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/endpoints/{name}")
        return result

    def wait(self, name: str, status: str = "InService", timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            desc = self.describe(name)
            if desc["EndpointStatus"] == status:
                return desc
            if desc["EndpointStatus"] == "Failed" or time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {name} is {desc['EndpointStatus']}, not {status}: {desc}")
            time.sleep(0.05)


# ------------------------------------------------------------------------------------------ the peer


def ensure_mlflow() -> tuple[Path | None, str | None]:
    """The MLflow venv's python (created and filled on first use), or None and why not."""
    import sklearn

    python = MLFLOW_VENV / "bin" / "python"
    wanted = ["mlflow", f"scikit-learn=={sklearn.__version__}"]
    stamp = MLFLOW_VENV / "kamado-bench-requirements.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return python, None
    pip_log = MLFLOW_VENV / "kamado-bench-pip.log"
    try:
        if not python.exists():
            log(f"{NAME}: creating {MLFLOW_VENV.name} for the MLflow peer")
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True, timeout=300)
        log(f"{NAME}: pip install {' '.join(wanted)} into {MLFLOW_VENV.name} (once; log in {pip_log})")
        with open(pip_log, "ab") as out:
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *wanted],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=1800,
            )
        subprocess.run([str(python), "-c", "import mlflow.sklearn"], check=True, timeout=120, capture_output=True)
    except (OSError, subprocess.SubprocessError) as exc:
        tail = pip_log.read_text(errors="replace").strip().splitlines()[-3:] if pip_log.exists() else []
        return None, f"installing MLflow failed: {exc}; {' | '.join(tail)}"[:1000]
    stamp.write_text(json.dumps(wanted))
    return python, None


_SAVE_MLFLOW = """
import sys, joblib, mlflow, mlflow.sklearn, sklearn
model = joblib.load(sys.argv[1])
mlflow.sklearn.save_model(model, sys.argv[2], serialization_format="cloudpickle")
print(mlflow.__version__, sklearn.__version__)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(python: Path, files: ModelFiles, workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``mlflow models serve`` of the same pickle; yields its base URL and the versions in use."""
    import httpx

    model_dir = workdir / "mlflow-model"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAMADO_", "MLFLOW_"))}
    env |= {
        "OMP_NUM_THREADS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": f"{python.parent}{os.pathsep}{env.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)
    out = subprocess.run(
        [str(python), "-c", _SAVE_MLFLOW, str(files.joblib_path), str(model_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    mlflow_version, sklearn_version = out.stdout.split()[-2:]
    port = _free_port()
    cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    cmd += ["-p", str(port), "--host", "127.0.0.1"]
    with open(workdir / "mlflow-serve.log", "ab") as logfile:
        proc = subprocess.Popen(
            cmd, stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited {proc.returncode}; see {workdir / 'mlflow-serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/ping", timeout=2, trust_env=False).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow models serve did not answer /ping within 180 s")
            time.sleep(0.2)
        yield url, {"mlflow": mlflow_version, "scikit_learn": sklearn_version, "command": " ".join(cmd[1:3])}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # mlflow starts its server as a child: stop the whole group
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _server_line(workdir: Path) -> str:
    """What MLflow says it serves with (uvicorn or gunicorn, and how many workers), from its log."""
    with contextlib.suppress(OSError):
        for line in (workdir / "mlflow-serve.log").read_text(errors="replace").splitlines():
            low = line.lower()
            if "uvicorn" in low or "gunicorn" in low or "worker" in low:
                return line.strip()[:300]
    return ""


# ------------------------------------------------------------------------------------------ the bench


def _run(url: str, body: bytes, conns: int, seconds: float) -> dict[str, Any]:
    run = LoadGen(url, body).run_for(conns, seconds)
    return figures(run["records"], run["elapsed_s"])


def _measure(
    targets: dict[str, str], body: bytes, conns: int, seconds: float, reps: int, predict_ms: float | None = None
) -> dict[str, Any]:
    for url in targets.values():  # warm-up round
        _run(url, body, conns, seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(reps):
        for name, url in targets.items():
            runs[name].append(_run(url, body, conns, seconds))
    out: dict[str, Any] = {"connections": conns}
    for name, rows in runs.items():
        out[name] = {k: summarize([r[k] for r in rows], 3) for k in ("rps", "p50_ms", "p99_ms")}
        out[name]["failed"] = sum(r["failed"] for r in rows)
        out[name]["requests"] = sum(r["requests"] for r in rows)
    if "mlflow" in runs:
        med = statistics.median
        pairs = list(zip(runs["kamado"], runs["mlflow"], strict=True))
        out["rps_kamado_over_mlflow"] = round(med([k["rps"] / m["rps"] for k, m in pairs]), 3)
        out["p50_kamado_over_mlflow"] = round(med([k["p50_ms"] / m["p50_ms"] for k, m in pairs]), 3)
        out["p99_kamado_over_mlflow"] = round(med([k["p99_ms"] / m["p99_ms"] for k, m in pairs]), 3)
        if predict_ms is not None:  # what serving adds to the model's own predict, each server
            added = [(k["p50_ms"] - predict_ms) / (m["p50_ms"] - predict_ms) for k, m in pairs]
            out["added_p50_kamado_over_mlflow"] = round(med(added), 3)
    return out


def _check_answers(kamado_url: str, peer_url: str | None, files: ModelFiles) -> dict[str, Any]:
    """Both servers answer the row with the model's own prediction (else the comparison means nothing)."""
    import httpx

    headers = {"Content-Type": "application/json"}
    with httpx.Client(trust_env=False, timeout=30) as http:
        kamado = http.post(kamado_url, content=files.body, headers=headers)
        kamado.raise_for_status()
        out = {"expected": files.expected, "kamado": kamado.json()}
        if peer_url is not None:
            peer = http.post(peer_url, content=files.body, headers=headers)
            peer.raise_for_status()
            out["mlflow"] = peer.json()
    if out["kamado"] != files.expected or ("mlflow" in out and out["mlflow"].get("predictions") != files.expected):
        raise RuntimeError(f"the servers disagree with the model: {out}")
    return out


def run() -> tuple[Path, dict[str, Any]]:
    started = time.monotonic()
    tiny = smoke()
    seconds, reps, floor_n = (0.4, 1, 200) if tiny else (3.0, 5, 2000)
    peer_python, peer_reason = (None, "smoke mode: the MLflow peer is not installed") if tiny else ensure_mlflow()
    rows: dict[str, Any] = {}
    versions: dict[str, str] | None = None
    server_line = ""
    with tempfile.TemporaryDirectory(prefix="kamado-b1b-") as tmp_name:
        tmp = Path(tmp_name)
        files = build_model(tmp / "model")
        floor = in_process_floor(files, floor_n)
        with Hosting(tmp / "home") as kamado, contextlib.ExitStack() as stack:
            kamado.model("b1b", files)
            kamado.config("b1b", "b1b")
            kamado_url = kamado.endpoint("b1b", "b1b")
            peer_url = None
            if peer_python is not None:
                try:
                    base, versions = stack.enter_context(mlflow_server(peer_python, files, tmp))
                    peer_url = base + "/invocations"
                    server_line = _server_line(tmp)
                except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                    peer_reason = f"starting mlflow models serve failed: {exc}"[:1000]
                    log(f"{NAME}: {peer_reason}")
            answers = _check_answers(kamado_url, peer_url, files)
            targets = {"kamado": kamado_url, **({"mlflow": peer_url} if peer_url else {})}
            for conns in CONNECTIONS:
                log(f"{NAME}: {conns} connection(s), {reps} x {seconds:g} s per target ({', '.join(targets)})")
                rows[str(conns)] = _measure(targets, files.body, conns, seconds, reps, floor["predict_ms"])
    has_peer = peer_url is not None
    one = rows["1"]
    ratios: dict[str, Any] = {
        "p50_1_kamado_over_predict": ratio(one["kamado"]["p50_ms"]["p50"], floor["predict_ms"]),
        "p50_1_kamado_over_handler_chain": ratio(one["kamado"]["p50_ms"]["p50"], floor["handler_chain_ms"]),
    }
    goal: dict[str, Any] = {"rps_ratio_ge": GOAL_RPS_RATIO, "p50_ratio_le": GOAL_P50_RATIO}
    if has_peer:
        for c in CONNECTIONS:
            ratios[f"rps_{c}_kamado_over_mlflow"] = rows[str(c)]["rps_kamado_over_mlflow"]
            ratios[f"p50_{c}_kamado_over_mlflow"] = rows[str(c)]["p50_kamado_over_mlflow"]
            ratios[f"p99_{c}_kamado_over_mlflow"] = rows[str(c)]["p99_kamado_over_mlflow"]
            ratios[f"added_p50_{c}_kamado_over_mlflow"] = rows[str(c)]["added_p50_kamado_over_mlflow"]
            goal[f"met_at_{c}"] = (
                rows[str(c)]["rps_kamado_over_mlflow"] >= GOAL_RPS_RATIO
                and rows[str(c)]["p50_kamado_over_mlflow"] <= GOAL_P50_RATIO
            )
        goal["rps_met"] = all(rows[str(c)]["rps_kamado_over_mlflow"] >= GOAL_RPS_RATIO for c in CONNECTIONS)
        goal["p50_met"] = all(rows[str(c)]["p50_kamado_over_mlflow"] <= GOAL_P50_RATIO for c in CONNECTIONS)
        goal["judged_at"] = "both 1 and 8 connections"
    else:
        goal |= {"rps_met": None, "p50_met": None, "why_not_judged": peer_reason}
    ratios["meaning"] = (
        "kamado / MLflow (req/s: higher is better; latency: lower is better); added_p50: (p50 - in-process "
        "predict) of kamado / of MLflow, what each server adds to the model; kamado / in-process"
    )
    result = {
        "description": __doc__.strip().splitlines()[0],
        "method": (
            "StandardScaler+LogisticRegression on breast_cancer (30 features), joblib; kamado: real server, "
            "endpoint with one model-server instance behind the router, default handlers; MLflow: `mlflow models "
            "serve --env-manager local` of the same pickle from its own venv. One JSON row per request "
            f'({{"inputs": [[...]]}}); 1 and 8 keep-alive connections back to back, {seconds:g} s per run, kamado '
            f"and MLflow interleaved after a warm-up round, {reps} repetitions; ratios per repetition, median."
        ),
        "load_generator": "this process: asyncio streams on uvloop in one thread (LoadGen), the same for both",
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],  # a shared machine: how busy
        "config": {"connections": list(CONNECTIONS), "seconds_per_run": seconds, "repetitions": reps},
        "figures": {"per_connections": rows, "in_process": floor, "answers": answers},
        "peer": (
            {"name": "mlflow models serve", "versions": versions, "server": server_line or None} if has_peer else None
        ),
        "peer_reason": None if has_peer else peer_reason,
        "comparator": {
            "name": "mlflow models serve (same model, same run)" if has_peer else "none: " + str(peer_reason),
            "mlflow": {c: rows[c]["mlflow"] for c in rows} if has_peer else None,
            "in_process_floor_ms": floor,
        },
        "ratio": ratios,
        "goal": goal,
    }
    path = write_result(NAME, result, started)
    return path, json.loads(path.read_text())


if __name__ == "__main__":
    p, r = run()
    print(json.dumps({"path": str(p), "ratio": r["ratio"], "goal": r["goal"]}, indent=1))
