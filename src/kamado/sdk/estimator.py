"""``kamado.Estimator``: the SageMaker Python SDK's Estimator, for kamado.

Written the way SageMaker users already write it: ``Estimator(entry_point=..., source_dir=...,
hyperparameters=..., instance_type=...)``, then ``fit(inputs)``. Local directories are uploaded
content-addressed; ``fit`` waits and streams the job's log, ``model_data`` is the model's URI.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kamado.core.errors import InvalidSpec, KamadoError
from kamado.core.names import unique_name
from kamado.sdk.client import Client

if TYPE_CHECKING:
    from kamado.sdk.model import Model
    from kamado.sdk.transformer import Transformer

#: SageMaker SDK arguments that mean nothing on a kamado server; accepted so scripts run unchanged.
_IGNORED_SAGEMAKER_ARGS = frozenset(
    {
        "role",
        "framework_version",
        "py_version",
        "image_uri",
        "sagemaker_session",
        "volume_size",
        "volume_kms_key",
        "output_kms_key",
        "subnets",
        "security_group_ids",
        "model_uri",
        "model_channel_name",
        "container_log_level",
        "code_location",
        "dependencies",
        "enable_sagemaker_metrics",
        "disable_profiler",
        "debugger_hook_config",
        "profiler_config",
        "use_spot_instances",
        "max_wait",
        "keep_alive_period_in_seconds",
        "distribution",
    }
)


class TrainingJobFailed(KamadoError):
    """``fit`` finished with the job Failed or Stopped; ``message`` carries the FailureReason."""

    code = "TrainingJobFailed"
    http_status = 500


@dataclass(frozen=True)
class TrainingInput:
    """One input channel, as ``sagemaker.inputs.TrainingInput``."""

    s3_data: str
    content_type: str | None = None
    distribution: str = "FullyReplicated"
    input_mode: str | None = None


class TrainingJob:
    """A handle on one training job (``estimator.latest_training_job``)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.job_name = name

    def describe(self) -> dict[str, Any]:
        return self.client.describe_training_job(self.name)

    def wait(self, logs: bool = True) -> dict[str, Any]:
        """Wait for the job; with ``logs`` print its log and each status change as they happen."""
        if not logs:
            return self.client.wait_for_training_job(self.name)
        return self.client.wait_for_training_job(self.name, on_log=_print_log, on_status=self._print_status)

    def _print_status(self, status: str, message: str) -> None:
        sys.stdout.write(f"[kamado] {self.name}: {status} - {message}\n")
        sys.stdout.flush()

    def stop(self) -> None:
        self.client.stop_training_job(self.name)

    def logs(self) -> str:
        return "".join(self.client.stream_training_job_logs(self.name, follow=False))

    def metrics(self, name: str | None = None, *, max_points: int | None = None) -> list[dict[str, Any]]:
        return self.client.training_job_metrics(self.name, name, max_points=max_points)

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"


