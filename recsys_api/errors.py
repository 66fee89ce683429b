"""One JSON error shape for every failure, and the handlers that turn every exception into it.

`{"error": {"code": "invalid_events", "message": "...", "details": ...}}` — for the API's own
errors, Litestar's (404 route, 405, 400 malformed JSON or bad parameter, 413), a server that is
down (503 with Retry-After) and, as a last resort, anything unexpected.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from pymongo.errors import ConnectionFailure

from recsys_api.schemas import ErrorBody, ErrorDetail
from recsys_core.events import InvalidEvent

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the API raises on purpose, already carrying its status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ApiError):
    """Details: [{index?, field, reason}] — every problem of every item, so a client fixes all at once."""

    status_code = 422
    code = "invalid_input"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Unavailable(ApiError):
    """A server the request needs (Kafka, MongoDB) did not answer in time: retry later."""

    status_code = 503
    code = "unavailable"


def error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    if status_code == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})}
    return Response(
        ErrorBody(ErrorDetail(code, message, details)),
        status_code=status_code,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _api_error(_: Request, error: ApiError) -> Response[ErrorBody]:
    return error_response(error.status_code, error.code, error.message, error.details)


def _invalid_event(_: Request, error: InvalidEvent) -> Response[ErrorBody]:
    return error_response(422, "invalid_input", str(error), [e.as_dict() for e in error.errors])


def _validation_error(_: Request, error: ValidationException) -> Response[ErrorBody]:
    details = [
        {"field": item.get("key") or "", "reason": item.get("message") or ""}
        for item in (error.extra if isinstance(error.extra, list) else [])
        if isinstance(item, dict)
    ]
    message = error.detail if error.detail and not details else "invalid request parameters or body"
    return error_response(400, "bad_request", message, details or None)


def _http_error(_: Request, error: HTTPException) -> Response[ErrorBody]:
    code = _CODES.get(error.status_code, "error")
    headers = {k: v for k, v in (error.headers or {}).items()}
    return error_response(error.status_code, code, error.detail, error.extra or None, headers)


def _mongo_error(request: Request, error: ConnectionFailure) -> Response[ErrorBody]:
    log.warning("MongoDB failed during %s %s: %s", request.method, request.url.path, error)
    return error_response(503, "store_unavailable", "the serving store (MongoDB) is not answering; retry later")


def _unexpected(request: Request, error: Exception) -> Response[ErrorBody]:
    log.exception("unexpected error during %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "unexpected error; it has been logged")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    InvalidEvent: _invalid_event,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    ConnectionFailure: _mongo_error,  # timeouts and lost connections; any other failure is a bug (500)
    Exception: _unexpected,
}


def documented(*status_codes: int) -> dict[int, Any]:
    """OpenAPI entries for the error answers a route can give, all in the one error shape."""
    from litestar.openapi import ResponseSpec

    descriptions = {
        400: "Malformed JSON or an invalid parameter",
        401: "Missing or wrong X-API-Key (only when the route's keys are set: RECSYS_API_KEYS for writes, "
        "RECSYS_API_READ_KEYS for one shopper's data)",
        404: "Unknown resource",
        413: "Request body too large",
        422: "Invalid input: details list each problem's index, field and reason; nothing was written",
        503: "Kafka or MongoDB did not answer in time; nothing is acknowledged, retry after Retry-After",
    }
    return {code: ResponseSpec(data_container=ErrorBody, description=descriptions[code]) for code in status_codes}
