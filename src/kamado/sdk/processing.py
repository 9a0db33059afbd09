"""``kamado.ScriptProcessor`` and ``kamado.Processor``: the SageMaker Python SDK's processors, for kamado.

Written as SageMaker users already write them::

    processor = ScriptProcessor(command=["python3"], instance_count=2)
    processor.run(
        code="preprocess.py",
        inputs=[ProcessingInput(source="data/", destination="/opt/ml/processing/input",
                                s3_data_distribution_type="ShardedByS3Key")],
        outputs=[ProcessingOutput(source="/opt/ml/processing/output", output_name="train")],
    )

Local code and inputs are uploaded content-addressed (as ``Estimator.fit`` does); an output without a
``destination`` goes to ``<artifact store>/processing-jobs/<job>/output/<output name>``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.core.errors import InvalidSpec, KamadoError
from kamado.core.names import unique_name
from kamado.sdk.client import Client
from kamado.sdk.estimator import upload_if_local

CODE_DIR = "/opt/ml/processing/input/code"
_TERMINAL = ("Completed", "Failed", "Stopped")
#: SageMaker SDK arguments that mean nothing on a kamado server; accepted so scripts run unchanged.
_IGNORED = frozenset({"role", "sagemaker_session", "volume_kms_key", "output_kms_key", "code_location"})


def _network_config(config: Any) -> dict[str, Any] | None:
    """SageMaker's ``NetworkConfig`` (or a plain dict) as the API's field; only isolation means anything here."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return dict(config)
    return {"EnableNetworkIsolation": bool(getattr(config, "enable_network_isolation", False))}


class ProcessingJobFailed(KamadoError):
    """``run`` finished with the job Failed or Stopped; ``message`` carries the FailureReason."""

    code = "ProcessingJobFailed"
    http_status = 500


@dataclass(frozen=True)
class ProcessingInput:
    """One input, as ``sagemaker.processing.ProcessingInput``: ``source`` is a local path or a URI in the
    artifact store, ``destination`` the directory under ``/opt/ml/processing/`` the script reads."""

    source: str
    destination: str
    input_name: str | None = None
    s3_data_distribution_type: str = "FullyReplicated"
    s3_data_type: str = "S3Prefix"
    s3_input_mode: str = "File"


@dataclass(frozen=True)
class ProcessingOutput:
    """One output, as ``sagemaker.processing.ProcessingOutput``: the script writes under ``source``; when the
    job ends, every instance's files there are uploaded to ``destination``."""

    source: str
    destination: str | None = None
    output_name: str | None = None
    s3_upload_mode: str = "EndOfJob"


class ProcessingJob:
    """A handle on one processing job (``processor.latest_job``)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = self.job_name = name

    def describe(self) -> dict[str, Any]:
        return self.client.describe_processing_job(self.name)

    def wait(self, logs: bool = True) -> dict[str, Any]:
        """Wait for the job; with ``logs`` print every instance's log lines as ``[algo-N] line``."""
        return self.client.wait_for_processing_job(self.name, on_log=_print_log if logs else None)

    def stop(self) -> None:
        self.client.stop_processing_job(self.name)

    def logs(self) -> str:
        """Every instance's log so far, each line prefixed with its host."""
        lines: list[str] = []
        after = 0
        while True:
            page = self.client.processing_job_logs(self.name, after=after)
            lines += [_prefixed(ev["Host"], ev["Message"]) for ev in page["Events"]]
            if page["NextSeq"] == after:
                return "".join(lines)
            after = page["NextSeq"]

    def __repr__(self) -> str:
        return f"ProcessingJob({self.name!r})"


def _prefixed(host: str, text: str) -> str:
    return "".join(f"[{host}] {line}" for line in text.splitlines(keepends=True))


def _print_log(host: str, text: str) -> None:
    sys.stdout.write(_prefixed(host, text))
    sys.stdout.flush()


