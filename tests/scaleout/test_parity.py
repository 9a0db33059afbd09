"""Parity suite (issue 7, part 6): the same scenarios, the same observable results, local and Ray.

Each scenario - train, tune, deploy and invoke, transform, map, pipeline, a two-instance processing job -
runs through the public SDK against a real ``kamado server`` subprocess on a fresh PostgreSQL database and
a fresh prefix of a real S3-compatible server (moto), once with the local executor and once with
``--executor ray`` on the session's loopback cluster (head + one worker node, ``tests/ray_fixtures.py``).
Only the executor differs, and every scenario asserts the same results on both.

Where the work ran is asserted from the user code itself: every script and handler reports its process
ancestry (pids up to init). Under the local executor that chain holds the server's pid; under Ray it
holds the pid of the ``ray start`` process of the node that ran it and not the server's. The map scenario
keeps three one-CPU function workers busy at once on a cluster of two two-CPU nodes, so at least one of
them must run on the worker node, and the test checks that one did.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import kamado
from kamado.sdk.client import Client
from kamado.sdk.functions import Function
from kamado.sdk.pipelines import StateMachine
from kamado.testing.ray_cluster import RayCluster
from kamado.tuner import ContinuousParameter, HyperparameterTuner
from tests.conftest import PG_ADMIN_URL, PG_AVAILABLE
from tests.live_server import task_visible_dir
from tests.ray_fixtures import HAVE_RAY, NO_RAY_REASON
from tests.scaleout.s3server import FAKE_ENV, S3Server, s3_server  # noqa: F401
from tests.scaleout.server_proc import running_server

pytestmark = pytest.mark.timeout(240)

#: Prints where it runs (its process ancestry); trains a two-number "model" and reports a score;
#: and is its own inference script (model_fn / predict_fn) for the endpoint and the transform job.
SCRIPT = r"""
import json, os

def _ancestry():
    pids, pid = [], os.getpid()
    while pid > 1:
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                raw = f.read()
        except OSError:
            break
        pid = int(raw[raw.rfind(b")") + 2:].split()[1])
        pids.append(pid)
    return pids

print("ancestry: " + json.dumps(_ancestry()), flush=True)

def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    return [float(model["w"] * float(sum(row)) + model["b"]) for row in data]

if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--weight", type=float)
    parser.add_argument("--bias", type=float)
    args, _ = parser.parse_known_args()
    with open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.csv")) as f:
        rows = [line for line in f.read().splitlines() if line]
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"w": args.weight, "b": args.bias, "rows": len(rows)}, f)
    print("score=%.6f;" % (-(args.weight - 2) ** 2 - (args.bias - 1) ** 2), flush=True)
"""
HANDLERS = r"""
import json, os, time

def _ancestry():
    pids, pid = [], os.getpid()
    while pid > 1:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read()
        pid = int(raw[raw.rfind(b")") + 2:].split()[1])
        pids.append(pid)
    return pids

def square(event, context):
    time.sleep(0.03)  # long enough that every worker of the pool gets items
    return {"y": event["x"] * event["x"], "ancestry": _ancestry()}

def double(event, context):
    return {"y": event["x"] * 2, "ancestry": _ancestry()}
"""
#: One instance of a two-instance processing job: sums its shard, reports where it runs, and waits until
#: every host of the job has checked in at MEET_DIR (both instances must run at the same time).
PROCESS = r"""
import json, os, pathlib, time

def _ancestry():
    pids, pid = [], os.getpid()
    while pid > 1:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read()
        pid = int(raw[raw.rfind(b")") + 2:].split()[1])
        pids.append(pid)
    return pids

root = "/opt/ml" if os.path.isdir("/opt/ml/processing") else os.environ["KAMADO_OPT_ML"]
rc = json.load(open(os.path.join(root, "config", "resourceconfig.json")))
host = os.environ["CURRENT_HOST"]
assert host == rc["current_host"], (host, rc)
meet = pathlib.Path(os.environ["MEET_DIR"])
(meet / host).touch()
deadline = time.monotonic() + 60
while not all((meet / h).exists() for h in rc["hosts"]):
    assert time.monotonic() < deadline, "the other instances never started"
    time.sleep(0.05)
data = os.environ["KAMADO_INPUT_DATA"]
files = sorted(os.listdir(data))
report = {"hosts": rc["hosts"], "files": files, "total": sum(int(open(os.path.join(data, f)).read()) for f in files),
          "ancestry": _ancestry()}
with open(os.path.join(os.environ["KAMADO_OUTPUT_RESULT"], host + ".json"), "w") as f:
    json.dump(report, f)
