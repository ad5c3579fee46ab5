"""App E, interests and scores (API.md §E), against a real server with several workers.

Every endpoint, every error class and every §E.4 edge case, with the OTUS canonical cases of
§E.1; after each rejected write the database is checked unchanged. The duplicate-POST race
sends ten identical POSTs at once, several times, and expects exactly one 201.
"""
from __future__ import annotations

import datetime
import json
import re
import threading
from typing import Any

import pytest
import requests
from support import running_server

from apps.scores.validation import score, years_before

# the whole suite runs on each database backend (conftest.py: backend)
pytestmark = pytest.mark.usefixtures("backend")

TABLES = ("client_interests", "client_scores")
INT64_MAX = 2 ** 63 - 1
EMAIL = "stupnikov@otus.ru"
PHONE = "79175002040"


@pytest.fixture(scope="module")
def server(tmp_path_factory, backend: str):
    with running_server(tmp_path_factory.mktemp("scores"), ["scores"], workers=4) as s:
        yield s


class Ids:
    """Fresh client ids, so tests sharing one server never collide."""

    def __init__(self) -> None:
        self.next = 1000
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.next += 1
            return self.next


new_id = Ids()


def send(server, method: str, path: str, body: Any = None) -> requests.Response:
    return server.request(method, path, json=body) if body is not None \
        else server.request(method, path)


def rejected(server, method: str, path: str, body: Any, status: int = 400,
             fields: set[str] | None = None) -> dict:
    """Send a write that must fail; check its envelope and that the database did not change."""
    before = server.snapshot(*TABLES)
    r = send(server, method, path, body)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    error = r.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                             409: "conflict", 415: "unsupported_media_type"}[status]
    if status == 400 and error["message"] != "Request validation has failed":
        raise AssertionError(f"unexpected 400 message: {error}")
    if fields is not None:
        assert set(error["fields"]) == fields, error
    assert server.snapshot(*TABLES) == before
    return error


def created(server, path: str, body: dict) -> dict:
    r = send(server, "POST", path, body)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == server.url(f"{path}/{body['client_id']}")
    return r.json()


def stored(server, table: str, client_id: int) -> tuple | None:
    with server.db() as conn:
        return conn.execute(f"SELECT * FROM {table} WHERE client_id = ?",
                            (client_id,)).fetchone()


# == interests ==============================================================================

