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
    "Function",
    "HyperparameterTuner",
    "IllegalTransition",
    "IntegerParameter",
    "InvalidSpec",
    "KamadoError",
    "Model",
    "ModelError",
    "NotFound",
    "Predictor",
    "ProcessingInput",
    "ProcessingOutput",
    "Processor",
    "ResourceInUse",
    "SKLearn",
    "ScriptProcessor",
    "TrainingInput",
    "TrainingJob",
    "TrainingJobFailed",
    "Transformer",
    "TuningJobFailed",
    "__version__",
    "deserializers",
    "log_metric",
    "map",
    "serializers",
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
    "Model": "kamado.sdk.model",
    "ModelError": "kamado.sdk.errors",
    "Predictor": "kamado.sdk.predictor",
    "ProcessingInput": "kamado.sdk.processing",
    "ProcessingOutput": "kamado.sdk.processing",
    "Processor": "kamado.sdk.processing",
    "ScriptProcessor": "kamado.sdk.processing",
    "Transformer": "kamado.sdk.transformer",
    "Function": "kamado.sdk.functions",
    "map": "kamado.sdk.functions",
}
#: Whole modules, as ``sagemaker.serializers``: ``from kamado import serializers``.
_LAZY_MODULES = {
    "serializers": "kamado.sdk.serializers",
    "deserializers": "kamado.sdk.deserializers",
}

if TYPE_CHECKING:
    from kamado.core.errors import IllegalTransition, InvalidSpec, KamadoError, NotFound, ResourceInUse
    from kamado.sdk import deserializers, serializers
    from kamado.sdk.client import Client
    from kamado.sdk.errors import ModelError
    from kamado.sdk.estimator import Estimator, SKLearn, TrainingInput, TrainingJob, TrainingJobFailed
    from kamado.sdk.functions import Function, map
    from kamado.sdk.model import Model
    from kamado.sdk.predictor import Predictor
    from kamado.sdk.processing import ProcessingInput, ProcessingOutput, Processor, ScriptProcessor
    from kamado.sdk.transformer import Transformer
    from kamado.sdk.tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
        TuningJobFailed,
    )


def __getattr__(name: str) -> Any:
    import importlib

    if name in _LAZY_MODULES:
        value = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kamado' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
