"""Validation of imports and citizen patches, done in Python before any SQL.

Every check returns the value to store or raises ``FieldError``; problems are collected per
field path (``citizens[3].town``) and raised together as one 400, so a rejected request never
opens a transaction. The rules are shared by POST and PATCH through ``field_checks``.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from framework.web.validate import (
    BEAT_EVERY,
    BODY,
    INT64_MAX,
    NO_NUL,
    NOT_A_STRING,
    NOT_AN_OBJECT,
    FieldError,
    FieldErrors,
    at_least_one,
    beat,
    check_dmy,
    check_int,
    check_keys,
    json_object,
    today_utc,
    too_long,
    validation_error,
)

INT_ONLY = {int}
EMPTY: frozenset[int] = frozenset()
MAX_STRING = 256
FIELDS = ("citizen_id", "town", "street", "building", "apartment", "name", "birth_date",
          "gender", "relatives")
FIELD_SET = frozenset(FIELDS)
PATCHABLE = FIELD_SET - {"citizen_id"}
IMPORT_KEYS = frozenset({"citizens"})
GENDERS = ("male", "female")
# [^\W_] is exactly str.isalnum() for one character (sre's "word" is isalnum or "_"),
# checked over every code point; a search stops at the first hit, unlike a generator.
LETTER_OR_DIGIT = re.compile(r"[^\W_]")


def check_id(value: Any) -> int:
    return check_int(value)


def check_place(value: Any) -> str:
    """town, street, building: 1..256 characters, at least one a letter or digit."""
    if type(value) is not str:
        raise FieldError(NOT_A_STRING)
    if "\x00" in value:
        raise FieldError(NO_NUL)
    if len(value) > MAX_STRING:
        raise FieldError(too_long(MAX_STRING))
    if LETTER_OR_DIGIT.search(value) is None:
        raise FieldError("must contain at least one letter or digit")
    return value


def check_name(value: Any) -> str:
    if type(value) is not str:
        raise FieldError(NOT_A_STRING)
    if not value:
        raise FieldError("must not be empty")
    if "\x00" in value:
        raise FieldError(NO_NUL)
    if len(value) > MAX_STRING:
        raise FieldError(too_long(MAX_STRING))
    return value


def check_gender(value: Any) -> str:
    if type(value) is not str or value not in GENDERS:
        raise FieldError("must be 'male' or 'female'")
    return value


def check_birth_date(value: Any, today: date) -> str:
    """DD.MM.YYYY, a real calendar date, not after today (UTC); stored as ISO YYYY-MM-DD."""
    born = check_dmy(value)
    if born > today:
        raise FieldError("must not be in the future (UTC)")
    return born.isoformat()


def check_relatives(value: Any) -> list[int]:
    if type(value) is not list:
        raise FieldError("must be a list of citizen ids")
    # whole-list checks run in C: a 10,000-citizen import may carry 16 million ids
    if value and not (set(map(type, value)) == INT_ONLY
                      and min(value) >= 0 and max(value) <= INT64_MAX):
        for item in value:
            check_id(item)  # finds the offending item for the message
    if len(set(value)) != len(value):
        raise FieldError("must not repeat a citizen id")
    return value


def field_checks(today: date) -> dict[str, Callable[[Any], Any]]:
    """Field name -> check, with "today" fixed once per request."""
    return {
        "citizen_id": check_id, "town": check_place, "street": check_place,
        "building": check_place, "apartment": check_id, "name": check_name,
        "birth_date": partial(check_birth_date, today=today), "gender": check_gender,
        "relatives": check_relatives,
    }


def check_object(obj: Any, allowed: frozenset[str], required: frozenset[str],
                 checks: dict[str, Callable[[Any], Any]], prefix: str,
                 errors: FieldErrors) -> dict[str, Any] | None:
    """The checked values of one JSON object, or None after noting its problems in ``errors``."""
    if type(obj) is not dict:
        errors[prefix or BODY] = [NOT_AN_OBJECT]
        return None
    ok = check_keys(obj, allowed, required, errors, prefix, read_only=FIELD_SET)
    values = {}
    for key, value in obj.items() if ok else ((k, v) for k, v in obj.items() if k in allowed):
        try:
            values[key] = checks[key](value)
        except FieldError as exc:
            errors[prefix + key] = [str(exc)]
            ok = False
    return values if ok else None


def validate_import(body: Any) -> list[dict[str, Any]]:
    """The citizens of a POST /imports body, every rule checked, or a 400 listing the problems."""
    body = json_object(body)
    errors = FieldErrors()
    if not check_keys(body, IMPORT_KEYS, IMPORT_KEYS, errors):
        raise validation_error(errors)
    items = body["citizens"]
    if type(items) is not list:
        raise validation_error({"citizens": ["must be a list of citizens"]})
    checks = field_checks(today_utc())
    citizens = []
    relatives_of: dict[int, set[int]] = {}
    for index, item in enumerate(items):
        if not index % BEAT_EVERY:
            beat()
        prefix = f"citizens[{index}]."
        citizen = check_object(item, FIELD_SET, FIELD_SET, checks, prefix, errors)
        if citizen is None:
            continue
        if citizen["citizen_id"] in relatives_of:
            errors[prefix + "citizen_id"] = [f"duplicate citizen_id {citizen['citizen_id']}"]
            continue
        relatives_of[citizen["citizen_id"]] = set(citizen["relatives"])
        citizens.append(citizen)
    if not errors:
        check_mutual(citizens, relatives_of, errors)
    if errors:
        raise validation_error(errors)
    return citizens


def check_mutual(citizens: list[dict[str, Any]], relatives_of: dict[int, set[int]],
                 errors: FieldErrors) -> None:
    """Every relative exists in the import and lists the citizen back."""
    get = relatives_of.get
    for index, citizen in enumerate(citizens):
        if not index % BEAT_EVERY:
            beat()
        cid = citizen["citizen_id"]
        # the common case in one comprehension; the messages only for a citizen that fails
        if not [r for r in citizen["relatives"] if cid not in get(r, EMPTY)]:
            continue
        for relative in citizen["relatives"]:
            back = relatives_of.get(relative)
            if back is None:
                problem = f"citizen {relative} is not in this import"
            elif cid not in back:
                problem = f"citizen {relative} does not list {cid} as a relative"
            else:
                continue
            errors.add(f"citizens[{index}].relatives", problem)


def validate_patch(body: Any) -> dict[str, Any]:
    """The fields of a PATCH body (at least one, citizen_id excluded), or a 400."""
    errors = FieldErrors()
    values = check_object(body, PATCHABLE, frozenset(), field_checks(today_utc()), "", errors)
    if values is not None and not values:
        errors[BODY] = [at_least_one(PATCHABLE)]
    if errors:
        raise validation_error(errors)
    return values
