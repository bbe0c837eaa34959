"""Map every failure to JSON ``{"error": {code, message, field?}}`` (API) or an HTML page (web)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ainfluencer.errors import AppError, RateLimited

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "rate_limited",
}


def wants_json(request: Request) -> bool:
    """API paths, and clients that ask for JSON, get JSON errors."""
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def error_response(
    request: Request, status: int, code: str, message: str, field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build the error in the form the caller expects."""
    if wants_json(request):
        body: dict[str, Any] = {"code": code, "message": message}
        if field:
            body["field"] = field
        return JSONResponse({"error": body}, status_code=status, headers=headers)
    templates = getattr(request.app.state, "templates", None)
    if templates is None:
        return HTMLResponse(f"<h1>{status}</h1><p>{message}</p>", status_code=status, headers=headers)
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message, "code": code},
        status_code=status, headers=headers,
    )


def _field_path(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or None


def _validation_message(err: dict[str, Any]) -> tuple[int, str, str, str | None]:
    kind = err.get("type", "")
    field = _field_path(tuple(err.get("loc", ())))
    if kind == "json_invalid":
        return 400, "malformed_json", "The request body is not valid JSON.", None
    if kind == "missing":
        return 422, "invalid", f"'{field}' is required.", field
    if kind == "extra_forbidden":
        return 422, "invalid", f"'{field}' is not a field this endpoint accepts.", field
    msg = err.get("msg", "invalid value")
    return 422, "invalid", f"{field}: {msg}" if field else msg, field


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on the app."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return error_response(request, exc.status_code, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        if not errors:
            return error_response(request, 422, "invalid", "The request is not valid.")
        status, code, message, field = _validation_message(errors[0])
        if request.url.path.startswith("/api/") and code == "invalid" and "json" not in request.headers.get(
            "content-type", "application/json"
        ) and request.method in ("POST", "PUT", "PATCH"):
            return error_response(
                request, 415, "unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."
            )
        return error_response(request, status, code, message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"Nothing at {request.url.path}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return error_response(request, exc.status_code, code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(ModuleNotFoundError)
    async def _missing_extra(request: Request, exc: ModuleNotFoundError) -> Response:
        # An optional dependency is not installed: say which and how to add it, instead of a 500.
        log.warning("optional dependency %r missing for %s %s", exc.name, request.method, request.url.path)
        extra = "diffusers" if exc.name in {"torch", "diffusers", "transformers"} else "media"
        return error_response(
            request, 503, "feature_unavailable",
            f"This feature needs the optional package {exc.name!r}, which is not installed. "
            f"Install it with: pip install -e '.[{extra}]' (or `make run`, which includes the media extra).",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, "internal", "Something went wrong on our side. The error is in the server log."
        )
