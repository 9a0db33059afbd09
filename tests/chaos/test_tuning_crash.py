"""A tuning job survives `kill -9` of the server: it continues to MaxNumberOfTrainingJobs with no trial
lost, none duplicated, at most MaxParallelTrainingJobs running at once, and the best result recorded."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest
from tests.chaos.test_crash_recovery import Server
from tests.live_server import task_visible_dir

from kamado.sdk.client import Client

SCRIPT = (
    "import argparse, os, time\n"
    "p = argparse.ArgumentParser(); p.add_argument('--xx', type=float); a, _ = p.parse_known_args()\n"
    "t0 = time.time(); time.sleep(0.6)\n"
    "print(f'score={-(a.xx - 0.3) ** 2:.6f}', flush=True)\n"
    "open(os.environ['KAMADO_TRIAL_LOG'], 'a').write(f\"{os.environ['TRAINING_JOB_NAME']} {t0} {time.time()}\\n\")\n"
)


def _seeds() -> list[int]:
    raw = os.environ.get("KAMADO_CHAOS_SEEDS", "11")
    return [int(s) for s in raw.split(",") if s]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", _seeds())
def test_tuning_job_survives_server_kills(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    trial_log = task_visible_dir("kamado-chaos-trials-") / "trials.txt"  # appended to by every trial, each
    trial_log.touch()  # possibly as a uid of its own (a root server gives each task one)
    trial_log.chmod(0o666)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KAMADO_")},
        "KAMADO_MAX_CPUS": "4",
        "KAMADO_STOP_GRACE_S": "2",
    }
    server = Server(home, logs, env)
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(SCRIPT)
    max_jobs, parallel = 12, 2
    kills = 0
    try:
        url = server.start()
        with Client(url) as c:
            uri = c.upload_directory(src)
            c._request(
                "POST",
                "/api/v1/tuning-jobs",
                json={
                    "HyperParameterTuningJobName": "crashy",
                    "HyperParameterTuningJobConfig": {
                        "Strategy": "Bayesian",
                        "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
                        "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
                        "ParameterRanges": {
                            "ContinuousParameterRanges": [{"Name": "xx", "MinValue": "0", "MaxValue": "1"}]
                        },
                        "RandomSeed": seed,
                    },
                    "TrainingJobDefinition": {
                        "AlgorithmSpecification": {
                            "MetricDefinitions": [{"Name": "score", "Regex": "score=([-0-9.]+)"}]
                        },
                        "StaticHyperParameters": {
                            "sagemaker_program": '"train.py"',
                            "sagemaker_submit_directory": json.dumps(uri),
                        },
                        "Environment": {"KAMADO_TRIAL_LOG": str(trial_log)},
                    },
                },
            )
        for _ in range(2):
            # Kill while trials run: after a seeded number of trials have been created.
            target = rng.randint(2, max_jobs - 3) if kills == 0 else rng.randint(7, max_jobs - 1)
            deadline = time.monotonic() + 60
            with Client(server.url) as c:
                while (
                    len(c.list_training_jobs(TuningJobName="crashy", MaxResults=100)["TrainingJobSummaries"]) < target
                ):
                    assert time.monotonic() < deadline, f"seed {seed}: trials never reached {target}"
                    time.sleep(0.05)
            assert server.kill9() is not None
            kills += 1
            server.start()
        with Client(server.url) as c:
            deadline = time.monotonic() + 120
            while (desc := c._request("GET", "/api/v1/tuning-jobs/crashy"))[
                "HyperParameterTuningJobStatus"
            ] == "InProgress":
                assert time.monotonic() < deadline, f"seed {seed}: tuning job stuck: {desc}"
                time.sleep(0.1)
            trials = c._request("GET", "/api/v1/tuning-jobs/crashy/training-jobs")["TrainingJobSummaries"]
            unfinished = [
                {k: d.get(k) for k in ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "FailureReason")}
                for t in trials
                if t["TrainingJobStatus"] != "Completed"
                for d in [c.describe_training_job(t["TrainingJobName"])]
            ]
        assert kills == 2
        assert desc["HyperParameterTuningJobStatus"] == "Completed", f"seed {seed}: {desc.get('FailureReason')}"
        names = [t["TrainingJobName"] for t in trials]
        numbers = [n.split("-")[1] for n in names]
        assert numbers == [f"{i:03d}" for i in range(1, max_jobs + 1)], f"seed {seed}: trials {names}"
        assert unfinished == [], f"seed {seed}: {unfinished}"
        values = [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials]
        assert desc["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
        # From the jobs' own records: each trial ran exactly once, never more than `parallel` at a time.
        runs = [line.split() for line in trial_log.read_text().splitlines()]
        assert sorted(r[0] for r in runs) == sorted(names), f"seed {seed}: runs {runs}"
        events = sorted([(float(r[1]), 1) for r in runs] + [(float(r[2]), -1) for r in runs])
        running = peak = 0
        for _, delta in events:
            running += delta
            peak = max(peak, running)
        assert peak <= parallel, f"seed {seed}: {peak} trials overlapped"
        con = sqlite3.connect(home / "kamado.db")
        attempts = con.execute("select name, count(*) from attempts group by name having count(*) > 1").fetchall()
        con.close()
        assert attempts == [], f"seed {seed}: trials with more than one attempt: {attempts}"
    finally:
        server.kill9()
