"""Training jobs end to end against a real server, real subprocesses and the real artifact store."""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from pathlib import Path

import httpx
import pytest

import kamado
from kamado.core.errors import IllegalTransition, InvalidSpec, ResourceInUse
from tests.live_server import LiveServer, write_script

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_script_mode"


def _csv(directory: Path, rows: int = 60) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["a,b,target"] + [f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}" for i in range(rows)]
    (directory / "data.csv").write_text("\n".join(lines) + "\n")
    return directory


def _estimator(live: LiveServer, src: Path, **kw: object) -> kamado.Estimator:
    return kamado.Estimator(
        entry_point=kw.pop("entry_point", "train.py"),
        source_dir=src,  # type: ignore[arg-type]
        client=live.client,
        **kw,
    )  # type: ignore[arg-type]


def test_sagemaker_script_mode_example_runs_unchanged(live: LiveServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src)
    est = _estimator(
        live,
        src,
        hyperparameters={"n-estimators": 5, "min-samples-leaf": 2},
        metric_definitions=[{"Name": "train:accuracy", "Regex": "train-accuracy: ([0-9.]+);"}],
    )
    est.fit({"train": str(_csv(tmp_path / "data"))}, logs=False)
    desc = est.latest_training_job.describe()  # type: ignore[union-attr]
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in desc["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert desc["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{desc['TrainingJobName']}/output/model.tar.gz")
    metric = {m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}
    assert 0.5 <= metric["train:accuracy"] <= 1.0
    assert desc["Lineage"]["SourceHash"] and desc["Lineage"]["InputDataHashes"]["train"]
    assert desc["Lineage"]["PythonVersion"].startswith("3.")
    assert desc["ResourceUsage"]["CpuSeconds"] > 0
    model_dir = live.client.extract_model(est.model_data, tmp_path / "model")  # type: ignore[arg-type]
    assert (model_dir / "model.joblib").is_file()
    logs = est.latest_training_job.logs()  # type: ignore[union-attr]
    assert "current: algo-1" in logs
    assert desc["OutputDataArtifacts"].endswith("output/output.tar.gz")


CONTRACT_PROBE = r"""
import json, os, sys
report = {
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB"))},
    "hp": json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "hyperparameters.json"))),
    "rc": json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "resourceconfig.json"))),
    "idc": json.load(open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json"))),
    "channel": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "leak": os.environ.get("KAMADO_TEST_CANARY"),
}
open(os.path.join(os.environ["SM_MODEL_DIR"], "report.json"), "w").write(json.dumps(report))
"""


def test_training_contract_files_env_and_args(
    live: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAMADO_TEST_CANARY", "server-secret")
    src = write_script(tmp_path / "src", CONTRACT_PROBE)
    est = _estimator(
        live,
        src,
        hyperparameters={"lr": 0.1, "optimizer": "adam", "x": True, "depth": 3},
        environment={"MY_VAR": "1"},
    )
    est.fit({"train": str(_csv(tmp_path / "d"))}, logs=False)
    out = live.client.extract_model(est.model_data, tmp_path / "m")  # type: ignore[arg-type]
    report = json.loads((out / "report.json").read_text())
    assert report["argv"] == ["--depth", "3", "--lr", "0.1", "--optimizer", "adam", "-x", "True"]
    env = report["env"]
    assert env["SM_HP_LR"] == "0.1" and json.loads(env["SM_HPS"])["optimizer"] == "adam"
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["TRAINING_JOB_NAME"] == est.latest_training_job.name  # type: ignore[union-attr]
    assert env["TRAINING_JOB_ARN"].startswith("arn:aws:sagemaker:")
    assert env["SM_OUTPUT_DATA_DIR"].endswith("output/data")
    assert report["hp"]["optimizer"] == '"adam"' and "sagemaker_program" in report["hp"]
    assert report["rc"]["current_host"] == "algo-1" and report["rc"]["hosts"] == ["algo-1"]
    assert report["idc"]["train"]["TrainingInputMode"] == "File"
    assert report["channel"] == ["data.csv"]
    assert report["leak"] is None, "the server's environment must not leak into jobs"


def test_hard_coded_opt_ml_paths_are_private_per_job(live: LiveServer, tmp_path: Path) -> None:
    info = live.client.info()
    if not info["privateOptMl"]:
        pytest.skip("this kernel refuses mount namespaces; SM_* paths are covered by other tests")
    script = (
        "import os, time\n"
        "name = os.environ['TRAINING_JOB_NAME']\n"
        "open('/opt/ml/model/who.txt', 'w').write(name)\n"
        "time.sleep(1.0)\n"
        "assert open('/opt/ml/model/who.txt').read() == name\n"
        "assert os.listdir('/opt/ml/input/data/train') == ['data.csv']\n"
    )
    src = write_script(tmp_path / "src", script)
    data = str(_csv(tmp_path / "d"))
    names = []
    for i in range(2):
        est = _estimator(live, src)
        est.fit({"train": data}, wait=False, job_name=f"optml-{i}")
        names.append(f"optml-{i}")
    for n in names:
        desc = live.wait(n)
        assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
        out = live.client.extract_model(desc["ModelArtifacts"]["S3ModelArtifacts"], tmp_path / n)
        assert (out / "who.txt").read_text() == n


def test_exception_becomes_failure_reason(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "print('starting')\nraise ValueError('column target is missing')\n")
    with pytest.raises(kamado.TrainingJobFailed) as info:
        _estimator(live, src).fit(logs=False)
    assert "ValueError: column target is missing" in str(info.value)
    desc = live.client.describe_training_job(info.value.details["TrainingJobName"])  # type: ignore[index]
    assert desc["TrainingJobStatus"] == "Failed" and desc["SecondaryStatus"] == "Failed"
    assert desc["FailureReason"].startswith("AlgorithmError: ValueError: column target is missing")


def test_failure_file_wins(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('bad input: 3 rows')\n"
        "sys.exit(3)\n"
    )
    src = write_script(tmp_path / "src", script)
    est = _estimator(live, src)
    est.fit(wait=False, job_name="failfile")
    desc = live.wait("failfile")
    assert desc["TrainingJobStatus"] == "Failed" and desc["FailureReason"] == "bad input: 3 rows"


def test_max_runtime_stops_the_job(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n")
    est = _estimator(live, src, max_run=1)
    started = time.monotonic()
    est.fit(wait=False, job_name="too-long")
    desc = live.wait("too-long", timeout=30)
    assert time.monotonic() - started < 20
    assert desc["TrainingJobStatus"] == "Stopped"
    assert desc["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "MaxRuntimeInSeconds" in desc["FailureReason"]


def test_stop_on_request_and_stop_is_refused_when_terminal(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import os, signal, sys, time\n"
        "def bye(*_):\n"
        "    open(os.path.join(os.environ['SM_MODEL_DIR'], 'partial.txt'), 'w').write('saved')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    src = write_script(tmp_path / "src", script)
    _estimator(live, src).fit(wait=False, job_name="stop-me")
    deadline = time.monotonic() + 20
    while "ready" not in "".join(live.client.stream_training_job_logs("stop-me", follow=False)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    live.client.stop_training_job("stop-me")
    live.client.stop_training_job("stop-me")  # idempotent while stopping
    desc = live.wait("stop-me")
    assert desc["TrainingJobStatus"] == "Stopped" and desc["SecondaryStatus"] == "Stopped"
    out = live.client.extract_model(desc["ModelArtifacts"]["S3ModelArtifacts"], tmp_path / "m")
    assert (out / "partial.txt").read_text() == "saved", "artifacts written on SIGTERM are still uploaded"
    with pytest.raises(IllegalTransition, match="cannot be stopped"):
        live.client.stop_training_job("stop-me")


def test_log_metric_helper_and_metric_series(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import kamado\n"
        "for step in range(5):\n"
        "    kamado.log_metric('loss', 1.0 / (step + 1), step=step)\n"
        "print('validation:accuracy=0.75')\n"
        "print('validation:accuracy=not-a-number')\n"
    )
    src = write_script(tmp_path / "src", script)
    est = _estimator(
        live,
        src,
        metric_definitions=[{"Name": "validation:accuracy", "Regex": "validation:accuracy=([^ ]+)"}],
    )
    est.fit(logs=False)
    job = est.latest_training_job
    assert job is not None
    losses = job.metrics("loss")
    assert [m["Step"] for m in losses] == [0, 1, 2, 3, 4]
    assert losses[-1]["Value"] == pytest.approx(0.2)
    final = {m["MetricName"]: m["Value"] for m in job.describe()["FinalMetricDataList"]}
    assert final == {"loss": pytest.approx(0.2), "validation:accuracy": 0.75}


def test_duplicate_name_is_409_and_rerun_reproduces(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "import sys\nprint('args', sys.argv[1:])\n")
    est = _estimator(live, src, hyperparameters={"k": 1})
    est.fit(logs=False, job_name="orig")
    request = est.training_job_request(job_name="orig")
    with pytest.raises(ResourceInUse):
        live.client.create_training_job(request)
    new = live.client.rerun_training_job("orig", "orig-again")["TrainingJobName"]
    desc = live.wait(new)
    first = live.client.describe_training_job("orig")
    assert desc["TrainingJobStatus"] == "Completed"
    assert desc["Lineage"]["SourceHash"] == first["Lineage"]["SourceHash"]
    assert desc["HyperParameters"] == first["HyperParameters"]
    assert "args ['-k', '1']" in "".join(live.client.stream_training_job_logs(new, follow=False))


def test_requirements_install_failure_is_classified(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "print('never runs')\n")
    (src / "requirements.txt").write_text("./no-such-local-package-dir\n")
    est = _estimator(live, src)
    est.fit(wait=False, job_name="badreqs")
    desc = live.wait("badreqs", timeout=120)
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError: installing requirements.txt failed")
    assert "installing requirements.txt" in "".join(live.client.stream_training_job_logs("badreqs", follow=False))


def test_requirements_are_installed_into_a_cached_environment(live: LiveServer, tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "localpkg"
    (pkg / "kamado_test_localpkg").mkdir(parents=True)
    (pkg / "kamado_test_localpkg" / "__init__.py").write_text("VALUE = 42\n")
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "kamado-test-localpkg"\nversion = "1.0"\n'
    )
    src = write_script(
        tmp_path / "src", "import kamado_test_localpkg, sklearn\nprint('value', kamado_test_localpkg.VALUE)\n"
    )
    (src / "requirements.txt").write_text("./localpkg\n")
    est = _estimator(live, src)
    est.fit(wait=False, job_name="goodreqs")
    desc = live.wait("goodreqs", timeout=240)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert "value 42" in "".join(live.client.stream_training_job_logs("goodreqs", follow=False))
    envs = [p for p in (live.home / "envs").iterdir() if p.is_dir()]
    assert len(envs) == 1 and (envs[0] / ".kamado-ready").exists()


@pytest.mark.parametrize("live", [{"max_cpus": 1.0}], indirect=True)
def test_jobs_queue_when_the_machine_is_full(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import time, os\n"
        "t0 = time.time(); time.sleep(0.8)\n"
        "open(os.path.join(os.environ['SM_MODEL_DIR'], 't'), 'w').write(f'{t0} {time.time()}')\n"
    )
    src = write_script(tmp_path / "src", script)
    for i in range(2):
        _estimator(live, src).fit(wait=False, job_name=f"q-{i}")
    spans = []
    saw_pending = False
    for i in range(2):
        desc = live.wait(f"q-{i}")
        assert desc["TrainingJobStatus"] == "Completed"
        saw_pending |= any(t["Status"] == "Pending" for t in desc["SecondaryStatusTransitions"])
        out = live.client.extract_model(desc["ModelArtifacts"]["S3ModelArtifacts"], tmp_path / f"q{i}")
        spans.append(tuple(map(float, (out / "t").read_text().split())))
    spans.sort()
    assert spans[0][1] <= spans[1][0], f"jobs overlapped on a 1-CPU executor: {spans}"
    assert saw_pending, "the queued job should show SecondaryStatus Pending"


# -- bad input: 4xx naming the field, nothing created -------------------------------------------------
def _post(live: LiveServer, body: object) -> httpx.Response:
    return httpx.post(f"{live.url}/api/v1/training-jobs", json=body, timeout=10)


def _assert_nothing_created(live: LiveServer) -> None:
    assert live.client.list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "TrainingJobName": "a",
                "HyperParameters": {"sagemaker_program": '"x.py"'},
                "HyperParamters": {},
            },
            "HyperParamters",
        ),
        (
            {"TrainingJobName": "bad_name!", "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]}},
            "TrainingJobName",
        ),
        (
            {
                "TrainingJobName": "a",
                "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
                "HyperParameters": {"lr": 0.1},
            },
            "HyperParameters",
        ),
        ({"TrainingJobName": "a"}, "body"),
        (
            {
                "TrainingJobName": "a",
                "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
                "ResourceConfig": {"InstanceType": "ml.nope"},
            },
            "ResourceConfig.InstanceType",
        ),
        (
            {
                "TrainingJobName": "a",
                "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
                "InputDataConfig": [
                    {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "file:///etc/passwd"}}}
                ],
            },
            "InputDataConfig[0].DataSource.S3DataSource.S3Uri",
        ),
        (
            {
                "TrainingJobName": "a",
                "AlgorithmSpecification": {
                    "ContainerEntrypoint": ["true"],
                    "MetricDefinitions": [{"Name": "x", "Regex": "("}],
                },
            },
            "AlgorithmSpecification.MetricDefinitions[0].Regex",
        ),
        (
            {
                "TrainingJobName": "a",
                "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
                "StoppingCondition": {"MaxRuntimeInSeconds": 0},
            },
            "StoppingCondition.MaxRuntimeInSeconds",
        ),
    ],
)
def test_bad_requests_are_400_naming_the_field(live: LiveServer, body: object, field: str) -> None:
    resp = _post(live, body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["code"] == "ValidationException"
    fields = [d["field"] for d in problem.get("details", [])]
    assert field in fields or field in problem["message"], problem
    _assert_nothing_created(live)


def test_missing_entry_point_and_channel_are_rejected_before_anything_runs(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "print(1)\n")
    uri = live.client.upload_directory(src)
    base = {"TrainingJobName": "ep", "HyperParameters": {"sagemaker_submit_directory": json.dumps(uri)}}
    resp = _post(live, {**base, "HyperParameters": {**base["HyperParameters"], "sagemaker_program": '"nope.py"'}})
    assert resp.status_code == 400 and "nope.py" in resp.json()["message"]
    missing = uri.replace(uri.rsplit("/", 1)[-1], "0" * 64)
    resp = _post(
        live,
        {
            **base,
            "HyperParameters": {**base["HyperParameters"], "sagemaker_program": '"train.py"'},
            "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": missing}}}],
        },
    )
    assert resp.status_code == 400 and "does not exist" in resp.json()["message"]
    _assert_nothing_created(live)
    with pytest.raises(InvalidSpec, match="entry_point"):
        _estimator(live, src, entry_point="missing.py").fit()


