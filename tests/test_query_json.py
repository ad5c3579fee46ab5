"""Query strings and JSON bodies as apps receive them: our own percent-decoding and query
parser, and the strict JSON rules of API.md §1.3 (every problem a 400, never a 500)."""
from __future__ import annotations

import codecs
import json

import pytest

from framework.server.protocol import Request
from framework.web.app import ApiError, ApiRequest, parse_json
from framework.web.urls import (
    build_query,
    normalize_path,
    parse_query,
    percent_decode,
    percent_encode,
)

# -- query strings -------------------------------------------------------------------------

QUERIES = [
    ("", {}),
    ("a=1", {"a": ["1"]}),
    ("a=1&b=2&a=3", {"a": ["1", "3"], "b": ["2"]}),  # repeated keys keep every value, in order
    ("q=x+y", {"q": ["x y"]}),  # '+' is a space in a query (form encoding)
    ("q=x%2By", {"q": ["x+y"]}),  # ...and an escaped '+' is a plus
    ("q=%20%25%26%3D", {"q": [" %&="]}),
    ("q=%d0%ba%D0%BE%d1%82", {"q": ["кот"]}),  # escapes are UTF-8, hex in either case
    ("a+b=c", {"a b": ["c"]}),  # keys are decoded too
    ("client_ids=1,2,3", {"client_ids": ["1,2,3"]}),
    ("flag", {"flag": [""]}),  # no '=': the empty value
    ("a=", {"a": [""]}),
    ("=x", {"": ["x"]}),
    ("a=1&&b=2&", {"a": ["1"], "b": ["2"]}),  # empty pieces are skipped
    ("a=b=c", {"a": ["b=c"]}),  # only the first '=' separates
]


@pytest.mark.parametrize("query, expected", QUERIES)
def test_parse_query(query, expected):
    assert parse_query(query) == expected


