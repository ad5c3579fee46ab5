"""Request bodies of the interests/scores API checked field by field (API.md §E.2), and the
OTUS score formula.

Every check collects messages per field, so one 400 names every problem at once. Values come
out ready to store: "" and null both become None, a phone number given as an int becomes its
string, a birthday becomes an ISO date.
"""
from __future__ import annotations

import datetime
import re
from typing import Any

from framework.web.app import validation_error
from framework.web.validate import FieldErrors as Errors

INT64_MAX = 2 ** 63 - 1
MAX_INTERESTS = 50
MAX_INTEREST_LENGTH = 64
MAX_TEXT_LENGTH = 256  # names and email
MAX_AGE_YEARS = 70
PHONE = re.compile(r"7[0-9]{10}")
PHONE_RANGE = range(70000000000, 80000000000)
DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
SCORE_FIELDS = ("phone", "email", "first_name", "last_name", "birthday", "gender")
GENDERS = (0, 1, 2)
# the pairs of which at least one must be complete (OTUS online_score)
PAIRS = (("phone", "email"), ("first_name", "last_name"), ("gender", "birthday"))
PAIR_RULE = ("at least one pair must be complete: phone and email, first_name and last_name, "
             "or gender and birthday")


def interests_body(body: Any, path_id: int | None = None) -> tuple[int, list[str]]:
    """(client_id, interests) from a POST body, or from a PUT body for ``path_id``."""
    errors = Errors()
    fields = object_fields(body, ("client_id", "interests"), errors)
    client_id = checked_client_id(fields, path_id, errors)
    interests = None
    if "interests" not in fields:
        add(errors, "interests", "this field is required")
    else:
        interests = checked_interests(fields["interests"], errors)
    if errors:
        raise validation_error(errors)
    return client_id, interests


def score_body(body: Any, path_id: int | None = None) -> tuple[int, dict[str, Any]]:
    """(client_id, values of SCORE_FIELDS) from a POST body, or a PUT body for ``path_id``."""
    errors = Errors()
    fields = object_fields(body, ("client_id", *SCORE_FIELDS), errors)
    client_id = checked_client_id(fields, path_id, errors)
    values = {}
    for name in SCORE_FIELDS:
        value = fields.get(name)
        values[name] = None if value is None or value == "" else CHECKS[name](value, errors)
    if not errors and not any(values[a] is not None and values[b] is not None
                              for a, b in PAIRS):
        add(errors, "non_field_errors", PAIR_RULE)
    if errors:
        raise validation_error(errors)
    return client_id, values


def object_fields(body: Any, allowed: tuple[str, ...], errors: Errors) -> dict[str, Any]:
    """The body as a dict; unknown keys (and a read-only ``score``) are errors."""
    if not isinstance(body, dict):  # nothing else can be said about it
        raise validation_error({"non_field_errors": ["the body must be a JSON object"]})
    for key in body:
        if key == "score":
            add(errors, key, "read-only: the score is computed by the server")
        elif key not in allowed:
            add(errors, key, "unknown field")
    return body


def checked_client_id(fields: dict[str, Any], path_id: int | None, errors: Errors) -> int:
    """The body's client_id: required on POST; on PUT optional but equal to the path's."""
    if "client_id" not in fields:
        if path_id is None:
            add(errors, "client_id", "this field is required")
        return path_id if path_id is not None else -1
    value = fields["client_id"]
    if type(value) is not int or not 0 <= value <= INT64_MAX:
        add(errors, "client_id", f"must be an integer from 0 to {INT64_MAX}")
    elif path_id is not None and value != path_id:
        add(errors, "client_id", f"must equal the client_id in the path ({path_id})")
    return value


def checked_interests(value: Any, errors: Errors) -> list[str]:
    if not isinstance(value, list):
        add(errors, "interests", "must be a list of strings")
        return []
    if len(value) > MAX_INTERESTS:
        add(errors, "interests", f"must hold at most {MAX_INTERESTS} items")
    seen: set[str] = set()
    for index, item in enumerate(value):
        if not isinstance(item, str) or not 1 <= len(item) <= MAX_INTEREST_LENGTH:
            add(errors, "interests",
                f"item {index} must be a string of 1 to {MAX_INTEREST_LENGTH} characters")
        elif item in seen:
            add(errors, "interests", f"item {index} repeats {item!r}")
        else:
            seen.add(item)
    return value


def checked_phone(value: Any, errors: Errors) -> str | None:
    if type(value) is int and value in PHONE_RANGE:
        return str(value)
    if isinstance(value, str) and PHONE.fullmatch(value):
        return value
    add(errors, "phone", "must be 11 digits starting with 7, as a string or a number")
    return None


def checked_email(value: Any, errors: Errors) -> str | None:
    if isinstance(value, str) and "@" in value and len(value) <= MAX_TEXT_LENGTH:
        return value
    add(errors, "email", f"must be a string containing '@', at most {MAX_TEXT_LENGTH} characters")
    return None


def checked_name(name: str) -> Any:
    def check(value: Any, errors: Errors) -> str | None:
        if isinstance(value, str) and len(value) <= MAX_TEXT_LENGTH:
            return value
        add(errors, name, f"must be a string of at most {MAX_TEXT_LENGTH} characters")
        return None
    return check


def checked_gender(value: Any, errors: Errors) -> int | None:
    if type(value) is int and value in GENDERS:
        return value
    add(errors, "gender", "must be the integer 0 (unknown), 1 (male) or 2 (female)")
    return None


def checked_birthday(value: Any, errors: Errors) -> str | None:
    """A DD.MM.YYYY date from 70 years ago (UTC today) up to today, stored as ISO."""
    date = parse_date(value) if isinstance(value, str) else None
    if date is None:
        add(errors, "birthday", "must be a real date written DD.MM.YYYY")
        return None
    today = today_utc()
    if not years_before(today, MAX_AGE_YEARS) <= date <= today:
        add(errors, "birthday", f"must be within the last {MAX_AGE_YEARS} years, not in the future")
        return None
    return date.isoformat()


CHECKS = {
    "phone": checked_phone, "email": checked_email, "first_name": checked_name("first_name"),
    "last_name": checked_name("last_name"), "gender": checked_gender,
    "birthday": checked_birthday,
}


def parse_date(text: str) -> datetime.date | None:
    m = DATE.fullmatch(text)
    if m is None:
        return None
    day, month, year = (int(part) for part in m.groups())
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def today_utc() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


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
            digits = part.lstrip("0") or "0"
            # the length test keeps int() cheap on absurdly long numbers
            if not (part.isascii() and part.isdigit()) or len(digits) > len(str(INT64_MAX)) \
                    or int(digits) > INT64_MAX:
                raise validation_error({"client_ids": [
                    "must be client ids (integers from 0) separated by commas, e.g. 1,2,3"]})
            ids.append(int(digits))
    return ids


def add(errors: Errors, field: str, message: str) -> None:
    errors.add(field, message)
