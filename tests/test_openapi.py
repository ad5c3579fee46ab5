"""The OpenAPI document of all five apps, built in-process from the route table: every
operation has a worked example that its own schemas accept, every status it can answer is
declared, and the points where the document once disagreed with the server (issue 18) stay
fixed. test_schemathesis.py holds the same document to a running server.
"""
from __future__ import annotations

from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from framework.server.config import CORE_SETTINGS
from framework.web import openapi
from framework.web.app import load_app_modules
from framework.web.sniff import MEDIA_TYPES, detect_mime
from handlers.api import core

APPS = CORE_SETTINGS["apps"][0]
SETTINGS = {"sales_max_cnt": 1000}


def build(settings: dict[str, Any] = SETTINGS) -> dict[str, Any]:
    return openapi.document([core, *(m.app for m in load_app_modules(APPS))], settings)


DOC = build()
OPERATIONS = [(method.upper(), path, op) for path, item in DOC["paths"].items()
              for method, op in item.items()]


def resolved(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return DOC["components"]["schemas"][schema["$ref"].rpartition("/")[2]]
    return schema


def assert_valid(value: Any, schema: dict[str, Any]) -> None:
    errors = [e.message for e in OAS30Validator(resolved(schema)).iter_errors(value)]
    assert not errors, (value, errors)


def success(op: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return next((code, answer) for code, answer in op["responses"].items() if code < "300")


@pytest.mark.parametrize("method, path, op", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_operation_has_an_example_its_schemas_accept(method: str, path: str,
                                                            op: dict[str, Any]) -> None:
    for param in op["parameters"]:
        if param["required"]:
            assert "example" in param, param["name"]
        if "example" in param:
            assert_valid(param["example"], param["schema"])
    if "requestBody" in op:
        content = op["requestBody"]["content"]
        assert any("example" in media for media in content.values())
        for media_type, media in content.items():
            if "example" not in media:
                continue
            example, schema = media["example"], media["schema"]
            if media_type == "multipart/form-data":  # a file part's example is its text
                binary = {name for name, prop in schema["properties"].items()
                          if prop.get("format") == "binary"}
                assert all(isinstance(example[name], str) for name in binary & set(example))
            assert_valid(example, schema)
    code, answer = success(op)
    if code == "204":
        assert "content" not in answer
    else:
        examples = [media["example"] for media in answer["content"].values() if "example" in media]
        assert examples, "no example response"
        for media in answer["content"].values():
            if "example" in media:
                assert_valid(media["example"], media["schema"])
    for code, answer in op["responses"].items():  # every error answer shows the envelope
        if code >= "400":
            example = answer["content"]["application/json"]["example"]
            assert_valid(example, answer["content"]["application/json"]["schema"])


@pytest.mark.parametrize("method, path, op", OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_status_is_declared_and_nothing_is_left_to_default(method: str, path: str,
                                                                 op: dict[str, Any]) -> None:
    codes = set(op["responses"])
    assert "default" not in codes
    if "{" in path:
        assert "404" in codes
    if "requestBody" in op:
        assert {"400", "413", "415"} <= codes
    if "security" in op:
        assert {"401", "403"} <= codes
        assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True


def test_admin_routes_are_the_destructive_helpers() -> None:
    admin = {(method, path) for method, path, op in OPERATIONS if "security" in op}
    assert admin == {(m, p) for p in ("/clear/", "/create/") for m in ("GET", "POST")} | {
        (m, "/make_citizens_dust") for m in ("GET", "POST", "DELETE")}
    assert DOC["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"


def test_media_routes_document_the_detected_types() -> None:
    uploads = DOC["paths"]["/media/{name}"]["get"]["responses"]
    memes = DOC["paths"]["/media/memes/{name}"]["get"]["responses"]
    assert set(memes["200"]["content"]) == {"image/png", "image/jpeg"}
    types = set(uploads["200"]["content"])
    assert {"image/png", "text/plain; charset=utf-8", "text/html", "application/pdf",
            "application/octet-stream"} <= types
    assert len(types) == len(MEDIA_TYPES)
    assert {"206", "304", "404", "416"} <= set(uploads)
    assert uploads["200"]["headers"]["X-Content-Type-Options"]["required"] is True


@pytest.mark.parametrize("head", [
    b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"II*\x00", b"%PDF-1.7", b"PK\x03\x04",
    b"\x1f\x8b\x08", b"OggS\x00", b"\x00\x00\x00\x18ftypmp42", b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WAVEfmt ", b"ID3\x03", b"BM" + bytes(12) + b"\x28" + bytes(20),
    b"<!DOCTYPE html>", b"<svg xmlns='x'>", b"<?xml version='1.0'?><a/>", b"plain words",
    b"\x00\x01\x02", b""])
def test_every_detected_type_is_documented(head: bytes) -> None:
    assert detect_mime(head) in MEDIA_TYPES


def test_upload_body_is_a_form_with_a_required_binary_file() -> None:
    for path in ("/upload/", "/api/v1.0/upload/"):
        form = DOC["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert form["schema"]["required"] == ["file"]
        assert form["schema"]["properties"]["file"] == {
            "type": "string", "format": "binary",
            "description": "one non-empty file part with a file name"}


def test_client_id_is_required_where_the_server_requires_it() -> None:
    def body(path: str, method: str) -> dict[str, Any]:
        return DOC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    for collection in ("/api/scores", "/api/interests"):
        assert "client_id" in body(collection, "post")["required"]
        assert "client_id" not in body(collection + "/{client_id}", "put").get("required", [])
    # the pair rule is a schema too: one of three pairs of present fields
    pairs = [alternative["required"] for alternative in body("/api/scores", "post")["anyOf"]]
    assert pairs == [["phone", "email"], ["first_name", "last_name"], ["gender", "birthday"]]


@pytest.mark.parametrize("highest", [1000, 5])
def test_sales_bounds_come_from_the_settings(highest: int) -> None:
    paths = build({"sales_max_cnt": highest})["paths"]
    for path in ("/stores/top/", "/items/top/"):
        cnt = next(p for p in paths[path]["get"]["parameters"] if p["name"] == "cnt")
        assert cnt["schema"] == {"type": "integer", "minimum": 1, "maximum": highest,
                                 "default": 10}
    seed = paths["/create/"]["get"]["parameters"][0]
    assert seed["schema"] == {"type": "integer", "minimum": 0, "maximum": 2 ** 63 - 1}
