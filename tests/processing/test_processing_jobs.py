"""Processing jobs end to end against a real server, real subprocesses and the real artifact store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import kamado
from kamado.core.errors import IllegalTransition, InvalidSpec
from kamado.sdk.processing import ProcessingJobFailed
from tests.live_server import LiveServer

IN = "/opt/ml/processing/input/data"
OUT = "/opt/ml/processing/output/result"

#: Reads every input file, reports what it saw and where it is, writes one output file per host.
SCRIPT = r"""
import json, os, sys
root = "/opt/ml" if os.path.isdir("/opt/ml/processing") else os.environ["KAMADO_OPT_ML"]
rc = json.load(open(os.path.join(root, "config", "resourceconfig.json")))
cfg = json.load(open(os.path.join(root, "config", "processingjobconfig.json")))
data = os.environ["KAMADO_INPUT_DATA"]
files = sorted(os.listdir(data))
total = sum(int(open(os.path.join(data, f)).read()) for f in files)
out = os.environ["KAMADO_OUTPUT_RESULT"]
report = {"host": rc["current_host"], "hosts": rc["hosts"], "files": files, "total": total,
          "job": cfg["ProcessingJobName"], "argv": sys.argv[1:], "greeting": os.environ.get("GREETING")}
with open(os.path.join(out, rc["current_host"] + ".json"), "w") as f:
    json.dump(report, f)
