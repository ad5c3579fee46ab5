"""App A, citizens imports (API.md §A): every edge case of §A.9 against a real server.

Worked examples are checked to the digit. Ages depend on "today", so birth dates are built
from today's UTC date. Every rejected write is checked to leave the database unchanged.
"""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from support import running_server

# the whole suite runs on each database backend (conftest.py: backend)
pytestmark = pytest.mark.usefixtures("backend")

TABLES = ("imports", "citizens", "relations", "sqlite_sequence")
ADMIN = {"Authorization": "Bearer secret"}
CYRILLIC_256 = "ё" * 256


@pytest.fixture(scope="module")
def server(tmp_path_factory, backend: str):
    with running_server(tmp_path_factory.mktemp("citizens"), ["citizens"],
                        admin_token="secret") as s:
        yield s


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory, backend: str):
    """Four workers for races, no admin token, and a small import limit for 413 tests."""
    with running_server(tmp_path_factory.mktemp("citizens4"), ["citizens"], workers=4,
                        imports_max_body=64 * 1024) as s:
        yield s


# -- helpers ---------------------------------------------------------------------------------

def today() -> date:
    return datetime.now(timezone.utc).date()


def years_ago(years: int, shift_days: int = 0) -> str:
    """DD.MM.YYYY of a birth date making the citizen ``years`` old today (UTC).

    ``shift_days=1`` moves the birthday to tomorrow, so the citizen is one year younger.
    """
    day = today() + timedelta(days=shift_days)
    try:
        born = day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year: 28 February keeps the age
        born = day.replace(year=day.year - years, day=28)
    return born.strftime("%d.%m.%Y")


def citizen(cid: int, relatives: Any = (), **fields: Any) -> dict[str, Any]:
    """A valid citizen; ``relatives`` and ``fields`` may be set to anything, even invalid values."""
    return {
        "citizen_id": cid, "town": "Москва", "street": "Льва Толстого",
        "building": "16к7стр5", "apartment": 7, "name": "Иванов Иван Иванович",
        "birth_date": "26.12.1986", "gender": "male",
        "relatives": list(relatives) if type(relatives) is tuple else relatives, **fields,
    }


def post_import(server, citizens: list[dict[str, Any]]) -> int:
    r = server.request("POST", "/imports", json={"citizens": citizens})
    assert r.status_code == 201, r.text
    body = r.json()
    assert list(body) == ["data"] and list(body["data"]) == ["import_id"]
    assert type(body["data"]["import_id"]) is int
    return body["data"]["import_id"]


def get_citizens(server, import_id: int) -> list[dict[str, Any]]:
    r = server.request("GET", f"/imports/{import_id}/citizens")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def relatives_by_id(server, import_id: int) -> dict[int, list[int]]:
    return {c["citizen_id"]: c["relatives"] for c in get_citizens(server, import_id)}


def get_data(server, path: str) -> Any:
    r = server.request("GET", path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    return r.json()["data"]


def last_import_id(server) -> int:
    row = server.db().execute("SELECT max(import_id) FROM imports").fetchone()
    return row[0] or 0


ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               413: "payload_too_large", 415: "unsupported_media_type"}


def assert_rejected(server, method: str, path: str, status: int = 400,
                    **kw: Any) -> requests.Response:
    """The request gets ``status`` in the error envelope and changes nothing in the database."""
    before = server.snapshot(*TABLES)
    r = server.request(method, path, **kw)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == ERROR_CODES[status]
    assert server.snapshot(*TABLES) == before
    return r


def assert_import_rejected(server, body: Any = None, **kw: Any) -> dict:
    """POST /imports gets 400, nothing is stored, and the id it would have had does not exist."""
    if body is not None:
        kw["json"] = body
    would_be = last_import_id(server) + 1
    error = assert_rejected(server, "POST", "/imports", **kw).json()["error"]
    assert server.request("GET", f"/imports/{would_be}/citizens").status_code == 404
    return error


def import_with(**fields: Any) -> dict[str, Any]:
    """A one-citizen import with ``fields`` overridden."""
    return {"citizens": [citizen(1, **fields)]}


# -- POST /imports: the body's shape ---------------------------------------------------------

@pytest.mark.parametrize("body", [
    {}, [], {"citizens": None}, {"citizens": {}}, {"citizens": "x"}, {"citizens": 1},
    {"citizens": [], "extra": 1}, {"citizens": [1]}, {"citizens": [None]},
    {"citizens": [[]]}, {"citizens": ["citizen"]}, "citizens", None, 5,
])
def test_post_body_of_the_wrong_shape_is_400(server, body):
    assert_import_rejected(server, data=json.dumps(body),
                           headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"{", b'{"citizens": [}', b'{"citizens": NaN}',
    b'{"citizens": [], "citizens": []}', b"\xff\xfe{}", b"[" * 100000 + b"]" * 100000,
])
def test_post_malformed_json_is_400(server, raw):
    assert_import_rejected(server, data=raw, headers={"Content-Type": "application/json"})


