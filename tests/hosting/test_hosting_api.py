"""Hosting's control-plane API refuses bad input with a 4xx naming the field, and stores nothing."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kamado.api.app import create_app
from kamado.core.errors import IllegalTransition, InvalidSpec, KamadoError, NotFound, ResourceInUse
from kamado.core.settings import Settings
from kamado.sdk.client import Client
from kamado.testing.in_process import InProcessTransport


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Client, str]]:
    settings = Settings.from_env(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'k.db'}", artifacts_url=str(tmp_path / "art")
    )
    app = create_app(settings, run_reconcilers=False)
    transport = InProcessTransport(app)
    client = Client(transport=transport)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(buf.getvalue())
    uri = client.upload_file(archive)
    try:
        yield client, uri
    finally:
        client.close()
        transport.close()


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client._request("POST", f"/api/v1/{path}", json=body)


def _model(client: Client, uri: str, name: str = "m") -> None:
    _post(client, "models", {"ModelName": name, "PrimaryContainer": {"ModelDataUrl": uri}})


def _config(client: Client, name: str = "c", **variant: Any) -> None:
    body = {
        "EndpointConfigName": name,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m", **variant}],
    }
    _post(client, "endpoint-configs", body)


def _fields(exc: KamadoError) -> str:
    return f"{exc.message} {exc.details}"


def test_model_needs_data_that_exists(api: tuple[Client, str]) -> None:
    client, uri = api
    with pytest.raises(InvalidSpec) as missing:
        _post(client, "models", {"ModelName": "m", "PrimaryContainer": {}})
    assert "ModelDataUrl" in _fields(missing.value)
    with pytest.raises(InvalidSpec) as absent:
        _post(client, "models", {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": uri + "-nope"}})
    assert "does not exist" in _fields(absent.value)
    with pytest.raises(InvalidSpec) as outside:
        _post(client, "models", {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "s3://bucket/model.tar.gz"}})
    assert "artifact store" in _fields(outside.value)
    assert client._request("GET", "/api/v1/models")["Models"] == [], "nothing stored"
    _model(client, uri)
    assert client._request("GET", "/api/v1/models/m")["PrimaryContainer"]["ModelDataUrl"] == uri
    with pytest.raises(ResourceInUse):
        _model(client, uri)


@pytest.mark.parametrize(
    ("variants", "needle"),
    [
        ([{"VariantName": "a", "ModelName": "ghost"}], "ModelName"),
        ([{"VariantName": "a", "ModelName": "m", "InitialVariantWeight": 0}], "InitialVariantWeight"),
        ([{"VariantName": "a", "ModelName": "m"}, {"VariantName": "a", "ModelName": "m"}], "unique"),
        ([{"VariantName": "a", "ModelName": "m", "InstanceType": "ml.bogus"}], "InstanceType"),
        ([{"VariantName": "a", "ModelName": "m", "InitialInstanceCount": 0}], "InitialInstanceCount"),
        ([], "ProductionVariants"),
    ],
)
def test_endpoint_config_errors_name_the_field(api: tuple[Client, str], variants: list[dict], needle: str) -> None:
    client, uri = api
    _model(client, uri)
    with pytest.raises(InvalidSpec) as err:
        _post(client, "endpoint-configs", {"EndpointConfigName": "c", "ProductionVariants": variants})
    assert needle in _fields(err.value)
    assert client._request("GET", "/api/v1/endpoint-configs")["EndpointConfigs"] == []


def test_unsupported_features_are_refused_not_ignored(api: tuple[Client, str]) -> None:
    client, uri = api
    _model(client, uri)
    base = {"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "a", "ModelName": "m"}]}
    with pytest.raises(InvalidSpec, match="asynchronous"):
        _post(client, "endpoint-configs", {**base, "AsyncInferenceConfig": {"OutputConfig": {}}})
    with pytest.raises(InvalidSpec) as capture:
        _post(
            client,
            "endpoint-configs",
            {
                **base,
                "DataCaptureConfig": {
                    "InitialSamplingPercentage": 10,
                    "DestinationS3Uri": "s3://elsewhere/capture",
                    "CaptureOptions": [{"CaptureMode": "Input"}],
                },
            },
        )
    assert "DestinationS3Uri" in _fields(capture.value)


def test_endpoint_lifecycle_rules(api: tuple[Client, str]) -> None:
    client, uri = api
    _model(client, uri)
    _config(client)
    with pytest.raises(InvalidSpec, match="EndpointConfigName"):
        _post(client, "endpoints", {"EndpointName": "e", "EndpointConfigName": "ghost"})
    _post(client, "endpoints", {"EndpointName": "e", "EndpointConfigName": "c"})
    desc = client._request("GET", "/api/v1/endpoints/e", params={"MetricsWindowSeconds": 0})
    assert desc["EndpointStatus"] == "Creating" and desc["EndpointConfigName"] == "c"
    with pytest.raises(ResourceInUse, match="in use by endpoint"):
        client._request("DELETE", "/api/v1/endpoint-configs/c")
    with pytest.raises(IllegalTransition, match="only when InService"):
        _post(client, "endpoints/e/update", {"EndpointConfigName": "c"})
    with pytest.raises(NotFound):
        client._request("GET", "/api/v1/endpoints/ghost")
    with pytest.raises(InvalidSpec, match="Metric and Threshold"):
        _post(
            client,
            "endpoints",
            {
                "EndpointName": "e2",
                "EndpointConfigName": "c",
                "DeploymentConfig": {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "cw"}]}},
            },
        )
    client._request("DELETE", "/api/v1/endpoints/e")
    listed = client._request("GET", "/api/v1/endpoints")["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [("e", "Deleting")]


def test_scaling_policy_is_checked(api: tuple[Client, str]) -> None:
    client, uri = api
    _model(client, uri)
    _config(client)
    _post(client, "endpoints", {"EndpointName": "e", "EndpointConfigName": "c"})
    path = "/api/v1/endpoints/e/variants/{}/scaling-policy"
    with pytest.raises(InvalidSpec, match="MinCapacity"):
        client._request("PUT", path.format("AllTraffic"), json={"MinCapacity": 5, "MaxCapacity": 2, "TargetValue": 10})
    with pytest.raises(InvalidSpec, match="no variant"):
        client._request("PUT", path.format("nope"), json={"MaxCapacity": 2, "TargetValue": 10})
    client._request("PUT", path.format("AllTraffic"), json={"MinCapacity": 0, "MaxCapacity": 2, "TargetValue": 10})
    client._request("DELETE", path.format("AllTraffic"))
    with pytest.raises(NotFound):
        client._request("DELETE", path.format("AllTraffic"))
