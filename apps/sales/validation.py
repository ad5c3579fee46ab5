"""The sales app's rules for bodies and query parameters, on the validation kit.

Every problem of a request is collected per field and raised as one 400, so a rejected
request never opens a transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from apps.sales.tables import MAX_PRICE
from framework.web.params import IntParam
from framework.web.validate import (
    INT64_MAX,
    NOT_NULL,
    FieldError,
    FieldErrors,
    check_int,
    check_keys,
    check_text,
    json_object,
    timestamp,
    validation_error,
)

MAX_TEXT = 256
MAX_YEAR = 9999
CNT = IntParam(
    "how many rows at most (1 .. the sales_max_cnt setting)", 1, "sales_max_cnt", default=10)
MONTH = IntParam("month 1..12 (default: the current UTC month)", 1, 12)
YEAR = IntParam("year (default: the current UTC year)", 1, MAX_YEAR)
SEED = IntParam("seed of the random generator: same seed, same data", 0, INT64_MAX)


def check_id(value: Any) -> int:
    return check_int(value, 1)


def check_price(value: Any) -> int:
    return check_int(value, 0, MAX_PRICE)


def check_name(value: Any) -> str:
    """A name or an address: 1..256 characters, not only whitespace."""
    return check_text(value, MAX_TEXT)


def check_sale_time(value: Any) -> str:
    """ISO-8601, UTC when no offset is given; stored as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if type(value) is not str:
        raise FieldError("must be an ISO-8601 date-time string")
    try:
        return timestamp(datetime.fromisoformat(value))
    except (ValueError, OverflowError):  # OverflowError: an offset pushing it past year 1..9999
        raise FieldError("must be an ISO-8601 date-time, e.g. 2024-03-05T12:34:56Z") from None


Check = Callable[[Any], Any]


def validate_object(body: Any, required: dict[str, Check],
                    optional: dict[str, Check] | None = None) -> dict[str, Any]:
    """A JSON object with exactly these fields (optional ones may be absent, none may be null)."""
    body = json_object(body)
    checks = {**required, **(optional or {})}
    errors = FieldErrors()
    check_keys(body, checks.keys(), required.keys(), errors)
    values: dict[str, Any] = {}
    for name, check in checks.items():
        if name not in body:
            continue
        try:
            if body[name] is None:
                raise FieldError(NOT_NULL)
            values[name] = check(body[name])
        except FieldError as exc:
            errors.add(name, str(exc))
    if errors:
        raise validation_error(errors)
    return values


def validate_sale(body: Any) -> dict[str, Any]:
    """``{"item_id", "store_id", "sale_time"?}``; sale_time defaults to now (UTC)."""
    values = validate_object(body, {"item_id": check_id, "store_id": check_id},
                             {"sale_time": check_sale_time})
    values.setdefault("sale_time", timestamp())
    return values


def validate_item(body: Any) -> dict[str, Any]:
    return validate_object(body, {"name": check_name, "price": check_price})


def validate_store(body: Any) -> dict[str, Any]:
    return validate_object(body, {"address": check_name})
