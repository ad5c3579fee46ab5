"""The validation kit every app builds its rules on: field errors, integers, ids, dates, times.

Problems are collected per field path (``citizens[3].town``) in a bounded ``FieldErrors`` and
raised together as one 400 (``validation_error``), so a rejected request never reaches SQL.
One mistake has one wording and one key in every app: the messages below, and ``BODY`` for a
problem of the body as a whole (not an object, no field given, a rule across fields).

A hostile body can break a rule a million times (``{"citizens": [0, 0, ...]}``). Listing
each problem would make the answer tens of megabytes and the worker hundreds: the collector
keeps the first ``MAX_FIELDS`` fields with up to ``MAX_MESSAGES`` messages each and only
counts the rest, so memory stays proportional to the input and the 400 stays small.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timezone
from typing import Any

from framework.server.heartbeat import beat
from framework.web.errors import ApiError

__all__ = [
    "BEAT_EVERY", "BODY", "DMY_DATE", "INT64_MAX", "NOT_AN_OBJECT", "NOT_A_STRING", "NOT_NULL", "NO_NUL",
    "READ_ONLY", "REQUIRED", "UNKNOWN", "WHITESPACE", "FieldError", "FieldErrors",
    "at_least_one", "beat", "bounded", "check_dmy", "check_int", "check_keys", "check_text",
    "int_query", "integer_range", "json_object", "length_range", "now_utc", "parse_dmy",
    "parse_int", "shorten", "timestamp", "today_utc", "too_long", "validation_error",
]

INT64_MAX = 2 ** 63 - 1  # sqlite's largest integer: the range of every id
MAX_FIELDS = 100  # fields listed in one error answer
MAX_MESSAGES = 10  # messages listed per field
MAX_MESSAGE_LENGTH = 300  # characters of one message (a message may quote the input)
MAX_KEY_LENGTH = 200  # characters of one field path
BEAT_EVERY = 4096  # items checked between heartbeats in long validations

# the one wording of each common mistake
BODY = "body"  # the key of a problem of the whole body
REQUIRED = "this field is required"
UNKNOWN = "unknown field"
READ_ONLY = "is read-only"
NOT_NULL = "must not be null"
# PostgreSQL's text cannot hold NUL, and sqlite's length() stops at it: every stored text
# refuses it, on both backends alike
NO_NUL = "must not contain NUL characters"
NOT_AN_OBJECT = "must be an object"
NOT_A_STRING = "must be a string"
WHITESPACE = "must not be empty or only whitespace"
DMY_DATE = "must be a real date written DD.MM.YYYY"
VALIDATION_FAILED = "Request validation has failed"

DMY = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")


class FieldError(ValueError):
    """One value breaks a rule; the message says which (``"must be a string"``)."""


class FieldErrors(dict):
    """Field path -> list of messages, bounded; ``dropped`` counts what was not kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.dropped = 0
        for key, messages in dict(*args, **kwargs).items():
            self[key] = messages

    def add(self, field: str, message: str) -> None:
        messages = self.get(field)
        if messages is None:
            if len(self) >= MAX_FIELDS:
                self.dropped += 1
                return
            super().__setitem__(shorten(field, MAX_KEY_LENGTH), [shorten(message)])
        elif len(messages) < MAX_MESSAGES:
            messages.append(shorten(message))
        else:
            self.dropped += 1

    def __setitem__(self, field: str, messages: list[str]) -> None:
        """``errors[field] = [...]`` replaces that field's messages, within the bounds."""
        if field not in self and len(self) >= MAX_FIELDS:
            self.dropped += len(messages)
            return
        kept = [shorten(m) for m in messages[:MAX_MESSAGES]]
        self.dropped += len(messages) - len(kept)
        super().__setitem__(shorten(field, MAX_KEY_LENGTH), kept)

    def setdefault(self, field: str, default: Any = None) -> Any:
        raise TypeError("use FieldErrors.add(field, message)")  # would bypass the bounds

    @property
    def total(self) -> int:
        return sum(len(m) for m in self.values()) + self.dropped


def bounded(fields: dict[str, list[str]] | None) -> tuple[FieldErrors, int]:
    """Any field -> messages mapping cut to the bounds, and how many messages were dropped."""
    if isinstance(fields, FieldErrors):
        return fields, fields.dropped
    out = FieldErrors()
    for key, messages in (fields or {}).items():
        out[key] = list(messages)
    return out, out.dropped