def test_interests_create_read_and_store(server):
    client_id = new_id()
    body = {"client_id": client_id, "interests": ["books", "hi-tech", "кино"]}
    assert created(server, "/api/interests", body) == body
    assert server.get(f"/api/interests/{client_id}").json() == body
    assert server.get(f"/api/interests/{client_id}/").json() == body  # other slash form
    row = stored(server, "client_interests", client_id)
    assert json.loads(row[1]) == body["interests"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", row[2])  # §1.9


@pytest.mark.parametrize("interests", [
    [],
    ["tv"],
    ["x" * 64],  # the longest interest
    ["ё" * 64],  # lengths count characters, not bytes
    [f"i{n}" for n in range(50)],  # the longest list
    ["pets", "cars", "books"],  # order is kept as sent, not sorted
    [" "],  # non-empty is all that is asked of an interest
])
def test_interests_valid_edges(server, interests):
    client_id = new_id()
    assert created(server, "/api/interests", {"client_id": client_id, "interests": interests}) \
        == {"client_id": client_id, "interests": interests}
    assert server.get(f"/api/interests/{client_id}").json()["interests"] == interests


def test_interests_largest_client_id(server):
    rejected_or_new = server.get(f"/api/interests/{INT64_MAX}")
    if rejected_or_new.status_code == 404:
        created(server, "/api/interests", {"client_id": INT64_MAX, "interests": []})
    assert server.get(f"/api/interests/{INT64_MAX}").json()["client_id"] == INT64_MAX


@pytest.mark.parametrize("client_id", [
    "1", 1.5, 1.0, True, False, -1, None, INT64_MAX + 1, [1], {"id": 1},
])
def test_interests_bad_client_id(server, client_id):
    rejected(server, "POST", "/api/interests", {"client_id": client_id, "interests": []},
             fields={"client_id"})


def test_interests_missing_client_id(server):
    rejected(server, "POST", "/api/interests", {"interests": ["tv"]}, fields={"client_id"})


def test_interests_float_written_with_exponent(server):
    before = server.snapshot(*TABLES)
    r = server.request("POST", "/api/interests", data=b'{"client_id": 1e3, "interests": []}',
                       headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and set(r.json()["error"]["fields"]) == {"client_id"}
    assert server.snapshot(*TABLES) == before


@pytest.mark.parametrize("interests", [
    "books",  # not a list
    {"books": 1},
    None,
    [1],  # not strings
    ["books", None],
    [["books"]],
    [""],  # empty string
    ["x" * 65],  # too long
    ["books", "tv", "books"],  # duplicates
    [f"i{n}" for n in range(51)],  # too many
])
def test_interests_bad_list(server, interests):
    rejected(server, "POST", "/api/interests", {"client_id": new_id(), "interests": interests},
             fields={"interests"})


@pytest.mark.parametrize("body, fields", [
    ({"client_id": 5}, {"interests"}),  # missing
    ({"client_id": 5, "interests": [], "extra": 1}, {"extra"}),  # unknown field
    ({"client_id": 5, "interests": [], "updated_at": "x"}, {"updated_at"}),
    ({}, {"client_id", "interests"}),
    ([], {"body"}),  # not an object
    ("client", {"body"}),
    (1, {"body"}),
])
def test_interests_bad_shape(server, body, fields):
    rejected(server, "POST", "/api/interests", body, fields=fields)


def test_interests_duplicate_is_409(server):
    client_id = new_id()
    created(server, "/api/interests", {"client_id": client_id, "interests": ["tv"]})
    error = rejected(server, "POST", "/api/interests",
                     {"client_id": client_id, "interests": ["other"]}, status=409)
    assert error["fields"] == {"client_id": ["already exists"]}
    assert server.get(f"/api/interests/{client_id}").json()["interests"] == ["tv"]


def test_interests_replace(server):
    client_id = new_id()
    created(server, "/api/interests", {"client_id": client_id, "interests": ["tv"]})
    r = send(server, "PUT", f"/api/interests/{client_id}", {"interests": ["pets", "sport"]})
    assert r.status_code == 200
    assert r.json() == {"client_id": client_id, "interests": ["pets", "sport"]}
    r = send(server, "PUT", f"/api/interests/{client_id}",
             {"client_id": client_id, "interests": []})  # client_id may be repeated
    assert r.json() == {"client_id": client_id, "interests": []}
    assert server.get(f"/api/interests/{client_id}").json()["interests"] == []


def test_interests_replace_errors(server):
    client_id = new_id()
    created(server, "/api/interests", {"client_id": client_id, "interests": ["tv"]})
    path = f"/api/interests/{client_id}"
    rejected(server, "PUT", path, {"client_id": client_id + 1, "interests": []},
             fields={"client_id"})  # a body id that differs from the path
    rejected(server, "PUT", path, {"client_id": str(client_id), "interests": []},
             fields={"client_id"})
    rejected(server, "PUT", path, {}, fields={"interests"})
    rejected(server, "PUT", path, {"interests": ["a", "a"]}, fields={"interests"})
    rejected(server, "PUT", path, {"interests": [], "extra": True}, fields={"extra"})
    unknown = f"/api/interests/{new_id()}"
    rejected(server, "PUT", unknown, {"interests": []}, status=404)
    rejected(server, "PUT", unknown, {"interests": "x"}, fields={"interests"})  # 400 first


def test_interests_delete(server):
    client_id = new_id()
    created(server, "/api/interests", {"client_id": client_id, "interests": ["tv"]})
    r = send(server, "DELETE", f"/api/interests/{client_id}")
    assert (r.status_code, r.content) == (204, b"")
    assert stored(server, "client_interests", client_id) is None
    rejected(server, "DELETE", f"/api/interests/{client_id}", None, status=404)
    rejected(server, "GET", f"/api/interests/{client_id}", None, status=404)
    created(server, "/api/interests", {"client_id": client_id, "interests": ["again"]})


def test_interests_read_unknown(server):
    error = rejected(server, "GET", f"/api/interests/{new_id()}", None, status=404)
    assert error["message"].endswith("has no interests")
    rejected(server, "GET", "/api/interests/abc", None, status=404)
    rejected(server, "GET", f"/api/interests/{INT64_MAX + 1}", None, status=404)


def test_interests_list_and_filter(server):
    mine = sorted(new_id() for _ in range(3))
    for n, client_id in enumerate(reversed(mine)):
        created(server, "/api/interests", {"client_id": client_id, "interests": [f"i{n}"]})
    everything = server.get("/api/interests?page_size=100").json()
    listed = [item["client_id"] for item in everything["results"]]
    assert listed == sorted(listed)  # ordered by client_id
    query = ",".join(map(str, [mine[2], mine[0], 999999999]))
    body = server.get(f"/api/interests?client_ids={query}").json()
    assert body["count"] == 2
    assert [item["client_id"] for item in body["results"]] == [mine[0], mine[2]]
    # the parameter may repeat; duplicates are harmless
    body = server.get(f"/api/interests?client_ids={mine[1]}&client_ids={mine[1]},{mine[0]}")
    assert [item["client_id"] for item in body.json()["results"]] == mine[:2]


@pytest.mark.parametrize("path", ["/api/interests", "/api/scores"])
@pytest.mark.parametrize("value", ["1,,2", "a", "", ",", "1,", "-1", "1.5", " 1", "1 ,2",
                                   "+1", str(INT64_MAX + 1), "9" * 40, "١"])
def test_bad_client_ids_filter(server, path, value):
    r = server.get(path, params={"client_ids": value})
    assert r.status_code == 400
    assert set(r.json()["error"]["fields"]) == {"client_ids"}


# == scores =================================================================================

VALID_SCORES = [
    # the OTUS canonical valid cases (API.md §E.1) with their expected scores (§E.4)
    ({"phone": PHONE, "email": EMAIL}, 3.0),
    ({"phone": 79175002040, "email": EMAIL}, 3.0),
    ({"gender": 1, "birthday": "01.01.2000", "first_name": "a", "last_name": "b"}, 2.0),
    ({"gender": 0, "birthday": "01.01.2000"}, 0.0),
    ({"gender": 2, "birthday": "01.01.2000"}, 1.5),
    ({"first_name": "a", "last_name": "b"}, 0.5),
    ({"phone": PHONE, "email": EMAIL, "gender": 1, "birthday": "01.01.2000",
      "first_name": "a", "last_name": "b"}, 5.0),
]


def expected_item(client_id: int, fields: dict, points: float) -> dict:
    item = {"client_id": client_id, "phone": None, "email": None, "first_name": None,
            "last_name": None, "birthday": None, "gender": None, **fields, "score": points}
    if isinstance(item["phone"], int):
        item["phone"] = str(item["phone"])  # normalized to its string form
    return item


@pytest.mark.parametrize("fields, points", VALID_SCORES)
def test_scores_canonical_valid_cases(server, fields, points):
    client_id = new_id()
    item = created(server, "/api/scores", {"client_id": client_id, **fields})
    assert item == expected_item(client_id, fields, points)
    assert type(item["score"]) is float
    assert server.get(f"/api/scores/{client_id}").json() == item


INVALID_SCORES = [
    # the OTUS canonical invalid cases (API.md §E.1), each with the field(s) to blame
    ({}, {"body"}),
    ({"phone": PHONE}, {"body"}),
    ({"phone": "89175002040", "email": EMAIL}, {"phone"}),
    ({"phone": PHONE, "email": "stupnikovotus.ru"}, {"email"}),
    ({"phone": PHONE, "email": EMAIL, "gender": -1}, {"gender"}),
    ({"phone": PHONE, "email": EMAIL, "gender": "1"}, {"gender"}),
    ({"phone": PHONE, "email": EMAIL, "gender": 1, "birthday": "01.01.1890"}, {"birthday"}),
    ({"phone": PHONE, "email": EMAIL, "gender": 1, "birthday": "XXX"}, {"birthday"}),
    ({"phone": PHONE, "email": EMAIL, "gender": 1, "birthday": "01.01.2000",
      "first_name": 1}, {"first_name"}),
    ({"phone": PHONE, "email": EMAIL, "gender": 1, "birthday": "01.01.2000",
      "first_name": "s", "last_name": 2}, {"last_name"}),
    ({"phone": PHONE, "birthday": "01.01.2000", "first_name": "s"}, {"body"}),
    ({"email": EMAIL, "gender": 1, "last_name": 2}, {"last_name"}),
]


@pytest.mark.parametrize("fields, blamed", INVALID_SCORES)
def test_scores_canonical_invalid_cases(server, fields, blamed):
    rejected(server, "POST", "/api/scores", {"client_id": new_id(), **fields}, fields=blamed)


NAMES = {"first_name": "a", "last_name": "b"}


@pytest.mark.parametrize("field, value", [
    ("phone", 89175002040),
    ("phone", 7917500204),  # 10 digits
    ("phone", "7917500204"),
    ("phone", "791750020400"),
    ("phone", "7917500204a"),
    ("phone", "+79175002040"),
    ("phone", "７９１７５００２０４０"),  # full-width digits are not digits here
    ("phone", 79175002040.0),
    ("phone", True),
    ("phone", ["79175002040"]),
    ("email", 5),
    ("email", "no-at-sign"),
    ("email", "a@" + "b" * 255),  # 257 characters
    ("first_name", 1),
    ("first_name", "x" * 257),
    ("last_name", ["b"]),
    ("gender", True),  # bool is not an int here (API.md §1.4)
    ("gender", False),
    ("gender", 3),
    ("gender", 1.0),
    ("birthday", "31.02.2000"),  # not a real date
    ("birthday", "1.1.2000"),
    ("birthday", "2000-01-01"),
    ("birthday", "01/01/2000"),
    ("birthday", "01.01.00"),
    ("birthday", "01.01.2000\n"),
    ("birthday", " 01.01.2000"),
    ("birthday", 1012000),
])
def test_scores_field_rules(server, field, value):
    body = {"client_id": new_id(), **NAMES, field: value}
    rejected(server, "POST", "/api/scores", body, fields={field})


def test_scores_text_edges(server):
    client_id = new_id()
    item = created(server, "/api/scores", {"client_id": client_id, "first_name": "я" * 256,
                                           "last_name": " ", "email": "@"})
    assert item["first_name"] == "я" * 256 and item["email"] == "@"
    assert item["score"] == 2.0  # email 1.5 + both names 0.5


def test_scores_empty_and_null_mean_absent(server):
    client_id = new_id()
    item = created(server, "/api/scores", {
        "client_id": client_id, "phone": "", "email": None, "gender": "", "birthday": None,
        "first_name": "a", "last_name": "b"})
    assert item == expected_item(client_id, NAMES, 0.5)
    row = stored(server, "client_scores", client_id)
    assert row[1:7] == (None, None, "a", "b", None, None)
    # absent fields cannot complete a pair
    rejected(server, "POST", "/api/scores", {"client_id": new_id(), "phone": PHONE,
                                             "email": ""}, fields={"body"})


def test_scores_gender_zero_completes_the_pair_but_scores_nothing(server):
    client_id = new_id()
    item = created(server, "/api/scores", {"client_id": client_id, "gender": 0,
                                           "birthday": "01.01.2000", **NAMES})
    assert item["score"] == 0.5


def today() -> datetime.date:
    return datetime.datetime.now(datetime.timezone.utc).date()


def ddmmyyyy(day: datetime.date) -> str:
    return day.strftime("%d.%m.%Y")


def test_scores_birthday_window(server):
    oldest = years_before(today(), 70)
    for valid in (oldest, today(), datetime.date(2000, 2, 29)):
        client_id = new_id()
        item = created(server, "/api/scores", {"client_id": client_id, "gender": 1,
                                               "birthday": ddmmyyyy(valid)})
        assert (item["birthday"], item["score"]) == (ddmmyyyy(valid), 1.5)
        assert stored(server, "client_scores", client_id)[5] == valid.isoformat()
    for invalid in (oldest - datetime.timedelta(days=1), today() + datetime.timedelta(days=1)):
        rejected(server, "POST", "/api/scores", {"client_id": new_id(), "gender": 1,
                                                 "birthday": ddmmyyyy(invalid)},
                 fields={"birthday"})


def test_years_before_maps_29_february():
    assert years_before(datetime.date(2024, 2, 29), 70) == datetime.date(1954, 2, 28)
    assert years_before(datetime.date(2024, 2, 29), 4) == datetime.date(2020, 2, 29)
    assert years_before(datetime.date(2024, 3, 1), 70) == datetime.date(1954, 3, 1)


@pytest.mark.parametrize("values, points", [
    ({"phone": "7", "email": "@", "birthday": "2000-01-01", "gender": 2,
      "first_name": "a", "last_name": "b"}, 5.0),
    ({"phone": None, "email": None, "birthday": "2000-01-01", "gender": 0,
      "first_name": "a", "last_name": None}, 0.0),
    ({"phone": "7", "email": None, "birthday": None, "gender": 1,
      "first_name": None, "last_name": "b"}, 1.5),
])
def test_score_formula(values, points):
    assert score(values) == points


@pytest.mark.parametrize("body, fields", [
    ({"client_id": 1, **NAMES, "score": 0.5}, {"score"}),  # read-only, even when right
    ({"client_id": 1, **NAMES, "score": 42}, {"score"}),
    ({"client_id": 1, **NAMES, "account": "x"}, {"account"}),
    ({"client_id": 1, **NAMES, "Phone": PHONE}, {"Phone"}),
    ({**NAMES}, {"client_id"}),
    ({"client_id": "1", **NAMES}, {"client_id"}),
    ({"client_id": 1.5, **NAMES}, {"client_id"}),
    ({"client_id": True, **NAMES}, {"client_id"}),
    ({"client_id": -1, **NAMES}, {"client_id"}),
    ([NAMES], {"body"}),
])
def test_scores_bad_shape(server, body, fields):
    rejected(server, "POST", "/api/scores", body, fields=fields)


def test_scores_every_problem_is_reported_at_once(server):
    error = rejected(server, "POST", "/api/scores", {
        "client_id": -5, "phone": "1", "email": "x", "gender": 9, "birthday": "x",
        "first_name": 1, "last_name": 2, "score": 1, "extra": 1})
    assert set(error["fields"]) == {"client_id", "phone", "email", "gender", "birthday",
                                    "first_name", "last_name", "score", "extra"}


def test_scores_duplicate_is_409(server):
    client_id = new_id()
    created(server, "/api/scores", {"client_id": client_id, **NAMES})
    rejected(server, "POST", "/api/scores", {"client_id": client_id, "phone": PHONE,
                                             "email": EMAIL}, status=409)
    assert server.get(f"/api/scores/{client_id}").json()["score"] == 0.5


def test_scores_replace_recomputes(server):
    client_id = new_id()
    created(server, "/api/scores", {"client_id": client_id, **NAMES})
    full = {"phone": 79175002040, "email": EMAIL, "gender": 1, "birthday": "01.01.2000",
            **NAMES}
    r = send(server, "PUT", f"/api/scores/{client_id}", full)
    assert r.status_code == 200
    assert r.json() == expected_item(client_id, full, 5.0)
    assert server.get(f"/api/scores/{client_id}").json()["score"] == 5.0
    # a full replacement: what is left out becomes null
    r = send(server, "PUT", f"/api/scores/{client_id}/",
             {"client_id": client_id, "gender": 0, "birthday": "01.01.2000"})
    assert r.json() == expected_item(client_id, {"gender": 0, "birthday": "01.01.2000"}, 0.0)
    assert stored(server, "client_scores", client_id)[1:8] == (
        None, None, None, None, "2000-01-01", 0, 0.0)


def test_scores_replace_errors(server):
    client_id = new_id()
    created(server, "/api/scores", {"client_id": client_id, **NAMES})
    path = f"/api/scores/{client_id}"
    rejected(server, "PUT", path, {"client_id": client_id + 1, **NAMES}, fields={"client_id"})
    rejected(server, "PUT", path, {"client_id": True, **NAMES}, fields={"client_id"})
    rejected(server, "PUT", path, {"phone": PHONE}, fields={"body"})
    rejected(server, "PUT", path, {**NAMES, "score": 5.0}, fields={"score"})
    rejected(server, "PUT", path, {**NAMES, "gender": True}, fields={"gender"})
    unknown = f"/api/scores/{new_id()}"
    rejected(server, "PUT", unknown, NAMES, status=404)
    rejected(server, "PUT", unknown, {"phone": PHONE}, fields={"body"})


def test_scores_delete(server):
    client_id = new_id()
    created(server, "/api/scores", {"client_id": client_id, **NAMES})
    r = send(server, "DELETE", f"/api/scores/{client_id}")
    assert (r.status_code, r.content) == (204, b"")
    rejected(server, "DELETE", f"/api/scores/{client_id}", None, status=404)
    error = rejected(server, "GET", f"/api/scores/{client_id}", None, status=404)
    assert error["message"] == f"client {client_id} has no score"
    rejected(server, "PUT", f"/api/scores/{client_id}", NAMES, status=404)


def test_scores_list_and_filter(server):
    mine = sorted(new_id() for _ in range(3))
    for client_id in mine:
        created(server, "/api/scores", {"client_id": client_id, **NAMES})
    body = server.get("/api/scores", params={"client_ids": f"{mine[2]},{mine[0]}"}).json()
    assert body == {"count": 2, "next": None, "previous": None,
                    "results": [expected_item(mine[0], NAMES, 0.5),
                                expected_item(mine[2], NAMES, 0.5)]}
    everything = server.get("/api/scores?page_size=100").json()
    listed = [item["client_id"] for item in everything["results"]]
    assert listed == sorted(listed)


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/interests/5"), ("PUT", "/api/scores"), ("PATCH", "/api/scores/5"),
    ("DELETE", "/api/interests"),
])
def test_wrong_methods_are_405(server, method, path):
    rejected(server, method, path, {"client_id": 5, "interests": []}, status=405)


