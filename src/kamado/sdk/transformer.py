"""``kamado.Transformer``: batch transform as ``sagemaker.transformer.Transformer`` does it.

transformer = kamado.Transformer("my-model", strategy="MultiRecord", assemble_with="Line", accept="text/csv")
transformer.transform("data/", content_type="text/csv", split_type="Line")   # a local directory is uploaded
print(transformer.output_path)                                                 # <input file>.out per input
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from kamado.core.errors import KamadoError
from kamado.core.names import unique_name
from kamado.sdk.client import Client


class TransformJobFailed(KamadoError):
    """``transform(wait=True)`` ended with the job Failed or Stopped; ``message`` carries the FailureReason."""

    code = "TransformJobFailed"
    http_status = 500


class TransformJob:
    """A handle on one transform job (``transformer.latest_transform_job``)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self.job_name = name

    def describe(self) -> dict[str, Any]:
        return self.client.describe_transform_job(self.name)

    def wait(self, logs: bool = False) -> dict[str, Any]:
        """Wait for the job; with ``logs``, print its progress as it changes."""
        seen: list[Any] = [None]

        def show(desc: dict[str, Any]) -> None:
            progress = desc.get("Progress")
            if progress != seen[0]:
                seen[0] = progress
                p = progress or {}
                sys.stdout.write(
                    f"[kamado] {self.name}: {p.get('FilesCompleted', 0)}/{p.get('FilesTotal', 0)} files, "
                    f"{p.get('RecordsCompleted', 0)} records done, {p.get('RecordsFailed', 0)} failed\n"
                )
                sys.stdout.flush()

        return self.client.wait_for_transform_job(self.name, on_progress=show if logs else None)

    def stop(self) -> None:
        self.client.stop_transform_job(self.name)

    def __repr__(self) -> str:
        return f"TransformJob({self.name!r})"


class Transformer:
    def __init__(
        self,
        model_name: str,
        instance_count: int = 1,
        instance_type: str = "local",
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        accept: str | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        env: dict[str, str] | None = None,
        tags: list[dict[str, str]] | None = None,
        base_transform_job_name: str | None = None,
        client: Client | None = None,
    ) -> None:
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.output_path = output_path
        self.accept = accept
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = max_payload
        self.env = dict(env or {})
        self.tags = list(tags or [])
        self.base_transform_job_name = base_transform_job_name
        self._client = client
        self.latest_transform_job: TransformJob | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client()
        return self._client

    def _data_uri(self, data: str | os.PathLike[str]) -> str:
        text = str(data)
        if "://" in text:
            return text
        local = Path(text)
        return self.client.upload_directory(local) if local.is_dir() else self.client.upload_file(local)

    def transform_request(
        self,
        data: str,
        *,
        job_name: str,
        content_type: str | None = None,
        split_type: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
    ) -> dict[str, Any]:
        """The CreateTransformJob request ``transform`` sends (``data`` already a URI)."""
        if self.output_path is None:
            root = str(self.client.info()["artifactStore"]).rstrip("/")
            self.output_path = f"{root}/transform-output/{job_name}"
        output: dict[str, Any] = {"S3OutputPath": self.output_path}
        if self.accept:
            output["Accept"] = self.accept
        if self.assemble_with:
            output["AssembleWith"] = self.assemble_with
        tinput: dict[str, Any] = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}}}
        if content_type:
            tinput["ContentType"] = content_type
        if split_type:
            tinput["SplitType"] = split_type
        request: dict[str, Any] = {
            "TransformJobName": job_name,
            "ModelName": self.model_name,
            "TransformInput": tinput,
            "TransformOutput": output,
            "TransformResources": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count},
        }
        optional = {
            "BatchStrategy": self.strategy,
            "MaxConcurrentTransforms": self.max_concurrent_transforms,
            "MaxPayloadInMB": self.max_payload,
            "Environment": self.env or None,
            "Tags": self.tags or None,
        }
        request.update({k: v for k, v in optional.items() if v is not None})
        processing = {"InputFilter": input_filter, "OutputFilter": output_filter, "JoinSource": join_source}
        if any(processing.values()):
            request["DataProcessing"] = {k: v for k, v in processing.items() if v}
        return request

    def transform(
        self,
        data: str | os.PathLike[str],
        content_type: str | None = None,
        split_type: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        wait: bool = True,
        logs: bool = False,
        job_name: str | None = None,
        data_type: str = "S3Prefix",
        compression_type: str | None = None,
    ) -> dict[str, Any] | None:
        """Start a transform job over every object under ``data`` (a URI, or a local file or directory,
        uploaded first). With ``wait``, returns the description and raises :class:`TransformJobFailed`
        if the job did not complete."""
        if data_type != "S3Prefix" or compression_type not in (None, "None"):
            raise KamadoError("Only data_type='S3Prefix' without compression is supported yet.")
        name = job_name or unique_name(self.base_transform_job_name or self.model_name)
        request = self.transform_request(
            self._data_uri(data),
            job_name=name,
            content_type=content_type,
            split_type=split_type,
            input_filter=input_filter,
            output_filter=output_filter,
            join_source=join_source,
        )
        self.client.create_transform_job(request)
        self.latest_transform_job = TransformJob(self.client, name)
        if not wait:
            return None
        return self.wait(logs=logs)

    def wait(self, logs: bool = False) -> dict[str, Any]:
        if self.latest_transform_job is None:
            raise KamadoError("This transformer has not started a transform job; call transform() first.")
        desc = self.latest_transform_job.wait(logs=logs)
        if desc["TransformJobStatus"] != "Completed":
            raise TransformJobFailed(
                f"Transform job '{desc['TransformJobName']}' is {desc['TransformJobStatus']}: "
                f"{desc.get('FailureReason') or 'stopped on request'}",
                details={
                    "TransformJobName": desc["TransformJobName"],
                    "TransformJobStatus": desc["TransformJobStatus"],
                },
            )
        return desc

    def stop_transform_job(self) -> None:
        if self.latest_transform_job is not None:
            self.latest_transform_job.stop()
