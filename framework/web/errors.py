"""Errors as values with a status: ``ApiError`` is raised where a problem is found, and
``error_response`` renders every one in the one envelope of every app."""
from __future__ import annotations

import re

from framework.server.protocol import REASONS
from framework.web.responses import Response, json_response

__all__ = ["ERROR_CODES", "ApiError", "error_response"]

# the envelope's error code: the reason phrase in snake case ("not_found"), from the one reason
# table; two codes keep the names API clients know from before RFC 9110 renamed the phrases
ERROR_CODES = {status: re.sub(r"[^a-z]+", "_", reason.lower()).strip("_")
               for status, reason in REASONS.items()}
ERROR_CODES.update({413: "payload_too_large", 422: "unprocessable_entity"})


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