def test_oversized_and_malformed_bodies(live: LiveServer) -> None:
    big = httpx.post(
        f"{live.url}/api/v1/training-jobs",
        content=b"x" * (2 << 20),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert big.status_code == 413 and big.json()["code"] == "PayloadTooLarge"
    deep = httpx.post(
        f"{live.url}/api/v1/training-jobs",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert deep.status_code in (400, 413) and deep.json()["code"] in (
        "ValidationException",
        "PayloadTooLarge",
    )
    garbage = httpx.post(
        f"{live.url}/api/v1/training-jobs",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert garbage.status_code == 400
    assert httpx.get(f"{live.url}/healthz").status_code == 200
    _assert_nothing_created(live)


def test_describe_missing_job_and_list_validation(live: LiveServer) -> None:
    resp = httpx.get(f"{live.url}/api/v1/training-jobs/nope")
    assert resp.status_code == 404 and "Could not find training job 'nope'" in resp.json()["message"]
    resp = httpx.get(f"{live.url}/api/v1/training-jobs", params={"SortBy": "name;DROP TABLE resources"})
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "SortBy"
    resp = httpx.get(f"{live.url}/api/v1/training-jobs", params={"NextToken": "forged"})
    assert resp.status_code == 400


def test_memory_limit_of_the_instance_type_is_enforced(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "big = bytearray(6 * 1024**3)\nprint('allocated', len(big))\n")
    est = _estimator(live, src, instance_type="ml.t3.medium")  # 4 GiB
    est.fit(wait=False, job_name="oom")
    desc = live.wait("oom")
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("OutOfMemory"), desc["FailureReason"]


def test_gpu_instance_type_without_gpus_is_refused(live: LiveServer) -> None:
    if live.client.info()["capacity"]["gpus"]:
        pytest.skip("this machine has GPUs")
    body = {
        "TrainingJobName": "gpu",
        "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
        "ResourceConfig": {"InstanceType": "ml.g4dn.xlarge"},
    }
    resp = _post(live, body)
    assert resp.status_code == 400 and "GPU" in resp.json()["message"]
    assert resp.json()["details"][0]["field"] == "ResourceConfig.InstanceType"
    _assert_nothing_created(live)


def test_model_tarball_shape(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import os\n"
        "d = os.environ['SM_MODEL_DIR']\n"
        "os.makedirs(os.path.join(d, 'sub'))\n"
        "open(os.path.join(d, 'sub', 'w.bin'), 'wb').write(b'abc')\n"
    )
    src = write_script(tmp_path / "src", script)
    est = _estimator(live, src)
    est.fit(logs=False)
    archive = live.client.download_artifact(est.model_data, tmp_path / "model.tar.gz")  # type: ignore[arg-type]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "sub/w.bin" in [n.removeprefix("./") for n in names]


def test_long_logs_are_complete_via_api_and_archived(live: LiveServer, tmp_path: Path) -> None:
    script = "import sys\nfor i in range(3000):\n    print(f'line {i}', flush=True)\n"
    src = write_script(tmp_path / "src", script)
    est = _estimator(live, src)
    est.fit(logs=False, job_name="chatty")
    text = "".join(live.client.stream_training_job_logs("chatty", follow=False))
    lines = [ln for ln in text.splitlines() if ln.startswith("line ")]
    assert lines == [f"line {i}" for i in range(3000)], "every line once, in order, across pages"
    desc = live.client.describe_training_job("chatty")
    archived = live.client.download_artifact(desc["LogArtifacts"], tmp_path / "log.txt").read_text()
    assert archived.count("\n") >= 3000 and archived.startswith("line 0\n")
    assert not any((live.home / "tasks").iterdir()), "the executor's task files are cleaned up"


def test_checkpoint_uri_outside_the_store_is_rejected(live: LiveServer, tmp_path: Path) -> None:
    body = {
        "TrainingJobName": "ck",
        "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]},
        "CheckpointConfig": {"S3Uri": "file:///etc"},
    }
    resp = _post(live, body)
    assert resp.status_code == 400 and resp.json()["details"][0]["field"] == "CheckpointConfig.S3Uri"
    _assert_nothing_created(live)


def test_checkpoints_round_trip_between_jobs(live: LiveServer, tmp_path: Path) -> None:
    script = (
        "import os\n"
        "d = os.path.join(os.environ['SAGEMAKER_BASE_DIR'], 'checkpoints')  # /opt/ml/checkpoints in a namespace\n"
        "p = os.path.join(d, 'step.txt')\n"
        "n = int(open(p).read()) if os.path.exists(p) else 0\n"
        "print('resumed at', n)\n"
        "open(p, 'w').write(str(n + 1))\n"
    )
    src = write_script(tmp_path / "src", script)
    ckpt = live.client.info()["artifactStore"] + "/checkpoints/ck-demo"
    for i in range(2):
        _estimator(live, src, checkpoint_s3_uri=ckpt).fit(logs=False, job_name=f"ck-{i}")
    assert "resumed at 1" in "".join(live.client.stream_training_job_logs("ck-1", follow=False))


@pytest.mark.parametrize("live", [{"opt_ml_namespace": "off"}], indirect=True)
def test_without_private_opt_ml_sm_variables_work_and_failures_explain(live: LiveServer, tmp_path: Path) -> None:
    assert live.client.info()["privateOptMl"] is False
    ok = write_script(
        tmp_path / "ok", "import os\nopen(os.path.join(os.environ['SM_MODEL_DIR'], 'm'), 'w').write('x')\n"
    )
    _estimator(live, ok).fit(logs=False, job_name="sm-vars")
    hard = write_script(tmp_path / "hard", "open('/opt/ml/input/config/hyperparameters.json').read()\n")
    _estimator(live, hard).fit(wait=False, job_name="hard-coded")
    desc = live.wait("hard-coded")
    assert desc["TrainingJobStatus"] == "Failed"
    assert "FileNotFoundError" in desc["FailureReason"] and "no private /opt/ml" in desc["FailureReason"]


def test_openapi_is_published(live: LiveServer) -> None:
    spec = httpx.get(f"{live.url}/api/v1/openapi.json").json()
    assert {"/api/v1/training-jobs", "/api/v1/training-jobs/{name}", "/api/v1/trees/{digest}"} <= set(spec["paths"])
    create = spec["paths"]["/api/v1/training-jobs"]["post"]
    assert "CreateTrainingJobRequest" in json.dumps(create)


def test_sagemaker_local_mode_file_uris_are_uploaded(live: LiveServer, tmp_path: Path) -> None:
    src = write_script(tmp_path / "src", "import os\nprint(sorted(os.listdir(os.environ['SM_CHANNEL_TRAIN'])))\n")
    data = _csv(tmp_path / "d")
    _estimator(live, src).fit({"train": f"file://{data}"}, logs=False, job_name="file-uri")
    assert "['data.csv']" in "".join(live.client.stream_training_job_logs("file-uri", follow=False))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"TrainingJobName": "a", "StoppingCondition": {"MaxRuntimeInSeconds": 1e999999}}',
        b'{"TrainingJobName": "a", "StoppingCondition": {"MaxRuntimeInSeconds": ' + b"9" * 5000 + b"}}",
        b'{"TrainingJobName": NaN}',
        b'{"TrainingJobName": "\\ud800"}',
        b'{"TrainingJobName": "a\\r\\nInjected: 1", "AlgorithmSpecification": {"ContainerEntrypoint": ["true"]}}',
        b'{"TrainingJobName": "' + b"a" * 10_000 + b'"}',
        b'"just a string"',
        b"null",
        b"\xff\xfe not utf-8",
        b'{"TrainingJobName": "a", "HyperParameters": {"' + b"k" * 300 + b'": "1"}}',
    ],
    ids=[
        "inf",
        "huge-int",
        "nan",
        "lone-surrogate",
        "crlf-name",
        "long-name",
        "string",
        "null",
        "bad-utf8",
        "long-hp-key",
    ],
)
def test_json_abuse_is_rejected_with_4xx(live: LiveServer, raw: bytes) -> None:
    resp = httpx.post(f"{live.url}/api/v1/training-jobs", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "ValidationException"
    assert httpx.get(f"{live.url}/healthz").status_code == 200
    _assert_nothing_created(live)