"""
ROWS = [[1.0, 2.0], [3.0, 4.0], [0.5, 0.25]]
METRICS = [{"Name": "score", "Regex": "score=([-0-9.]+);"}]
#: What each backend's tuning search sampled: with the same seed both must sample the same points.
SAMPLED: dict[str, list[dict[str, str]]] = {}


def _predict(w: float, b: float, row: list[float]) -> float:
    return w * sum(row) + b


@dataclass
class Backend:
    """One running server and how to tell where its work ran."""

    name: str
    url: str
    client: Client
    s3: S3Server
    prefix: str
    server_pid: int
    tmp: Path
    cluster: RayCluster | None = None
    uid: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes_seen: set[str] = field(default_factory=set)

    def where(self, ancestry: list[int]) -> str:
        """``server`` (a child of the local server), or the Ray node whose ``ray start`` it descends from."""
        chain = set(ancestry)
        if self.cluster is not None:
            found = [name for name, node in self.cluster.nodes.items() if node.proc.pid in chain]
            if found:
                assert self.server_pid not in chain, f"a task under Ray node {found} is also the server's child"
                return found[0]
        return "server" if self.server_pid in chain else f"unknown ({ancestry})"

    def check_ran_here(self, ancestry: list[int]) -> str:
        where = self.where(ancestry)
        if self.name == "local":
            assert where == "server", f"a local task did not run under the server: {where}"
        else:
            assert where in self.cluster.nodes, f"a Ray task did not run on a Ray node: {where}"  # type: ignore[union-attr]
        self.nodes_seen.add(where)
        return where

    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.s3.endpoint, skip_instance_cache=True, use_listings_cache=False)

    def name_of(self, what: str) -> str:
        return f"par-{what}-{self.uid}"


@pytest.fixture(scope="module")
def database() -> Iterator[Any]:
    """Fresh PostgreSQL databases for this module's servers (one each), dropped at the end."""
    if not PG_AVAILABLE:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; .ci/run must start it")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    import psycopg

    made: list[str] = []

    def make() -> str:
        dbname = f"kamado_p_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        made.append(dbname)
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{dbname}"

    yield make
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for dbname in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(
    scope="module",
    params=[
        "local",
        pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.skipif(not HAVE_RAY, reason=NO_RAY_REASON)]),
    ],
)
def backend(
    request: pytest.FixtureRequest,
    database: Any,
    s3_server: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Backend]:
    name = str(request.param)
    tmp = tmp_path_factory.mktemp(f"parity-{name}")
    prefix = s3_server.new_prefix()
    env = {
        **FAKE_ENV,
        "KAMADO_DATABASE_URL": database(),
        "KAMADO_ARTIFACTS": f"s3://{s3_server.bucket}/{prefix}",
        "KAMADO_S3_ENDPOINT_URL": s3_server.endpoint,
    }
    cluster: RayCluster | None = None
    if name == "ray":
        cluster = request.getfixturevalue("ray_session_cluster")
        env.update(KAMADO_EXECUTOR="ray", KAMADO_RAY_ADDRESS=cluster.address)
    home = tmp / "home"
    with running_server(home, **env) as url, Client(url, autostart=False) as client:
        pid = int(json.loads((home / "server.json").read_text())["pid"])
        b = Backend(name, url, client, s3_server, prefix, pid, tmp, cluster)
        try:
            yield b
        finally:
            _delete_everything(client)
    from kamado.testing.hosting import stop_hosting_processes

    stop_hosting_processes(home)
    if cluster is not None:
        _wait_cluster_idle(cluster, tmp)


def _delete_everything(client: Client) -> None:
    """Endpoints outlive the server and function workers hold CPUs: leave the shared cluster as found."""
    for ep in client.list_endpoints().get("Endpoints", []):
        client.delete_endpoint(ep["EndpointName"])
        client.wait_for_endpoint_deleted(ep["EndpointName"], timeout=60)
    for fn in client.list_functions().get("Functions", []):
        client.delete_function(fn["FunctionName"])


def _wait_cluster_idle(cluster: RayCluster, tmp: Path, timeout_s: float = 60) -> None:
    from kamado.compute.ray_client import BridgeClient
    from kamado.compute.ray_executor import NAMESPACE

    bridge = BridgeClient(cluster.address, NAMESPACE, log_path=tmp / "idle-bridge.log")
    try:
        deadline = time.monotonic() + timeout_s
        while (cap := bridge.call("capacity"))["available"]["CPU"] < cap["total"]["CPU"]:
            assert time.monotonic() < deadline, f"the parity suite left Ray CPUs held: {cap}"
            time.sleep(0.2)
    finally:
        bridge.close()


@pytest.fixture(scope="module")
def inputs(backend: Backend) -> dict[str, str]:
    data = backend.tmp / "data"
    data.mkdir(exist_ok=True)
    (data / "data.csv").write_text("".join(",".join(f"{v:g}" for v in row) + "\n" for row in ROWS))
    return {"train": str(data)}