def test_post_invalid_utf8_in_a_string_is_400(server):
    raw = json.dumps(import_with(town="@@")).encode().replace(b"@@", b"\xd0\x9c\xd0")
    assert_import_rejected(server, data=raw, headers={"Content-Type": "application/json"})


def test_post_lone_surrogate_in_name_is_400(server):
    raw = json.dumps(import_with(name="@@")).replace("@@", "\\ud800")
    assert_import_rejected(server, data=raw.encode(), headers={"Content-Type": "application/json"})


def test_post_text_plain_is_415(server):
    assert_rejected(server, "POST", "/imports", 415, data=json.dumps({"citizens": []}),
                    headers={"Content-Type": "text/plain"})


def test_post_without_content_type_is_parsed_as_json(server):
    r = server.request("POST", "/imports", data=json.dumps({"citizens": [citizen(1)]}).encode())
    assert r.status_code == 201, r.text
    assert get_citizens(server, r.json()["data"]["import_id"]) == [citizen(1)]


def test_post_json_with_charset_and_bom_is_accepted(server):
    raw = b"\xef\xbb\xbf" + json.dumps({"citizens": [citizen(1)]}, ensure_ascii=False).encode()
    r = server.request("POST", "/imports", data=raw,
                       headers={"Content-Type": "Application/JSON; charset=UTF-8"})
    assert r.status_code == 201, r.text


# -- POST /imports: fields -------------------------------------------------------------------

FIELDS = ("citizen_id", "town", "street", "building", "apartment", "name", "birth_date",
          "gender", "relatives")


@pytest.mark.parametrize("field", FIELDS)
def test_post_missing_field_is_400(server, field):
    person = citizen(1)
    del person[field]
    error = assert_import_rejected(server, {"citizens": [person]})
    assert error["fields"] == {f"citizens[0].{field}": ["this field is required"]}


@pytest.mark.parametrize("field", FIELDS)
def test_post_null_field_is_400(server, field):
    assert_import_rejected(server, import_with(**{field: None}))


@pytest.mark.parametrize("field", ["appartement", "age", "id", "Town"])
def test_post_unknown_field_is_400(server, field):
    error = assert_import_rejected(server, import_with(**{field: 1}))
    assert error["fields"] == {f"citizens[0].{field}": ["unknown field"]}


@pytest.mark.parametrize("field", ["citizen_id", "apartment"])
@pytest.mark.parametrize("value", ["1", 1.0, 1e3, True, False, -1, 2 ** 63, 2 ** 64, [1], {}])
def test_post_bad_integer_is_400(server, field, value):
    assert_import_rejected(server, import_with(**{field: value}))


@pytest.mark.parametrize("field", ["citizen_id", "apartment"])
@pytest.mark.parametrize("value", [0, 2 ** 31 - 1, 2 ** 63 - 1])
def test_post_integer_bounds_are_accepted(server, field, value):
    import_id = post_import(server, [citizen(1, **{field: value})])
    assert get_citizens(server, import_id)[0][field] == value


@pytest.mark.parametrize("field", ["town", "street", "building"])
@pytest.mark.parametrize("value", ["", "   ", "!!!", "_", "-", "__ __", "ё" * 257, 1, ["x"],
                                   "a\x00"])
def test_post_bad_place_string_is_400(server, field, value):
    assert_import_rejected(server, import_with(**{field: value}))


@pytest.mark.parametrize("field", ["town", "street", "building"])
@pytest.mark.parametrize("value", [CYRILLIC_256, "1", "ё", " Москва ", "_1_", "٣", "16к7стр5"])
def test_post_place_string_with_a_letter_or_digit_is_stored_as_sent(server, field, value):
    import_id = post_import(server, [citizen(1, **{field: value})])
    assert get_citizens(server, import_id)[0][field] == value


@pytest.mark.parametrize("value", ["", "ё" * 257, 5, ["a"], "Ann\x00"])
def test_post_bad_name_is_400(server, value):
    assert_import_rejected(server, import_with(name=value))


@pytest.mark.parametrize("value", [" ", "!", "_", CYRILLIC_256, "Мария"])
def test_post_any_non_empty_name_up_to_256_is_accepted(server, value):
    import_id = post_import(server, [citizen(1, name=value)])
    assert get_citizens(server, import_id)[0]["name"] == value


