"""JSON schemas and worked examples of the app's bodies, for the OpenAPI document only.

Validation is hand-written in validation.py (faster on 10,000 citizens, and it checks what a
schema cannot: real dates, mutual relatives); these describe the same rules to readers.
"""
from __future__ import annotations

from typing import Any

from apps.citizens.validation import MAX_STRING
from framework.web.validate import INT64_MAX

ID = {"type": "integer", "minimum": 0, "maximum": INT64_MAX}
PLACE = {"type": "string", "minLength": 1, "maxLength": MAX_STRING,
         "description": "at least one letter or digit"}
CITIZEN_FIELDS: dict[str, Any] = {
    "citizen_id": ID, "town": PLACE, "street": PLACE, "building": PLACE, "apartment": ID,
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_STRING},
    "birth_date": {"type": "string", "pattern": r"^[0-9]{2}\.[0-9]{2}\.[0-9]{4}$",
                   "description": "DD.MM.YYYY, a real date, not after today (UTC)"},
    "gender": {"type": "string", "enum": ["male", "female"]},
    "relatives": {"type": "array", "items": ID, "uniqueItems": True,
                  "description": "citizen_ids of the same import; mutual"},
}
CITIZEN = {"type": "object", "properties": CITIZEN_FIELDS, "required": list(CITIZEN_FIELDS),
           "additionalProperties": False}
PATCHABLE_FIELDS = {k: v for k, v in CITIZEN_FIELDS.items() if k != "citizen_id"}


def data(schema: dict[str, Any]) -> dict[str, Any]:
    """The success envelope around ``schema``."""
    return {"type": "object", "properties": {"data": schema}, "required": ["data"]}


IMPORT_REQUEST = {"type": "object", "properties": {"citizens": {"type": "array", "items": CITIZEN}},
                  "required": ["citizens"], "additionalProperties": False}
PATCH_REQUEST = {"type": "object", "properties": PATCHABLE_FIELDS, "minProperties": 1,
                 "additionalProperties": False}
IMPORT_CREATED = data({"type": "object", "properties": {"import_id": {"type": "integer"}}})
ONE_CITIZEN = data(CITIZEN)
CITIZEN_LIST = data({"type": "array", "items": CITIZEN})
PRESENTS = {"type": "array", "items": {"type": "object", "properties": {
    "citizen_id": ID, "presents": {"type": "integer", "minimum": 1}}}}
BIRTHDAYS = data({"type": "object", "properties": {str(m): PRESENTS for m in range(1, 13)},
                  "required": [str(m) for m in range(1, 13)]})
PERCENTILES = data({"type": "array", "items": {"type": "object", "properties": {
    "town": {"type": "string"}, "p50": {"type": "number"}, "p75": {"type": "number"},
    "p99": {"type": "number"}}}})
STATUS = data({"type": "object", "properties": {"status": {"type": "string"}}})
GENERATE_QUERY = {
    "relations": {"type": "integer", "minimum": 0,
                  "description": "mutual pairs; default min(1000, count // 2)"},
    "seed": {"type": "integer", "minimum": 0, "maximum": INT64_MAX,
             "description": "for reproducible output"},
    "worst": {"type": "integer", "enum": [0, 1],
              "description": "1: every string 256 × ё, ids near 2^31−1"},
}
GENERATED = {"type": "object", "properties": {"citizens": {"type": "array", "items": CITIZEN}}}

# worked examples and texts of the operations
CITIZEN_EXAMPLE = {
    "citizen_id": 1, "town": "Москва", "street": "Льва Толстого", "building": "16к7стр5",
    "apartment": 7, "name": "Иванов Иван Иванович", "birth_date": "26.12.1986",
    "gender": "male", "relatives": []}
IMPORT_PATH = {"import_id": 1}
CITIZEN_PATH = {**IMPORT_PATH, "citizen_id": 1}
NO_IMPORT = {404: "import 1 not found"}
NO_CITIZEN = {404: "citizen 1 not found in import 1"}
HELPERS_OFF = {404: "the citizens helpers are disabled (citizens_helpers is false)"}
IMPORT_RULES = ("Beyond the schema: birth_date must be a real date not after today (UTC), and "
                "relatives must be citizen_ids of the same import listed on both sides "
                "(mutual), never the citizen itself.")
PATCH_RULES = ("Beyond the schema: birth_date must be a real date not after today (UTC), and "
               "relatives must be citizen_ids of the same import, never the citizen itself; "
               "the other side of each relation changes too.")
BIRTHDAYS_EXAMPLE = {str(month): [{"citizen_id": 2, "presents": 1}] if month == 12 else []
                     for month in range(1, 13)}
PERCENTILES_EXAMPLE = [{"town": "Москва", "p50": 37.0, "p75": 37.0, "p99": 37.0}]
