"""problem+json rendering for every error, so clients always get ``{code, message, details}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kamado.core.errors import InvalidSpec, KamadoError

log = logging.getLogger("kamado.api")
PROBLEM = "application/problem+json"


def problem(err: KamadoError) -> JSONResponse:
    return JSONResponse(err.to_problem(), status_code=err.http_status, media_type=PROBLEM)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


#: A body with 50,000 unknown keys has 50,000 errors: listing them all would make the answer the attack.
MAX_VALIDATION_DETAILS = 50


def _validation_details(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    details = []
    for e in errors[:MAX_VALIDATION_DETAILS]:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown field; check its spelling against the API reference (names are case-sensitive)"
        elif e.get("type") == "missing":
            msg = "required field is missing"
        details.append({"field": _field(tuple(e.get("loc", ()))), "message": msg})
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KamadoError)
    async def _kamado(_: Request, exc: KamadoError) -> JSONResponse:
        return problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        details = _validation_details(errors)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        more = f" (the first {len(details)} are listed)" if len(errors) > len(details) else ""
        return problem(InvalidSpec(f"{len(errors)} validation error(s){more}: {summary}", details=details))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        err = KamadoError(str(exc.detail))
        code = {
            400: "ValidationException",
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "PayloadTooLarge",
        }.get(exc.status_code, "HttpError")
        body = {
            **err.to_problem(),
            "type": f"urn:kamado:error:{code}",
            "status": exc.status_code,
            "code": code,
            "title": code,
        }
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM)

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, __: RecursionError) -> JSONResponse:
        return problem(InvalidSpec("The JSON body is nested too deeply; flatten it."))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(KamadoError("Internal error in the kamado server; see its log for details."))
