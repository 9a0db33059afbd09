"""Hyperparameter tuning as ``sagemaker.tuner`` spells it: ``from kamado.tuner import HyperparameterTuner``."""

from __future__ import annotations

from kamado.sdk import tuner as _impl
from kamado.sdk.tuner import *  # noqa: F403  (the same names, under SageMaker's module path)

__all__ = list(_impl.__all__)
