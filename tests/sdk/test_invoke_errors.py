"""InvokeEndpoint's answers become typed errors, and a moved router is found again: no server needed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kamado.core.errors import InvalidSpec, KamadoError, NotFound, PayloadTooLarge, ServiceUnavailable
from kamado.sdk.client import Client
from kamado.sdk.errors import ModelError


def _router(status: int, kind: str, body: dict[str, Any], **headers: str) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"x-amzn-ErrorType": kind, **headers})

    return httpx.MockTransport(handle)


def _client(router: httpx.MockTransport, urls: list[str] | None = None) -> Client:
    """A client whose control plane hands out ``urls`` in turn and whose router is ``router``."""
    answers = iter(urls or ["http://router.test"])

    def control(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/runtime"
        return httpx.Response(200, json={"Url": next(answers)})

    client = Client(transport=httpx.MockTransport(control))
    client._router_http = lambda url: httpx.Client(transport=router)  # type: ignore[method-assign]
    return client


def test_a_model_error_carries_the_models_status_and_message() -> None:
    body = {
        "ErrorCode": "SERVER_ERROR_FROM_MODEL",
        "Message": 'Received server error (500) from model with message "ValueError: bad". See the logs.',
        "OriginalStatusCode": 500,
        "OriginalMessage": "ValueError: bad",
    }
    client = _client(_router(424, "ModelError", body, **{"X-Amzn-Invoked-Production-Variant": "Blue"}))
    with pytest.raises(ModelError) as caught:
        client.invoke_endpoint("ep", b"[]")
    assert caught.value.original_status_code == 500
    assert caught.value.original_message == "ValueError: bad"
    assert "Endpoint 'ep' (variant Blue): the model answered 500: ValueError: bad" in caught.value.message


def test_a_model_timeout_keeps_the_routers_message() -> None:
    body = {"ErrorCode": "SERVER_ERROR_FROM_MODEL", "Message": "timed out after 60 s", "OriginalStatusCode": 0}
    with pytest.raises(ModelError, match="timed out after 60 s") as caught:
        _client(_router(424, "ModelError", body)).invoke_endpoint("ep", b"[]")
    assert caught.value.original_status_code == 0, "no answer from the model: the router says 0"


@pytest.mark.parametrize(
    ("status", "kind", "body", "error"),
    [
        (400, "ValidationError", {"ErrorCode": "NO_SUCH_ENDPOINT", "Message": "Endpoint ep not found."}, NotFound),
        (400, "ValidationError", {"ErrorCode": "NO_SUCH_VARIANT", "Message": "no variant X"}, InvalidSpec),
        (413, "ValidationError", {"ErrorCode": "PAYLOAD_TOO_LARGE", "Message": "over 6 MB"}, PayloadTooLarge),
        (503, "ServiceUnavailable", {"ErrorCode": "SERVICE_UNAVAILABLE", "Message": "retry"}, ServiceUnavailable),
        (500, "InternalFailure", {"Message": "The router failed; retry."}, KamadoError),
    ],
)
def test_router_errors_are_typed(status: int, kind: str, body: dict[str, Any], error: type[KamadoError]) -> None:
    client = _client(_router(status, kind, body, **{"Retry-After": "1"}))
    with pytest.raises(error) as caught:
        client.invoke_endpoint("ep", b"[]")
    assert type(caught.value) is error
    assert body["Message"] in caught.value.message
    if error is ServiceUnavailable:
        assert isinstance(caught.value.details, dict) and caught.value.details["RetryAfter"] == "1"


def test_a_refused_connection_asks_for_the_router_once_more() -> None:
    seen = []

    def router(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "old.test":
            raise httpx.ConnectError("refused", request=request)
        assert request.headers["X-Amzn-SageMaker-Target-Variant"] == "Blue"
        return httpx.Response(
            200,
            content=json.dumps([1]).encode(),
            headers={"Content-Type": "application/json", "X-Amzn-Invoked-Production-Variant": "Blue"},
        )

    client = _client(httpx.MockTransport(router), ["http://old.test", "http://new.test"])
    result = client.invoke_endpoint("ep", b"[[1]]", target_variant="Blue")
    assert (result.body, result.invoked_variant) == (b"[1]", "Blue")
    assert seen == ["old.test", "new.test"]
    assert client.runtime_url() == "http://new.test", "the new address is cached"

    dead = _client(httpx.MockTransport(router), ["http://old.test", "http://old.test"])
    with pytest.raises(KamadoError, match="Cannot reach kamado's router"):
        dead.invoke_endpoint("ep", b"[[1]]")