def shorten(text: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def validation_error(fields: dict[str, list[str]]) -> ApiError:
    """The 400 for per-field problems; at most MAX_FIELDS fields are listed, the rest counted."""
    kept, dropped = bounded(fields)
    message = VALIDATION_FAILED
    if dropped:
        message += f" ({dropped} more problems not listed)"
    return ApiError(400, message, kept)


# -- messages with a value --------------------------------------------------------------------

def integer_range(lowest: int, highest: int) -> str:
    return f"must be an integer from {lowest} to {highest}"


def too_long(most: int) -> str:
    return f"must be at most {most} characters"


def length_range(fewest: int, most: int) -> str:
    return f"must be {fewest} to {most} characters long"


def at_least_one(names: Collection[str]) -> str:
    return "at least one field is required: " + ", ".join(sorted(names))


# -- objects ----------------------------------------------------------------------------------

def json_object(body: Any) -> dict[str, Any]:
    """``body`` if it is a JSON object, else the 400 that says so under ``BODY``."""
    if type(body) is not dict:
        raise validation_error({BODY: [NOT_AN_OBJECT]})
    return body


def check_keys(obj: dict[str, Any], allowed: AbstractSet[str], required: AbstractSet[str],
               errors: FieldErrors, prefix: str = "",
               read_only: Collection[str] = ()) -> bool:
    """Note the unknown (or read-only) and the missing fields of ``obj``; True if none.

    Field paths are ``prefix + name``; ``allowed`` and ``required`` are sets (or dict key
    views), so the common case, nothing wrong, is two set comparisons.
    """
    keys = obj.keys()
    if keys <= allowed and keys >= required:
        return True
    for key in obj:
        if key not in allowed:
            errors.add(prefix + key, READ_ONLY if key in read_only else UNKNOWN)
    for key in sorted(key for key in required if key not in obj):
        errors.add(prefix + key, REQUIRED)
    return False


# -- strings ----------------------------------------------------------------------------------

def check_text(value: Any, most: int, fewest: int = 1) -> str:
    """A JSON string of ``fewest .. most`` code points, not only whitespace, else FieldError.

    The value is kept as sent (not stripped).
    """
    if type(value) is not str:
        raise FieldError(NOT_A_STRING)
    if "\x00" in value:
        raise FieldError(NO_NUL)
    if not value.strip():
        raise FieldError(WHITESPACE)
    if not fewest <= len(value) <= most:
        raise FieldError(too_long(most) if fewest <= 1 else length_range(fewest, most))
    return value


# -- integers ---------------------------------------------------------------------------------

def check_int(value: Any, lowest: int = 0, highest: int = INT64_MAX) -> int:
    """A JSON integer in ``lowest .. highest``, else FieldError.

    ``type(value) is int``: ``True`` is an int to isinstance, and ``1.0 == 1``; neither is an
    integer the client meant.
    """
    if type(value) is not int or not lowest <= value <= highest:
        raise FieldError(integer_range(lowest, highest))
    return value


def parse_int(text: str, lowest: int = 0, highest: int = INT64_MAX,
              clamp: bool = False) -> int | None:
    """``text`` as an int in ``lowest .. highest``, or None.

    Plain ASCII decimal digits only: leading zeros are fine (``09`` is 9); a sign, a space,
    an underscore or a non-ASCII digit is not. With ``clamp``, a number past ``highest`` is
    ``highest``. The length is compared before ``int()`` runs, which is slow on thousands of
    digits and refuses more than 4300.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(highest)) or int(digits) > highest:
        return highest if clamp and highest >= lowest else None
    value = int(digits)
    return value if value >= lowest else None


def int_query(query: Mapping[str, list[str]],
              specs: Mapping[str, tuple[int | None, int, int]]) -> dict[str, int | None]:
    """Query parameters that are decimal integers, ``{name: (default, lowest, highest)}``.

    The last value wins when a name repeats; an absent one is its default; parameters not in
    ``specs`` are left alone. Every bad one is named in one 400.
    """
    errors = FieldErrors()
    values: dict[str, int | None] = {}
    for name, (default, lowest, highest) in specs.items():
        given = query.get(name)
        if not given:
            values[name] = default
            continue
        value = parse_int(given[-1], lowest, highest)
        if value is None:
            errors.add(name, integer_range(lowest, highest))
        values[name] = value
    if errors:
        raise validation_error(errors)
    return values


# -- dates and times --------------------------------------------------------------------------

def parse_dmy(text: str) -> date | None:
    """A ``DD.MM.YYYY`` string as a calendar date, or None (wrong shape, or no such day)."""
    m = DMY.fullmatch(text)
    if m is None:
        return None
    try:
        return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None


def check_dmy(value: Any) -> date:
    """A JSON string ``DD.MM.YYYY`` naming a real day, else FieldError."""
    day = parse_dmy(value) if type(value) is str else None
    if day is None:
        raise FieldError(DMY_DATE)
    return day


def now_utc() -> datetime:
    """The current time in UTC (aware): every "now" and "today" of every app is UTC."""
    return datetime.now(timezone.utc)


def today_utc() -> date:
    return now_utc().date()


def timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default now; naive means UTC) as ``2024-03-05T12:34:56.789012Z``.

    The one stored and emitted form of a time: fixed width, so text order is time order, and
    the first 7 characters are the month. May raise OverflowError for a moment whose
    conversion to UTC leaves years 1..9999.
    """
    if moment is None:
        moment = now_utc()
    elif moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
