"""Responses as apps build them: the server's ``Response``, and JSON bodies."""
from __future__ import annotations

import json
from typing import Any

from framework.server.messages import Response, http_date, parse_http_date

__all__ = ["JSON_TYPE_FIELD", "Response", "encode_json", "http_date", "json_response",
           "parse_http_date"]



def not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# One encoder for every response. json.dumps builds a new JSONEncoder per call for these
# options, and JSONEncoder.encode a new C encoder per call; this is the C encoder, made once
# (a third of the cost for a small answer). allow_nan=False: NaN and Infinity are not JSON,
# and a handler returning one is a bug (500). There are no circular-reference markers: a
# circular structure, another bug, ends in RecursionError, also a 500.
_c_encoder = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, not_serializable, json.encoder.encode_basestring, None, ":", ",", False, False, False)
if _c_encoder is not None:
    def encode_json(data: Any) -> str:
        return "".join(_c_encoder(data, 0))
else:  # an interpreter without the _json accelerator
    encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                   allow_nan=False).encode
JSON_TYPE_FIELD = b"Content-Type: application/json; charset=utf-8\r\n"


def json_response(data: Any, status: int = 200,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    response = Response(status, encode_json(data).encode("utf-8"), headers)
    response.raw = JSON_TYPE_FIELD
    return response
