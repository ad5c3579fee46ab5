"""HTTP endpoints of the sales reports API (API.md §B.1): thin handlers over validation and
store, plus the seed's admin helpers /clear/ and /create/."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from apps.sales import store
from apps.sales.tables import MAX_PRICE, SCHEMA
from apps.sales.validation import (
    INT64_MAX,
    MAX_TEXT,
    MAX_YEAR,
    int_params,
    validate_item,
    validate_sale,
    validate_store,
)
from framework.web.app import ApiRequest, App, Example
from framework.web.db import transaction
from framework.web.params import IntParam

# an unmatched path under these is the API's JSON 404, not a static file lookup
app = App("sales", schema=SCHEMA, title="Sales network reports",
          claims=["/items/", "/stores/", "/sales/"])

ID = {"type": "integer", "minimum": 1}
TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT}
ITEM = {"type": "object", "required": ["id", "name", "price"], "properties": {
    "id": ID, "name": TEXT, "price": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE}}}
STORE = {"type": "object", "required": ["id", "address"],
         "properties": {"id": ID, "address": TEXT}}
SALE = {"type": "object", "required": ["id", "sale_time", "item_id", "store_id"], "properties": {
    "id": ID, "sale_time": {"type": "string", "format": "date-time"}, "item_id": ID,
    "store_id": ID}}
TOP_STORE = {"type": "object", "required": ["id", "address", "income"], "properties": {
    "id": ID, "address": TEXT, "income": {"type": "integer"}}}
TOP_ITEM = {"type": "object", "required": ["id", "name", "sales_amount"], "properties": {
    "id": ID, "name": TEXT, "sales_amount": {"type": "integer"}}}
STATUS = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}


def without_id(schema: dict[str, Any]) -> dict[str, Any]:
    """The request body of a create: the object without its server-given id."""
    return {"type": "object", "additionalProperties": False,
            "required": [name for name in schema["required"] if name != "id"],
            "properties": {k: v for k, v in schema["properties"].items() if k != "id"}}


def array_of(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


CNT = IntParam("how many rows at most (1 .. the sales_max_cnt setting)", 1, "sales_max_cnt",
               default=10)
MONTH = IntParam("month 1..12 (default: the current UTC month)", 1, 12)
YEAR = IntParam("year (default: the current UTC year)", 1, MAX_YEAR)
SEED = IntParam("seed of the random generator: same seed, same data", 0, INT64_MAX)
TOP_STORES_QUERY = {"cnt": CNT, "mm": MONTH, "gg": YEAR}
TOP_ITEMS_QUERY = {"cnt": CNT}
CREATE_QUERY = {"seed": SEED}

ITEM_EXAMPLE = {"id": 1, "name": "item-1", "price": 4200}
STORE_EXAMPLE = {"id": 1, "address": "store-1"}
SALE_EXAMPLE = {"id": 1, "sale_time": "2024-03-05T12:34:56.000000Z", "item_id": 1,
                "store_id": 1}


def without(example: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in example.items() if k not in names}


@app.get("/items/", response_schema=array_of(ITEM), example=Example(response=[ITEM_EXAMPLE]))
def list_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Every item, by id."""
    return store.list_items(req.db)


@app.post("/items/", status=201, request_schema=without_id(ITEM), response_schema=ITEM,
          example=Example(body=without(ITEM_EXAMPLE, "id"), response=ITEM_EXAMPLE))
def create_item(req: ApiRequest) -> dict[str, Any]:
    """Add an item (optional extra of API.md §B.1).

    A name may not be only whitespace, which JSON Schema cannot say.
    """
    values = validate_item(req.json())
    return store.insert_item(req.db, values["name"], values["price"])


