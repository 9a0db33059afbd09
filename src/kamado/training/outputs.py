"""Upload what a job produced: ``model.tar.gz``, ``output.tar.gz`` and checkpoints, where SageMaker puts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kamado.artifacts.archives import pack_model_dir
from kamado.artifacts.base import ArtifactStore
from kamado.training import contract
from kamado.training.spec import CreateTrainingJobRequest


def output_prefix(artifacts: ArtifactStore, req: CreateTrainingJobRequest) -> str:
    """``<S3OutputPath>/<job>`` as SageMaker lays it out, or ``training-jobs/<job>`` by default."""
    if req.OutputDataConfig.S3OutputPath:
        prefix = artifacts.key_from_uri(req.OutputDataConfig.S3OutputPath).rstrip("/")
        return f"{prefix}/{req.TrainingJobName}"
    return f"training-jobs/{req.TrainingJobName}"


def upload_outputs(
    artifacts: ArtifactStore, req: CreateTrainingJobRequest, layout: contract.JobLayout
) -> dict[str, Any]:
    """Returns the status fields naming the uploaded artifacts. Idempotent: re-uploading overwrites."""
    if not layout.root.exists():
        return {}
    base = output_prefix(artifacts, req)
    out: dict[str, Any] = {
        "ModelArtifacts": _pack_and_put(artifacts, layout, layout.model_dir, f"{base}/output/model.tar.gz")
    }
    if layout.output_data_dir.exists() and any(layout.output_data_dir.iterdir()):
        out["OutputDataArtifacts"] = _pack_and_put(
            artifacts, layout, layout.output_data_dir, f"{base}/output/output.tar.gz"
        )
    if req.CheckpointConfig and layout.checkpoints_dir.exists():
        ckpt = artifacts.key_from_uri(req.CheckpointConfig.S3Uri).rstrip("/")
        for path in sorted(layout.checkpoints_dir.rglob("*")):
            if path.is_file() and not path.is_symlink():
                artifacts.put_file(f"{ckpt}/{path.relative_to(layout.checkpoints_dir).as_posix()}", path)
    return out


def _pack_and_put(artifacts: ArtifactStore, layout: contract.JobLayout, directory: Path, key: str) -> str:
    tmp = layout.root.parent / key.rsplit("/", 1)[-1]
    try:
        pack_model_dir(directory, tmp)
        artifacts.put_file(key, tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return artifacts.uri(key)