BAD_QUERIES = [
    "a=%",  # '%' at the end
    "a=%4",  # one hex digit
    "a=%zz",  # not hex
    "a=%G1",
    "%=1",  # in a key
    "a=%FF",  # a byte that is not UTF-8
    "a=%C3",  # a truncated UTF-8 sequence
    "a=%ED%A0%80",  # an encoded surrogate is not UTF-8 either
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_parse_query_refuses(query):
    with pytest.raises(ValueError):
        parse_query(query)


def test_percent_decode_keeps_plus_in_paths():
    assert percent_decode("/a+b%20c") == b"/a+b c"
    assert percent_decode("/a+b", plus_is_space=True) == b"/a b"
    assert percent_decode("/plain") == b"/plain"


def test_percent_encode_and_build_query_round_trip():
    params = {"client_ids": ["1,2"], "q": ["a b&c=d+e/ф"], "page": ["2"]}
    query = build_query(params)
    assert query == "client_ids=1,2&q=a%20b%26c%3Dd%2Be/%D1%84&page=2"
    assert parse_query(query) == params
    assert percent_encode("/a b/ф") == "/a%20b/%D1%84"


NORMALIZED = [
    ("/api/ping", "/api/ping"),
    ("/api/%70ing", "/api/ping"),  # unreserved: decoded
    ("/%7euser/%2D%2e%5F", "/~user/-._"),
    ("/a%2Fb", "/a%2Fb"),  # reserved: kept, so segments do not change
    ("/a%20b", "/a%20b"),
    ("/a%zzb%", "/a%zzb%"),  # malformed escapes are left for the next parser to refuse
]


@pytest.mark.parametrize("path, expected", NORMALIZED)
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


def api_request(target: str = "/x", body: bytes = b"") -> ApiRequest:
    raw = Request("POST", target, "HTTP/1.1", {"host": "h"})
    raw.body = body
    return ApiRequest(raw, {}, {})


def test_request_query_and_arg():
    req = api_request("/x?a=1&a=2&b=%C3%A9")
    assert req.query == {"a": ["1", "2"], "b": ["é"]}
    assert req.arg("a") == "2"  # the last value wins
    assert req.arg("missing", "default") == "default"


def test_malformed_query_is_a_400():
    with pytest.raises(ApiError) as info:
        _ = api_request("/x?a=%zz").query
    assert info.value.status == 400
    assert "query" in info.value.fields


# -- strict JSON ---------------------------------------------------------------------------

VALID_JSON = [
    (b'{"a": 1}', {"a": 1}),
    (b'[1, 2.5, "x", null, true, false]', [1, 2.5, "x", None, True, False]),
    (b'"\\ud83d\\ude00"', "\U0001F600"),  # a surrogate pair is one valid character
    ('{"name": "Мария"}'.encode(), {"name": "Мария"}),
    (codecs.BOM_UTF8 + b'{"a": 1}', {"a": 1}),  # one leading BOM is stripped
    (b' \n{"a": 1}\n ', {"a": 1}),
    (b'{"a": {"b": 1}, "c": {"b": 2}}', {"a": {"b": 1}, "c": {"b": 2}}),  # same key, two objects
    (b"12345678901234567890123", 12345678901234567890123),  # integers stay exact
    (b"1e308", 1e308),
    (b"[" * 200 + b"]" * 200, json.loads("[" * 200 + "]" * 200)),  # nesting within limits
]


@pytest.mark.parametrize("body, expected", VALID_JSON)
def test_valid_json(body, expected):
    assert parse_json(body) == expected


def test_integers_and_booleans_keep_their_types():
    value = parse_json(b'{"int": 1, "true": true, "false": false, "float": 1.0}')
    assert type(value["int"]) is int
    assert type(value["true"]) is bool and type(value["false"]) is bool
    assert type(value["float"]) is float


INVALID_JSON = [
    (b"", "empty"),
    (b"  \r\n ", "empty"),
    (b"NaN", "NaN"),
    (b'{"a": NaN}', "NaN"),
    (b'{"a": Infinity}', "Infinity"),
    (b'[-Infinity]', "Infinity"),
    (b"1e400", "out of range"),  # would silently become infinity
    (b'{"a": 1, "a": 2}', "duplicate"),
    (b'{"x": {"a": 1, "b": 2, "a": 1}}', "duplicate"),  # nested objects too
    (b'"\\ud800"', "surrogate"),  # a lone high surrogate
    (b'"\\udc00"', "surrogate"),  # a lone low surrogate
    (b'{"\\uDBFF": 1}', "surrogate"),  # in a key, upper-case hex
    (b'["ok", {"a": ["\\ud83d"]}]', "surrogate"),  # deep inside
    (b'"\\ude00\\ud83d"', "surrogate"),  # a pair in the wrong order
    (b"[" * 100000 + b"]" * 100000, "nested"),
    (b'{"a": ' * 50000 + b"1" + b"}" * 50000, "nested"),
    (codecs.BOM_UTF8 * 2 + b"{}", "malformed"),  # only one BOM is stripped
    (b'{"a": "\xff"}', "UTF-8"),  # invalid UTF-8
    (b'{"a": "\xed\xa0\x80"}', "UTF-8"),  # a raw (CESU) surrogate is not UTF-8
    (codecs.BOM_UTF16_LE + '{"a": 1}'.encode("utf-16-le"), "UTF-8"),
    (b'{"a": 1,}', "malformed"),  # trailing comma
    (b"{'a': 1}", "malformed"),
    (b'{"a": 1} {"b": 2}', "malformed"),  # two documents
    (b'{"a": "line\nbreak"}', "malformed"),  # a raw control character in a string
    (b"1" * 5000, "malformed"),  # past Python's int digit limit: a 400, not a crash
]


@pytest.mark.parametrize("body, reason", INVALID_JSON)
def test_invalid_json_is_a_400(body, reason):
    with pytest.raises(ApiError) as info:
        parse_json(body)
    assert info.value.status == 400
    assert reason.lower() in info.value.message.lower()


def test_request_json_is_parsed_once_from_the_body():
    req = api_request(body=b'{"a": [1, 2]}')
    assert req.json() == {"a": [1, 2]}
    assert req.json() is req.json()
