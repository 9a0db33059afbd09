"""One processing instance's ``/opt/ml`` on the host: inputs (replicated or sharded), config files, the
environment and command line its task runs with.

SageMaker runs each of ``InstanceCount`` hosts (``algo-1`` ... ``algo-N``) as its own container; kamado runs
each as its own executor task with its own private ``/opt/ml`` tree. Where the executor can give a task a
private mount namespace, the tree is bind-mounted at ``/opt/ml`` and the script's paths work unchanged;
otherwise every ``/opt/ml/...`` in the command line is rewritten to the tree's host path, and
``KAMADO_OPT_ML`` / ``KAMADO_INPUT_<NAME>`` / ``KAMADO_OUTPUT_<NAME>`` name the directories either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.artifacts.base import ArtifactStore
from kamado.artifacts.trees import load_tree_manifest, materialize_tree
from kamado.core.errors import KamadoError
from kamado.processing.spec import CreateProcessingJobRequest
from kamado.training.contract import OPT_ML, base_environment, resource_config
from kamado.training.inputs import PrepareError
from kamado.training.service import resolve_data_uri

MESSAGE_FILE = "output/message"
MAX_EXIT_MESSAGE = 1024


def host_name(index: int) -> str:
    """SageMaker's name of instance ``index`` (1-based)."""
    return f"algo-{index}"


def shard(items: list[str], index: int, count: int) -> list[str]:
    """The part of ``items`` instance ``index`` (1-based) of ``count`` gets under ShardedByS3Key: sorted keys
    dealt round-robin, so the split is deterministic, disjoint, complete and at most one apart in size."""
    return sorted(items)[index - 1 :: count]


def env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


@dataclass(frozen=True)
class InstanceLayout:
    """Instance ``index``'s directory: ``opt-ml/`` (its ``/opt/ml``) and ``home/`` (HOME and cwd)."""

    dir: Path
    index: int

    @property
    def root(self) -> Path:
        return self.dir / "opt-ml"

    @property
    def home(self) -> Path:
        return self.dir / "home"

    @property
    def host(self) -> str:
        return host_name(self.index)

    @property
    def message_file(self) -> Path:
        return self.root / MESSAGE_FILE

    def host_path(self, opt_ml_path: str) -> Path:
        """The host directory behind a ``/opt/ml/...`` path of this instance."""
        return self.root / opt_ml_path.removeprefix(OPT_ML).lstrip("/")

    def seen(self, opt_ml_path: str, *, in_namespace: bool) -> str:
        return opt_ml_path if in_namespace else str(self.host_path(opt_ml_path))


def prepare_instance(
    artifacts: ArtifactStore, req: CreateProcessingJobRequest, layout: InstanceLayout, *, job_arn: str
) -> dict[str, str]:
    """Create the instance's tree, copy its share of every input, write the config files; returns the
    lineage of the inputs (name -> tree digest or key)."""
    count = req.instance_count()
    for d in (layout.root / "config", layout.root / "output", layout.home):
        d.mkdir(parents=True, exist_ok=True)
    for out in req.outputs():
        layout.host_path(out.S3Output.LocalPath).mkdir(parents=True, exist_ok=True)
    lineage: dict[str, str] = {}
    for i, item in enumerate(req.ProcessingInputs):
        s3 = item.S3Input
        dest = layout.host_path(s3.LocalPath)
        dest.mkdir(parents=True, exist_ok=True)
        try:
            key, digest = resolve_data_uri(artifacts, s3.S3Uri, field=f"ProcessingInputs[{i}].S3Input.S3Uri")
        except KamadoError as exc:
            raise PrepareError(f"input {item.InputName!r}: {exc.message}") from exc
        sharded = s3.S3DataDistributionType == "ShardedByS3Key"
        if digest:
            paths = [f.path for f in load_tree_manifest(artifacts, digest).files]
            materialize_tree(artifacts, digest, dest, only=shard(paths, layout.index, count) if sharded else None)
        elif artifacts.exists(key):
            if not sharded or layout.index == 1:
                artifacts.get_file(key, dest / key.rsplit("/", 1)[-1])
        else:
            keys = list(artifacts.list(key))
            for k in shard(keys, layout.index, count) if sharded else keys:
                artifacts.get_file(k, dest / k[len(key) + 1 :])
        lineage[item.InputName] = digest or key
    hosts = [host_name(i) for i in range(1, count + 1)]
    config = layout.root / "config"
    itype = req.ProcessingResources.ClusterConfig.InstanceType
    (config / "resourceconfig.json").write_text(json.dumps(resource_config(itype, layout.host, hosts), indent=1))
    echoed: dict[str, Any] = {**req.model_dump(mode="json", exclude_none=True), "ProcessingJobArn": job_arn}
    for item in echoed.get("ProcessingInputs", []):
        item["S3Input"]["S3DownloadMode"] = "StartOfJob"
    (config / "processingjobconfig.json").write_text(json.dumps(echoed, indent=1))
    return lineage


def instance_environment(
    req: CreateProcessingJobRequest,
    layout: InstanceLayout,
    *,
    job_arn: str,
    in_namespace: bool,
    num_cpus: int,
    python_bin_dir: str,
) -> dict[str, str]:
    env = base_environment(layout.home, python_bin_dir, num_cpus)
    env.update(
        {
            "PROCESSING_JOB_NAME": req.ProcessingJobName,
            "PROCESSING_JOB_ARN": job_arn,
            "CURRENT_HOST": layout.host,
            "KAMADO_OPT_ML": layout.seen(OPT_ML, in_namespace=in_namespace),
        }
    )
    for item in req.ProcessingInputs:
        env[f"KAMADO_INPUT_{env_name(item.InputName)}"] = layout.seen(item.S3Input.LocalPath, in_namespace=in_namespace)
    for out in req.outputs():
        env[f"KAMADO_OUTPUT_{env_name(out.OutputName)}"] = layout.seen(
            out.S3Output.LocalPath, in_namespace=in_namespace
        )
    env.update(req.Environment)
    return env


def instance_command(req: CreateProcessingJobRequest, layout: InstanceLayout, *, in_namespace: bool) -> list[str]:
    """``[*ContainerEntrypoint, *ContainerArguments]``, with ``/opt/ml/`` pointed at the instance's tree when
    it has no private mount."""
    app = req.AppSpecification
    command = [*(app.ContainerEntrypoint or []), *(app.ContainerArguments or [])]
    if in_namespace:
        return command
    return [arg.replace(f"{OPT_ML}/", f"{layout.root}/") for arg in command]


def read_exit_message(layouts: list[InstanceLayout]) -> str | None:
    """The first 1 KB of every instance's ``/opt/ml/output/message``, concatenated (SageMaker's ExitMessage).
    Raises ValueError when one is not UTF-8 (SageMaker fails the job then)."""
    parts = []
    for layout in layouts:
        if layout.message_file.is_file():
            data = layout.message_file.read_bytes()
            try:
                parts.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                raise ValueError(f"{layout.host}'s /opt/ml/{MESSAGE_FILE} is not UTF-8") from None
    text = "".join(parts)
    return text[:MAX_EXIT_MESSAGE] if text else None
