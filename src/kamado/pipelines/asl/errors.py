"""Errors raised while a state runs, named the way Step Functions names them.

An :class:`AslError` is *data*: ``error`` and ``cause`` become the ``{"Error", "Cause"}`` a Catcher sees,
or the execution's failure. Python exceptions never leave the interpreter; every failure of user data is
turned into one of these.
"""

from __future__ import annotations

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
BRANCH_FAILED = "States.BranchFailed"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
EXCEED_TOLERATED_FAILURE_THRESHOLD = "States.ExceedToleratedFailureThreshold"
ITEM_READER_FAILED = "States.ItemReaderFailed"
RESULT_WRITER_FAILED = "States.ResultWriterFailed"
QUERY_EVALUATION_ERROR = "States.QueryEvaluationError"

#: Errors no Retrier or Catcher can handle: the execution fails at once (AWS-recorded behaviour).
UNCATCHABLE = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})


class AslError(Exception):
    """A state failed with a Step Functions error name and a cause text (either may be ``None``)."""

    def __init__(self, error: str | None, cause: str | None = None) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


def error_matches(patterns: list[str], error: str | None) -> bool:
    """Whether a Retrier/Catcher ``ErrorEquals`` list handles ``error``.

    ``States.ALL`` matches everything except the uncatchable errors; ``States.TaskFailed`` matches
    everything except ``States.Timeout`` (and the uncatchable ones).
    """
    name = error if error is not None else ""
    for pattern in patterns:
        if pattern == name:
            return True
        if name in UNCATCHABLE:
            continue
        if pattern == ALL:
            return True
        if pattern == TASK_FAILED and name != TIMEOUT:
            return True
    return False