os.makedirs(os.path.join(root, "output"), exist_ok=True)
open(os.path.join(root, "output", "message"), "w").write(rc["current_host"] + " ok;")
print("processed", len(files), "files on", rc["current_host"])
"""


def _data(directory: Path, n: int = 5) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / f"part-{i}.txt").write_text(str(i + 1))
    return directory


def _run(live: LiveServer, tmp_path: Path, *, count: int, distribution: str, body: str = SCRIPT, **run: Any) -> Any:
    script = tmp_path / "process.py"
    script.write_text(body)
    processor = kamado.ScriptProcessor(
        command=["python3"], instance_count=count, env={"GREETING": "hi"}, client=live.client
    )
    processor.run(
        code=str(script),
        inputs=[
            kamado.ProcessingInput(
                source=str(_data(tmp_path / "data")),
                destination=IN,
                input_name="data",
                s3_data_distribution_type=distribution,
            )
        ],
        outputs=[kamado.ProcessingOutput(source=OUT, output_name="result")],
        **{"logs": False, **run},
    )
    return processor


def _reports(live: LiveServer, desc: dict[str, Any], tmp_path: Path) -> dict[str, dict[str, Any]]:
    uri = desc["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    out = {}
    for host in [f"algo-{i + 1}" for i in range(desc["ProcessingResources"]["ClusterConfig"]["InstanceCount"])]:
        path = live.client.download_artifact(f"{uri}/{host}.json", tmp_path / "dl" / f"{host}.json")
        out[host] = json.loads(path.read_text())
    return out


def test_sharded_by_s3_key_splits_inputs_across_instances(live: LiveServer, tmp_path: Path) -> None:
    processor = _run(live, tmp_path, count=2, distribution="ShardedByS3Key", arguments=["--flag", "1"])
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert desc["ProcessingStartTime"] and desc["ProcessingEndTime"]
    assert desc["ExitMessage"] == "algo-1 ok;algo-2 ok;"
    assert [i["Status"] for i in desc["Instances"]] == ["Succeeded", "Succeeded"]
    reports = _reports(live, desc, tmp_path)
    a, b = reports["algo-1"], reports["algo-2"]
    assert a["hosts"] == b["hosts"] == ["algo-1", "algo-2"]
    assert set(a["files"]).isdisjoint(b["files"]) and a["files"] and b["files"]
    assert sorted(a["files"] + b["files"]) == [f"part-{i}.txt" for i in range(5)]
    assert a["total"] + b["total"] == 15
    assert a["argv"] == ["--flag", "1"] and a["greeting"] == "hi" and a["job"] == desc["ProcessingJobName"]
    logs = processor.latest_job.logs()
    assert "[algo-1] processed" in logs and "[algo-2] processed" in logs
    summaries = live.client.list_processing_jobs(StatusEquals="Completed")["ProcessingJobSummaries"]
    assert [s["ProcessingJobName"] for s in summaries] == [desc["ProcessingJobName"]]


def test_fully_replicated_gives_every_instance_everything(live: LiveServer, tmp_path: Path) -> None:
    processor = _run(live, tmp_path, count=2, distribution="FullyReplicated")
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    reports = _reports(live, desc, tmp_path)
    assert reports["algo-1"]["total"] == reports["algo-2"]["total"] == 15
    assert reports["algo-1"]["files"] == reports["algo-2"]["files"]


def test_failing_instance_fails_the_job_with_its_host_and_reason(live: LiveServer, tmp_path: Path) -> None:
    body = "import os, sys\nif os.environ['CURRENT_HOST'] == 'algo-2':\n    raise ValueError('bad row 7')\n"
    with pytest.raises(ProcessingJobFailed, match="bad row 7"):
        _run(live, tmp_path, count=2, distribution="ShardedByS3Key", body=body)
    desc = live.client.describe_processing_job(
        live.client.list_processing_jobs()["ProcessingJobSummaries"][0]["ProcessingJobName"]
    )
    assert desc["ProcessingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("algo-2: AlgorithmError: ValueError: bad row 7")
    assert desc["Instances"][1]["ExitCode"] == 1


def test_stop_a_running_job(live: LiveServer, tmp_path: Path) -> None:
    body = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    processor = _run(live, tmp_path, count=1, distribution="FullyReplicated", body=body, wait=False)
    job = processor.latest_job
    deadline = time.monotonic() + 20
    while "started" not in job.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()
    desc = live.client.wait_for_processing_job(job.name, poll_s=0.05, timeout_s=20)
    assert desc["ProcessingJobStatus"] == "Stopped"
    with pytest.raises(IllegalTransition, match="cannot be stopped"):
        job.stop()


def _request(**overrides: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "ProcessingJobName": "p-bad",
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1}},
        "AppSpecification": {"ImageUri": "local", "ContainerEntrypoint": ["python3", "-c", "pass"]},
    }
    req.update(overrides)
    return req


def _s3_input(**s3: Any) -> list[dict[str, Any]]:
    return [{"InputName": "data", "S3Input": {"S3Uri": "s3://x/y", "LocalPath": IN, "S3DataType": "S3Prefix", **s3}}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"Bogus": 1}, "Bogus"),
        ({"ProcessingJobName": "bad_name"}, "ProcessingJobName"),
        ({"AppSpecification": {"ImageUri": "x"}}, "body"),
        ({"ProcessingInputs": _s3_input(S3InputMode="Pipe")}, "ProcessingInputs[0].S3Input.S3InputMode"),
        ({"ProcessingInputs": _s3_input(LocalPath="/tmp/data")}, "ProcessingInputs[0].S3Input.LocalPath"),
        ({"ProcessingInputs": [{**_s3_input()[0], "DatasetDefinition": {}}]}, "ProcessingInputs[0].DatasetDefinition"),
        (
            {
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": "o",
                            "S3Output": {"S3Uri": "s3://x", "LocalPath": OUT, "S3UploadMode": "Continuous"},
                        }
                    ]
                }
            },
            "ProcessingOutputConfig.Outputs[0].S3Output.S3UploadMode",
        ),
        (
            {"ProcessingResources": {"ClusterConfig": {"InstanceCount": 0, "InstanceType": "local"}}},
            "ProcessingResources.ClusterConfig.InstanceCount",
        ),
        (
            {"ProcessingResources": {"ClusterConfig": {"InstanceType": "huge"}}},
            "ProcessingResources.ClusterConfig.InstanceType",
        ),
        ({"ProcessingInputs": _s3_input()}, "ProcessingInputs[0].S3Input.S3Uri"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(live: LiveServer, overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        live.client.create_processing_job(_request(**overrides))
    fields = [d.get("field") for d in err.value.details or []]  # type: ignore[union-attr]
    assert field in fields, (fields, err.value.message)
    assert live.client.list_processing_jobs()["ProcessingJobSummaries"] == []


@pytest.mark.parametrize("live", [{"opt_ml_namespace": "off"}], indirect=True)
def test_without_a_private_opt_ml_paths_point_into_the_job_dir(live: LiveServer, tmp_path: Path) -> None:
    body = SCRIPT + "assert not os.path.exists('/opt/ml/processing'), 'expected no private /opt/ml'\n"
    body += "assert sys.argv[1].startswith(os.environ['KAMADO_OPT_ML']), sys.argv\n"
    processor = _run(live, tmp_path, count=1, distribution="ShardedByS3Key", body=body, arguments=[IN])
    desc = processor.latest_job.describe()
    assert desc["ProcessingJobStatus"] == "Completed", desc.get("FailureReason")
    assert _reports(live, desc, tmp_path)["algo-1"]["total"] == 15
