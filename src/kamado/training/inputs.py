"""Bring a job's code and data from the artifact store into its ``/opt/ml`` tree, recording lineage."""

from __future__ import annotations

import sys
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.trees import materialize_tree
from kamado.training import contract
from kamado.training.service import resolve_data_uri
from kamado.training.spec import CreateTrainingJobRequest


class PrepareError(Exception):
    """A job cannot start for a reason the user must fix (missing data, bad requirements, ...)."""


def _resolve(artifacts: ArtifactStore, uri: str, what: str) -> tuple[str, str | None]:
    try:
        return resolve_data_uri(artifacts, uri, field=what)
    except Exception as exc:
        raise PrepareError(f"{what}: {getattr(exc, 'message', exc)}") from exc


def materialise_inputs(
    artifacts: ArtifactStore, req: CreateTrainingJobRequest, layout: contract.JobLayout
) -> dict[str, Any]:
    """Copy code, channels and checkpoints into ``layout``; returns the lineage of what was copied."""
    lineage: dict[str, Any] = {
        "HyperParameters": req.HyperParameters,
        "PythonVersion": ".".join(map(str, sys.version_info[:3])),
        "InstanceType": req.ResourceConfig.InstanceType,
        "InputDataHashes": {},
    }
    submit = req.submit_directory()
    if isinstance(submit, str):
        key, digest = _resolve(artifacts, submit, "HyperParameters.sagemaker_submit_directory")
        if digest:
            materialize_tree(artifacts, digest, layout.code_dir)
        else:
            artifacts.download_prefix(key, layout.code_dir)
        lineage["SourceHash"] = digest or key
        program = req.program()
        if isinstance(program, str) and not (layout.code_dir / program).exists():
            raise PrepareError(f"entry point {program!r} not found in the source directory")
    for ch in req.InputDataConfig:
        key, digest = _resolve(artifacts, ch.DataSource.S3DataSource.S3Uri, f"channel {ch.ChannelName!r}")
        dest = layout.channel_dir(ch.ChannelName)
        if digest:
            materialize_tree(artifacts, digest, dest)
        elif artifacts.exists(key):
            artifacts.get_file(key, dest / key.rsplit("/", 1)[-1])
        else:
            artifacts.download_prefix(key, dest)
        lineage["InputDataHashes"][ch.ChannelName] = digest or key
    if req.CheckpointConfig:
        try:
            ckpt_key, _ = resolve_data_uri(artifacts, req.CheckpointConfig.S3Uri, field="CheckpointConfig.S3Uri")
        except Exception:
            ckpt_key = None  # no checkpoints yet: the first run starts from scratch
        if ckpt_key is not None:
            artifacts.download_prefix(ckpt_key, layout.checkpoints_dir)
    return lineage