class Processor:
    """Runs ``entrypoint`` (plus ``arguments``) on each of ``instance_count`` instances."""

    def __init__(
        self,
        entrypoint: Sequence[str] | None = None,
        instance_count: int = 1,
        instance_type: str = "local",
        image_uri: str = "local",
        env: Mapping[str, str] | None = None,
        max_runtime_in_seconds: int | None = None,
        volume_size_in_gb: int = 30,
        base_job_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        network_config: Any = None,
        client: Client | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _IGNORED)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected argument(s) {unknown}")
        self.entrypoint = list(entrypoint or [])
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.image_uri = image_uri
        self.env = dict(env or {})
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.volume_size_in_gb = volume_size_in_gb
        self.base_job_name = base_job_name
        self.tags = list(tags or [])
        self.network_config = _network_config(network_config)
        self._client = client
        self._store_root: str | None = None
        self.latest_job: ProcessingJob | None = None
        self.jobs: list[ProcessingJob] = []

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    def _root(self) -> str:
        if self._store_root is None:
            self._store_root = str(self.client.info()["artifactStore"]).rstrip("/")
        return self._store_root

    def _in_store(self, uri: str) -> bool:
        return uri.startswith(self._root() + "/")

    def run(
        self,
        inputs: Sequence[ProcessingInput] | None = None,
        outputs: Sequence[ProcessingOutput] | None = None,
        arguments: Sequence[str] | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
    ) -> None:
        if not self.entrypoint:
            raise InvalidSpec(
                "Processor needs an entrypoint, e.g. ['python3', 'script.py'].", details=[{"field": "entrypoint"}]
            )
        name = job_name or unique_name(self.base_job_name or "processing")
        self._start(name, self.entrypoint, list(inputs or []), list(outputs or []), arguments, wait, logs)

    def processing_job_request(
        self,
        name: str,
        entrypoint: list[str],
        inputs: list[ProcessingInput],
        outputs: list[ProcessingOutput],
        arguments: Sequence[str] | None,
    ) -> dict[str, Any]:
        """The CreateProcessingJob request ``run`` sends (uploads local inputs first)."""
        request: dict[str, Any] = {
            "ProcessingJobName": name,
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": self.instance_count,
                    "InstanceType": self.instance_type,
                    "VolumeSizeInGB": self.volume_size_in_gb,
                }
            },
            "AppSpecification": {"ImageUri": self.image_uri, "ContainerEntrypoint": entrypoint},
            "ProcessingInputs": [self._input(i, item) for i, item in enumerate(inputs, start=1)],
            "Environment": self.env,
            "Tags": self.tags,
        }
        if arguments:
            request["AppSpecification"]["ContainerArguments"] = [str(a) for a in arguments]
        if outputs:
            request["ProcessingOutputConfig"] = {
                "Outputs": [self._output(name, i, item) for i, item in enumerate(outputs, start=1)]
            }
        if self.max_runtime_in_seconds:
            request["StoppingCondition"] = {"MaxRuntimeInSeconds": self.max_runtime_in_seconds}
        if self.network_config:
            request["NetworkConfig"] = self.network_config
        return request

    def _input(self, index: int, item: ProcessingInput) -> dict[str, Any]:
        name = item.input_name or f"input-{index}"
        uri = upload_if_local(
            self.client, str(item.source), what=f"Input {name!r}", field=f"inputs[{index - 1}]", in_store=self._in_store
        )
        return {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                "LocalPath": item.destination,
                "S3DataType": item.s3_data_type,
                "S3InputMode": item.s3_input_mode,
                "S3DataDistributionType": item.s3_data_distribution_type,
            },
        }

    def _output(self, job: str, index: int, item: ProcessingOutput) -> dict[str, Any]:
        name = item.output_name or f"output-{index}"
        destination = item.destination or f"{self._root()}/processing-jobs/{job}/output/{name}"
        return {
            "OutputName": name,
            "S3Output": {"S3Uri": destination, "LocalPath": item.source, "S3UploadMode": item.s3_upload_mode},
        }

    def _start(
        self,
        name: str,
        entrypoint: list[str],
        inputs: list[ProcessingInput],
        outputs: list[ProcessingOutput],
        arguments: Sequence[str] | None,
        wait: bool,
        logs: bool,
    ) -> None:
        request = self.processing_job_request(name, entrypoint, inputs, outputs, arguments)
        self.client.create_processing_job(request)
        self.latest_job = ProcessingJob(self.client, name)
        self.jobs.append(self.latest_job)
        if wait:
            desc = self.latest_job.wait(logs=logs)
            if desc["ProcessingJobStatus"] != "Completed":
                raise ProcessingJobFailed(
                    f"Processing job {name} ended {desc['ProcessingJobStatus']}: "
                    f"{desc.get('FailureReason', 'no reason recorded')}",
                    details={"ProcessingJobName": name},
                )


class ScriptProcessor(Processor):
    """Runs a local script with ``command`` (``["python3"]``): ``run(code="preprocess.py", ...)`` uploads the
    script as the input ``code`` at ``/opt/ml/processing/input/code/`` and runs it there, as SageMaker does."""

    def __init__(self, command: Sequence[str] = ("python3",), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.command = list(command)

    def run(  # type: ignore[override]
        self,
        code: str,
        inputs: Sequence[ProcessingInput] | None = None,
        outputs: Sequence[ProcessingOutput] | None = None,
        arguments: Sequence[str] | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
    ) -> None:
        script = Path(code)
        if "://" not in code and not script.is_file():
            raise InvalidSpec(f"code {code!r} is not a file.", details=[{"field": "code", "message": "file not found"}])
        name = job_name or unique_name(self.base_job_name or script.stem.replace("_", "-"))
        code_input = ProcessingInput(source=code, destination=CODE_DIR, input_name="code")
        entrypoint = [*self.command, f"{CODE_DIR}/{script.name}"]
        self._start(name, entrypoint, [*(inputs or []), code_input], list(outputs or []), arguments, wait, logs)


__all__ = [
    "ProcessingInput",
    "ProcessingJob",
    "ProcessingJobFailed",
    "ProcessingOutput",
    "Processor",
    "ScriptProcessor",
]
