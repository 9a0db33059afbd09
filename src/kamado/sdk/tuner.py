"""``kamado.tuner``: the SageMaker Python SDK's HyperparameterTuner, for kamado.

Written the way SageMaker users already write it::

    tuner = HyperparameterTuner(estimator, "validation:accuracy",
                                {"lr": ContinuousParameter(1e-4, 1e-1, scaling_type="Logarithmic")},
                                max_jobs=16, max_parallel_jobs=2)
    tuner.fit({"train": "data/train"})
    tuner.best_training_job(); tuner.analytics().dataframe()

``fit`` turns the estimator's CreateTrainingJob request into a TrainingJobDefinition, creates the tuning job
and (by default) waits, printing a progress line each time the trial counters or the best job change. The
server validates the request as a whole; the checks here only catch the commonest mistakes before any code
or data is uploaded.
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kamado.core.errors import InvalidSpec, KamadoError, NotFound, ResourceInUse
from kamado.sdk.client import Client

if TYPE_CHECKING:
    import pandas as pd

    from kamado.sdk.estimator import Estimator

#: SageMaker's tuning-job name: 32 characters, so trial names ``<name>-NNN-xxxxxxxx`` fit in 63.
TUNING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
SCALING_TYPES = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
TERMINAL = ("Completed", "Failed", "Stopped")


class TuningJobFailed(KamadoError):
    """The tuning job ended Failed; ``message`` carries its FailureReason."""

    code = "TuningJobFailed"
    http_status = 500


# -- parameter ranges (sagemaker.tuner / sagemaker.parameter) ------------------------------------------
class ParameterRange:
    """A numeric range to search; ``as_tuning_range(name)`` is its API shape (bounds as strings)."""

    kind = ""

    def __init__(self, min_value: float | int | str, max_value: float | int | str, scaling_type: str = "Auto") -> None:
        self.min_value = min_value
        self.max_value = max_value
        self.scaling_type = scaling_type

    def is_valid(self, value: float) -> bool:
        return float(self.min_value) <= value <= float(self.max_value)

    def as_tuning_range(self, name: str) -> dict[str, str]:
        return {
            "Name": name,
            "MinValue": str(self.min_value),
            "MaxValue": str(self.max_value),
            "ScalingType": self.scaling_type,
        }

    def _check(self, name: str) -> None:
        """The rules that need no server: bounds are numbers, in order, and fit the scaling type."""
        where = f"hyperparameter_ranges[{name!r}]: {type(self).__name__}"
        bounds = []
        for label, raw in (("min_value", self.min_value), ("max_value", self.max_value)):
            try:
                value = float(raw)
            except (TypeError, ValueError):
                value = math.nan
            if isinstance(raw, bool) or not math.isfinite(value):
                raise InvalidSpec(f"{where} {label} {raw!r} is not a finite number.", details=[{"field": name}])
            bounds.append(value)
        low, high = bounds
        if low > high:
            raise InvalidSpec(
                f"{where} is inverted: min_value {self.min_value} > max_value {self.max_value}; swap them.",
                details=[{"field": name, "message": "inverted range"}],
            )
        if self.scaling_type not in SCALING_TYPES:
            raise InvalidSpec(
                f"{where} scaling_type {self.scaling_type!r} is not one of {list(SCALING_TYPES)}.",
                details=[{"field": name, "message": "unknown scaling type"}],
            )
        if self.scaling_type == "Logarithmic" and low <= 0:
            raise InvalidSpec(
                f"{where}: Logarithmic scaling needs min_value > 0 (got {self.min_value}); "
                "raise min_value or use scaling_type='Linear'.",
                details=[{"field": name, "message": "log scale needs positive bounds"}],
            )


class ContinuousParameter(ParameterRange):
    """Any real number in ``[min_value, max_value]``."""

    kind = "Continuous"


class IntegerParameter(ParameterRange):
    """Any integer in ``[min_value, max_value]``."""

    kind = "Integer"

    def _check(self, name: str) -> None:
        super()._check(name)
        if float(self.min_value) != int(float(self.min_value)) or float(self.max_value) != int(float(self.max_value)):
            raise InvalidSpec(
                f"hyperparameter_ranges[{name!r}]: IntegerParameter needs whole-number bounds "
                f"(got {self.min_value}, {self.max_value}); use ContinuousParameter for real numbers.",
                details=[{"field": name, "message": "bounds are not integers"}],
            )


class CategoricalParameter:
    """One of a list of values. As in the SageMaker SDK, values are kept as strings and sent JSON-encoded
    (``"rbf"`` reaches the server as ``'"rbf"'``), so the script receives exactly the value listed."""

    kind = "Categorical"

    def __init__(self, values: Sequence[Any] | Any) -> None:
        listed = list(values) if isinstance(values, list | tuple) else [values]
        self.values = [str(v) for v in listed]

    def is_valid(self, value: Any) -> bool:
        return str(value) in self.values

    def as_tuning_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Values": list(self.values)}

    def as_json_range(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Values": [json.dumps(v) for v in self.values]}

    def _check(self, name: str) -> None:
        if not self.values:
            raise InvalidSpec(
                f"hyperparameter_ranges[{name!r}]: CategoricalParameter needs at least one value.",
                details=[{"field": name, "message": "no values"}],
            )


# -- strategy and completion settings (sagemaker.tuner) --------------------------------------------------
@dataclass(frozen=True)
class HyperbandStrategyConfig:
    max_resource: int
    min_resource: int = 1


@dataclass(frozen=True)
class StrategyConfig:
    hyperband_strategy_config: HyperbandStrategyConfig | None = None


@dataclass(frozen=True)
class TuningJobCompletionCriteriaConfig:
    """Only ``target_objective_metric_value`` is built: the other two raise NotImplementedError."""

    max_number_of_training_jobs_not_improving: int | None = None
    complete_on_convergence: bool | None = None
    target_objective_metric_value: float | None = None


class WarmStartTypes(Enum):
    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class WarmStartConfig:
    """Start a search from up to 5 ended parent tuning jobs' trials (``sagemaker.tuner.WarmStartConfig``)."""

    def __init__(self, warm_start_type: WarmStartTypes | str, parents: set[str] | Sequence[str]) -> None:
        self.type = WarmStartTypes(warm_start_type)
        self.parents = set(parents)

    def to_input_req(self) -> dict[str, Any]:
        return {
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in sorted(self.parents)],
            "WarmStartType": self.type.value,
        }

    @classmethod
    def from_job_desc(cls, warm_start_config: Mapping[str, Any] | None) -> WarmStartConfig | None:
        if not warm_start_config:
            return None
        parents = [p["HyperParameterTuningJobName"] for p in warm_start_config["ParentHyperParameterTuningJobs"]]
        return cls(warm_start_config["WarmStartType"], parents)