@pytest.mark.parametrize("value", ["Male", "", "m", "FEMALE", "other", 1])
def test_post_bad_gender_is_400(server, value):
    assert_import_rejected(server, import_with(gender=value))


@pytest.mark.parametrize("value", [
    "31.02.2019", "29.02.2019", "00.01.2000", "01.13.2000", "01.00.2000", "32.01.2000",
    "1.2.2019", "2019-02-01", "01/02/2019", "01.02.19", "01.02.2019\n", " 01.02.2019",
    "01.02.0000", "٠١.٠٢.٢٠١٩", "", 20190201,
])
def test_post_bad_birth_date_is_400(server, value):
    assert_import_rejected(server, import_with(birth_date=value))


def test_post_birth_date_tomorrow_utc_is_400(server):
    tomorrow = (today() + timedelta(days=1)).strftime("%d.%m.%Y")
    assert_import_rejected(server, import_with(birth_date=tomorrow))


@pytest.mark.parametrize("value", ["29.02.2020", "01.01.0001", "31.12.1999"])
def test_post_real_past_dates_are_accepted(server, value):
    import_id = post_import(server, [citizen(1, birth_date=value)])
    assert get_citizens(server, import_id)[0]["birth_date"] == value


def test_post_birth_date_today_utc_is_accepted(server):
    born = today().strftime("%d.%m.%Y")
    import_id = post_import(server, [citizen(1, birth_date=born)])
    assert get_citizens(server, import_id)[0]["birth_date"] == born


def test_post_duplicate_citizen_id_is_400(server):
    error = assert_import_rejected(server, {"citizens": [citizen(1), citizen(2), citizen(1)]})
    assert "citizens[2].citizen_id" in error["fields"]


@pytest.mark.parametrize("citizens", [
    [citizen(1, [2, 2]), citizen(2, [1])],           # duplicate id
    [citizen(1, [3]), citizen(2)],                   # unknown id
    [citizen(1, [2]), citizen(2)],                   # not mutual
    [citizen(1, [2]), citizen(2, [1, 3]), citizen(3)],  # not mutual, the other way
    [citizen(1, "2"), citizen(2)],                   # not a list
    [citizen(1, {"2": 1}), citizen(2)],
    [citizen(1, ["2"]), citizen(2, [1])],            # not ints
    [citizen(1, [2.0]), citizen(2, [1])],
    [citizen(1, [True]), citizen(2, [1])],
    [citizen(1, [None])],
    [citizen(1, [-1])],
])
def test_post_bad_relatives_are_400(server, citizens):
    assert_import_rejected(server, {"citizens": citizens})


def test_post_self_relative_is_accepted(server):
    import_id = post_import(server, [citizen(1, [1, 2]), citizen(2, [1])])
    assert relatives_by_id(server, import_id) == {1: [1, 2], 2: [1]}
    rows = server.db().execute("SELECT citizen_id, relative_id FROM relations"
                               " WHERE import_id = ? ORDER BY 1, 2", (import_id,)).fetchall()
    assert rows == [(1, 1), (1, 2), (2, 1)]


def test_post_empty_import_is_accepted(server):
    import_id = post_import(server, [])
    assert get_citizens(server, import_id) == []
    assert get_data(server, f"/imports/{import_id}/citizens/birthdays") == {
        str(month): [] for month in range(1, 13)}
    assert get_data(server, f"/imports/{import_id}/towns/stat/percentile/age") == []


def test_one_bad_citizen_among_many_rejects_the_whole_import(server):
    citizens = [citizen(i) for i in range(1, 500)] + [citizen(500, town="!!!")]
    error = assert_import_rejected(server, {"citizens": citizens})
    assert list(error["fields"]) == ["citizens[499].town"]


def test_round_trip_is_exact_and_sorted(server):
    sent = [
        citizen(7, [3, 1], name="Мария", gender="female", birth_date="01.02.2003",
                town="Керчь", street="Иосифа Бродского", building="2", apartment=0),
        citizen(1, [7]),
        citizen(3, [7, 3], town=" Москва", name=" "),
    ]
    import_id = post_import(server, sent)
    expected = sorted(({**c, "relatives": sorted(c["relatives"])} for c in sent),
                      key=lambda c: c["citizen_id"])
    assert get_citizens(server, import_id) == expected


def test_parallel_imports_get_distinct_increasing_ids(busy_server):
    before = last_import_id(busy_server)
    results: dict[int, int] = {}

    def post(n: int) -> None:
        results[n] = post_import(busy_server, [citizen(1, town=f"Город {n}")])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results.values())) == 8 and min(results.values()) > before
    for n, import_id in results.items():
        assert get_citizens(busy_server, import_id)[0]["town"] == f"Город {n}"


