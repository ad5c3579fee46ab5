"""JSON Schemas and worked examples of the interests/scores API, for /openapi.json."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.scores import validation

SCORE_COLUMNS = (*validation.SCORE_FIELDS, "score")
CLIENT_ID = {"type": "integer", "format": "int64", "minimum": 0}
INTERESTS = {"type": "array", "maxItems": validation.MAX_INTERESTS, "uniqueItems": True,
             "items": {"type": "string", "minLength": 1,
                       "maxLength": validation.MAX_INTEREST_LENGTH}}
INTERESTS_ITEM = {"type": "object", "required": ["client_id", "interests"],
                  "properties": {"client_id": CLIENT_ID, "interests": INTERESTS}}
TEXT = {"type": "string", "maxLength": validation.MAX_TEXT_LENGTH, "nullable": True}
SCORE_PROPERTIES = {
    "client_id": CLIENT_ID,
    "phone": {"type": "string", "pattern": "^7[0-9]{10}$", "nullable": True,
              "description": "11 digits starting with 7; a JSON number is accepted too"},
    "email": {**TEXT, "pattern": "@", "description": "must contain '@'"},
    "first_name": TEXT,
    "last_name": TEXT,
    "birthday": {"type": "string", "pattern": "^[0-9]{2}\\.[0-9]{2}\\.[0-9]{4}$",
                 "nullable": True, "description": "DD.MM.YYYY, within the last 70 years"},
    "gender": {"type": "integer", "enum": [0, 1, 2], "nullable": True,
               "description": "0 unknown, 1 male, 2 female"},
}


def present(schema: dict[str, Any]) -> dict[str, Any]:
    """A field given a value: "" and null both mean absent."""
    return {**schema, "nullable": False, **({"minLength": 1} if schema["type"] == "string" else {})}


PAIR_RULE = {"anyOf": [{"required": list(pair),
                        "properties": {name: present(SCORE_PROPERTIES[name]) for name in pair}}
                       for pair in validation.PAIRS]}
SCORE_RULES = ("All fields but client_id are optional; \"\" and null mean absent. At least one "
               "pair must be complete: phone+email, first_name+last_name or gender+birthday. "
               "A birthday must be a real date within the last 70 years (UTC), which JSON "
               "Schema cannot say.")
SCORE_BODY = {"type": "object", "additionalProperties": False, "properties": SCORE_PROPERTIES,
              "required": ["client_id"], **PAIR_RULE, "description": SCORE_RULES}
SCORE_REPLACEMENT = {"type": "object", "additionalProperties": False,
                     "properties": SCORE_PROPERTIES, **PAIR_RULE,
                     "description": SCORE_RULES + " client_id may be left out; if given it "
                                                  "must equal the path's."}
SCORE_ITEM = {
    "type": "object", "required": ["client_id", *SCORE_COLUMNS],
    "properties": {**SCORE_PROPERTIES, "score": {
        "type": "number", "minimum": 0, "readOnly": True,
        "description": "1.5 for phone, 1.5 for email, 1.5 for gender (1 or 2) with birthday, "
                       "0.5 for both names"}},
}
INTERESTS_BODY = {**INTERESTS_ITEM, "additionalProperties": False}
INTERESTS_REPLACEMENT = {**INTERESTS_BODY, "required": ["interests"], "description":
                         "client_id may be left out; if given it must equal the path's."}
CLIENT_IDS_QUERY = {"client_ids": {
    "type": "string", "pattern": "^[0-9]+(,[0-9]+)*$",
    "description": "only these clients: ids separated by commas, e.g. 1,2,3"}}

SCORE_EXAMPLE = {"client_id": 1, "phone": "79175002040", "email": "stupnikov@otus.ru",
                 "first_name": "Станислав", "last_name": "Ступников", "birthday": "01.01.1990",
                 "gender": 1}
INTERESTS_EXAMPLE = {"client_id": 1, "interests": ["books", "hi-tech"]}


@dataclass(frozen=True)
class Shapes:
    """What ``mount`` documents for one collection: schemas and a worked example."""
    what: str  # the item, in words
    item: dict[str, Any]
    create: dict[str, Any]  # POST body
    replace: dict[str, Any]  # PUT body
    body_example: dict[str, Any]
    item_example: dict[str, Any]




INTERESTS_SHAPES = Shapes("interests", INTERESTS_ITEM, INTERESTS_BODY, INTERESTS_REPLACEMENT,
                          INTERESTS_EXAMPLE, INTERESTS_EXAMPLE)
SCORE_SHAPES = Shapes("score", SCORE_ITEM, SCORE_BODY, SCORE_REPLACEMENT, SCORE_EXAMPLE,
                      {**SCORE_EXAMPLE, "score": 5.0})