# -- progress ---------------------------------------------------------------------------------------------
def max_trials(desc: Mapping[str, Any]) -> int | None:
    """How many trials the tuning job will run: MaxNumberOfTrainingJobs, or the grid size for Grid."""
    config = desc.get("HyperParameterTuningJobConfig", {})
    limit = config.get("ResourceLimits", {}).get("MaxNumberOfTrainingJobs")
    if limit is not None:
        return int(limit)
    ranges = config.get("ParameterRanges", {})
    size = 1
    for cat in ranges.get("CategoricalParameterRanges", []):
        size *= len(cat["Values"])
    for r in ranges.get("IntegerParameterRanges", []):
        size *= int(float(r["MaxValue"])) - int(float(r["MinValue"])) + 1
    return size if config.get("Strategy") == "Grid" else None


def progress_counts(desc: Mapping[str, Any]) -> dict[str, int]:
    """``done`` (trials that ended), ``running`` and ``failed`` (ended without an objective value)."""
    objective = desc.get("ObjectiveStatusCounters") or {}
    succeeded, pending, failed = (int(objective.get(k, 0)) for k in ("Succeeded", "Pending", "Failed"))
    return {"done": succeeded + failed, "running": pending, "failed": failed, "succeeded": succeeded}


def progress_line(desc: Mapping[str, Any]) -> str:
    """``[kamado] tuning NAME: 5/32 done, 2 running, 0 failed, best 0.93 (NAME-004-abcd1234)``."""
    name = desc.get("HyperParameterTuningJobName", "?")
    counts = progress_counts(desc)
    total = max_trials(desc)
    line = (
        f"[kamado] tuning {name}: {counts['done']}/{total if total is not None else '?'} done, "
        f"{counts['running']} running, {counts['failed']} failed"
    )
    best = desc.get("BestTrainingJob")
    if best:
        value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        line += f", best {value:.6g} ({best['TrainingJobName']})"
    status = desc.get("HyperParameterTuningJobStatus")
    if status and status != "InProgress":
        line += f" - {status}"
    return line