@pytest.fixture(scope="module")
def source(backend: Backend) -> Path:
    src = backend.tmp / "src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(SCRIPT)
    return src


@pytest.fixture(scope="module")
def trained(backend: Backend, inputs: dict[str, str], source: Path) -> kamado.Estimator:
    """The train scenario's estimator, fitted once; deploy and transform use its model."""
    est = kamado.Estimator(
        entry_point="train.py",
        source_dir=str(source),
        hyperparameters={"weight": 2.0, "bias": 0.5},
        metric_definitions=METRICS,
        base_job_name=backend.name_of("train"),
        client=backend.client,
    )
    est.fit(inputs, logs=False)
    return est


def _ancestries(text: str) -> list[list[int]]:
    return [json.loads(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("ancestry: ")]


def _job_log(client: Client, name: str) -> str:
    return "\n".join(client.stream_training_job_logs(name, follow=False))


# ---------------------------------------------------------------------------------------------- scenarios


def test_info_names_the_executor(backend: Backend) -> None:
    info = backend.client.info()
    assert info["executor"] == backend.name
    assert info["database"].startswith("postgresql")
    assert info["artifactStore"] == f"s3://{backend.s3.bucket}/{backend.prefix}"
    if backend.cluster is not None:
        assert info["capacity"]["cpus"] == 4, "the capacity is the cluster's (2 nodes x 2 CPUs), not the host's"


def test_train(backend: Backend, trained: kamado.Estimator) -> None:
    job = trained.latest_training_job
    assert job is not None
    desc = job.describe()
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    model_uri = desc["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri.startswith(f"s3://{backend.s3.bucket}/{backend.prefix}/") and model_uri.endswith("model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(backend.fs().cat_file(model_uri)), mode="r:gz") as tar:
        member = tar.extractfile("model.json")
        assert member is not None and json.loads(member.read()) == {"w": 2.0, "b": 0.5, "rows": len(ROWS)}
    assert [m["Value"] for m in desc["FinalMetricDataList"] if m["MetricName"] == "score"] == [pytest.approx(-0.25)]
    log = _job_log(backend.client, job.name)
    assert "score=-0.250000;" in log, log
    (ancestry,) = _ancestries(log)
    backend.check_ran_here(ancestry)


def test_tune(backend: Backend, inputs: dict[str, str], source: Path) -> None:
    est = kamado.Estimator(entry_point="train.py", source_dir=str(source), client=backend.client)
    tuner = HyperparameterTuner(
        est,
        objective_metric_name="score",
        hyperparameter_ranges={"weight": ContinuousParameter(0.0, 4.0), "bias": ContinuousParameter(0.0, 2.0)},
        metric_definitions=METRICS,
        objective_type="Maximize",
        strategy="Random",
        max_jobs=3,
        max_parallel_jobs=2,
        random_seed=7,
        base_tuning_job_name=backend.name_of("tune"),
    )
    tuner.fit(inputs, logs=False)
    desc = tuner.describe()
    assert desc["HyperParameterTuningJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["ObjectiveStatusCounters"] == {"Succeeded": 3, "Pending": 0, "Failed": 0}
    trials = tuner.analytics().training_jobs()
    values = {}
    for trial in trials:
        w, b = (float(trial["TunedHyperParameters"][k]) for k in ("weight", "bias"))
        values[trial["TrainingJobName"]] = trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        assert values[trial["TrainingJobName"]] == pytest.approx(-((w - 2) ** 2) - (b - 1) ** 2, abs=1e-5)
        (ancestry,) = _ancestries(_job_log(backend.client, trial["TrainingJobName"]))
        backend.check_ran_here(ancestry)
    assert tuner.best_training_job() == max(values, key=lambda k: values[k])
    SAMPLED[backend.name] = sorted((t["TunedHyperParameters"] for t in trials), key=lambda h: h["weight"])
    if len(SAMPLED) == 2:
        assert SAMPLED["local"] == SAMPLED["ray"], "the same seed samples the same points on both backends"


def test_deploy_and_invoke(backend: Backend, trained: kamado.Estimator) -> None:
    name = backend.name_of("ep")
    predictor = trained.deploy(endpoint_name=name)
    assert predictor is not None
    assert predictor.describe()["EndpointStatus"] == "InService"
    assert predictor.predict(ROWS) == [pytest.approx(_predict(2.0, 0.5, row)) for row in ROWS]
    served = _ancestries(backend.client.endpoint_logs(name))
    assert served, "the model server printed where it runs"
    backend.check_ran_here(served[-1])
    backend.client.delete_endpoint(name)
    backend.client.wait_for_endpoint_deleted(name, timeout=60)


def test_transform(backend: Backend, trained: kamado.Estimator) -> None:
    data = backend.tmp / "batch"
    data.mkdir()
    rows = [[float(i), float(i % 7)] for i in range(50)]
    (data / "x.csv").write_text("".join(f"{a:g},{b:g}\n" for a, b in rows))
    transformer = trained.transformer(strategy="MultiRecord", assemble_with="Line", accept="text/csv")
    desc = transformer.transform(str(data), content_type="text/csv", split_type="Line")
    assert desc is not None and desc["TransformJobStatus"] == "Completed", desc
    out = transformer.output_path
    assert out is not None and out.startswith(f"s3://{backend.s3.bucket}/{backend.prefix}/")
    lines = backend.fs().cat_file(f"{out}/x.csv.out").decode().split()
    assert [float(v) for v in lines] == [pytest.approx(_predict(2.0, 0.5, row)) for row in rows]


def test_map(backend: Backend) -> None:
    src = backend.tmp / "fn"
    src.mkdir()
    (src / "app.py").write_text(HANDLERS)
    fn = Function.create(
        backend.name_of("sq"), src, "app.square", reserved_concurrency=3, memory_mb=256, client=backend.client
    )
    n = 200
    run = fn.map([{"x": i} for i in range(n)], max_concurrency=3)
    desc = run.wait(poll_s=0.1, timeout_s=120)
    assert desc["Status"] == "Succeeded", desc
    assert desc["ItemCounts"]["Succeeded"] == n and desc["ItemCounts"]["Failed"] == 0
    rows = sorted(run.results(), key=lambda r: r["Index"])
    assert [r["Output"]["y"] for r in rows] == [i * i for i in range(n)]
    where = {backend.check_ran_here(r["Output"]["ancestry"]) for r in rows}
    if backend.cluster is not None:
        # Three one-CPU workers busy at once on two two-CPU nodes: at least one is on the worker node.
        assert "worker-1" in where, f"no item ran on the worker node: {where}"
    backend.client.delete_function(fn.name)


def test_pipeline(backend: Backend) -> None:
    src = backend.tmp / "fn-pipe"
    src.mkdir()
    (src / "app.py").write_text(HANDLERS)
    fn = Function.create(backend.name_of("dbl"), src, "app.double", memory_mb=256, client=backend.client)
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": fn.name, "Payload.$": "$"},
                "ResultSelector": {"y.$": "$.Payload.y", "ancestry.$": "$.Payload.ancestry"},
                "End": True,
            }
        },
    }
    sm = StateMachine.create(backend.name_of("sm"), definition, client=backend.client)
    execution = sm.start({"x": 21}, name="first")
    output = execution.wait(timeout_s=60)
    assert execution.describe()["status"] == "SUCCEEDED"
    assert output["y"] == 42
    backend.check_ran_here(output["ancestry"])
    backend.client.delete_function(fn.name)


