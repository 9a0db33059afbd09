"""``kamado.Model``: the SageMaker Python SDK's Model (and SKLearnModel), for kamado.

``Model(model_data, entry_point="inference.py", source_dir="src").deploy()`` does what SageMaker's does:
upload the code, create the model with ``SAGEMAKER_PROGRAM`` and ``SAGEMAKER_SUBMIT_DIRECTORY`` in its
environment, create an endpoint config and an endpoint of the same name, wait for it and return a
``Predictor``. kamado runs its own model server instead of a container image, so ``image_uri`` and the
framework arguments are accepted and ignored, as ``Estimator`` does.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kamado.core.errors import InvalidSpec
from kamado.core.names import unique_name
from kamado.sdk.client import Client
from kamado.sdk.deserializers import BaseDeserializer
from kamado.sdk.predictor import DEFAULT_WAIT_S, Predictor
from kamado.sdk.serializers import BaseSerializer

if TYPE_CHECKING:
    from kamado.sdk.transformer import Transformer

#: SageMaker SDK arguments that mean nothing on a kamado server; accepted so scripts run unchanged.
_IGNORED_SAGEMAKER_ARGS = frozenset(
    {
        "role",
        "image_uri",
        "framework_version",
        "py_version",
        "sagemaker_session",
        "vpc_config",
        "enable_network_isolation",
        "model_kms_key",
        "container_log_level",
        "code_location",
        "dependencies",
        "git_config",
        "image_config",
        "model_server_workers",
    }
)
_IGNORED_DEPLOY_ARGS = frozenset({"accelerator_type", "kms_key", "volume_size", "async_inference_config"})
_CAPTURE_OPTIONS = {"REQUEST": "Input", "RESPONSE": "Output"}


@dataclass
class DataCaptureConfig:
    """``sagemaker.model_monitor.DataCaptureConfig``. ``destination_s3_uri`` defaults to ``data-capture`` in
    kamado's artifact store, as SageMaker's defaults to a prefix in the session's bucket."""

    enable_capture: bool = True
    sampling_percentage: int = 20
    destination_s3_uri: str | None = None
    kms_key_id: str | None = None
    capture_options: list[str] = field(default_factory=lambda: ["REQUEST", "RESPONSE"])
    csv_content_types: list[str] | None = None
    json_content_types: list[str] | None = None

    def _to_request_dict(self, default_destination: str | None = None) -> dict[str, Any]:
        unknown = [o for o in self.capture_options if o.upper() not in _CAPTURE_OPTIONS]
        if unknown:
            raise InvalidSpec(
                f"capture_options {unknown} are not REQUEST or RESPONSE.", details=[{"field": "capture_options"}]
            )
        destination = self.destination_s3_uri or default_destination
        if destination is None:
            raise InvalidSpec("DataCaptureConfig needs destination_s3_uri.", details=[{"field": "destination_s3_uri"}])
        out: dict[str, Any] = {
            "EnableCapture": self.enable_capture,
            "InitialSamplingPercentage": self.sampling_percentage,
            "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": _CAPTURE_OPTIONS[o.upper()]} for o in self.capture_options],
        }
        header = {}
        if self.csv_content_types:
            header["CsvContentTypes"] = list(self.csv_content_types)
        if self.json_content_types:
            header["JsonContentTypes"] = list(self.json_content_types)
        if header:
            out["CaptureContentTypeHeader"] = header
        if self.kms_key_id:
            out["KmsKeyId"] = self.kms_key_id
        return out