@app.get("/stores/", response_schema=array_of(STORE), example=Example(response=[STORE_EXAMPLE]))
def list_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Every store, by id."""
    return store.list_stores(req.db)


@app.post("/stores/", status=201, request_schema=without_id(STORE), response_schema=STORE,
          example=Example(body=without(STORE_EXAMPLE, "id"), response=STORE_EXAMPLE))
def create_store(req: ApiRequest) -> dict[str, Any]:
    """Add a store (optional extra of API.md §B.1).

    An address may not be only whitespace, which JSON Schema cannot say.
    """
    values = validate_store(req.json())
    return store.insert_store(req.db, values["address"])


@app.post("/sales/", status=201, response_schema=SALE, request_schema={
    "type": "object", "additionalProperties": False, "required": ["item_id", "store_id"],
    "properties": {"item_id": ID, "store_id": ID, "sale_time": {
        "type": "string", "description": "ISO-8601; UTC when no offset is given; default now"}}},
    example=Example(body=without(SALE_EXAMPLE, "id"), response=SALE_EXAMPLE))
def create_sale(req: ApiRequest) -> dict[str, Any]:
    """Record one sale of one unit.

    The item and the store must exist (a 400 naming the field otherwise), and sale_time must
    be a real ISO-8601 date-time: neither can be said in JSON Schema.
    """
    sale = validate_sale(req.json())
    return store.insert_sale(req.db, sale["item_id"], sale["store_id"], sale["sale_time"])


@app.get("/stores/top/", response_schema=array_of(TOP_STORE), query=TOP_STORES_QUERY,
         example=Example(params={"cnt": 3, "mm": 3, "gg": 2024},
                         response=[{"id": 1, "address": "store-1", "income": 12600}]))
def top_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Stores by income in one UTC month, highest first, ties by id; no sales, no row."""
    now = datetime.now(timezone.utc)
    args = int_params(req.query, {"cnt": CNT.bounds(req.settings),
                                  "mm": MONTH.bounds(req.settings, now.month),
                                  "gg": YEAR.bounds(req.settings, now.year)})
    return store.top_stores(req.db, args["gg"], args["mm"], args["cnt"])


@app.get("/items/top/", response_schema=array_of(TOP_ITEM), query=TOP_ITEMS_QUERY,
         example=Example(params={"cnt": 3},
                         response=[{"id": 1, "name": "item-1", "sales_amount": 3}]))
def top_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Items by number of sales over all time, highest first, ties by id."""
    args = int_params(req.query, {"cnt": CNT.bounds(req.settings)})
    return store.top_items(req.db, args["cnt"])


# -- the seed's admin helpers (API.md Decisions §1): GET as the seed had it, and POST --------

def clear(req: ApiRequest) -> dict[str, Any]:
    """Delete every item, store and sale (admin only); ids are never reused."""
    with transaction(req.db) as conn:
        store.wipe(conn)
    return {"status": "ok"}


def create(req: ApiRequest) -> dict[str, Any]:
    """Replace all data with the seed's demo set (admin only); ?seed=N makes it reproducible.

    As the seed dropped and re-created the tables, ids start again at 1: items item-1 ..
    item-50, stores store-1 .. store-50.
    """
    seed = int_params(req.query, {"seed": SEED.bounds(req.settings)})["seed"]
    year = datetime.now(timezone.utc).year
    with transaction(req.db) as conn:
        store.wipe(conn)
        store.restart_ids(conn)
        counts = store.fill_demo(conn, random.Random(seed), year)
    return {"status": "ok", **counts}


CREATED = {**STATUS, "properties": {**STATUS["properties"], **{
    name: {"type": "integer", "minimum": 0} for name in ("items", "stores", "sales")}}}
for method in ("GET", "POST"):
    app.route(method, "/clear/", admin=True, response_schema=STATUS,
              example=Example(response={"status": "ok"}))(clear)
    app.route(method, "/create/", admin=True, response_schema=CREATED, query=CREATE_QUERY,
              example=Example(params={"seed": 7}, response={
                  "status": "ok", "items": 50, "stores": 50, "sales": 3600}))(create)