@pytest.mark.parametrize("path", ["/api/interests", "/api/scores"])
def test_wrong_content_type_is_415(server, path):
    before = server.snapshot(*TABLES)
    r = server.request("POST", path, data=json.dumps({"client_id": new_id(), **NAMES}),
                       headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert server.snapshot(*TABLES) == before


@pytest.mark.parametrize("path", ["/api/interests", "/api/scores"])
def test_malformed_json_is_400(server, path):
    before = server.snapshot(*TABLES)
    for body in (b'{"client_id": 1,', b'{"client_id": 1, "client_id": 2}', b"NaN", b""):
        r = server.request("POST", path, data=body,
                           headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert server.snapshot(*TABLES) == before


# == the duplicate-POST race ================================================================

def race(server, path: str, bodies: list[dict]) -> list[requests.Response]:
    """Send every body at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(bodies))
    results: list[requests.Response | None] = [None] * len(bodies)

    def post(index: int) -> None:
        with requests.Session() as session:
            session.get(server.url("/api/ping"), timeout=10)  # connect before the start
            barrier.wait()
            results[index] = session.post(server.url(path), json=bodies[index], timeout=30)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("path, make_body", [
    ("/api/interests", lambda client_id, n: {"client_id": client_id, "interests": [f"i{n}"]}),
    ("/api/scores", lambda client_id, n: {"client_id": client_id, "first_name": f"n{n}",
                                          "last_name": "b"}),
])
def test_ten_parallel_duplicate_posts_give_exactly_one_201(server, path, make_body):
    for _ in range(5):
        client_id = new_id()
        responses = race(server, path, [make_body(client_id, n) for n in range(10)])
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 9
        winner = next(r for r in responses if r.status_code == 201).json()
        assert server.get(f"{path}/{client_id}").json() == winner  # the winner's data stored
        table = "client_interests" if path == "/api/interests" else "client_scores"
        with server.db() as conn:
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE client_id = ?",
                                (client_id,)).fetchone()[0] == 1
