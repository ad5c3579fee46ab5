"""App B, sales network reports (API.md §B), against a real server with several workers.

Covers the worked example of §B.2 with its exact answers, every edge case of §B.5, the
invariants after /create/, 50 concurrent POSTs, and the admin gate of the Decisions (§1).
Every rejected write is checked to leave the database exactly as it was, rollups included.
Expected tops are recomputed independently from the raw ``sales`` rows (see ``truth``).
"""
from __future__ import annotations

import contextlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import pytest
from support import ServerProcess, running_server

# the whole suite runs on each database backend (conftest.py: backend)
pytestmark = pytest.mark.usefixtures("backend")

TOKEN = "s3cret-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
TABLES = ("sales", "item", "store", "item_sales", "store_month_income", "sqlite_sequence")
SALE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str):
    with running_server(tmp_path_factory.mktemp("sales"), ["sales"], workers=3,
                        admin_token=TOKEN) as s:
        yield s


@pytest.fixture(scope="module")
def tokenless(tmp_path_factory: pytest.TempPathFactory, backend: str):
    """A server with no admin token configured (the admin helpers are off) and a lower cnt cap."""
    with running_server(tmp_path_factory.mktemp("sales-tokenless"), ["sales"],
                        sales_max_cnt=5) as s:
        yield s


@pytest.fixture
def shop(server: ServerProcess) -> dict[str, int]:
    """An emptied database with two items (prices 100 and 250) and two stores."""
    clear(server)
    return {"item1": add_item(server, "item-1", 100), "item2": add_item(server, "item-2", 250),
            "store1": add_store(server, "store-1"), "store2": add_store(server, "store-2")}


# -- helpers -------------------------------------------------------------------------------

def admin(server: ServerProcess, path: str, method: str = "POST") -> Any:
    response = server.request(method, path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def clear(server: ServerProcess) -> None:
    assert admin(server, "/clear/") == {"status": "ok"}


def add_item(server: ServerProcess, name: str, price: int) -> int:
    response = server.request("POST", "/items/", json={"name": name, "price": price})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "name": name, "price": price}
    return body["id"]


def add_store(server: ServerProcess, address: str) -> int:
    response = server.request("POST", "/stores/", json={"address": address})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {"id": body["id"], "address": address}
    return body["id"]


def add_sale(server: ServerProcess, item_id: int, store_id: int,
             sale_time: str | None = None, times: int = 1) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"item_id": item_id, "store_id": store_id}
    if sale_time is not None:
        body["sale_time"] = sale_time
    sales = []
    for _ in range(times):
        response = server.request("POST", "/sales/", json=body)
        assert response.status_code == 201, response.text
        sales.append(response.json())
    return sales


def get(server: ServerProcess, path: str) -> Any:
    response = server.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def assert_error(response: Any, status: int, fields: set[str] | None = None) -> dict:
    """The one error envelope (API.md §1.1); ``fields`` are the field names it must name."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == CODES[status]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if fields is not None:
        assert set(error["fields"]) == fields, error
    return error


def assert_rejected(server: ServerProcess, method: str, path: str, status: int,
                    fields: set[str] | None = None, **kw: Any) -> dict:
    """The request is refused with ``status`` and the database is left exactly as it was."""
    before = server.snapshot(*TABLES)
    error = assert_error(server.request(method, path, **kw), status, fields)
    assert server.snapshot(*TABLES) == before
    return error


def month_bounds(year: int, month: int) -> tuple[str, str]:
    """[first instant, first instant of the next month) in the stored UTC text form."""
    start = datetime(year, month, 1)
    end = datetime(year + month // 12, month % 12 + 1, 1)
    return (start.isoformat(timespec="microseconds") + "Z",
            end.isoformat(timespec="microseconds") + "Z")


def truth(server: ServerProcess, year: int, month: int) -> tuple[list[dict], list[dict]]:
    """Both tops computed from the raw sales rows, without the app's rollup tables."""
    start, end = month_bounds(year, month)
    with contextlib.closing(server.db()) as conn:
        stores = conn.execute(
            "SELECT st.id, st.address, SUM(i.price) AS income FROM sales s "
            "JOIN item i ON i.id = s.item_id JOIN store st ON st.id = s.store_id "
            "WHERE s.sale_time >= ? AND s.sale_time < ? GROUP BY st.id "
            "ORDER BY income DESC, st.id", (start, end)).fetchall()
        items = conn.execute(
            "SELECT i.id, i.name, COUNT(*) AS n FROM sales s JOIN item i ON i.id = s.item_id "
            "GROUP BY i.id ORDER BY n DESC, i.id").fetchall()
    return ([{"id": i, "address": a, "income": n} for i, a, n in stores],
            [{"id": i, "name": name, "sales_amount": n} for i, name, n in items])