# -- PATCH -----------------------------------------------------------------------------------

def marriage_import(server) -> int:
    """The spec's example: 1 and 2 are relatives, 3 has none."""
    return post_import(server, [
        citizen(1, [2]), citizen(2, [1]),
        citizen(3, name="Романова Мария Леонидовна", gender="female", birth_date="23.11.1986",
                town="Керчь", street="Иосифа Бродского", building="2", apartment=11)])


def test_patch_worked_example_marriage_and_divorce(server):
    import_id = marriage_import(server)
    patch = {"name": "Иванова Мария Леонидовна", "town": "Москва", "street": "Льва Толстого",
             "building": "16к7стр5", "apartment": 7, "relatives": [1]}
    r = server.request("PATCH", f"/imports/{import_id}/citizens/3", json=patch)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {
        "citizen_id": 3, "town": "Москва", "street": "Льва Толстого", "building": "16к7стр5",
        "apartment": 7, "name": "Иванова Мария Леонидовна", "birth_date": "23.11.1986",
        "gender": "female", "relatives": [1]}}
    assert relatives_by_id(server, import_id) == {1: [2, 3], 2: [1], 3: [1]}

    r = server.request("PATCH", f"/imports/{import_id}/citizens/3", json={"relatives": []})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["relatives"] == []
    assert r.json()["data"]["name"] == "Иванова Мария Леонидовна"
    assert relatives_by_id(server, import_id) == {1: [2], 2: [1], 3: []}


@pytest.mark.parametrize("field,value", [
    ("name", "Пётр"), ("gender", "female"), ("birth_date", "29.02.2000"), ("town", "Казань"),
    ("street", "Ленина"), ("building", "1"), ("apartment", 0), ("apartment", 2 ** 63 - 1),
])
def test_patch_each_field_alone(server, field, value):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    r = server.request("PATCH", f"/imports/{import_id}/citizens/1", json={field: value})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == citizen(1, [2], **{field: value})
    assert get_citizens(server, import_id) == [citizen(1, [2], **{field: value}), citizen(2, [1])]


@pytest.mark.parametrize("body", [
    {}, {"citizen_id": 5}, {"citizen_id": 1, "name": "X"}, {"name": None}, {"relatives": None},
    {"appartement": 1}, {"age": 30}, {"name": ""}, {"name": "ё" * 257}, {"town": "_"},
    {"street": "  "}, {"building": ""}, {"apartment": -1}, {"apartment": "1"},
    {"apartment": True}, {"apartment": 1.0}, {"gender": "Male"}, {"birth_date": "31.02.2019"},
    {"birth_date": "2019-02-01"}, {"relatives": [2, 2]}, {"relatives": ["2"]},
    {"relatives": 2}, [], "x", None, [{"name": "X"}], 1,
])
def test_patch_invalid_body_is_400(server, body):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    assert_rejected(server, "PATCH", f"/imports/{import_id}/citizens/1", data=json.dumps(body),
                    headers={"Content-Type": "application/json"})


def test_patch_future_birth_date_is_400(server):
    import_id = post_import(server, [citizen(1)])
    tomorrow = (today() + timedelta(days=1)).strftime("%d.%m.%Y")
    assert_rejected(server, "PATCH", f"/imports/{import_id}/citizens/1",
                    json={"birth_date": tomorrow})


def test_patch_unknown_relative_is_400_and_changes_nothing(server):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    path = f"/imports/{import_id}/citizens/1"
    assert_rejected(server, "PATCH", path, json={"relatives": [999]})
    assert_rejected(server, "PATCH", path, json={"name": "X", "relatives": [2, 999]})
    assert get_citizens(server, import_id) == [citizen(1, [2]), citizen(2, [1])]


def test_patch_relative_from_another_import_is_400(server):
    other = post_import(server, [citizen(1), citizen(50)])
    import_id = post_import(server, [citizen(1)])
    assert_rejected(server, "PATCH", f"/imports/{import_id}/citizens/1", json={"relatives": [50]})
    assert relatives_by_id(server, other) == {1: [], 50: []}


@pytest.mark.parametrize("path", [
    "/imports/{missing}/citizens/1", "/imports/{id}/citizens/999", "/imports/0/citizens/1",
    "/imports/abc/citizens/1", "/imports/{id}/citizens/abc", "/imports/{id}/citizens/-1",
    "/imports/{id}/citizens/99999999999999999999", "/imports/99999999999999999999/citizens/1",
    "/imports/{id}/citizens/1.0",
])
def test_patch_unknown_ids_are_404(server, path):
    import_id = post_import(server, [citizen(1)])
    path = path.format(id=import_id, missing=import_id + 1000)
    before = server.snapshot(*TABLES)
    r = server.request("PATCH", path, json={"name": "X"})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"
    assert server.snapshot(*TABLES) == before


