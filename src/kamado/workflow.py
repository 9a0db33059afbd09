"""Python pipelines that compile to Amazon States Language: ``from kamado.workflow import Workflow, Task``."""

from __future__ import annotations

from kamado.sdk import workflow as _impl
from kamado.sdk.pipelines import (  # noqa: F401 (re-exported)
    Execution,
    ExecutionFailed,
    Schedule,
    StateMachine,
    Trigger,
)
from kamado.sdk.workflow import *  # noqa: F403  (the step classes, under a short module path)

__all__ = sorted([*_impl.__all__, "Execution", "ExecutionFailed", "Schedule", "StateMachine", "Trigger"])