def assert_tops_match_truth(server: ServerProcess, year: int, month: int) -> None:
    stores, items = truth(server, year, month)
    assert get(server, f"/stores/top/?mm={month}&gg={year}&cnt=1000") == stores
    assert get(server, "/items/top/?cnt=1000") == items


def sql(server: ServerProcess, query: str, *args: Any) -> list[tuple]:
    with contextlib.closing(server.db()) as conn:
        return conn.execute(query, args).fetchall()


# -- §B.2 worked example ---------------------------------------------------------------------

def test_worked_example(tmp_path: Any) -> None:
    # a database of its own, so the ids are exactly the example's 1 and 2
    with running_server(tmp_path, ["sales"], workers=2) as fresh:
        assert add_item(fresh, "item-1", 100) == 1
        assert add_item(fresh, "item-2", 250) == 2
        assert add_store(fresh, "store-1") == 1
        assert add_store(fresh, "store-2") == 2
        add_sale(fresh, 1, 1, "2024-03-05T10:00:00Z", times=3)
        add_sale(fresh, 2, 2, "2024-03-10T10:00:00Z")
        add_sale(fresh, 2, 1, "2024-03-20T10:00:00Z")
        add_sale(fresh, 1, 2, "2024-04-02T10:00:00Z", times=5)

        stores = get(fresh, "/stores/top/?mm=3&gg=2024")
        assert stores == [{"id": 1, "address": "store-1", "income": 550},
                          {"id": 2, "address": "store-2", "income": 250}]
        assert all(type(row["income"]) is int for row in stores)
        assert get(fresh, "/stores/top/?mm=3&gg=2024&cnt=1") == [
            {"id": 1, "address": "store-1", "income": 550}]
        assert get(fresh, "/stores/top/?mm=5&gg=2024") == []
        items = get(fresh, "/items/top/")
        assert items == [{"id": 1, "name": "item-1", "sales_amount": 8},
                         {"id": 2, "name": "item-2", "sales_amount": 2}]
        assert all(type(row["sales_amount"]) is int for row in items)
        assert_tops_match_truth(fresh, 2024, 3)


# -- lists and POST /sales/ --------------------------------------------------------------------

def test_lists_are_bare_arrays_by_id(server: ServerProcess, shop: dict[str, int]) -> None:
    assert get(server, "/items/") == [{"id": shop["item1"], "name": "item-1", "price": 100},
                                      {"id": shop["item2"], "name": "item-2", "price": 250}]
    assert get(server, "/stores/") == [{"id": shop["store1"], "address": "store-1"},
                                       {"id": shop["store2"], "address": "store-2"}]


def test_post_sale_echoes_the_stored_row(server: ServerProcess, shop: dict[str, int]) -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    response = server.request("POST", "/sales/", json={"item_id": shop["item2"],
                                                       "store_id": shop["store1"]})
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    assert response.status_code == 201
    sale = response.json()
    assert set(sale) == {"id", "sale_time", "item_id", "store_id"}
    assert (sale["item_id"], sale["store_id"]) == (shop["item2"], shop["store1"])
    assert type(sale["id"]) is int
    assert SALE_TIME.fullmatch(sale["sale_time"])
    assert before <= datetime.fromisoformat(sale["sale_time"][:-1]) <= after
    assert sql(server, "SELECT id, sale_time, item_id, store_id FROM sales") == [
        (sale["id"], sale["sale_time"], shop["item2"], shop["store1"])]


@pytest.mark.parametrize("given, stored", [
    ("2024-03-05T12:34:56Z", "2024-03-05T12:34:56.000000Z"),
    ("2024-03-05T12:34:56.5", "2024-03-05T12:34:56.500000Z"),  # no offset: UTC
    ("2024-03-05T12:34:56.789012+03:00", "2024-03-05T09:34:56.789012Z"),
    ("2024-03-01T01:00:00+02:00", "2024-02-29T23:00:00.000000Z"),
    ("2024-03-05", "2024-03-05T00:00:00.000000Z"),
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
])
def test_sale_time_is_normalized_to_utc(server: ServerProcess, shop: dict[str, int],
                                        given: str, stored: str) -> None:
    sale, = add_sale(server, shop["item1"], shop["store1"], given)
    assert sale["sale_time"] == stored
    assert sql(server, "SELECT sale_time FROM sales WHERE id = ?", sale["id"]) == [(stored,)]


