"""Request bodies of the interests/scores API checked field by field, and the
OTUS score formula.

Every check collects messages per field, so one 400 names every problem at once. Values come
out ready to store: "" and null both become None, a phone number given as an int becomes its
string, a birthday becomes an ISO date.
"""
from __future__ import annotations

import datetime
import re
from typing import Any

from framework.web.validate import (
    BODY,
    NO_NUL,
    NOT_A_STRING,
    FieldError,
    FieldErrors,
    check_dmy,
    check_int,
    check_keys,
    json_object,
    parse_int,
    today_utc,
    too_long,
    validation_error,
)

MAX_INTERESTS = 50
MAX_INTEREST_LENGTH = 64
MAX_TEXT_LENGTH = 256  # names and email
MAX_AGE_YEARS = 70
PHONE = re.compile(r"7[0-9]{10}")
PHONE_RANGE = range(70000000000, 80000000000)
SCORE_FIELDS = ("phone", "email", "first_name", "last_name", "birthday", "gender")
GENDERS = (0, 1, 2)
# the pairs of which at least one must be complete (OTUS online_score)
PAIRS = (("phone", "email"), ("first_name", "last_name"), ("gender", "birthday"))
PAIR_RULE = ("at least one pair must be complete: phone and email, first_name and last_name, "
             "or gender and birthday")


def interests_body(body: Any, path_id: int | None = None) -> tuple[int, list[str]]:
    """(client_id, interests) from a POST body, or from a PUT body for ``path_id``."""
    errors = FieldErrors()
    fields = object_fields(body, ("client_id", "interests"), path_id, errors, "interests")
    client_id = checked_client_id(fields, path_id, errors)
    interests = checked_interests(fields["interests"], errors) if "interests" in fields else None
    if errors:
        raise validation_error(errors)
    return client_id, interests


def score_body(body: Any, path_id: int | None = None) -> tuple[int, dict[str, Any]]:
    """(client_id, values of SCORE_FIELDS) from a POST body, or a PUT body for ``path_id``."""
    errors = FieldErrors()
    fields = object_fields(body, ("client_id", *SCORE_FIELDS), path_id, errors)
    client_id = checked_client_id(fields, path_id, errors)
    values = {}
    for name in SCORE_FIELDS:
        value = fields.get(name)
        values[name] = None if value is None or value == "" else CHECKS[name](value, errors)
    if not errors and not any(values[a] is not None and values[b] is not None
                              for a, b in PAIRS):
        errors.add(BODY, PAIR_RULE)
    if errors:
        raise validation_error(errors)
    return client_id, values


def object_fields(body: Any, allowed: tuple[str, ...], path_id: int | None,
                  errors: FieldErrors, *required: str) -> dict[str, Any]:
    """The body as a dict; unknown keys, the read-only ``score`` and missing ones are errors.

    client_id is required on POST; on PUT the path gives it.
    """
    body = json_object(body)
    if path_id is None:
        required = ("client_id", *required)
    check_keys(body, frozenset(allowed), frozenset(required), errors, read_only=("score",))
    return body


def checked_client_id(fields: dict[str, Any], path_id: int | None, errors: FieldErrors) -> int:
    """The body's client_id (required on POST, see object_fields); on PUT it may be left out,
    but if given it must equal the path's."""
    if "client_id" not in fields:
        return path_id if path_id is not None else -1
    try:
        value = check_int(fields["client_id"])
    except FieldError as exc:
        errors.add("client_id", str(exc))
        return -1
    if path_id is not None and value != path_id:
        errors.add("client_id", f"must equal the client_id in the path ({path_id})")
    return value


def checked_interests(value: Any, errors: FieldErrors) -> list[str]:
    if not isinstance(value, list):
        errors.add("interests", "must be a list of strings")
        return []
    if len(value) > MAX_INTERESTS:
        errors.add("interests", f"must hold at most {MAX_INTERESTS} items")
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_INTEREST_LENGTH:
            errors.add("interests",
                f"item {index} must be a string of 1 to {MAX_INTEREST_LENGTH} characters")
        elif item in seen:
            errors.add("interests", f"item {index} repeats {item!r}")
        else:
            seen.add(item)
    return value


def checked_phone(value: Any, errors: FieldErrors) -> str | None:
    if type(value) is int and value in PHONE_RANGE:
        return str(value)
    if isinstance(value, str) and PHONE.fullmatch(value):
        return value
    errors.add("phone", "must be 11 digits starting with 7, as a string or a number")
    return None


def checked_email(value: Any, errors: FieldErrors) -> str | None:
    if isinstance(value, str) and "\x00" in value:
        errors.add("email", NO_NUL)
        return None
    if isinstance(value, str) and "@" in value and len(value) <= MAX_TEXT_LENGTH:
        return value
    errors.add("email", f"must be a string containing '@', at most {MAX_TEXT_LENGTH} characters")
    return None


def checked_name(name: str) -> Any:
    def check(value: Any, errors: FieldErrors) -> str | None:
        if type(value) is not str:
            errors.add(name, NOT_A_STRING)
        elif "\x00" in value:
            errors.add(name, NO_NUL)
        elif len(value) > MAX_TEXT_LENGTH:
            errors.add(name, too_long(MAX_TEXT_LENGTH))
        else:
            return value
        return None
    return check


def checked_gender(value: Any, errors: FieldErrors) -> int | None:
    if type(value) is int and value in GENDERS:
        return value
    errors.add("gender", "must be the integer 0 (unknown), 1 (male) or 2 (female)")
    return None


def checked_birthday(value: Any, errors: FieldErrors) -> str | None:
    """A DD.MM.YYYY date from 70 years ago (UTC today) up to today, stored as ISO."""
    try:
        date = check_dmy(value)
    except FieldError as exc:
        errors.add("birthday", str(exc))
        return None
    today = today_utc()
    if not years_before(today, MAX_AGE_YEARS) <= date <= today:
        errors.add("birthday", f"must be within the last {MAX_AGE_YEARS} years, not in the future")
        return None
    return date.isoformat()


CHECKS = {
    "phone": checked_phone, "email": checked_email, "first_name": checked_name("first_name"),
    "last_name": checked_name("last_name"), "gender": checked_gender,
    "birthday": checked_birthday,
}


def years_before(day: datetime.date, years: int) -> datetime.date:
    """The same calendar day ``years`` earlier; 29.02 of a year without one maps to 28.02."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def score(values: dict[str, Any]) -> float:
    """The OTUS ``get_score``: 1.5 per phone, email and gender+birthday, 0.5 for both names.

    Gender 0 ("unknown") is falsy, so it completes the pair rule but earns nothing.
    """
    points = 0.0
    if values["phone"]:
        points += 1.5
    if values["email"]:
        points += 1.5
    if values["birthday"] and values["gender"]:
        points += 1.5
    if values["first_name"] and values["last_name"]:
        points += 0.5
    return points


def client_ids_filter(raw: list[str]) -> list[int]:
    """``?client_ids=1,2,3`` (the parameter may repeat) as a list of ids; anything else 400."""
    ids = []
    for text in raw:
        for part in text.split(","):
            client_id = parse_int(part)
            if client_id is None:
                raise validation_error({"client_ids": [
                    "must be client ids (integers from 0) separated by commas, e.g. 1,2,3"]})
            ids.append(client_id)
    return ids
