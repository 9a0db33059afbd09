"""One error hierarchy with stable codes.

The server renders every :class:`KamadoError` as problem+json ``{code, message, details}``; the SDK maps
``code`` back to the same class, so ``except kamado.ResourceInUse`` works on both sides of the wire.
Codes follow SageMaker's (``ValidationException``, ``ResourceInUse``, ...) so a boto3 facade can be thin.
"""

from __future__ import annotations

from typing import Any, ClassVar


class KamadoError(Exception):
    """Base of every error kamado raises on purpose. ``message`` names the object and the next step."""

    code: ClassVar[str] = "InternalFailure"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_problem(self) -> dict[str, Any]:
        """The problem+json body (RFC 9457) the API returns for this error."""
        body: dict[str, Any] = {
            "type": f"urn:kamado:error:{self.code}",
            "title": self.code,
            "status": self.http_status,
            "code": self.code,
            "message": self.message,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidSpec(KamadoError):
    """The request is malformed; nothing was created. ``details`` lists each bad field."""

    code = "ValidationException"
    http_status = 400


class NotFound(KamadoError):
    code = "ResourceNotFound"
    http_status = 404


class ResourceInUse(KamadoError):
    """A resource with that name exists already (names are the idempotency key), or it is in use."""

    code = "ResourceInUse"
    http_status = 409


Conflict = ResourceInUse


class IllegalTransition(KamadoError):
    """The resource's lifecycle does not allow the requested change from its current state."""

    code = "IllegalTransition"
    http_status = 409


class ConcurrentModification(KamadoError):
    """A compare-and-set lost a race; re-read and retry."""

    code = "ConcurrentModification"
    http_status = 409


class LimitExceeded(KamadoError):
    code = "ResourceLimitExceeded"
    http_status = 429


class PayloadTooLarge(KamadoError):
    code = "PayloadTooLarge"
    http_status = 413


class Unauthorized(KamadoError):
    code = "Unauthorized"
    http_status = 401


class Forbidden(KamadoError):
    code = "AccessDenied"
    http_status = 403


class ServiceUnavailable(KamadoError):
    code = "ServiceUnavailable"
    http_status = 503


ERRORS_BY_CODE: dict[str, type[KamadoError]] = {
    cls.code: cls
    for cls in (
        KamadoError,
        InvalidSpec,
        NotFound,
        ResourceInUse,
        IllegalTransition,
        ConcurrentModification,
        LimitExceeded,
        PayloadTooLarge,
        Unauthorized,
        Forbidden,
        ServiceUnavailable,
    )
}


def error_from_problem(status: int, body: dict[str, Any]) -> KamadoError:
    """Rebuild the matching error class from a problem+json body (used by the SDK)."""
    cls = ERRORS_BY_CODE.get(str(body.get("code", "")), KamadoError)
    err = cls(str(body.get("message", f"HTTP {status}")), details=body.get("details"))
    return err