def range_shapes(desc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ParameterRanges of a tuning job's description by name: integer, continuous, then categorical."""
    ranges = desc["HyperParameterTuningJobConfig"]["ParameterRanges"]
    kinds = ("IntegerParameterRanges", "ContinuousParameterRanges", "CategoricalParameterRanges")
    return {r["Name"]: r for kind in kinds for r in ranges.get(kind, [])}


def decode_value(raw: str) -> Any:
    """A hyperparameter string as the training toolkit reads it: JSON when it parses, else the string."""
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


def objective_value(summary: Mapping[str, Any]) -> float | None:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
    return None if not metric else float(metric["Value"])


def sort_trials(summaries: Sequence[Mapping[str, Any]], objective_type: str) -> list[dict[str, Any]]:
    """Best objective first; trials without one after, in trial order."""
    sign = -1.0 if objective_type == "Maximize" else 1.0

    def key(s: Mapping[str, Any]) -> tuple[int, float, str]:
        value = objective_value(s)
        return (0, sign * value, s["TrainingJobName"]) if value is not None else (1, 0.0, s["TrainingJobName"])

    return [dict(s) for s in sorted(summaries, key=key)]


class _ProgressPrinter:
    """Writes a progress line per change and, with ``trials``, one line per trial as it ends."""

    def __init__(self, client: Client, name: str, *, trials: bool, lines: bool) -> None:
        self.client = client
        self.name = name
        self.trials = trials
        self.lines = lines
        self._ended: set[str] = set()

    def __call__(self, desc: dict[str, Any]) -> None:
        if self.trials:
            for s in self.client.list_training_jobs_for_tuning_job(self.name)["TrainingJobSummaries"]:
                if s["TrainingJobStatus"] in TERMINAL and s["TrainingJobName"] not in self._ended:
                    self._ended.add(s["TrainingJobName"])
                    _write(_trial_line(s))
        if self.lines:
            _write(progress_line(desc) + "\n")


def _trial_line(s: Mapping[str, Any]) -> str:
    tuned = ", ".join(f"{k}={decode_value(v)}" for k, v in s.get("TunedHyperParameters", {}).items())
    value = objective_value(s)
    metric = s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("MetricName", "objective")
    outcome = f"{metric}={value:.6g}" if value is not None else (s.get("FailureReason") or "no objective value")
    return f"[kamado] trial {s['TrainingJobName']} {s['TrainingJobStatus']}: {outcome} ({tuned})\n"


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# -- a tuning job ---------------------------------------------------------------------------------------
class TuningJob:
    """A handle on one tuning job (``tuner.latest_tuning_job``)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name

    def describe(self) -> dict[str, Any]:
        return self.client.describe_tuning_job(self.name)

    def stop(self) -> None:
        self.client.stop_tuning_job(self.name)

    def wait(self, logs: bool = False, progress: bool = True) -> dict[str, Any]:
        """Wait for the job to end. ``progress`` prints a line per change; ``logs`` also a line per trial.
        Raises TuningJobFailed if it ends Failed (Stopped is a normal end, as in SageMaker)."""
        printer = _ProgressPrinter(self.client, self.name, trials=logs, lines=progress) if progress or logs else None
        desc = self.client.wait_for_tuning_job(self.name, on_progress=printer)
        if desc["HyperParameterTuningJobStatus"] == "Failed":
            raise TuningJobFailed(
                f"Tuning job {self.name} failed: {desc.get('FailureReason', 'no reason recorded')}",
                details={"HyperParameterTuningJobName": self.name},
            )
        return desc

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        return HyperparameterTuningJobAnalytics(self.name, client=self.client)

    def __repr__(self) -> str:
        return f"TuningJob({self.name!r})"


class HyperparameterTuningJobAnalytics:
    """The trials of a tuning job as a table (``sagemaker.analytics.HyperparameterTuningJobAnalytics``)."""

    def __init__(
        self, hyperparameter_tuning_job_name: str, sagemaker_session: Any = None, *, client: Client | None = None
    ) -> None:
        self.name = hyperparameter_tuning_job_name
        self.client = client or Client()
        self._description: dict[str, Any] | None = None
        self._summaries: list[dict[str, Any]] | None = None
        self._trial_details: dict[str, dict[str, Any]] = {}  # ended trials' descriptions never change

    def clear_cache(self) -> None:
        self._description = None
        self._summaries = None

    def description(self, force_refresh: bool = False) -> dict[str, Any]:
        if force_refresh or self._description is None:
            self._description = self.client.describe_tuning_job(self.name)
        return self._description

    @property
    def tuning_ranges(self) -> dict[str, dict[str, Any]]:
        """Each tuned hyperparameter's range: integer, then continuous, then categorical ones."""
        return range_shapes(self.description())

    def training_jobs(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """The raw TrainingJobSummaries of ListTrainingJobsForHyperParameterTuningJob, in trial order."""
        if force_refresh or self._summaries is None:
            self._summaries = self.client.list_training_jobs_for_tuning_job(self.name)["TrainingJobSummaries"]
        return self._summaries

    def dataframe(self, force_refresh: bool = False) -> pd.DataFrame:
        """One row per trial, best objective first: the tuned hyperparameters (decoded), TrainingJobName,
        TrainingJobStatus, FinalObjectiveValue, TrainingStartTime, TrainingEndTime,
        TrainingElapsedTimeSeconds and FailureReason."""
        import pandas as pd

        if force_refresh:
            self.clear_cache()
        objective_type = self.description()["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        names = list(self.tuning_ranges)
        fixed = [
            "TrainingJobName",
            "TrainingJobStatus",
            "FinalObjectiveValue",
            "TrainingStartTime",
            "TrainingEndTime",
            "TrainingElapsedTimeSeconds",
            "FailureReason",
        ]
        rows = []
        for s in sort_trials(self.training_jobs(), objective_type["Type"]):
            row: dict[str, Any] = {n: decode_value(s["TunedHyperParameters"][n]) for n in names}
            start, end = self._times(s)
            row.update(
                {
                    "TrainingJobName": s["TrainingJobName"],
                    "TrainingJobStatus": s["TrainingJobStatus"],
                    "FinalObjectiveValue": objective_value(s),
                    "TrainingStartTime": start,
                    "TrainingEndTime": end,
                    "TrainingElapsedTimeSeconds": (end - start).total_seconds() if start and end else None,
                    "FailureReason": s.get("FailureReason"),
                }
            )
            rows.append(row)
        return pd.DataFrame(rows, columns=[*names, *fixed])

    def _times(self, summary: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
        name = summary["TrainingJobName"]
        desc = self._trial_details.get(name)
        if desc is None:
            desc = self.client.describe_training_job(name)
            if desc["TrainingJobStatus"] in TERMINAL:
                self._trial_details[name] = desc
        start, end = desc.get("TrainingStartTime"), desc.get("TrainingEndTime")
        return (
            datetime.fromisoformat(start) if start else None,
            datetime.fromisoformat(end) if end else None,
        )

    def __repr__(self) -> str:
        return f"<HyperparameterTuningJobAnalytics for {self.name}>"


# -- the tuner --------------------------------------------------------------------------------------------
_Range = ParameterRange | CategoricalParameter


class HyperparameterTuner:
    """Search an estimator's hyperparameters with SageMaker's HyperparameterTuner arguments.

    ``strategy`` is ``"Bayesian"``, ``"Random"`` or ``"Grid"`` (plus whatever else the server accepts);
    ``max_jobs`` defaults, as in SageMaker, to every combination for Grid and to 1 otherwise.
    """

    TUNING_JOB_NAME_MAX_LENGTH = 32

    def __init__(
        self,
        estimator: Estimator | None,
        objective_metric_name: str,
        hyperparameter_ranges: Mapping[str, _Range],
        metric_definitions: list[dict[str, str]] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_runtime_in_seconds: int | None = None,
        tags: list[dict[str, str]] | None = None,
        base_tuning_job_name: str | None = None,
        warm_start_config: WarmStartConfig | None = None,
        strategy_config: StrategyConfig | Mapping[str, Any] | None = None,
        completion_criteria_config: TuningJobCompletionCriteriaConfig | None = None,
        early_stopping_type: str = "Off",
        estimator_name: str | None = None,
        random_seed: int | None = None,
        autotune: bool = False,
        hyperparameters_to_keep_static: list[str] | None = None,
        *,
        target_objective_metric_value: float | None = None,
        client: Client | None = None,
    ) -> None:
        for arg, value in (
            ("estimator_name", estimator_name),
            ("autotune", autotune or None),
            ("hyperparameters_to_keep_static", hyperparameters_to_keep_static),
        ):
            if value is not None:
                raise NotImplementedError(
                    f"HyperparameterTuner({arg}=...) is not built in kamado yet; leave it out "
                    "(see docs/tuning.md, 'Not built yet')."
                )
        if completion_criteria_config is not None:
            if (
                completion_criteria_config.max_number_of_training_jobs_not_improving is not None
                or completion_criteria_config.complete_on_convergence is not None
            ):
                raise NotImplementedError(
                    "TuningJobCompletionCriteriaConfig: only target_objective_metric_value is built in kamado; "
                    "leave out max_number_of_training_jobs_not_improving and complete_on_convergence."
                )
            if target_objective_metric_value is None:
                target_objective_metric_value = completion_criteria_config.target_objective_metric_value
        if not hyperparameter_ranges:
            raise InvalidSpec("hyperparameter_ranges is empty: give at least one range to tune.")
        for name, rng in hyperparameter_ranges.items():
            if not isinstance(rng, ParameterRange | CategoricalParameter):
                raise InvalidSpec(
                    f"hyperparameter_ranges[{name!r}] is a {type(rng).__name__}; use IntegerParameter, "
                    "ContinuousParameter or CategoricalParameter.",
                    details=[{"field": str(name)}],
                )
            rng._check(str(name))
        if objective_type not in ("Maximize", "Minimize"):
            raise InvalidSpec(f"objective_type must be 'Maximize' or 'Minimize', not {objective_type!r}.")
        if not isinstance(max_parallel_jobs, int) or max_parallel_jobs < 1:
            raise InvalidSpec(f"max_parallel_jobs must be an integer >= 1 (got {max_parallel_jobs!r}).")
        if max_jobs is not None and (not isinstance(max_jobs, int) or max_jobs < 1):
            raise InvalidSpec(f"max_jobs must be an integer >= 1 (got {max_jobs!r}).")
        self.estimator = estimator
        self.objective_metric_name = objective_metric_name
        self._hyperparameter_ranges = dict(hyperparameter_ranges)
        self.metric_definitions = list(metric_definitions) if metric_definitions is not None else None
        self.strategy = strategy
        self.strategy_config = strategy_config
        self.objective_type = objective_type
        self.max_jobs = max_jobs if max_jobs is not None or strategy == "Grid" else 1
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.tags = list(tags or [])
        self.base_tuning_job_name = base_tuning_job_name
        self.early_stopping_type = early_stopping_type
        self.random_seed = random_seed
        self.warm_start_config = warm_start_config
        self.target_objective_metric_value = target_objective_metric_value
        self._client = client
        self.latest_tuning_job: TuningJob | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self.estimator.client if self.estimator is not None else Client()
        return self._client

    def hyperparameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        """The ParameterRanges of the request; categorical values JSON-encoded (framework estimators)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, rng in self._hyperparameter_ranges.items():
            shape = rng.as_json_range(name) if isinstance(rng, CategoricalParameter) else rng.as_tuning_range(name)
            out.setdefault(f"{rng.kind}ParameterRanges", []).append(shape)
        return out

    # -- building the request -------------------------------------------------------------------------
    def _metric_definitions(self) -> list[dict[str, str]]:
        if self.metric_definitions is not None:
            return self.metric_definitions
        return list(self.estimator.metric_definitions) if self.estimator is not None else []

    def _check_objective(self) -> None:
        defined = [m.get("Name") for m in self._metric_definitions()]
        if self.objective_metric_name not in defined:
            raise InvalidSpec(
                f"objective_metric_name {self.objective_metric_name!r} is not in metric_definitions "
                f"({defined or 'none given'}); add {{'Name': {self.objective_metric_name!r}, 'Regex': ...}} to "
                "the tuner's or the estimator's metric_definitions.",
                details=[{"field": "objective_metric_name", "message": "no MetricDefinition with that Name"}],
            )

    def _default_name(self) -> str:
        assert self.estimator is not None
        base = self.base_tuning_job_name or self.estimator.base_job_name or Path(self.estimator.entry_point).stem
        base = re.sub(r"[^a-zA-Z0-9-]", "-", base).strip("-") or "tuning"
        stamp = time.strftime("%y%m%d-%H%M%S", time.gmtime())
        return base[: self.TUNING_JOB_NAME_MAX_LENGTH - len(stamp) - 1].rstrip("-") + "-" + stamp

    def tuning_job_request(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """The CreateHyperParameterTuningJob request ``fit`` sends (uploads the code and local data)."""
        if self.estimator is None:
            raise InvalidSpec("This tuner has no estimator (it was attached); create a new tuner to fit.")
        self._check_objective()
        name = job_name or self._default_name()
        training = self.estimator.training_job_request(inputs, job_name=name)
        tuned = set(self._hyperparameter_ranges)
        static = {k: v for k, v in training["HyperParameters"].items() if k not in tuned and k != "sagemaker_job_name"}
        definition: dict[str, Any] = {
            "AlgorithmSpecification": {
                **training["AlgorithmSpecification"],
                "MetricDefinitions": self._metric_definitions(),
            },
            "StaticHyperParameters": static,
        }
        for key in (
            "InputDataConfig",
            "OutputDataConfig",
            "ResourceConfig",
            "StoppingCondition",
            "RetryStrategy",
            "Environment",
            "CheckpointConfig",
        ):
            if key in training:
                definition[key] = training[key]
        limits: dict[str, Any] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.max_runtime_in_seconds is not None:
            limits["MaxRuntimeInSeconds"] = self.max_runtime_in_seconds
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type, "MetricName": self.objective_metric_name},
            "ResourceLimits": limits,
            "ParameterRanges": self.hyperparameter_ranges(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type,
        }
        strategy_config = _strategy_config(self.strategy_config)
        if strategy_config:
            config["StrategyConfig"] = strategy_config
        if self.target_objective_metric_value is not None:
            config["TuningJobCompletionCriteria"] = {"TargetObjectiveMetricValue": self.target_objective_metric_value}
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        tags = {t["Key"]: t["Value"] for t in [*self.estimator.tags, *self.tags]}
        request: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": definition,
            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        }
        if self.warm_start_config is not None:
            request["WarmStartConfig"] = self.warm_start_config.to_input_req()
        return request

    # -- running ----------------------------------------------------------------------------------------
    def fit(
        self,
        inputs: Any = None,
        job_name: str | None = None,
        include_cls_metadata: bool = False,
        estimator_kwargs: Mapping[str, Any] | None = None,
        wait: bool = True,
        logs: bool = False,
        **kwargs: Any,
    ) -> None:
        """Start the tuning job; with ``wait`` block until it ends, printing progress (``logs``: per trial too).

        ``inputs`` is what ``Estimator.fit`` takes. A generated name is ``<base>-<yymmdd-HHMMSS>`` within 32
        characters, ``base`` being ``base_tuning_job_name``, the estimator's ``base_job_name`` or the entry
        point's stem. Raises TuningJobFailed if the tuning job ends Failed."""
        if estimator_kwargs:
            raise NotImplementedError("estimator_kwargs (multi-algorithm tuning) is not built in kamado yet.")
        if kwargs:
            raise TypeError(f"HyperparameterTuner.fit got unexpected argument(s) {sorted(kwargs)}")
        request = self.tuning_job_request(inputs, job_name)
        for attempt in range(3):
            try:
                self.client.create_tuning_job(request)
                break
            except ResourceInUse:
                if job_name is not None or attempt == 2:
                    raise
                time.sleep(1.0)  # another tuning job got this second's generated name: take the next second's
                request["HyperParameterTuningJobName"] = self._default_name()
        name = request["HyperParameterTuningJobName"]
        self.latest_tuning_job = TuningJob(self.client, name)
        if wait:
            self.latest_tuning_job.wait(logs=logs)

    def _job(self) -> TuningJob:
        if self.latest_tuning_job is None:
            raise InvalidSpec("No tuning job yet: call fit() (or HyperparameterTuner.attach) first.")
        return self.latest_tuning_job

    def wait(self, logs: bool = False) -> dict[str, Any]:
        return self._job().wait(logs=logs)

    def describe(self) -> dict[str, Any]:
        return self._job().describe()

    def stop_tuning_job(self) -> None:
        self._job().stop()

    stop = stop_tuning_job

    def best_training_job(self) -> str:
        """The name of the trial with the best objective value so far."""
        desc = self.describe()
        best = desc.get("BestTrainingJob")
        if not best:
            raise NotFound(
                f"Tuning job {desc['HyperParameterTuningJobName']} ({desc['HyperParameterTuningJobStatus']}) has "
                f"no best training job: no trial has reported the objective metric {self.objective_metric_name!r} "
                "yet.",
                details={"HyperParameterTuningJobName": desc["HyperParameterTuningJobName"]},
            )
        return str(best["TrainingJobName"])

    def best_estimator(self, best_training_job: str | None = None) -> Estimator:
        """A copy of the estimator with the best trial's hyperparameters, attached to that trial."""
        if self.estimator is None:
            raise InvalidSpec("This tuner has no estimator (it was attached); pass one to a new tuner.")
        name = best_training_job or self.best_training_job()
        desc = self.client.describe_training_job(name)
        est = copy.copy(self.estimator)
        est.hyperparameters_ = dict(self.estimator.hyperparameters_)
        for key in self._hyperparameter_ranges:
            if key in desc.get("HyperParameters", {}):
                est.hyperparameters_[key] = decode_value(desc["HyperParameters"][key])
        est.attach(name)
        return est

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        return self._job().analytics()

    def identical_dataset_and_algorithm_tuner(self, additional_parents: set[str] | None = None) -> HyperparameterTuner:
        """A copy of this tuner that warm-starts from this tuning job (and ``additional_parents``)."""
        return self._warm_start_copy(WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM, additional_parents, None)

    def transfer_learning_tuner(
        self, additional_parents: set[str] | None = None, estimator: Estimator | None = None
    ) -> HyperparameterTuner:
        """A copy that warm-starts from this tuning job with TransferLearning (another estimator allowed)."""
        return self._warm_start_copy(WarmStartTypes.TRANSFER_LEARNING, additional_parents, estimator)

    def _warm_start_copy(
        self, kind: WarmStartTypes, additional_parents: set[str] | None, estimator: Estimator | None
    ) -> HyperparameterTuner:
        parents = {self._job().name, *(additional_parents or set())}
        tuner = copy.copy(self)
        tuner.estimator = estimator or self.estimator
        tuner.warm_start_config = WarmStartConfig(kind, parents)
        tuner.latest_tuning_job = None
        return tuner

    @classmethod
    def attach(
        cls,
        tuning_job_name: str,
        sagemaker_session: Any = None,
        job_details: Mapping[str, Any] | None = None,
        estimator_cls: Any = None,
        *,
        client: Client | None = None,
    ) -> HyperparameterTuner:
        """A tuner for an existing tuning job (no estimator: it can describe, wait, stop and analyse)."""
        client = client or Client()
        desc = dict(job_details) if job_details else client.describe_tuning_job(tuning_job_name)
        config = desc["HyperParameterTuningJobConfig"]
        ranges: dict[str, _Range] = {}
        for r in config["ParameterRanges"].get("IntegerParameterRanges", []):
            ranges[r["Name"]] = IntegerParameter(r["MinValue"], r["MaxValue"], r.get("ScalingType", "Auto"))
        for r in config["ParameterRanges"].get("ContinuousParameterRanges", []):
            ranges[r["Name"]] = ContinuousParameter(r["MinValue"], r["MaxValue"], r.get("ScalingType", "Auto"))
        for r in config["ParameterRanges"].get("CategoricalParameterRanges", []):
            ranges[r["Name"]] = CategoricalParameter([decode_value(v) for v in r["Values"]])
        limits = config["ResourceLimits"]
        tuner = cls(
            None,
            config["HyperParameterTuningJobObjective"]["MetricName"],
            ranges,
            metric_definitions=desc["TrainingJobDefinition"]["AlgorithmSpecification"].get("MetricDefinitions", []),
            strategy=config["Strategy"],
            objective_type=config["HyperParameterTuningJobObjective"]["Type"],
            max_jobs=limits.get("MaxNumberOfTrainingJobs"),
            max_parallel_jobs=limits["MaxParallelTrainingJobs"],
            max_runtime_in_seconds=limits.get("MaxRuntimeInSeconds"),
            early_stopping_type=config.get("TrainingJobEarlyStoppingType", "Off"),
            random_seed=config.get("RandomSeed", desc.get("RandomSeed")),
            warm_start_config=WarmStartConfig.from_job_desc(desc.get("WarmStartConfig")),
            client=client,
        )
        tuner.latest_tuning_job = TuningJob(client, tuning_job_name)
        return tuner


def _strategy_config(value: StrategyConfig | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    hb = value.hyperband_strategy_config
    if hb is None:
        return None
    return {"HyperbandStrategyConfig": {"MinResource": hb.min_resource, "MaxResource": hb.max_resource}}


__all__ = [
    "CategoricalParameter",
    "ContinuousParameter",
    "HyperbandStrategyConfig",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IntegerParameter",
    "ParameterRange",
    "StrategyConfig",
    "TuningJob",
    "TuningJobCompletionCriteriaConfig",
    "TuningJobFailed",
    "WarmStartConfig",
    "WarmStartTypes",
]