def test_process_on_two_instances(backend: Backend) -> None:
    """Two instances, the input sharded by key between them, both running at once (on Ray: one gang)."""
    data = backend.tmp / "shards"
    data.mkdir()
    for i in range(5):
        (data / f"part-{i}.txt").write_text(str(i + 1))
    meet = task_visible_dir()  # both instances meet here; a root server's worker user cannot reach backend.tmp
    (backend.tmp / "process.py").write_text(PROCESS)
    processor = kamado.ScriptProcessor(
        command=["python3"],
        instance_count=2,
        env={"MEET_DIR": str(meet)},
        base_job_name=backend.name_of("proc"),
        client=backend.client,
    )
    processor.run(
        code=str(backend.tmp / "process.py"),
        inputs=[
            kamado.ProcessingInput(
                source=str(data),
                destination="/opt/ml/processing/input/data",
                input_name="data",
                s3_data_distribution_type="ShardedByS3Key",
            )
        ],
        outputs=[kamado.ProcessingOutput(source="/opt/ml/processing/output/result", output_name="result")],
        logs=False,
    )
    assert processor.latest_job is not None
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert [i["Status"] for i in desc["Instances"]] == ["Succeeded", "Succeeded"]
    uri = desc["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    assert uri.startswith(f"s3://{backend.s3.bucket}/{backend.prefix}/")
    a, b = (json.loads(backend.fs().cat_file(f"{uri}/algo-{i}.json")) for i in (1, 2))
    assert a["hosts"] == b["hosts"] == ["algo-1", "algo-2"]
    assert a["files"] and b["files"] and set(a["files"]).isdisjoint(b["files"])
    assert sorted(a["files"] + b["files"]) == [f"part-{i}.txt" for i in range(5)]
    assert a["total"] + b["total"] == 15
    for report in (a, b):
        backend.check_ran_here(report["ancestry"])
