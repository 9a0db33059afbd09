"""The SageMaker training-container contract, outside a container.

Lays out a job's ``/opt/ml`` tree, writes the three config files SageMaker writes, and builds the
``SM_*`` environment and command line the ``sagemaker-training`` toolkit would give a script-mode
script, so such scripts run unchanged.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kamado.training.spec import CreateTrainingJobRequest, decode_hyperparameter

OPT_ML = "/opt/ml"
CURRENT_HOST = "algo-1"

#: Variables passed through from the server's environment: locale and numeric-library settings that
#: some machines need for correctness. Nothing else leaks from the server (no credentials).
PASSTHROUGH_ENV = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SSL_CERT_FILE")


@dataclass(frozen=True)
class JobLayout:
    """The job's private ``/opt/ml`` on the host."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    def channel_dir(self, channel: str) -> Path:
        return self.root / "input" / "data" / channel

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def home_dir(self) -> Path:
        """A private HOME so caches a job writes never land in the server user's home."""
        return self.root.parent / "home"

    def create(self, channels: list[str]) -> None:
        for d in (
            self.config_dir,
            self.model_dir,
            self.output_data_dir,
            self.checkpoints_dir,
            self.code_dir,
            self.home_dir,
            self.root / "output" / "intermediate",
        ):
            d.mkdir(parents=True, exist_ok=True)
        for ch in channels:
            self.channel_dir(ch).mkdir(parents=True, exist_ok=True)


def seen_path(layout: JobLayout, host_path: Path, *, in_namespace: bool) -> str:
    """The path the job sees for ``host_path``: under ``/opt/ml`` when it has a private mount."""
    if not in_namespace:
        return str(host_path)
    rel = host_path.relative_to(layout.root)
    return f"{OPT_ML}/{rel}" if str(rel) != "." else OPT_ML


def script_args(hyperparameters: dict[str, str]) -> list[str]:
    """Hyperparameters as the toolkit passes them: sorted ``--key value``, ``sagemaker_*`` removed."""
    args: list[str] = []
    for key in sorted(user_hyperparameters(hyperparameters)):
        value = decode_hyperparameter(hyperparameters[key])
        flag = f"--{key}" if len(key) > 1 else f"-{key}"
        rendered = ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        args += [flag, rendered]
    return args


def user_hyperparameters(hyperparameters: dict[str, str]) -> dict[str, str]:
    return {
        k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_") and k != "_tuning_objective_metric"
    }


def resource_config(instance_type: str, current_host: str, hosts: list[str]) -> dict[str, Any]:
    """``resourceconfig.json`` as SageMaker writes it for one host of a homogeneous cluster."""
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": hosts,
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
        ],
        "network_interface_name": "eth0",
    }


def write_config_files(layout: JobLayout, req: CreateTrainingJobRequest) -> None:
    cfg = layout.config_dir
    (cfg / "hyperparameters.json").write_text(json.dumps(req.HyperParameters, indent=1))
    resource = resource_config(req.ResourceConfig.InstanceType, CURRENT_HOST, [CURRENT_HOST])
    (cfg / "resourceconfig.json").write_text(json.dumps(resource, indent=1))
    input_cfg: dict[str, Any] = {}
    for ch in req.InputDataConfig:
        entry: dict[str, Any] = {
            "TrainingInputMode": ch.InputMode or req.AlgorithmSpecification.TrainingInputMode,
            "S3DistributionType": ch.DataSource.S3DataSource.S3DataDistributionType,
            "RecordWrapperType": ch.RecordWrapperType,
        }
        if ch.ContentType:
            entry["ContentType"] = ch.ContentType
        input_cfg[ch.ChannelName] = entry
    (cfg / "inputdataconfig.json").write_text(json.dumps(input_cfg, indent=1))