class Model:
    def __init__(
        self,
        model_data: str | os.PathLike[str] | None = None,
        entry_point: str | None = None,
        source_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        command: list[str] | None = None,
        client: Client | None = None,
        predictor_cls: type[Predictor] | None = Predictor,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _IGNORED_SAGEMAKER_ARGS)
        if unknown:
            raise TypeError(f"Model got unexpected argument(s) {unknown}")
        if model_data is None and command is None:
            raise InvalidSpec(
                "Model needs model_data (the model.tar.gz a training job produced, a model file or a directory), "
                "unless command starts a server that loads the model itself.",
                details=[{"field": "model_data"}],
            )
        self.model_data = model_data
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.env = dict(env or {})
        self.name = name
        self.command = list(command) if command is not None else None
        self._client = client
        self.predictor_cls = predictor_cls
        self.endpoint_name: str | None = None
        self._created = False

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    # -- create ---------------------------------------------------------------------------------------------
    def _model_data_url(self) -> str | None:
        if self.model_data is None:
            return None
        data = os.fspath(self.model_data)
        if "://" in data:
            # A URI the server resolves itself, unless it is a file:// path outside its artifact store
            # (SageMaker local mode's file:// model data): that one is on this machine and is uploaded.
            path = data[len("file://") :] if data.startswith("file://") else None
            if path is None or self._in_artifact_store(data) or not Path(path).exists():
                return data
            data = path
        local = Path(data)
        if not local.exists():
            raise InvalidSpec(f"model_data {data!r} does not exist.", details=[{"field": "model_data"}])
        if local.is_dir():
            return self.client.upload_directory(local)
        if local.name.endswith((".tar.gz", ".tgz")):
            # Unpacked here and sent as a tree: the same bytes are then stored once, whatever the archive's mtimes.
            with tempfile.TemporaryDirectory(prefix="kamado-model-") as tmp:
                with tarfile.open(local, "r:gz") as tar:
                    tar.extractall(tmp, filter="data")
                return self.client.upload_directory(tmp)
        return self.client.upload_file(local)

    def _in_artifact_store(self, uri: str) -> bool:
        root = str(self.client.info()["artifactStore"]).rstrip("/") + "/"
        return uri.startswith(root)

    def _code(self) -> dict[str, str]:
        """SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY, as the SageMaker SDK sets them for framework models."""
        env: dict[str, str] = {}
        if self.source_dir is not None:
            source = os.fspath(self.source_dir)
            if "://" in source:
                env["SAGEMAKER_SUBMIT_DIRECTORY"] = source  # already uploaded (e.g. a training job's code)
            else:
                src = Path(source)
                if not src.is_dir():
                    raise InvalidSpec(f"source_dir {source!r} is not a directory.", details=[{"field": "source_dir"}])
                if self.entry_point is not None and not (src / self.entry_point).is_file():
                    raise InvalidSpec(
                        f"entry_point {self.entry_point!r} is not a file inside source_dir {source!r}.",
                        details=[{"field": "entry_point", "message": "file not found"}],
                    )
                env["SAGEMAKER_SUBMIT_DIRECTORY"] = self.client.upload_directory(src)
            if self.entry_point is not None:
                env["SAGEMAKER_PROGRAM"] = Path(self.entry_point).as_posix()
        elif self.entry_point is not None:
            entry = Path(self.entry_point)
            if not entry.is_file():
                raise InvalidSpec(
                    f"entry_point {self.entry_point!r} does not exist.",
                    details=[{"field": "entry_point", "message": "file not found"}],
                )
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = self.client.upload_file(entry)
            env["SAGEMAKER_PROGRAM"] = entry.name
        return env

    def model_request(self) -> dict[str, Any]:
        """The CreateModel request ``create`` sends (uploads code and local model data)."""
        name = self.name or unique_name(Path(self.entry_point).stem.replace("_", "-") if self.entry_point else "model")
        container: dict[str, Any] = {"Environment": {**self._code(), **self.env}}
        url = self._model_data_url()
        if url is not None:
            container["ModelDataUrl"] = url
        if self.command is not None:
            container["Command"] = self.command
        return {"ModelName": name, "PrimaryContainer": container}

    def create(self, tags: list[dict[str, str]] | None = None) -> str:
        """CreateModel, once; returns the model's name."""
        if not self._created:
            request = self.model_request()
            if tags:
                request["Tags"] = tags
            self.client.create_model(request)
            self.name = request["ModelName"]
            self._created = True
        assert self.name is not None
        return self.name

    def transformer(self, instance_count: int = 1, instance_type: str = "local", **kwargs: Any) -> Transformer:
        """A batch-transform :class:`~kamado.sdk.transformer.Transformer` of this model (created first, as in
        SageMaker's SDK); ``kwargs`` are the Transformer's (``strategy``, ``assemble_with``, ``accept``...)."""
        from kamado.sdk.transformer import Transformer

        name = self.create()
        return Transformer(name, instance_count, instance_type, client=self.client, **kwargs)

    # -- deploy ---------------------------------------------------------------------------------------------
    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str = "local",
        endpoint_name: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        data_capture_config: DataCaptureConfig | Mapping[str, Any] | None = None,
        wait: bool = True,
        tags: list[dict[str, str]] | None = None,
        variant_name: str = "AllTraffic",
        container_startup_health_check_timeout: int | None = None,
        model_data_download_timeout: int | None = None,
        wait_timeout: float = DEFAULT_WAIT_S,
        **kwargs: Any,
    ) -> Predictor | None:
        """Create the model, an endpoint config and an endpoint named ``endpoint_name`` (default: the model's
        name), wait for InService and return a predictor (``None`` if ``predictor_cls`` is None, as in
        SageMaker). A failed start raises ``EndpointFailed`` with the FailureReason."""
        unknown = sorted(set(kwargs) - _IGNORED_DEPLOY_ARGS)
        if unknown:
            raise TypeError(f"deploy got unexpected argument(s) {unknown}")
        model_name = self.create(tags=tags)
        name = endpoint_name or model_name
        variant: dict[str, Any] = {
            "VariantName": variant_name,
            "ModelName": model_name,
            "InitialInstanceCount": initial_instance_count,
            "InstanceType": instance_type,
            "InitialVariantWeight": 1.0,
        }
        if container_startup_health_check_timeout is not None:
            variant["ContainerStartupHealthCheckTimeoutInSeconds"] = container_startup_health_check_timeout
        if model_data_download_timeout is not None:
            variant["ModelDataDownloadTimeoutInSeconds"] = model_data_download_timeout
        config: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant]}
        if data_capture_config is not None:
            config["DataCaptureConfig"] = self._capture(data_capture_config)
        if tags:
            config["Tags"] = tags
        self.client.create_endpoint_config(config)
        self.client.create_endpoint(
            {"EndpointName": name, "EndpointConfigName": name, **({"Tags": tags} if tags else {})}
        )
        self.endpoint_name = name
        if wait:
            self.client.wait_for_endpoint(name, timeout=wait_timeout)
        if self.predictor_cls is None:
            return None
        return self.predictor_cls(name, client=self.client, serializer=serializer, deserializer=deserializer)

    def _capture(self, capture: DataCaptureConfig | Mapping[str, Any]) -> dict[str, Any]:
        if isinstance(capture, DataCaptureConfig):
            default = None
            if capture.destination_s3_uri is None:
                default = str(self.client.info()["artifactStore"]).rstrip("/") + "/data-capture"
            return capture._to_request_dict(default)
        return dict(capture)

    def delete_model(self) -> None:
        if self.name is not None and self._created:
            self.client.delete_model(self.name)
            self._created = False
