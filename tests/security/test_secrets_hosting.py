"""T12 for models, endpoints and batch transform: a secret referenced from a model's
``PrimaryContainer.Environment`` reaches the model server, and its value never shows in FailureReason,
the endpoint's logs route or describe output; plain credentials are refused at create."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kamado.core.errors import InvalidSpec, NotFound
from tests.hosting.endpoint_kit import model_archive
from tests.live_server import LiveServer

INFERENCE = """
import json, os

def model_fn(model_dir):
    key = os.environ["API_KEY"]
    print("loading with", key, flush=True)
    if os.environ.get("CRASH"):
        raise RuntimeError("cannot load with " + key)
    return key

def input_fn(body, content_type):
    return json.loads(body)

def predict_fn(data, model):
    return {"same": data.get("expect") == model}

def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
"""


def _model(live: LiveServer, tmp_path: Path, name: str, **env: str) -> None:
    code = tmp_path / "code"
    if not code.is_dir():
        code.mkdir()
        (code / "inference.py").write_text(INFERENCE)
    model_uri = live.client.upload_file(model_archive(tmp_path / "model"))
    environment = {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": live.client.upload_directory(code),
    }
    live.client._request(
        "POST",
        "/api/v1/models",
        json={
            "ModelName": name,
            "PrimaryContainer": {"ModelDataUrl": model_uri, "Environment": {**environment, **env}},
        },
    )


def _endpoint(live: LiveServer, name: str, model: str) -> None:
    variant = {"VariantName": "v1", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "local"}
    live.client._request(
        "POST", "/api/v1/endpoint-configs", json={"EndpointConfigName": name, "ProductionVariants": [variant]}
    )
    live.client._request("POST", "/api/v1/endpoints", json={"EndpointName": name, "EndpointConfigName": name})


def _wait(live: LiveServer, name: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = live.client._request("GET", f"/api/v1/endpoints/{name}")
        if desc["EndpointStatus"] == status:
            return desc
        assert time.monotonic() < deadline, f"{name} not {status}: {desc}"
        time.sleep(0.1)


def test_endpoint_gets_the_secret_and_never_shows_it(live: LiveServer, tmp_path: Path) -> None:
    canary = secrets.token_hex(32)
    ref = live.client.create_secret("model/api-key", canary)["Reference"]
    _model(live, tmp_path, "good", API_KEY=ref)
    _model(live, tmp_path, "bad", API_KEY=ref, CRASH="1")
    _endpoint(live, "good", "good")
    _endpoint(live, "bad", "bad")
    desc = _wait(live, "good", "InService")
    resp = httpx.post(
        desc["InvocationUrl"], content=json.dumps({"expect": canary}), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 200 and resp.json() == {"same": True}, "the model server received the value"
    logs = (
        live.client._request("GET", "/api/v1/endpoints/good/logs")
        if False
        else httpx.get(f"{live.url}/api/v1/endpoints/good/logs").text
    )
    assert "loading with ***" in logs
    failed = _wait(live, "bad", "Failed")
    assert "cannot load with ***" in failed["FailureReason"], failed["FailureReason"]
    model = live.client._request("GET", "/api/v1/models/good")
    assert model["PrimaryContainer"]["Environment"]["API_KEY"] == ref
    assert canary not in repr(failed) + logs + repr(model) + repr(desc)


def test_plain_credentials_are_refused_for_models_and_transform_jobs(live: LiveServer, tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match=r"PrimaryContainer\.Environment\.AWS_ACCESS_KEY_ID") as exc:
        _model(live, tmp_path, "leaky", AWS_ACCESS_KEY_ID="AKIAABCDEFGHIJKLMNOP")
    assert "AKIAABCDEFGHIJKLMNOP" not in str(exc.value)
    with pytest.raises(NotFound):
        live.client._request("GET", "/api/v1/models/leaky")
    _model(live, tmp_path, "plain")
    data = live.client.upload_file(_csv(tmp_path))
    with pytest.raises(InvalidSpec, match=r"Environment\.SERVICE_TOKEN"):
        live.client._request(
            "POST",
            "/api/v1/transform-jobs",
            json={
                "TransformJobName": "leaky-batch",
                "ModelName": "plain",
                "Environment": {"SERVICE_TOKEN": "Zq8xW2pL9vR4tY7u"},
                "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}}},
                "TransformOutput": {"S3OutputPath": data.rsplit("/", 1)[0] + "/out"},
                "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
            },
        )


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("5.1,3.5,1.4,0.2\n")
    return path
