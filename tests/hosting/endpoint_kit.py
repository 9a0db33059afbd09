"""Shared parts of the end-to-end hosting tests: a real model, an inference script, steady load."""

from __future__ import annotations

import tarfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kamado.sdk.client import Client

#: An inference script whose behaviour the model's Environment chooses: healthy, failing a share of
#: requests, or slow; it reports the version it serves so tests can tell fleets apart.
INFERENCE = """
import json, os, random, time
import joblib

def model_fn(model_dir):
    if os.environ.get("KIT_CRASH_ON_LOAD") or os.path.exists(os.environ.get("KIT_CRASH_FLAG", "/nonexistent")):
        raise RuntimeError("this model cannot load")
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def predict_fn(data, model):
    if random.random() < float(os.environ.get("KIT_FAIL_RATE", "0")):
        raise ValueError("injected model failure")
    time.sleep(float(os.environ.get("KIT_SLEEP_S", "0")))
    return {"version": os.environ.get("KIT_VERSION", "v1"), "labels": model.predict(data).tolist()}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def model_archive(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), directory / "model.joblib")
    archive = directory / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(directory / "model.joblib", arcname="model.joblib")
    return archive


@dataclass
class Kit:
    client: Client
    model_uri: str
    code_uri: str

    def model(self, name: str, **env: str) -> None:
        self.client._request(
            "POST",
            "/api/v1/models",
            json={
                "ModelName": name,
                "PrimaryContainer": {
                    "ModelDataUrl": self.model_uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": self.code_uri,
                        **env,
                    },
                },
            },
        )

    def config(self, name: str, variants: list[dict[str, Any]], **extra: Any) -> None:
        self.client._request(
            "POST",
            "/api/v1/endpoint-configs",
            json={"EndpointConfigName": name, "ProductionVariants": variants, **extra},
        )

    def endpoint(self, name: str, config: str) -> None:
        self.client._request("POST", "/api/v1/endpoints", json={"EndpointName": name, "EndpointConfigName": config})

    def describe(self, name: str) -> dict[str, Any]:
        return self.client._request("GET", f"/api/v1/endpoints/{name}")

    def wait(self, name: str, status: str = "InService", timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            desc = self.describe(name)
            if desc["EndpointStatus"] == status:
                return desc
            assert desc["EndpointStatus"] not in ("Failed",) or status == "Failed", desc
            assert time.monotonic() < deadline, f"endpoint {name} not {status} in {timeout} s: {desc}"
            time.sleep(0.1)

    def runtime(self) -> str:
        return str(self.client._request("GET", "/api/v1/runtime")["Url"])


def make_kit(client: Client, tmp: Path) -> Kit:
    code = tmp / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "inference.py").write_text(INFERENCE)
    return Kit(client, client.upload_file(model_archive(tmp / "model")), client.upload_directory(code))


ROW = b"[[5.1, 3.5, 1.4, 0.2]]"


@dataclass
class Load:
    """Steady invocations from several keep-alive clients; counts every outcome (a failure is anything
    but a 2xx: an error status, a reset, a timeout)."""

    url: str
    threads: int = 4
    pause_s: float = 0.005
    outcomes: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    variants: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=30, trust_env=False) as http:
            while not self._stop.is_set():
                try:
                    r = http.post(self.url, content=ROW, headers={"Content-Type": "application/json"})
                    outcome = str(r.status_code)
                    version = r.json().get("version", "?") if r.status_code == 200 else None
                    variant = r.headers.get("x-amzn-invoked-production-variant")
                except httpx.HTTPError as exc:
                    outcome, version, variant = type(exc).__name__, None, None
                with self._lock:
                    self.outcomes[outcome] += 1
                    if version:
                        self.versions[version] += 1
                    if variant:
                        self.variants[variant] += 1
                time.sleep(self.pause_s)

    def stop(self) -> Load:
        self._stop.set()
        for t in self._workers:
            t.join(30)
        return self

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.total - self.outcomes.get("200", 0)
