"""Shared parts of the transform tests: a real sklearn model, inference code, CSV inputs, job requests."""

from __future__ import annotations

import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kamado.sdk.client import Client

#: Default input_fn/output_fn (CSV in, CSV out); predict_fn fails any batch holding a row whose first
#: feature is negative, and sleeps KIT_SLEEP_S per request (for the stop test).
INFERENCE = """
import os, time
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def predict_fn(data, model):
    time.sleep(float(os.environ.get("KIT_SLEEP_S", "0")))
    if (data[:, 0] < 0).any():
        raise ValueError("poisoned row: a negative sepal length")
    return model.predict(data)
"""


@dataclass
class TransformKit:
    client: Client
    model: Any
    model_uri: str
    code_uri: str
    tmp: Path

    def create_model(self, name: str, **env: str) -> None:
        self.client.create_model(
            {
                "ModelName": name,
                "PrimaryContainer": {
                    "ModelDataUrl": self.model_uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": self.code_uri,
                        **env,
                    },
                },
            }
        )

    def upload_inputs(self, name: str, files: dict[str, np.ndarray]) -> str:
        """CSV files (one row per line) uploaded as one directory; returns its URI."""
        directory = self.tmp / name
        directory.mkdir(parents=True)
        for file, rows in files.items():
            (directory / file).parent.mkdir(parents=True, exist_ok=True)
            (directory / file).write_text("".join(",".join(f"{v:g}" for v in row) + "\n" for row in rows))
        return self.client.upload_directory(directory)

    def output_uri(self, name: str) -> str:
        root = self.client.info()["artifactStore"].rstrip("/")
        return f"{root}/transform-out/{name}"

    def read_output(self, uri: str, file: str) -> list[str]:
        dest = self.tmp / "downloads" / f"{time.monotonic_ns()}-{file}"
        self.client.download_artifact(f"{uri}/{file}", dest)
        return dest.read_text().splitlines()

    def predictions(self, rows: np.ndarray) -> list[str]:
        return [str(int(v)) for v in self.model.predict(rows)]


def request(name: str, model: str, data_uri: str, output_uri: str, **extra: Any) -> dict[str, Any]:
    req: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(req.get(key), dict):
            req[key] = {**req[key], **value}
        else:
            req[key] = value
    return req


def iris_rows(n: int, seed: int) -> np.ndarray:
    x, _ = load_iris(return_X_y=True)
    return x[np.random.default_rng(seed).integers(0, len(x), n)]


def make_kit(client: Client, tmp: Path) -> TransformKit:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    model_dir = tmp / "model"
    model_dir.mkdir(parents=True)
    joblib.dump(model, model_dir / "model.joblib")
    with tarfile.open(model_dir / "model.tar.gz", "w:gz") as tar:
        tar.add(model_dir / "model.joblib", arcname="model.joblib")
    code = tmp / "code"
    code.mkdir()
    (code / "inference.py").write_text(INFERENCE)
    return TransformKit(
        client, model, client.upload_file(model_dir / "model.tar.gz"), client.upload_directory(code), tmp
    )
