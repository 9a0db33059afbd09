"""Errors only the SDK raises: what an invocation, or a wait on an endpoint or a pipeline execution, can end in.

They are not in ``kamado.core.errors`` because the control plane never renders them: a ``ModelError``
comes from the router's answer (sagemaker-runtime's 424), an ``EndpointFailed`` from the SDK reading a
description, so neither has a problem+json code to round-trip.
"""

from __future__ import annotations

from typing import Any

from kamado.core.errors import KamadoError


class ModelError(KamadoError):
    """The model answered an invocation with an error (sagemaker-runtime's 424 ``ModelError``).

    ``original_status_code`` and ``original_message`` are what the model server itself said, so a
    caller can tell a refused input (4xx from ``input_fn``) from a crash in ``predict_fn`` (500).
    """

    code = "ModelError"
    http_status = 424

    def __init__(
        self,
        message: str,
        *,
        original_status_code: int | None = None,
        original_message: str = "",
        details: dict[str, Any] | list[Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.original_status_code = original_status_code
        self.original_message = original_message


class EndpointFailed(KamadoError):
    """An endpoint being waited on ended Failed or UpdateRollbackFailed; ``message`` carries its FailureReason."""

    code = "EndpointFailed"
    http_status = 500


class EndpointUpdateRolledBack(EndpointFailed):
    """An UpdateEndpoint was rolled back (an alarm fired or the new fleet did not start). The endpoint is
    InService again on its previous config; ``message`` carries the FailureReason."""

    code = "EndpointUpdateRolledBack"


class ExecutionFailed(KamadoError):
    """A pipeline execution being waited on ended FAILED, TIMED_OUT or ABORTED; ``description`` is its
    DescribeExecution (``error`` and ``cause`` say why)."""

    code = "ExecutionFailed"

    def __init__(self, message: str, *, description: dict[str, Any]) -> None:
        super().__init__(message, details=description)
        self.description = description
