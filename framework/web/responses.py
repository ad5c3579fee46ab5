"""Responses as apps build them: the server's ``Response``, and JSON bodies."""
from __future__ import annotations

import json
from typing import Any

from framework.server.messages import Response, http_date, parse_http_date

__all__ = ["JSON_TYPE_FIELD", "Response", "encode_json", "http_date", "json_response",
           "parse_http_date"]

# one encoder for every response: json.dumps would build a new one per call for these options;
# allow_nan=False: NaN and Infinity are not JSON, and a handler returning one is a bug (500)
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
JSON_TYPE_FIELD = b"Content-Type: application/json; charset=utf-8\r\n"


def json_response(data: Any, status: int = 200,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    response = Response(status, encode_json(data).encode("utf-8"), headers)
    response.raw = JSON_TYPE_FIELD
    return response