def test_patch_validates_the_body_before_looking_up_ids(server):
    """Check order (§A.3): field validation (400) comes before existence (404)."""
    assert_rejected(server, "PATCH", "/imports/999999/citizens/1", json={"name": None})
    assert_rejected(server, "PATCH", "/imports/999999/citizens/1", 404, json={"name": "X"})


def test_patch_relatives_add_and_remove_update_both_sides(server):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1, 3]), citizen(3, [2]),
                                     citizen(4)])
    r = server.request("PATCH", f"/imports/{import_id}/citizens/2", json={"relatives": [4, 1]})
    assert r.status_code == 200 and r.json()["data"]["relatives"] == [1, 4]
    assert relatives_by_id(server, import_id) == {1: [2], 2: [1, 4], 3: [], 4: [2]}


def test_patch_same_relatives_is_a_no_op(server):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    before = server.snapshot("relations")
    r = server.request("PATCH", f"/imports/{import_id}/citizens/1", json={"relatives": [2]})
    assert r.status_code == 200 and r.json()["data"] == citizen(1, [2])
    assert server.snapshot("relations") == before


def test_patch_self_relation_can_be_added_and_removed(server):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    path = f"/imports/{import_id}/citizens/1"
    assert server.request("PATCH", path, json={"relatives": [1, 2]}).json()["data"][
        "relatives"] == [1, 2]
    assert relatives_by_id(server, import_id) == {1: [1, 2], 2: [1]}
    assert server.request("PATCH", path, json={"relatives": [2]}).json()["data"][
        "relatives"] == [2]
    assert relatives_by_id(server, import_id) == {1: [2], 2: [1]}


def test_patch_in_one_import_does_not_touch_another(server):
    people = [citizen(1, [2]), citizen(2, [1]), citizen(3)]
    first, second = post_import(server, people), post_import(server, people)
    r = server.request("PATCH", f"/imports/{first}/citizens/1",
                       json={"name": "Другой", "relatives": [3]})
    assert r.status_code == 200
    assert get_citizens(server, second) == people
    assert relatives_by_id(server, first) == {1: [3], 2: [], 3: [1]}


def test_concurrent_patches_of_one_citizen_stay_symmetric(busy_server):
    """alvassin's race, widened: four PATCHes of citizen 1 at once, each setting a different
    single relative; exactly one wins and both sides agree, round after round."""
    import_id = post_import(busy_server, [citizen(i) for i in range(1, 6)])
    path = f"/imports/{import_id}/citizens/1"
    rivals = (2, 3, 4, 5)
    sessions = [requests.Session() for _ in rivals]

    def patch(session: requests.Session, relative: int, barrier: threading.Barrier,
              statuses: list[int]) -> None:
        barrier.wait()
        statuses.append(session.patch(busy_server.url(path), json={"relatives": [relative]},
                                      timeout=30).status_code)

    for _ in range(25):
        barrier = threading.Barrier(len(rivals))
        statuses: list[int] = []
        threads = [threading.Thread(target=patch, args=(session, relative, barrier, statuses))
                   for session, relative in zip(sessions, rivals)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * len(rivals)
        relatives = relatives_by_id(busy_server, import_id)
        assert len(relatives[1]) == 1
        winner = relatives[1][0]
        assert relatives == {1: [winner], **{r: [1] if r == winner else [] for r in rivals}}
    for session in sessions:
        session.close()


# -- routing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path", [
    ("PATCH", "/imports/1/citizens/birthdays"), ("GET", "/imports/1/citizens/5"),
    ("POST", "/imports/1/citizens"), ("GET", "/imports"), ("DELETE", "/imports/1/citizens"),
    ("PUT", "/imports/1/citizens/1"), ("POST", "/imports/1/towns/stat/percentile/age"),
])
def test_wrong_method_is_405_with_allow(server, method, path):
    post_import(server, [citizen(1)])
    r = server.request(method, path, json={"name": "x"})
    assert r.status_code == 405, r.text
    assert "Allow" in r.headers


def test_trailing_slash_and_head_are_served(server):
    r = server.request("POST", "/imports/", json={"citizens": [citizen(1)]})
    assert r.status_code == 201
    import_id = r.json()["data"]["import_id"]
    assert server.request("GET", f"/imports/{import_id}/citizens/").json()["data"] == [citizen(1)]
    get = server.request("GET", f"/imports/{import_id}/citizens")
    head = server.request("HEAD", f"/imports/{import_id}/citizens")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


