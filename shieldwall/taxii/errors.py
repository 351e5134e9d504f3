"""TAXII 2.1 error messages (section 3.6.1), the only error body the API sends."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shieldwall.taxii.media import TAXII_21

log = logging.getLogger("shieldwall.taxii")

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
    413: "Request Entity Too Large", 415: "Unsupported Media Type",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
}


class TaxiiError(Exception):
    """An error a TAXII client should see, with the spec's body and status."""

    def __init__(
        self, status: int, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def error_response(status: int, description: str, headers: dict[str, str] | None = None
                   ) -> Response:
    body = {
        "title": _TITLES.get(status, "Error"),
        "description": description,
        "http_status": str(status),
    }
    return Response(orjson.dumps(body), status_code=status, media_type=TAXII_21,
                    headers=headers)


def not_found(what: str) -> TaxiiError:
    """One wording for 'does not exist' and 'you may not see it', so they cannot be told apart."""
    return TaxiiError(404, f"no {what} with this id here")


def install(app: FastAPI) -> None:
    @app.exception_handler(TaxiiError)
    async def _taxii(_: Request, exc: TaxiiError) -> Response:
        return error_response(exc.status, exc.description, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return error_response(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "the server failed on this request; see its log")
