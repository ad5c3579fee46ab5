"""Errors as values with a status: ``ApiError`` is raised where a problem is found, and
``error_response`` renders every one in the one envelope of every app."""
from __future__ import annotations

from framework.web.responses import Response, json_response

__all__ = ["ERROR_CODES", "ApiError", "error_response"]

ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    416: "range_not_satisfiable", 417: "expectation_failed", 422: "unprocessable_entity",
    429: "too_many_requests", 431: "request_header_fields_too_large",
    500: "internal_server_error", 501: "not_implemented", 503: "service_unavailable",
    505: "http_version_not_supported",
}


class ApiError(Exception):
    """An answer other than success: status, message, per-field messages, extra headers."""

    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}
        self.headers = headers or []

    def response(self) -> Response:
        return error_response(self.status, self.message, self.fields, self.headers)


def error_response(status: int, message: str, fields: dict[str, list[str]] | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    """``{"error": {"code", "message", "fields"}}``: code is the status name in snake case,
    fields maps a field path to its messages."""
    body = {"error": {"code": ERROR_CODES.get(status, f"error_{status}"), "message": message,
                      "fields": fields or {}}}
    return json_response(body, status, list(headers or []))