@pytest.mark.parametrize("suffix", ["citizens", "citizens/birthdays", "towns/stat/percentile/age"])
@pytest.mark.parametrize("import_id", ["0", "{missing}", "99999999999999999999", "abc", "-1"])
def test_reads_of_unknown_imports_are_404(server, suffix, import_id):
    missing = post_import(server, []) + 1000
    r = server.request("GET", f"/imports/{import_id.format(missing=missing)}/{suffix}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


# -- birthdays -------------------------------------------------------------------------------

def presents(server, import_id: int) -> dict[str, list[tuple[int, int]]]:
    data = get_data(server, f"/imports/{import_id}/citizens/birthdays")
    assert list(data) == [str(month) for month in range(1, 13)]
    return {month: [(e["citizen_id"], e["presents"]) for e in entries]
            for month, entries in data.items() if entries}


def test_birthdays_spec_example(server):
    import_id = post_import(server, [citizen(1, [2, 3], birth_date="26.12.1986"),
                                     citizen(2, [1], birth_date="01.04.1997"),
                                     citizen(3, [1], birth_date="23.11.1986")])
    data = get_data(server, f"/imports/{import_id}/citizens/birthdays")
    empty = {str(month): [] for month in range(1, 13)}
    assert data == {**empty, "4": [{"citizen_id": 1, "presents": 1}],
                    "11": [{"citizen_id": 1, "presents": 1}],
                    "12": [{"citizen_id": 2, "presents": 1}, {"citizen_id": 3, "presents": 1}]}


def test_birthdays_several_relatives_in_one_month_are_summed(server):
    import_id = post_import(server, [citizen(1, [2, 3], birth_date="31.12.2019"),
                                     citizen(2, [1], birth_date="11.02.2020"),
                                     citizen(3, [1], birth_date="17.02.2020")])
    assert presents(server, import_id) == {"2": [(1, 2)], "12": [(2, 1), (3, 1)]}


def test_birthdays_seed_example(server):
    born = ["06.02.1984", "06.11.2012", "01.06.1972", "12.12.1996", "18.04.1982", "15.02.1993",
            "01.09.2005", "27.10.2002", "21.08.1984", "24.02.2016"]
    relatives = {0: [9, 5, 6, 8], 1: [2, 4], 2: [1], 3: [8], 4: [1, 9], 5: [0, 8], 6: [0],
                 7: [], 8: [5, 0, 3], 9: [0, 4]}
    import_id = post_import(server, [citizen(i, relatives[i], birth_date=born[i])
                                     for i in range(10)])
    assert presents(server, import_id) == {
        "2": [(0, 2), (4, 1), (5, 1), (6, 1), (8, 2), (9, 1)], "4": [(1, 1), (9, 1)],
        "6": [(1, 1)], "8": [(0, 1), (3, 1), (5, 1)], "9": [(0, 1)], "11": [(2, 1), (4, 1)],
        "12": [(8, 1)]}


def test_birthdays_self_relative_buys_themselves_one_present(server):
    import_id = post_import(server, [citizen(1, [1], birth_date="15.07.1990"),
                                     citizen(2, birth_date="15.03.1990")])
    assert presents(server, import_id) == {"7": [(1, 1)]}


def test_birthdays_follow_a_patched_birth_date_and_relatives(server):
    import_id = post_import(server, [citizen(1, [2], birth_date="01.01.1990"),
                                     citizen(2, [1], birth_date="01.05.1990"), citizen(3)])
    assert presents(server, import_id) == {"1": [(2, 1)], "5": [(1, 1)]}
    server.request("PATCH", f"/imports/{import_id}/citizens/2", json={"birth_date": "09.09.1991"})
    assert presents(server, import_id) == {"1": [(2, 1)], "9": [(1, 1)]}
    server.request("PATCH", f"/imports/{import_id}/citizens/3", json={"relatives": [1]})
    assert presents(server, import_id) == {"1": [(2, 1), (3, 1)], "9": [(1, 1)], "12": [(1, 1)]}


# -- percentiles -----------------------------------------------------------------------------

def percentiles(server, import_id: int) -> list[tuple[str, float, float, float]]:
    r = server.request("GET", f"/imports/{import_id}/towns/stat/percentile/age")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    for entry in data:
        assert sorted(entry) == ["p50", "p75", "p99", "town"]
        assert all(type(entry[p]) is float for p in ("p50", "p75", "p99"))
    return [(e["town"], e["p50"], e["p75"], e["p99"]) for e in data]


def town_of_ages(town: str, ages: list[int], first_id: int = 1) -> list[dict[str, Any]]:
    return [citizen(first_id + i, town=town, birth_date=years_ago(age))
            for i, age in enumerate(ages)]


@pytest.mark.parametrize("ages,expected", [
    ([10, 30, 50], (30.0, 40.0, 49.6)),
    ([10], (10.0, 10.0, 10.0)),
    ([5, 10, 20, 40], (15.0, 25.0, 39.4)),
    ([40, 5, 20, 10], (15.0, 25.0, 39.4)),
    ([0], (0.0, 0.0, 0.0)),
    ([0, 1], (0.5, 0.75, 0.99)),
])
def test_percentiles_worked_examples(server, ages, expected):
    import_id = post_import(server, town_of_ages("Москва", ages))
    assert percentiles(server, import_id) == [("Москва", *expected)]


def test_percentiles_seed_example_and_towns_sorted(server):
    import_id = post_import(server, town_of_ages("Санкт-Петербург", [34, 3, 26, 16, 13], 1)
                            + town_of_ages("Москва", [6, 47, 22, 37, 35], 10))
    assert percentiles(server, import_id) == [("Москва", 35.0, 37.0, 46.6),
                                              ("Санкт-Петербург", 16.0, 26.0, 33.68)]
    raw = server.request("GET", f"/imports/{import_id}/towns/stat/percentile/age").text
    assert '"p50":35.0' in raw.replace(" ", "") and "33.68" in raw


def test_percentiles_birthday_today_counts_tomorrow_does_not(server):
    import_id = post_import(server, [citizen(1, town="Сегодня", birth_date=years_ago(30)),
                                     citizen(2, town="Завтра", birth_date=years_ago(30, 1))])
    assert percentiles(server, import_id) == [("Завтра", 29.0, 29.0, 29.0),
                                              ("Сегодня", 30.0, 30.0, 30.0)]


def test_percentiles_29_february_birth(server):
    now = today()
    age = now.year - 2000 - ((now.month, now.day) < (2, 29))
    import_id = post_import(server, [citizen(1, birth_date="29.02.2000")])
    assert percentiles(server, import_id) == [("Москва", float(age), float(age), float(age))]


def test_percentiles_towns_differing_in_case_are_separate(server):
    import_id = post_import(server, town_of_ages("москва", [10], 1) + town_of_ages("Москва", [20], 2)
                            + town_of_ages("МОСКВА", [30], 3))
    assert percentiles(server, import_id) == [("МОСКВА", 30.0, 30.0, 30.0),
                                              ("Москва", 20.0, 20.0, 20.0),
                                              ("москва", 10.0, 10.0, 10.0)]


def test_percentiles_follow_patched_town_and_birth_date(server):
    import_id = post_import(server, town_of_ages("Москва", [10, 20]))
    assert percentiles(server, import_id) == [("Москва", 15.0, 17.5, 19.9)]
    server.request("PATCH", f"/imports/{import_id}/citizens/2", json={"town": "Керчь"})
    assert percentiles(server, import_id) == [("Керчь", 20.0, 20.0, 20.0),
                                              ("Москва", 10.0, 10.0, 10.0)]
    server.request("PATCH", f"/imports/{import_id}/citizens/1", json={"birth_date": years_ago(40)})
    assert percentiles(server, import_id) == [("Керчь", 20.0, 20.0, 20.0),
                                              ("Москва", 40.0, 40.0, 40.0)]


# -- size limits -----------------------------------------------------------------------------

def test_largest_import_round_trips_exactly_while_the_server_keeps_serving(server):
    """10,000 citizens, 1000 pairs, every string 256 × "ё", sent as ~63 MB of \\u escapes."""
    top = 2 ** 31 - 1
    citizens = [citizen(top - i, town=CYRILLIC_256, street=CYRILLIC_256, building=CYRILLIC_256,
                        name=CYRILLIC_256, apartment=top) for i in range(10_000)]
    for i in range(0, 2000, 2):
        citizens[i]["relatives"].append(top - i - 1)
        citizens[i + 1]["relatives"].append(top - i)
    body = json.dumps({"citizens": citizens}).encode()
    assert len(body) > 60_000_000

    posted = threading.Event()
    pings: list[bool] = []

    def ping_during_import() -> None:
        while not posted.is_set():
            r = server.request("GET", "/api/ping", headers={"Connection": "close"})
            pings.append(r.status_code == 200 and not posted.is_set())

    pinger = threading.Thread(target=ping_during_import)
    pinger.start()
    try:
        r = server.request("POST", "/imports", data=body,
                           headers={"Content-Type": "application/json"}, timeout=60)
    finally:
        posted.set()
        pinger.join()
    assert r.status_code == 201, r.text
    assert any(pings), "no request was answered while the import was running"
    import_id = r.json()["data"]["import_id"]
    assert get_citizens(server, import_id) == sorted(citizens, key=lambda c: c["citizen_id"])


def test_body_over_the_limit_is_413_and_the_server_keeps_serving(server):
    limit = 80 * 1024 * 1024
    head = (f"POST /imports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n").encode()
    before = server.snapshot(*TABLES)
    reply = server.raw(head + b'{"citizens": [')
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert server.snapshot(*TABLES) == before
    post_import(server, [citizen(1)])


def test_chunked_body_over_the_limit_is_413(busy_server):
    chunk = b"x" * 4096
    body = b"".join(b"1000\r\n" + chunk + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    head = (b"POST /imports HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    before = busy_server.snapshot(*TABLES)
    reply = busy_server.raw(head + body)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert busy_server.snapshot(*TABLES) == before
    assert busy_server.request("GET", "/api/ping").status_code == 200


def test_limit_is_the_imports_max_body_setting(busy_server):
    body = json.dumps({"citizens": [citizen(i) for i in range(1, 400)]}).encode()
    assert len(body) > 64 * 1024
    assert_rejected(busy_server, "POST", "/imports", 413, data=body,
                    headers={"Content-Type": "application/json"})


# -- helpers: /generate, /init, /make_citizens_dust ------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
def test_generate_gives_a_valid_import(server, method):
    r = server.request(method, "/generate/200?relations=50&seed=7")
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["citizens"] and len(body["citizens"]) == 200
    assert sum(len(c["relatives"]) for c in body["citizens"]) == 100
    assert all(c["citizen_id"] not in c["relatives"] for c in body["citizens"])
    assert server.request(method, "/generate/200?relations=50&seed=7").json() == body
    import_id = post_import(server, body["citizens"])
    stored = get_citizens(server, import_id)
    assert stored == sorted(({**c, "relatives": sorted(c["relatives"])} for c in body["citizens"]),
                            key=lambda c: c["citizen_id"])


def test_generate_defaults_and_worst_case(server):
    body = server.request("GET", "/generate/10?worst=1").json()
    assert len(body["citizens"]) == 10
    assert sum(len(c["relatives"]) for c in body["citizens"]) == 2 * 5  # min(1000, count // 2)
    first = body["citizens"][0]
    assert first["citizen_id"] == 2 ** 31 - 1 and first["apartment"] == 2 ** 31 - 1
    assert {first[f] for f in ("town", "street", "building", "name")} == {CYRILLIC_256}
    post_import(server, body["citizens"])
    assert server.request("GET", "/generate/0").json() == {"citizens": []}


@pytest.mark.parametrize("path", [
    "/generate/10001", "/generate/10?relations=46", "/generate/10?relations=-1",
    "/generate/10?relations=x", "/generate/10?seed=abc", "/generate/10?worst=2",
])
def test_generate_rejects_bad_parameters(server, path):
    assert server.request("GET", path).status_code == 400


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_init_is_idempotent_and_keeps_data(server, method):
    import_id = post_import(server, [citizen(1)])
    for _ in range(2):
        r = server.request(method, "/init")
        assert r.status_code == 200 and r.json() == {"data": {"status": "ok"}}
    assert get_citizens(server, import_id) == [citizen(1)]


def test_make_citizens_dust_requires_the_admin_token(server):
    import_id = post_import(server, [citizen(1)])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic secret"}):
        r = assert_rejected(server, "POST", "/make_citizens_dust", 401, headers=headers)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert get_citizens(server, import_id) == [citizen(1)]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_make_citizens_dust_wipes_rows_and_ids_are_never_reused(server, method):
    import_id = post_import(server, [citizen(1, [2]), citizen(2, [1])])
    r = server.request(method, "/make_citizens_dust", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"data": {"status": "ok"}}
    assert server.snapshot("imports", "citizens", "relations") == {
        "imports": [], "citizens": [], "relations": []}
    assert server.request("GET", f"/imports/{import_id}/citizens").status_code == 404
    assert post_import(server, [citizen(1)]) > import_id


def test_make_citizens_dust_is_403_without_a_configured_token(busy_server):
    post_import(busy_server, [citizen(1)])
    r = assert_rejected(busy_server, "GET", "/make_citizens_dust", 403, headers=ADMIN)
    assert "admin_token" in r.json()["error"]["message"]


def test_helpers_can_be_switched_off(tmp_path):
    with running_server(tmp_path, ["citizens"], workers=1, admin_token="secret",
                        citizens_helpers=False) as s:
        for method, path in (("GET", "/generate/5"), ("POST", "/init"),
                             ("POST", "/make_citizens_dust")):
            assert s.request(method, path, headers=ADMIN).status_code == 404
        assert s.request("POST", "/imports", json={"citizens": []}).status_code == 201
