"""Validation of the sales app's bodies and query parameters (API.md §B.1), before any SQL.

Every problem of a request is collected per field and raised as one 400
(``validation_error``), so a rejected request never opens a transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from apps.sales.tables import MAX_PRICE
from framework.web.app import validation_error
from framework.web.params import IntParam
from framework.web.validate import FieldErrors as Errors

INT64_MAX = 2 ** 63 - 1
MAX_TEXT = 256
MAX_YEAR = 9999
CNT = IntParam(
    "how many rows at most (1 .. the sales_max_cnt setting)", 1, "sales_max_cnt", default=10)
MONTH = IntParam("month 1..12 (default: the current UTC month)", 1, 12)
YEAR = IntParam("year (default: the current UTC year)", 1, MAX_YEAR)
SEED = IntParam("seed of the random generator: same seed, same data", 0, INT64_MAX)



class FieldError(ValueError):
    """One value breaks a rule; the message says which."""


def check_id(value: Any) -> int:
    # bool is an int subclass and 1.0 == 1: only a JSON integer passes (API.md §1.4)
    if type(value) is not int:
        raise FieldError("must be an integer")
    if not 1 <= value <= INT64_MAX:
        raise FieldError("must be between 1 and 2^63-1")
    return value


def check_price(value: Any) -> int:
    if type(value) is not int:
        raise FieldError("must be an integer")
    if not 0 <= value <= MAX_PRICE:
        raise FieldError(f"must be between 0 and {MAX_PRICE}")
    return value


def check_text(value: Any) -> str:
    """A name or an address: 1..256 characters, not only whitespace."""
    if type(value) is not str:
        raise FieldError("must be a string")
    if not value.strip():
        raise FieldError("must not be empty or only whitespace")
    if len(value) > MAX_TEXT:
        raise FieldError(f"must be at most {MAX_TEXT} characters")
    return value


def check_sale_time(value: Any) -> str:
    """ISO-8601, UTC when no offset is given; stored as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if type(value) is not str:
        raise FieldError("must be an ISO-8601 date-time string")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: an offset pushing it past year 1..9999
        raise FieldError("must be an ISO-8601 date-time, e.g. 2024-03-05T12:34:56Z") from None
    return format_time(moment)


def format_time(moment: datetime) -> str:
    """The one stored and emitted form of a time (API.md §1.9); ``moment`` is in UTC."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def now_utc() -> str:
    return format_time(datetime.now(timezone.utc))


Check = Callable[[Any], Any]


def validate_object(body: Any, required: dict[str, Check],
                    optional: dict[str, Check] | None = None) -> dict[str, Any]:
    """A JSON object with exactly these fields (optional ones may be absent, none may be null)."""
    if not isinstance(body, dict):
        raise validation_error({"body": ["must be a JSON object"]})
    checks = {**required, **(optional or {})}
    errors = Errors({name: ["unknown field"] for name in body if name not in checks})
    values: dict[str, Any] = {}
    for name, check in checks.items():
        if name not in body:
            if name in required:
                errors[name] = ["this field is required"]
            continue
        if body[name] is None:
            errors[name] = ["must not be null"]
            continue
        try:
            values[name] = check(body[name])
        except FieldError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise validation_error(errors)
    return values


def validate_sale(body: Any) -> dict[str, Any]:
    """``{"item_id", "store_id", "sale_time"?}``; sale_time defaults to now (UTC)."""
    values = validate_object(body, {"item_id": check_id, "store_id": check_id},
                             {"sale_time": check_sale_time})
    values.setdefault("sale_time", now_utc())
    return values


def validate_item(body: Any) -> dict[str, Any]:
    return validate_object(body, {"name": check_text, "price": check_price})


def validate_store(body: Any) -> dict[str, Any]:
    return validate_object(body, {"address": check_text})


def int_params(query: dict[str, list[str]],
               specs: dict[str, tuple[int | None, int, int]]) -> dict[str, int | None]:
    """Query parameters that are decimal integers: ``{name: (default, lowest, highest)}``.

    ASCII digits only (leading zeros allowed, so ``mm=09`` is 9); no sign, no spaces. The
    last value wins when a name is repeated; parameters not in ``specs`` are ignored.
    """
    errors = Errors()
    values: dict[str, int | None] = {}
    for name, (default, lowest, highest) in specs.items():
        given = query.get(name)
        if not given:
            values[name] = default
            continue
        # leading zeros stripped first: int() refuses over 4300 digits (a ValueError, not a 400)
        text = given[-1]
        digits = text.lstrip("0") or "0"
        if (text.isascii() and text.isdigit() and len(digits) <= len(str(highest))
                and lowest <= int(digits) <= highest):
            values[name] = int(digits)
        else:
            errors[name] = [f"must be an integer from {lowest} to {highest}"]
    if errors:
        raise validation_error(errors)
    return values
