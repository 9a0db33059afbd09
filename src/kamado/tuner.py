"""Hyperparameter tuning as ``sagemaker.tuner`` spells it: ``from kamado.tuner import HyperparameterTuner``."""

from __future__ import annotations

from kamado.sdk.tuner import (
    CategoricalParameter,
    ContinuousParameter,
    HyperbandStrategyConfig,
    HyperparameterTuner,
    HyperparameterTuningJobAnalytics,
    IntegerParameter,
    ParameterRange,
    StrategyConfig,
    TuningJob,
    TuningJobCompletionCriteriaConfig,
    TuningJobFailed,
    WarmStartConfig,
    WarmStartTypes,
)

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