def _print_log(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class Estimator:
    def __init__(
        self,
        entry_point: str,
        source_dir: str | os.PathLike[str] | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        instance_type: str = "local",
        instance_count: int = 1,
        metric_definitions: list[dict[str, str]] | None = None,
        max_run: int = 24 * 60 * 60,
        environment: Mapping[str, str] | None = None,
        output_path: str | None = None,
        base_job_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        max_retry_attempts: int | None = None,
        checkpoint_s3_uri: str | None = None,
        input_mode: str = "File",
        enable_network_isolation: bool = False,
        client: Client | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _IGNORED_SAGEMAKER_ARGS)
        if unknown:
            raise TypeError(f"Estimator got unexpected argument(s) {unknown}")
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.hyperparameters_ = dict(hyperparameters or {})
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.metric_definitions = list(metric_definitions or [])
        self.max_run = max_run
        self.environment = dict(environment or {})
        self.output_path = output_path
        self.base_job_name = base_job_name
        self.tags = list(tags or [])
        self.max_retry_attempts = max_retry_attempts
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.input_mode = input_mode
        self.enable_network_isolation = enable_network_isolation
        self._client = client
        self.latest_training_job: TrainingJob | None = None
        self._source_uri: str | None = None
        self._store_root: str | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    def hyperparameters(self) -> dict[str, str]:
        """As the SageMaker SDK's framework estimators: every value JSON-encoded."""
        return {str(k): json.dumps(v) for k, v in self.hyperparameters_.items()}

    def set_hyperparameters(self, **kwargs: Any) -> None:
        self.hyperparameters_.update(kwargs)

    # -- fit ------------------------------------------------------------------------------------------
    def _upload_source(self) -> tuple[str, str]:
        entry = Path(self.entry_point)
        if self.source_dir is not None:
            src = Path(self.source_dir)
            if not src.is_dir():
                raise InvalidSpec(f"source_dir {str(src)!r} is not a directory.", details=[{"field": "source_dir"}])
            if not (src / entry).is_file():
                raise InvalidSpec(
                    f"entry_point {self.entry_point!r} is not a file inside source_dir {str(src)!r}.",
                    details=[{"field": "entry_point", "message": "file not found"}],
                )
            return self.client.upload_directory(src), entry.as_posix()
        if not entry.is_file():
            raise InvalidSpec(
                f"entry_point {self.entry_point!r} does not exist.",
                details=[{"field": "entry_point", "message": "file not found"}],
            )
        return self.client.upload_file(entry), entry.name

    def _channel_uri(self, name: str, value: str | TrainingInput) -> dict[str, Any]:
        data = value.s3_data if isinstance(value, TrainingInput) else value
        if not isinstance(data, str):
            raise InvalidSpec(
                f"Channel {name!r} must be a path, a URI or a TrainingInput.",
                details=[{"field": f"inputs.{name}"}],
            )
        data = upload_if_local(
            self.client, data, what=f"Channel {name!r}", field=f"inputs.{name}", in_store=self._in_artifact_store
        )
        channel: dict[str, Any] = {
            "ChannelName": name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": data,
                    "S3DataDistributionType": getattr(value, "distribution", "FullyReplicated"),
                }
            },
        }
        if isinstance(value, TrainingInput):
            if value.content_type:
                channel["ContentType"] = value.content_type
            if value.input_mode:
                channel["InputMode"] = value.input_mode
        return channel

    def _in_artifact_store(self, uri: str) -> bool:
        if self._store_root is None:
            self._store_root = str(self.client.info()["artifactStore"]).rstrip("/") + "/"
        return uri.startswith(self._store_root)

    def training_job_request(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """The CreateTrainingJob request ``fit`` would send (uploads code and local data)."""
        source_uri, program = self._upload_source()
        self._source_uri = source_uri
        if inputs is None:
            channels: dict[str, Any] = {}
        elif isinstance(inputs, str | TrainingInput):
            channels = {"training": inputs}  # SageMaker's default channel name for a single input
        elif isinstance(inputs, Mapping):
            channels = dict(inputs)
        else:
            raise InvalidSpec(
                "inputs must be a path/URI, a TrainingInput, or a dict of channel name to those.",
                details=[{"field": "inputs"}],
            )
        name = job_name or unique_name(self.base_job_name or Path(self.entry_point).stem.replace("_", "-"))
        hps = self.hyperparameters()
        hps["sagemaker_program"] = json.dumps(program)
        hps["sagemaker_submit_directory"] = json.dumps(source_uri)
        hps["sagemaker_job_name"] = json.dumps(name)
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingInputMode": self.input_mode,
                "MetricDefinitions": self.metric_definitions,
            },
            "HyperParameters": hps,
            "InputDataConfig": [self._channel_uri(n, v) for n, v in channels.items()],
            "ResourceConfig": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run},
            "Environment": self.environment,
            "Tags": self.tags,
        }
        if self.output_path:
            request["OutputDataConfig"] = {"S3OutputPath": self.output_path}
        if self.max_retry_attempts:
            request["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        if self.checkpoint_s3_uri:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_s3_uri}
        if self.enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        return request

    def fit(self, inputs: Any = None, wait: bool = True, logs: bool = True, job_name: str | None = None) -> None:
        request = self.training_job_request(inputs, job_name)
        self.client.create_training_job(request)
        self.latest_training_job = TrainingJob(self.client, request["TrainingJobName"])
        if wait:
            desc = self.latest_training_job.wait(logs=logs)
            if desc["TrainingJobStatus"] != "Completed":
                raise TrainingJobFailed(
                    f"Training job {desc['TrainingJobName']} ended {desc['TrainingJobStatus']}: "
                    f"{desc.get('FailureReason', 'no reason recorded')}",
                    details={"TrainingJobName": desc["TrainingJobName"]},
                )

    @property
    def model_data(self) -> str | None:
        if self.latest_training_job is None:
            return None
        return self.latest_training_job.describe().get("ModelArtifacts", {}).get("S3ModelArtifacts")

    def attach(self, training_job_name: str) -> TrainingJob:
        self.latest_training_job = TrainingJob(self.client, training_job_name)
        return self.latest_training_job

    # -- deploy ---------------------------------------------------------------------------------------------
    def create_model(self, **kwargs: Any) -> Model:
        """A ``Model`` of the latest training job's output that serves it with the training script itself, as
        SageMaker's SKLearn estimator does: the script's ``model_fn``/``predict_fn``/... (or the defaults) run
        from the very code the job trained with, not from the local files as they are now."""
        from kamado.sdk.model import Model

        if self.latest_training_job is None:
            raise InvalidSpec(
                "This estimator has no training job: call fit() (or attach() to a finished job) before deploying.",
                details=[{"field": "latest_training_job"}],
            )
        desc = self.latest_training_job.describe()
        model_data = desc.get("ModelArtifacts", {}).get("S3ModelArtifacts")
        if desc.get("TrainingJobStatus") != "Completed" or not model_data:
            raise InvalidSpec(
                f"Training job {desc['TrainingJobName']} is {desc.get('TrainingJobStatus')} and has no model to "
                "deploy; wait for it to complete (latest_training_job.wait()) or train again.",
                details=[{"field": "latest_training_job", "message": str(desc.get("TrainingJobStatus"))}],
            )
        hps = desc.get("HyperParameters") or {}
        source_dir = kwargs.pop("source_dir", None) or _decoded(hps.get("sagemaker_submit_directory"))
        entry_point = kwargs.pop("entry_point", None) or _decoded(hps.get("sagemaker_program")) or self.entry_point
        return Model(
            model_data=model_data,
            entry_point=entry_point,
            source_dir=source_dir,
            client=self.client,
            **kwargs,
        )

    def transformer(self, instance_count: int = 1, instance_type: str = "local", **kwargs: Any) -> Transformer:
        """A batch-transform Transformer of the latest training job's model (created from it as
        :meth:`create_model` does); ``kwargs`` are the Transformer's."""
        return self.create_model().transformer(instance_count, instance_type, **kwargs)

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str = "local",
        endpoint_name: str | None = None,
        serializer: Any = None,
        deserializer: Any = None,
        wait: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Deploy the latest training job's model to a new endpoint and return its ``Predictor``.
        ``model_name``, ``env`` and ``predictor_cls`` go to the model, everything else to ``Model.deploy``."""
        model_kwargs: dict[str, Any] = {
            k: kwargs.pop(k) for k in ("env", "predictor_cls", "entry_point", "source_dir") if k in kwargs
        }
        if kwargs.get("model_name"):
            model_kwargs["name"] = kwargs.pop("model_name")
        kwargs.pop("model_name", None)
        model = self.create_model(**model_kwargs)
        return model.deploy(
            initial_instance_count=initial_instance_count,
            instance_type=instance_type,
            endpoint_name=endpoint_name,
            serializer=serializer,
            deserializer=deserializer,
            wait=wait,
            **kwargs,
        )


def upload_if_local(client: Client, data: str, *, what: str, field: str, in_store: Callable[[str], bool]) -> str:
    """``data`` as a URI in the artifact store: a local path (or a ``file://`` URI outside the store, as SageMaker
    local mode allows) is uploaded content-addressed, so unchanged data is never sent twice."""
    if data.startswith("file://") and not in_store(data):
        data = data[len("file://") :]  # SageMaker local mode's file:// inputs: a path on this machine
    if "://" not in data:
        local = Path(data)
        if not local.exists():
            raise InvalidSpec(
                f"{what}: local path {data!r} does not exist.", details=[{"field": field, "message": "path not found"}]
            )
        data = client.upload_directory(local) if local.is_dir() else client.upload_file(local)
    return data


def _decoded(value: str | None) -> str | None:
    """A framework hyperparameter's value: JSON-encoded by the SDK, though a hand-made request may not be."""
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


SKLearn = Estimator
