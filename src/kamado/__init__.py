"""kamado: a self-hostable ML platform with SageMaker-shaped APIs.

``import kamado`` is cheap: the SDK is loaded on first use, so a training script that only calls
:func:`kamado.log_metric` pays for nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kamado.tracking import log_metric

__version__ = "0.1.0"

__all__ = [
    "CategoricalParameter",
    "Client",
    "ContinuousParameter",
    "Estimator",
    "HyperparameterTuner",
    "IllegalTransition",
    "IntegerParameter",
    "InvalidSpec",
    "KamadoError",
    "NotFound",
    "ResourceInUse",
    "SKLearn",
    "TrainingInput",
    "TrainingJob",
    "TrainingJobFailed",
    "TuningJobFailed",
    "__version__",
    "log_metric",
]

_LAZY = {
    "IllegalTransition": "kamado.core.errors",
    "InvalidSpec": "kamado.core.errors",
    "KamadoError": "kamado.core.errors",
    "NotFound": "kamado.core.errors",
    "ResourceInUse": "kamado.core.errors",
    "Client": "kamado.sdk.client",
    "Estimator": "kamado.sdk.estimator",
    "SKLearn": "kamado.sdk.estimator",
    "TrainingInput": "kamado.sdk.estimator",
    "TrainingJob": "kamado.sdk.estimator",
    "TrainingJobFailed": "kamado.sdk.estimator",
    "CategoricalParameter": "kamado.sdk.tuner",
    "ContinuousParameter": "kamado.sdk.tuner",
    "TuningJobFailed": "kamado.sdk.tuner",
    "HyperparameterTuner": "kamado.sdk.tuner",
    "IntegerParameter": "kamado.sdk.tuner",
}

if TYPE_CHECKING:
    from kamado.core.errors import IllegalTransition, InvalidSpec, KamadoError, NotFound, ResourceInUse
    from kamado.sdk.client import Client
    from kamado.sdk.estimator import Estimator, SKLearn, TrainingInput, TrainingJob, TrainingJobFailed
    from kamado.sdk.tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
        TuningJobFailed,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kamado' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
