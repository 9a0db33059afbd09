"""Real data for the console tests: a trained job with metrics, a tuning job, an endpoint held
mid-canary, a map run with failed items, a processing job. Everything goes through the public API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from kamado.sdk.client import Client

TRAIN = (
    "import argparse, math, time\n"
    "p = argparse.ArgumentParser()\n"
    "p.add_argument('--lr', type=float, default=0.1)\n"
    "p.add_argument('--epochs', type=int, default=30)\n"
    "p.add_argument('--sleep', type=float, default=0.0)\n"
    "a, _ = p.parse_known_args()\n"
    "for e in range(a.epochs):\n"
    "    loss = math.exp(-a.lr * e) + 0.01 * (e % 3)\n"
    "    print(f'epoch={e} loss={loss:.5f} acc={1 - loss / 2:.5f}', flush=True)\n"
    "    time.sleep(a.sleep)\n"
    "print('<b>log line with markup</b>')\n"
)

QUADRATIC = (
    "import argparse, sys, time\n"
    "p = argparse.ArgumentParser()\n"
    "p.add_argument('--xx', type=float, default=0.0)\n"
    "p.add_argument('--kk', type=str, default='a')\n"
    "a, _ = p.parse_known_args()\n"
    "time.sleep(0.2)\n"
    "if a.xx > 0.9: sys.exit('xx too large for this model')\n"
    "print(f\"score={-(a.xx - 0.3) ** 2 + (0.1 if a.kk == 'b' else 0):.6f}\")\n"
)

METRICS = [
    {"Name": "loss", "Regex": r"loss=([-0-9.]+)"},
    {"Name": "acc", "Regex": r"acc=([-0-9.]+)"},
]


def upload_source(client: Client, directory: Path, body: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.py").write_text(body)
    return client.upload_directory(directory)


def training_request(name: str, uri: str, **hp: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"MetricDefinitions": METRICS},
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": json.dumps(uri),
            **hp,
        },
        "Tags": [{"Key": "team", "Value": "vision"}],
    }


def tuning_request(name: str, uri: str) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "xx", "MinValue": "0", "MaxValue": "1"}],
                "CategoricalParameterRanges": [{"Name": "kk", "Values": ["a", "b"]}],
            },
            "RandomSeed": 7,
        },
        "TrainingJobDefinition": {
            "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "score", "Regex": "score=([-0-9.]+)"}]},
            "StaticHyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(uri)},
        },
    }


def wait_for(check: Any, timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def get(url: str, path: str, **params: Any) -> Any:
    resp = httpx.get(url + path, params=params, timeout=30)
    resp.raise_for_status()
    return resp.json()


XSS = '<img src=x onerror="window.__xss=1">'
FAIL = f"print('about to fail', flush=True)\nraise ValueError('bad data {XSS}')\n"
TUNED_FAILING = QUADRATIC.replace("if a.xx > 0.9:", "if a.xx > 0.7:")


def tuning_with_failures(name: str, uri: str) -> dict[str, Any]:
    body = tuning_request(name, uri)
    body["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 8
    return body


def variant(name: str, model: str, weight: float = 1.0) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": 1, "InitialVariantWeight": weight}


CANARY_HELD = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            "WaitIntervalInSeconds": 3600,  # bakes for an hour: the deployment holds mid-canary for the tests
        }
    }
}