def test_content_type_with_charset_and_missing_content_type(server: ServerProcess,
                                                            shop: dict[str, int]) -> None:
    body = f'{{"item_id": {shop["item1"]}, "store_id": {shop["store1"]}}}'.encode()
    for headers in ({"Content-Type": "Application/JSON; charset=UTF-8"}, {}):
        response = server.request("POST", "/sales/", data=body, headers=headers)
        assert response.status_code == 201, response.text
    assert sql(server, "SELECT COUNT(*) FROM sales") == [(2,)]


BAD_SALES = [  # (body, fields named in the error); ids come from the shop fixture
    ({}, {"item_id", "store_id"}),
    ({"item_id": "item1"}, {"store_id"}),
    ({"store_id": "store1"}, {"item_id"}),
    ({"item_id": None, "store_id": "store1"}, {"item_id"}),
    ({"item_id": "item1", "store_id": None}, {"store_id"}),
    ({"item_id": "1", "store_id": "store1"}, {"item_id"}),
    ({"item_id": 1.0, "store_id": "store1"}, {"item_id"}),
    ({"item_id": "item1", "store_id": 1e3}, {"store_id"}),
    ({"item_id": True, "store_id": "store1"}, {"item_id"}),
    ({"item_id": "item1", "store_id": False}, {"store_id"}),
    ({"item_id": -1, "store_id": "store1"}, {"item_id"}),
    ({"item_id": 0, "store_id": "store1"}, {"item_id"}),
    ({"item_id": 2 ** 63, "store_id": "store1"}, {"item_id"}),
    ({"item_id": 10 ** 30, "store_id": 10 ** 30}, {"item_id", "store_id"}),
    ({"item_id": [1], "store_id": {"id": 1}}, {"item_id", "store_id"}),
    ({"item_id": "1); DROP TABLE sales; --", "store_id": "store1"}, {"item_id"}),
    ({"item_id": "item1", "store_id": "store1", "id": 7}, {"id"}),
    ({"item_id": "item1", "store_id": "store1", "price": 1}, {"price"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": None}, {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": "yesterday"}, {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": ""}, {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": "2023-02-29T00:00:00Z"},
     {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": "2024-03-05T25:00:00Z"},
     {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": 1709600000}, {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": "0001-01-01T00:00:00+01:00"},
     {"sale_time"}),
    ({"item_id": "item1", "store_id": "store1", "sale_time": "9999-12-31T23:00:00-02:00"},
     {"sale_time"}),
    # not an object at all
    ([1, 2], {"body"}),
    ("item_id=1", {"body"}),
    (5, {"body"}),
]


@pytest.mark.parametrize("body, fields", BAD_SALES)
def test_bad_sale_is_400_and_stores_nothing(server: ServerProcess, shop: dict[str, int],
                                            body: Any, fields: set[str]) -> None:
    if isinstance(body, dict):
        body = {k: shop.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    assert_rejected(server, "POST", "/sales/", 400, fields, json=body)


@pytest.mark.parametrize("item, store, fields", [
    (2 ** 63 - 1, "store1", {"item_id"}),
    ("item1", 999999, {"store_id"}),
    (999999, 999999, {"item_id", "store_id"}),
])
def test_unknown_item_or_store_is_400_naming_it(server: ServerProcess, shop: dict[str, int],
                                                item: Any, store: Any,
                                                fields: set[str]) -> None:
    body = {"item_id": shop.get(item, item), "store_id": shop.get(store, store)}
    error = assert_rejected(server, "POST", "/sales/", 400, fields, json=body)
    assert error["fields"] == {name: ["does not exist"] for name in fields}


@pytest.mark.parametrize("raw", [
    b"", b"   ", b"null", b"not json", b'{"item_id": 1, "store_id": 1', b"{'item_id': 1}",
    b'{"item_id": 1, "item_id": 2, "store_id": 1}',  # duplicate key
    b'{"item_id": NaN, "store_id": 1}', b'{"item_id": 1, "store_id": Infinity}',
    b'{"item_id": 1, "store_id": 1e400}', b"\xff\xfe{}", b'{"item_id": "\\ud800"}',
    b"[" * 100000 + b"]" * 100000,
])
def test_malformed_json_is_400_and_stores_nothing(server: ServerProcess, shop: dict[str, int],
                                                  raw: bytes) -> None:
    assert_rejected(server, "POST", "/sales/", 400, data=raw,
                    headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_wrong_content_type_is_415(server: ServerProcess, shop: dict[str, int],
                                   content_type: str) -> None:
    body = f'{{"item_id": {shop["item1"]}, "store_id": {shop["store1"]}}}'
    assert_rejected(server, "POST", "/sales/", 415, data=body,
                    headers={"Content-Type": content_type})


def test_body_over_the_limit_is_413(server: ServerProcess, shop: dict[str, int]) -> None:
    body = b'{"item_id": 1, "store_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert_rejected(server, "POST", "/sales/", 413, data=body,
                    headers={"Content-Type": "application/json"})


# -- POST /items/ and /stores/ (the optional extras) ------------------------------------------

@pytest.mark.parametrize("body, fields", [
    ({}, {"name", "price"}),
    ({"name": "x"}, {"price"}),
    ({"name": "", "price": 1}, {"name"}),
    ({"name": " \t", "price": 1}, {"name"}),
    ({"name": "x" * 257, "price": 1}, {"name"}),
    ({"name": 5, "price": 1}, {"name"}),
    ({"name": None, "price": 1}, {"name"}),
    ({"name": "a\x00b", "price": 1}, {"name"}),  # no text holds NUL, on either backend
    ({"name": "x", "price": -1}, {"price"}),
    ({"name": "x", "price": 1.5}, {"price"}),
    ({"name": "x", "price": 100.0}, {"price"}),
    ({"name": "x", "price": "100"}, {"price"}),
    ({"name": "x", "price": True}, {"price"}),
    ({"name": "x", "price": 10 ** 9 + 1}, {"price"}),
    ({"name": "x", "price": 2 ** 64}, {"price"}),
    ({"name": "x", "price": 1, "id": 3}, {"id"}),
    ([], {"body"}),
])
def test_bad_item_is_400(server: ServerProcess, shop: dict[str, int], body: Any,
                         fields: set[str]) -> None:
    assert_rejected(server, "POST", "/items/", 400, fields, json=body)


@pytest.mark.parametrize("body, fields", [
    ({}, {"address"}),
    ({"address": ""}, {"address"}),
    ({"address": None}, {"address"}),
    ({"address": 1}, {"address"}),
    ({"address": "a" * 257}, {"address"}),
    ({"address": "\x00"}, {"address"}),
    ({"address": "x", "name": "y"}, {"name"}),
    ("store-3", {"body"}),
])
def test_bad_store_is_400(server: ServerProcess, shop: dict[str, int], body: Any,
                          fields: set[str]) -> None:
    assert_rejected(server, "POST", "/stores/", 400, fields, json=body)


def test_item_and_store_limits_are_inclusive(server: ServerProcess, shop: dict[str, int]) -> None:
    add_item(server, "ё" * 256, 0)
    add_item(server, "dear", 10 ** 9)
    add_store(server, "Москва, ул. Льва Толстого, 16" + "x" * 227)


# -- the tops: parameters, ordering, months -------------------------------------------------

BAD_PARAMS = [
    ("/stores/top/", "cnt=0", "cnt"), ("/stores/top/", "cnt=-1", "cnt"),
    ("/stores/top/", "cnt=abc", "cnt"), ("/stores/top/", "cnt=1001", "cnt"),
    ("/stores/top/", "cnt=", "cnt"), ("/stores/top/", "cnt=1.5", "cnt"),
    ("/stores/top/", "cnt=+1", "cnt"), ("/stores/top/", "cnt=%201", "cnt"),
    ("/stores/top/", "cnt=%EF%BC%91", "cnt"),  # a fullwidth digit one
    ("/stores/top/", "cnt=1" + "0" * 5000, "cnt"),
    ("/stores/top/", "mm=13", "mm"), ("/stores/top/", "mm=0", "mm"),
    ("/stores/top/", "mm=abc", "mm"), ("/stores/top/", "mm=-1", "mm"),
    ("/stores/top/", "mm=1;DROP TABLE sales", "mm"),
    ("/stores/top/", "mm=1%3BDROP%20TABLE%20sales", "mm"),
    ("/stores/top/", "mm=3%27%20OR%20%271%27=%271", "mm"),
    ("/stores/top/", "gg=abc", "gg"), ("/stores/top/", "gg=0", "gg"),
    ("/stores/top/", "gg=10000", "gg"), ("/stores/top/", "gg=2024.0", "gg"),
    ("/stores/top/", "mm=3&gg=2024&cnt=abc&cnt=1", None),  # the last value wins: 200
    ("/items/top/", "cnt=0", "cnt"), ("/items/top/", "cnt=-1", "cnt"),
    ("/items/top/", "cnt=abc", "cnt"), ("/items/top/", "cnt=1001", "cnt"),
    ("/items/top/", "cnt=1;DROP TABLE sales", "cnt"), ("/items/top/", "cnt=", "cnt"),
]


@pytest.mark.parametrize("path, query, field", BAD_PARAMS)
def test_bad_query_param_is_400(server: ServerProcess, shop: dict[str, int], path: str,
                                query: str, field: str | None) -> None:
    add_sale(server, shop["item1"], shop["store1"], "2024-03-05T10:00:00Z")
    if field is None:
        assert len(get(server, f"{path}?{query}")) == 1
        return
    error = assert_rejected(server, "GET", f"{path}?{query}", 400, {field})
    assert "integer" in error["fields"][field][0]
    assert sql(server, "SELECT COUNT(*) FROM sales") == [(1,)]


def test_all_bad_params_are_reported_together(server: ServerProcess, shop: dict[str, int]) -> None:
    assert_error(server.get("/stores/top/?cnt=0&mm=13&gg=x"), 400, {"cnt", "mm", "gg"})


def test_good_params(server: ServerProcess, shop: dict[str, int]) -> None:
    add_sale(server, shop["item1"], shop["store1"], "2024-09-05T10:00:00Z")
    add_sale(server, shop["item2"], shop["store2"], "2024-09-05T10:00:00Z")
    expected = [{"id": shop["store2"], "address": "store-2", "income": 250},
                {"id": shop["store1"], "address": "store-1", "income": 100}]
    assert get(server, "/stores/top/?mm=09&gg=2024") == expected  # leading zero
    assert get(server, "/stores/top/?mm=9&gg=02024&cnt=0002") == expected
    assert get(server, "/stores/top/?mm=9&gg=2024&cnt=1000&unknown=x") == expected
    assert get(server, "/stores/top/?mm=9&gg=2024&cnt=1") == expected[:1]
    assert get(server, "/items/top/?cnt=1000") == [
        {"id": shop["item1"], "name": "item-1", "sales_amount": 1},
        {"id": shop["item2"], "name": "item-2", "sales_amount": 1}]
    assert get(server, "/stores/top/?mm=1&gg=1") == []
    assert get(server, "/stores/top/?mm=12&gg=9999") == []


def test_ties_are_ordered_by_id(server: ServerProcess, shop: dict[str, int]) -> None:
    item3 = add_item(server, "item-3", 200)
    store3 = add_store(server, "store-3")
    # the higher ids sell first, so insertion order would give the wrong answer
    add_sale(server, shop["item2"], store3, "2024-06-01T00:00:00Z")              # store3: 250
    add_sale(server, item3, shop["store2"], "2024-06-02T00:00:00Z")              # store2: 200
    add_sale(server, shop["item1"], shop["store1"], "2024-06-03T00:00:00Z", 2)   # store1: 200
    add_sale(server, shop["item2"], shop["store2"], "2024-07-01T00:00:00Z")
    add_sale(server, item3, shop["store1"], "2024-07-01T00:00:00Z")
    # items: item1 2, item2 2, item3 2 -> by id
    assert get(server, "/items/top/") == [
        {"id": shop["item1"], "name": "item-1", "sales_amount": 2},
        {"id": shop["item2"], "name": "item-2", "sales_amount": 2},
        {"id": item3, "name": "item-3", "sales_amount": 2}]
    assert get(server, "/stores/top/?mm=6&gg=2024") == [
        {"id": store3, "address": "store-3", "income": 250},
        {"id": shop["store1"], "address": "store-1", "income": 200},
        {"id": shop["store2"], "address": "store-2", "income": 200}]
    assert get(server, "/stores/top/?mm=6&gg=2024&cnt=2") == [
        {"id": store3, "address": "store-3", "income": 250},
        {"id": shop["store1"], "address": "store-1", "income": 200}]
    assert_tops_match_truth(server, 2024, 6)


def test_month_boundaries_are_utc_and_half_open(server: ServerProcess,
                                                shop: dict[str, int]) -> None:
    item, store = shop["item1"], shop["store1"]
    march = ["2023-03-31T23:59:59.999999Z",         # last instant of March
             "2023-03-01T00:00:00Z",                 # first instant of March
             "2023-04-01T01:59:59.999999+02:00",     # 23:59:59.999999Z on March 31
             "2023-02-28T23:30:00-01:00"]            # 00:30Z on March 1
    for moment in march:
        add_sale(server, item, store, moment)
    add_sale(server, item, store, "2023-04-01T00:00:00Z")         # first instant of April
    add_sale(server, item, store, "2023-02-28T23:59:59.999999Z")  # last instant of February
    add_sale(server, item, store, "2022-03-15T12:00:00Z")         # March of another year
    add_sale(server, item, store, "2024-03-15T12:00:00Z")

    def income(month: int, year: int) -> int | None:
        rows = get(server, f"/stores/top/?mm={month}&gg={year}")
        return rows[0]["income"] if rows else None

    assert income(3, 2023) == 400
    assert income(4, 2023) == 100
    assert income(2, 2023) == 100
    assert income(3, 2022) == 100
    assert income(3, 2024) == 100
    assert income(5, 2023) is None
    assert get(server, "/items/top/")[0]["sales_amount"] == 8
    for month in (2, 3, 4):
        assert_tops_match_truth(server, 2023, month)


def test_defaults_are_the_current_utc_month_and_year(server: ServerProcess,
                                                     shop: dict[str, int]) -> None:
    sale, = add_sale(server, shop["item2"], shop["store2"])
    add_sale(server, shop["item1"], shop["store1"], "2001-01-01T00:00:00Z")
    rows = get(server, "/stores/top/")
    now = datetime.now(timezone.utc)
    if sale["sale_time"][:7] != f"{now.year:04d}-{now.month:02d}":
        pytest.skip("the month changed during the test")
    assert rows == [{"id": shop["store2"], "address": "store-2", "income": 250}]


def test_cnt_defaults_to_10_and_larger_cnt_returns_all(server: ServerProcess,
                                                       shop: dict[str, int]) -> None:
    clear(server)
    store = add_store(server, "only")
    items = [add_item(server, f"i{n}", n) for n in range(12)]
    for n, item in enumerate(items):
        add_sale(server, item, store, "2024-01-01T00:00:00Z", times=1 + n % 3)
    assert len(get(server, "/items/top/")) == 10
    assert len(get(server, "/items/top/?cnt=1000")) == 12
    assert get(server, "/stores/top/?mm=1&gg=2024&cnt=1000") == [
        {"id": store, "address": "only", "income": sum(n * (1 + n % 3) for n in range(12))}]
    assert_tops_match_truth(server, 2024, 1)


def test_the_cnt_cap_is_a_setting(tokenless: ServerProcess, tmp_path: Any) -> None:
    assert get(tokenless, "/items/top/?cnt=5") == []
    error = assert_error(tokenless.get("/items/top/?cnt=6"), 400, {"cnt"})
    assert error["fields"]["cnt"] == ["must be an integer from 1 to 5"]
    assert_error(tokenless.get("/stores/top/?cnt=6"), 400, {"cnt"})
    broken = ServerProcess(tmp_path, ["sales"], sales_max_cnt=0)
    try:
        with pytest.raises(RuntimeError, match="sales_max_cnt must be >= 1"):
            broken.start()
    finally:
        broken.stop()


# -- empty database, methods, paths ---------------------------------------------------------

def test_empty_database_after_clear(server: ServerProcess, shop: dict[str, int]) -> None:
    add_sale(server, shop["item1"], shop["store1"])
    clear(server)
    for path in ("/items/", "/stores/", "/items/top/", "/stores/top/",
                 "/stores/top/?mm=1&gg=2024&cnt=1000"):
        assert get(server, path) == []
    assert sql(server, "SELECT COUNT(*) FROM item_sales") == [(0,)]
    assert sql(server, "SELECT COUNT(*) FROM store_month_income") == [(0,)]
    error = assert_rejected(server, "POST", "/sales/", 400, {"item_id", "store_id"},
                            json={"item_id": shop["item1"], "store_id": shop["store1"]})
    assert error["fields"] == {"item_id": ["does not exist"], "store_id": ["does not exist"]}


def test_ids_are_never_reused_after_clear(server: ServerProcess, shop: dict[str, int]) -> None:
    sale, = add_sale(server, shop["item1"], shop["store1"])
    clear(server)
    item, store = add_item(server, "again", 1), add_store(server, "again")
    assert item > shop["item2"] and store > shop["store2"]
    assert add_sale(server, item, store)[0]["id"] > sale["id"]


@pytest.mark.parametrize("method, path, allow", [
    ("DELETE", "/sales/", {"POST", "OPTIONS"}),
    ("GET", "/sales/", {"POST", "OPTIONS"}),
    ("PUT", "/items/", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("DELETE", "/stores/", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("POST", "/items/top/", {"GET", "HEAD", "OPTIONS"}),
    ("PATCH", "/stores/top", {"GET", "HEAD", "OPTIONS"}),
    ("DELETE", "/clear/", {"GET", "HEAD", "POST", "OPTIONS"}),
])
def test_wrong_method_is_405_with_allow(server: ServerProcess, shop: dict[str, int],
                                        method: str, path: str, allow: set[str]) -> None:
    before = server.snapshot(*TABLES)
    response = server.request(method, path, headers=ADMIN)
    assert_error(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow
    assert server.snapshot(*TABLES) == before


def test_missing_trailing_slash_is_the_same_route(server: ServerProcess,
                                                  shop: dict[str, int]) -> None:
    response = server.request("POST", "/sales", json={"item_id": shop["item1"],
                                                      "store_id": shop["store2"]})
    assert response.status_code == 201
    for path in ("/items", "/stores", "/items/top", "/stores/top"):
        assert get(server, path) == get(server, path + "/")
    assert get(server, "/stores/top?cnt=1") == get(server, "/stores/top/?cnt=1")
    assert admin(server, "/clear") == {"status": "ok"}


def test_head_and_unknown_paths(server: ServerProcess, shop: dict[str, int]) -> None:
    full = server.get("/items/")
    head = server.request("HEAD", "/items/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    for path in ("/items/1", "/items/top/x", "/sales/1", "/stores/abc/"):
        assert_error(server.get(path), 404)


# -- concurrency -----------------------------------------------------------------------------

def test_fifty_parallel_posts_are_all_stored(server: ServerProcess, shop: dict[str, int]) -> None:
    items, stores = [shop["item1"], shop["item2"]], [shop["store1"], shop["store2"]]
    bodies = [{"item_id": items[n % 2], "store_id": stores[n // 2 % 2],
               "sale_time": f"2025-0{1 + n % 3}-15T12:00:00Z"} for n in range(50)]

    def post(body: dict[str, int]) -> tuple[int, Any]:
        response = server.request("POST", "/sales/", json=body)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(post, bodies))
    assert [status for status, _ in results] == [201] * 50
    ids = [sale["id"] for _, sale in results]
    assert len(set(ids)) == 50
    stored = sql(server, "SELECT id, item_id, store_id, sale_time FROM sales ORDER BY id")
    assert stored == sorted((sale["id"], sale["item_id"], sale["store_id"], sale["sale_time"])
                            for _, sale in results)
    items_top = get(server, "/items/top/")
    assert sum(row["sales_amount"] for row in items_top) == 50
    assert {row["id"]: row["sales_amount"] for row in items_top} == {items[0]: 25, items[1]: 25}
    for month in (1, 2, 3):
        assert_tops_match_truth(server, 2025, month)
    assert sum(sum(row["income"] for row in get(server, f"/stores/top/?mm={m}&gg=2025"))
               for m in (1, 2, 3)) == 25 * 100 + 25 * 250


# -- /create/ and its invariants ---------------------------------------------------------------

def test_create_gives_the_seed_demo_data(server: ServerProcess) -> None:
    assert admin(server, "/create/", "GET") == {"status": "ok", "items": 50, "stores": 50,
                                                "sales": 3600}
    year = datetime.now(timezone.utc).year
    items, stores = get(server, "/items/"), get(server, "/stores/")
    assert len(items) == 50 and len(stores) == 50
    assert all(item["name"] == f"item-{item['id']}" and 100 <= item["price"] <= 10000
               for item in items)
    assert all(store["address"] == f"store-{store['id']}" for store in stores)
    assert [item["id"] for item in items] == list(range(1, 51))
    per_month = sql(server, "SELECT substr(sale_time, 1, 7), COUNT(*) FROM sales "
                            "GROUP BY 1 ORDER BY 1")
    assert per_month == [(f"{year}-{m:02d}", 300) for m in range(1, 13)]
    days = sql(server, "SELECT DISTINCT substr(sale_time, 9) FROM sales")
    assert {day for (day,) in days} <= {f"{d:02d}T00:00:00.000000Z" for d in range(1, 29)}

    # the invariants of §B.2
    assert sum(row["sales_amount"] for row in get(server, "/items/top/?cnt=50")) == 3600
    for month in range(1, 13):
        start, end = month_bounds(year, month)
        (expected,), = sql(server, "SELECT SUM(i.price) FROM sales s JOIN item i "
                                   "ON i.id = s.item_id WHERE s.sale_time >= ? "
                                   "AND s.sale_time < ?", start, end)
        incomes = get(server, f"/stores/top/?mm={month}&cnt=50")
        assert sum(row["income"] for row in incomes) == expected
        assert_tops_match_truth(server, year, month)
    # ...plus any sale POSTed since
    add_sale(server, items[0]["id"], stores[0]["id"], times=2)
    assert sum(row["sales_amount"] for row in get(server, "/items/top/?cnt=50")) == 3602


def demo_data(server: ServerProcess) -> tuple[list, list, list]:
    """The whole demo set, ids included, to compare two /create/ runs."""
    return (get(server, "/items/"), get(server, "/stores/"),
            sql(server, "SELECT id, sale_time, item_id, store_id FROM sales ORDER BY id"))


def test_create_restarts_ids_and_names_at_1(server: ServerProcess,
                                            shop: dict[str, int]) -> None:
    """As the seed's drop-and-create: earlier rows leave no gap in the new ids."""
    add_sale(server, shop["item1"], shop["store1"], times=3)
    admin(server, "/create/?seed=3")
    items, stores, sales = demo_data(server)
    assert [(item["id"], item["name"]) for item in items] == [
        (n, f"item-{n}") for n in range(1, 51)]
    assert stores == [{"id": n, "address": f"store-{n}"} for n in range(1, 51)]
    assert [sale[0] for sale in sales] == list(range(1, 3601))
    # a second /create/ starts from 1 again, and new rows continue after the demo set
    admin(server, "/create/", "GET")
    assert get(server, "/items/")[0]["id"] == 1 and get(server, "/stores/")[-1]["id"] == 50
    assert add_item(server, "after", 5) == 51
    assert add_sale(server, 51, 50)[0]["id"] == 3601


def test_create_with_a_seed_is_reproducible(server: ServerProcess) -> None:
    admin(server, "/create/?seed=7")
    first = demo_data(server)
    admin(server, "/create/?seed=7", "GET")
    assert demo_data(server) == first
    admin(server, "/create/?seed=8")
    assert demo_data(server) != first


@pytest.mark.parametrize("seed", ["abc", "-1", "", "1.5", str(2 ** 63)])
def test_create_with_a_bad_seed_is_400(server: ServerProcess, seed: str) -> None:
    admin(server, "/create/?seed=1")
    assert_rejected(server, "POST", f"/create/?seed={seed}", 400, {"seed"}, headers=ADMIN)


# -- the admin gate (API.md Decisions §1) ------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/clear/", "/create/", "/create/?seed=1"])
def test_admin_helpers_are_off_without_a_token(tokenless: ServerProcess, method: str,
                                               path: str) -> None:
    add_store(tokenless, "keep me")
    error = assert_rejected(tokenless, method, path, 403, headers=ADMIN)
    assert "admin_token" in error["message"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/clear/", "/create/"])
@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
])
def test_admin_helpers_need_the_right_token(server: ServerProcess, shop: dict[str, int],
                                            method: str, path: str,
                                            headers: dict[str, str]) -> None:
    before = server.snapshot(*TABLES)
    response = server.request(method, path, headers=headers)
    assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert server.snapshot(*TABLES) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_admin_helpers_work_with_the_token(server: ServerProcess, shop: dict[str, int],
                                           method: str) -> None:
    assert admin(server, "/create/", method)["sales"] == 3600
    assert sql(server, "SELECT COUNT(*) FROM sales") == [(3600,)]
    assert admin(server, "/clear/", method) == {"status": "ok"}
    assert sql(server, "SELECT COUNT(*) FROM sales") == [(0,)]


def test_documented_cnt_bound_is_the_configured_one(tokenless: ServerProcess) -> None:
    """/openapi.json and the validation read the same declaration and the same setting."""
    paths = tokenless.get("/openapi.json").json()["paths"]
    for path in ("/items/top/", "/stores/top/"):
        cnt = next(p for p in paths[path]["get"]["parameters"] if p["name"] == "cnt")
        assert (cnt["schema"]["minimum"], cnt["schema"]["maximum"]) == (1, 5)
        assert tokenless.get(f"{path}?cnt=5").status_code == 200
        assert tokenless.get(f"{path}?cnt=6").status_code == 400
        assert tokenless.get(f"{path}?cnt=0").status_code == 400