def training_environment(
    layout: JobLayout,
    req: CreateTrainingJobRequest,
    *,
    job_arn: str,
    in_namespace: bool,
    num_cpus: int,
    num_gpus: int,
    python_bin_dir: str,
    user_args: list[str],
) -> dict[str, str]:
    """The complete environment of the job: what SageMaker and its training toolkit set, plus the user's."""

    def p(path: Path) -> str:
        return seen_path(layout, path, in_namespace=in_namespace)

    channels = sorted(c.ChannelName for c in req.InputDataConfig)
    hps = {k: decode_hyperparameter(v) for k, v in user_hyperparameters(req.HyperParameters).items()}
    program = req.program() or ""
    module_name = program[:-3] if program.endswith(".py") else program
    resource_cfg = json.loads((layout.config_dir / "resourceconfig.json").read_text())
    input_cfg = json.loads((layout.config_dir / "inputdataconfig.json").read_text())
    base = {
        "model_dir": p(layout.model_dir),
        "channels": channels,
        "hps": hps,
        "user_args": user_args,
        "current_host": CURRENT_HOST,
        "hosts": [CURRENT_HOST],
        "current_instance_type": req.ResourceConfig.InstanceType,
        "current_instance_group": "homogeneousCluster",
        "current_instance_group_hosts": [CURRENT_HOST],
        "instance_groups": ["homogeneousCluster"],
        "is_hetero": False,
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "num_neurons": 0,
        "network_interface_name": "eth0",
        "log_level": 20,
        "input_dir": p(layout.root / "input"),
        "input_config_dir": p(layout.config_dir),
        "input_data_config": input_cfg,
        "resource_config": resource_cfg,
        "output_dir": p(layout.output_dir),
        "output_data_dir": p(layout.output_data_dir),
        "output_intermediate_dir": p(layout.root / "output" / "intermediate"),
        "module_name": module_name,
        "module_dir": req.submit_directory() or "",
        "user_entry_point": program,
        "framework_module": "",
    }
    env: dict[str, str] = {}
    for key, value in base.items():
        env[f"SM_{key.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
        )
    for ch in channels:
        env[f"SM_CHANNEL_{ch.upper()}"] = p(layout.channel_dir(ch))
    for key, value in hps.items():
        env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    env["SM_TRAINING_ENV"] = json.dumps(
        {
            **base,
            "channel_input_dirs": {ch: p(layout.channel_dir(ch)) for ch in channels},
            "job_name": req.TrainingJobName,
        },
        sort_keys=True,
    )
    env.update(
        {
            "TRAINING_JOB_NAME": req.TrainingJobName,
            "TRAINING_JOB_ARN": job_arn,
            "SAGEMAKER_JOB_NAME": req.TrainingJobName,
            "CURRENT_HOST": CURRENT_HOST,
            "SAGEMAKER_REGION": "local",
            "SAGEMAKER_BASE_DIR": OPT_ML if in_namespace else str(layout.root),
            **base_environment(layout.home_dir, python_bin_dir, num_cpus),
        }
    )
    env.update(req.Environment)
    return env


def base_environment(home_dir: Path, python_bin_dir: str, num_cpus: int) -> dict[str, str]:
    """What every job process gets whatever its kind: a private HOME, a PATH that finds the job's Python
    first, UTF-8, unbuffered output, thread counts that honour the CPU reservation, and the few server
    variables in ``PASSTHROUGH_ENV``. Nothing else leaks from the server."""
    env = {
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(home_dir),
        "PATH": os.pathsep.join(
            [python_bin_dir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        ),
        "LANG": "C.UTF-8",
        # Honour the CPU reservation in numeric libraries instead of oversubscribing the machine.
        "OMP_NUM_THREADS": str(num_cpus),
        "OPENBLAS_NUM_THREADS": str(num_cpus),
        "MKL_NUM_THREADS": str(num_cpus),
    }
    for key in PASSTHROUGH_ENV:
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def build_command(
    python: str, layout: JobLayout, req: CreateTrainingJobRequest, *, in_namespace: bool, user_args: list[str]
) -> list[str]:
    """How the toolkit launches the entry point: ``.py`` via Python, a package via ``-m``, else a shell."""
    spec = req.AlgorithmSpecification
    if spec.ContainerEntrypoint:
        return [*spec.ContainerEntrypoint, *(spec.ContainerArguments or [])]
    program = req.program() or ""
    code = seen_path(layout, layout.code_dir, in_namespace=in_namespace)
    if program.endswith(".py"):
        return [python, f"{code}/{program}", *user_args]
    if (layout.code_dir / program / "__init__.py").exists() or (layout.code_dir / program / "__main__.py").exists():
        return [python, "-m", program, *user_args]
    return ["/bin/sh", "-c", " ".join(shlex.quote(a) for a in [f"./{program}", *user_args])]


def python_bin_dir(python: str) -> str:
    return str(Path(python).parent) if python != sys.executable else str(Path(sys.executable).parent)
