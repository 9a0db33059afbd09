"""The OpenAPI document as the server actually behaves, so clients and fuzzers (T9) can trust it.

FastAPI's generated document misses what kamado does outside the route functions, and one type it cannot
describe on its own:

* **Authentication** (:mod:`kamado.api.auth`): every route but the public allowlist takes
  ``Authorization: Bearer <token>``. Declaring the scheme lets generated clients send it and lets
  Schemathesis' ``ignored_auth`` check prove that a call without it, or with a bad one, is refused.
* **Errors**: a request that fails validation is answered ``400`` problem+json (not FastAPI's ``422``
  ``HTTPValidationError``), and every other refusal (401, 403, 404, 409, 413, 429, ...) is problem+json
  too. The document says so with a ``Problem`` schema on the ``default`` response, so every error body
  is checked against it.
* **Links** from each create (``POST /api/v1/models``) to the operations on what it created
  (``GET``/``DELETE /api/v1/models/{name}``, ...), so a stateful client can follow create -> read -> delete ->
  read (and Schemathesis' ``use_after_free`` and ``ensure_resource_availability`` checks have something to
  follow).
* **Timestamps in list filters** accept ISO 8601 or epoch seconds (SageMaker's wire format), see
  :data:`kamado.api.params.Timestamp`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from kamado.security.actions import PUBLIC, action_for

SCHEME = "bearerAuth"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error (RFC 9457 problem+json): `code` is stable, `message` names the object and the fix.",
    "type": "object",
    "required": ["type", "title", "status", "code", "message"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {},
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_PROBLEM_CONTENT = {"application/problem+json": {"schema": _PROBLEM_REF}}


def _error_responses(public: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "400": {"description": "Invalid request: `details` lists each bad field.", "content": _PROBLEM_CONTENT},
        "default": {"description": "Any other error, as problem+json.", "content": _PROBLEM_CONTENT},
    }
    if not public:
        out["401"] = {"description": "No token, or an invalid, expired or revoked one.", "content": _PROBLEM_CONTENT}
        out["403"] = {"description": "The caller's roles do not allow this action.", "content": _PROBLEM_CONTENT}
        out["429"] = {"description": "Too many failed authentications from this address.", "content": _PROBLEM_CONTENT}
    return out


def describe(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with kamado's authentication and error responses added."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A kamado API token (`kmd_<id>_<secret>`); see docs/security.md.",
        }
    }
    doc["security"] = [{SCHEME: []}]
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            route = action_for(method.upper(), path)
            public = route is not None and route.action == PUBLIC
            if public:
                op["security"] = []
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status, response in _error_responses(public).items():
                responses.setdefault(status, response)
    _add_links(doc)
    return doc


def _name_field(collection: str, body: dict[str, Any]) -> str | None:
    """Where a create's new resource name is: ``$request.body#/ModelName`` for ``/models``; the response's
    field when the request may leave it out (``MapRunName``, generated when not given)."""
    names = [k for k in body.get("properties", {}) if k.lower().endswith("name")]
    required = set(body.get("required", []))
    singular = collection.rsplit("/", 1)[-1].removesuffix("s").replace("-", "") + "name"
    for key in names:
        if key.lower().endswith(singular) or key.lower() == "name":
            return f"$request.body#/{key}" if key in required else f"$response.body#/{key}"
    named = [k for k in names if k in required]
    return f"$request.body#/{named[0]}" if len(named) == 1 else None


def _add_links(doc: dict[str, Any]) -> None:
    paths: dict[str, Any] = doc.get("paths", {})
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    for collection, item in paths.items():
        create = item.get("post")
        if create is None or "{" in collection:
            continue
        body = create.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in body:
            body = schemas.get(body["$ref"].rsplit("/", 1)[-1], {})
        field = _name_field(collection, body)
        created = create.get("responses", {}).get("201")
        if field is None or created is None:
            continue
        links = created.setdefault("links", {})
        for path, sub in paths.items():
            if not path.startswith(collection + "/{name}"):
                continue
            for method, op in sub.items():
                if method in _METHODS and "operationId" in op:
                    links[op["operationId"]] = {
                        "operationId": op["operationId"],
                        "parameters": {"name": field},
                    }


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`describe`'s document (built once, on first request) at the app's ``openapi_url``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
