"""The validation kit (framework/web/validate.py) without a server: integers in bodies and
query strings, object keys, dates and timestamps, and the 400 it raises."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from framework.web.errors import ApiError
from framework.web.validate import (
    BODY,
    INT64_MAX,
    MAX_FIELDS,
    NOT_AN_OBJECT,
    READ_ONLY,
    REQUIRED,
    UNKNOWN,
    FieldError,
    FieldErrors,
    check_int,
    check_keys,
    check_text,
    int_query,
    json_object,
    parse_dmy,
    parse_int,
    timestamp,
    today_utc,
    validation_error,
)


@pytest.mark.parametrize("text, lowest, highest, clamp, expected", [
    ("0", 0, INT64_MAX, False, 0),
    ("0009", 0, INT64_MAX, False, 9),
    (str(INT64_MAX), 0, INT64_MAX, False, INT64_MAX),
    ("000" + str(INT64_MAX), 0, INT64_MAX, False, INT64_MAX),
    (str(INT64_MAX + 1), 0, INT64_MAX, False, None),
    ("9" * 5000, 0, INT64_MAX, False, None),  # past int()'s digit limit: still just None
    ("", 0, 10, False, None),
    ("-1", 0, 10, False, None),
    ("+1", 0, 10, False, None),
    (" 1", 0, 10, False, None),
    ("1_0", 0, 100, False, None),
    ("١", 0, 10, False, None),  # an Arabic-Indic digit: isdigit() but not ASCII
    ("1.0", 0, 10, False, None),
    ("0", 1, 10, False, None),
    ("11", 1, 10, False, None),
    ("11", 1, 10, True, 10),
    ("9" * 5000, 1, 100, True, 100),
    ("0", 1, 100, True, None),  # clamping is upward only
])
def test_parse_int(text: str, lowest: int, highest: int, clamp: bool,
                   expected: int | None) -> None:
    assert parse_int(text, lowest, highest, clamp=clamp) == expected


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, [1], -1, INT64_MAX + 1])
def test_check_int_refuses_what_is_not_a_json_integer_in_range(value: object) -> None:
    with pytest.raises(FieldError, match=f"^must be an integer from 0 to {INT64_MAX}$"):
        check_int(value)


def test_check_int_keeps_the_bounds_given() -> None:
    assert check_int(1, 1, 5) == 1 and check_int(5, 1, 5) == 5
    with pytest.raises(FieldError, match="^must be an integer from 1 to 5$"):
        check_int(0, 1, 5)


def test_int_query_defaults_last_value_and_one_400_for_every_bad_name() -> None:
    specs = {"cnt": (10, 1, 100), "mm": (3, 1, 12), "gg": (2024, 1, 9999)}
    assert int_query({"cnt": ["5", "07"], "other": ["x"]}, specs) == {"cnt": 7, "mm": 3,
                                                                      "gg": 2024}
    with pytest.raises(ApiError) as caught:
        int_query({"cnt": ["0"], "mm": ["13"], "gg": ["2024"]}, specs)
    assert caught.value.status == 400
    assert caught.value.fields == {"cnt": ["must be an integer from 1 to 100"],
                                   "mm": ["must be an integer from 1 to 12"]}


def test_check_keys_names_unknown_read_only_and_missing_fields() -> None:
    errors = FieldErrors()
    ok = check_keys({"a": 1, "id": 2, "x": 3}, frozenset({"a", "b"}), frozenset({"a", "b"}),
                    errors, prefix="item.", read_only=("id",))
    assert not ok
    assert errors == {"item.id": [READ_ONLY], "item.x": [UNKNOWN], "item.b": [REQUIRED]}
    clean = FieldErrors()
    assert check_keys({"a": 1}, {"a": 0, "b": 0}.keys(), frozenset({"a"}), clean) and not clean


@pytest.mark.parametrize("value, most, fewest, message", [
    (None, 5, 1, "must be a string"),
    (5, 5, 1, "must be a string"),
    ("", 5, 1, "must not be empty or only whitespace"),
    (" \t\u3000", 5, 1, "must not be empty or only whitespace"),  # an ideographic space too
    ("ёёёёёё", 5, 1, "must be at most 5 characters"),
    ("ab", 5, 3, "must be 3 to 5 characters long"),
])
def test_check_text_refusals(value: object, most: int, fewest: int, message: str) -> None:
    with pytest.raises(FieldError, match=f"^{message}$"):
        check_text(value, most, fewest)


def test_check_text_keeps_the_value_as_sent() -> None:
    assert check_text("  a", 3, 3) == "  a" and check_text("ёёёёё", 5) == "ёёёёё"


@pytest.mark.parametrize("body", [[], "x", 1, None, True])
def test_json_object_refuses_anything_else_under_the_body_key(body: object) -> None:
    with pytest.raises(ApiError) as caught:
        json_object(body)
    assert (caught.value.status, caught.value.fields) == (400, {BODY: [NOT_AN_OBJECT]})


def test_validation_error_is_bounded_and_counts_the_rest() -> None:
    error = validation_error({f"f{i}": ["bad"] for i in range(MAX_FIELDS + 5)})
    assert len(error.fields) == MAX_FIELDS
    assert error.message == "Request validation has failed (5 more problems not listed)"


@pytest.mark.parametrize("text, expected", [
    ("26.12.1986", date(1986, 12, 26)),
    ("29.02.2024", date(2024, 2, 29)),
    ("29.02.2023", None),  # no such day
    ("31.04.2024", None),
    ("1.1.2000", None),
    ("2000-01-01", None),
    ("01.01.2000 ", None),
    ("٠١.٠١.٢٠٠٠", None),  # non-ASCII digits
])
def test_parse_dmy(text: str, expected: date | None) -> None:
    assert parse_dmy(text) == expected


def test_timestamp_is_utc_with_microseconds_and_z() -> None:
    moscow = timezone(timedelta(hours=3))
    assert timestamp(datetime(2024, 3, 5, 15, 34, 56, 789, tzinfo=moscow)) == \
        "2024-03-05T12:34:56.000789Z"
    assert timestamp(datetime(1, 1, 1)) == "0001-01-01T00:00:00.000000Z"  # naive is UTC
    now = timestamp()
    assert len(now) == len("2024-03-05T12:34:56.789012Z") and now.endswith("Z")
    assert now[:10] in {today_utc().isoformat(), (today_utc() - timedelta(days=1)).isoformat()}
