"""HTTP endpoints of the sales reports API (API.md §B.1): thin handlers over validation and
queries, plus the seed's admin helpers /clear/ and /create/."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from apps.sales import queries
from apps.sales.schema import MAX_PRICE, SCHEMA
from apps.sales.validation import (
    INT64_MAX,
    MAX_TEXT,
    MAX_YEAR,
    int_params,
    validate_item,
    validate_sale,
    validate_store,
)
from framework.app import ApiRequest, App
from framework.auth import require_admin
from framework.db import transaction

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


def top_cnt(req: ApiRequest) -> tuple[int, int, int]:
    """The ``cnt`` parameter's (default, lowest, highest)."""
    return 10, 1, req.settings["sales_max_cnt"]


def param_doc(description: str, minimum: int, maximum: int | None = None) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": minimum, "description": description}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


CNT_DOC = param_doc("how many rows at most (default 10; 1..sales_max_cnt, 1000 by default)", 1)


@app.get("/items/", response_schema=array_of(ITEM))
def list_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Every item, by id."""
    return queries.list_items(req.db)


@app.post("/items/", status=201, request_schema=without_id(ITEM), response_schema=ITEM)
def create_item(req: ApiRequest) -> dict[str, Any]:
    """Add an item (optional extra of API.md §B.1)."""
    values = validate_item(req.json())
    return queries.insert_item(req.db, values["name"], values["price"])


@app.get("/stores/", response_schema=array_of(STORE))
def list_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Every store, by id."""
    return queries.list_stores(req.db)


@app.post("/stores/", status=201, request_schema=without_id(STORE), response_schema=STORE)
def create_store(req: ApiRequest) -> dict[str, Any]:
    """Add a store (optional extra of API.md §B.1)."""
    values = validate_store(req.json())
    return queries.insert_store(req.db, values["address"])


@app.post("/sales/", status=201, response_schema=SALE, request_schema={
    "type": "object", "additionalProperties": False, "required": ["item_id", "store_id"],
    "properties": {"item_id": ID, "store_id": ID, "sale_time": {
        "type": "string", "description": "ISO-8601; UTC when no offset is given; default now"}}})
def create_sale(req: ApiRequest) -> dict[str, Any]:
    """Record one sale of one unit; 400 naming the field if the item or store is unknown."""
    sale = validate_sale(req.json())
    return queries.insert_sale(req.db, sale["item_id"], sale["store_id"], sale["sale_time"])


@app.get("/stores/top/", response_schema=array_of(TOP_STORE), query={
    "cnt": CNT_DOC,
    "mm": param_doc("month 1..12 (default: the current UTC month)", 1, 12),
    "gg": param_doc("year (default: the current UTC year)", 1, MAX_YEAR)})
def top_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Stores by income in one UTC month, highest first, ties by id; no sales, no row."""
    now = datetime.now(timezone.utc)
    args = int_params(req.query, {"cnt": top_cnt(req), "mm": (now.month, 1, 12),
                                  "gg": (now.year, 1, MAX_YEAR)})
    return queries.top_stores(req.db, args["gg"], args["mm"], args["cnt"])


@app.get("/items/top/", response_schema=array_of(TOP_ITEM), query={"cnt": CNT_DOC})
def top_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Items by number of sales over all time, highest first, ties by id."""
    args = int_params(req.query, {"cnt": top_cnt(req)})
    return queries.top_items(req.db, args["cnt"])


# -- the seed's admin helpers (API.md Decisions §1): GET as the seed had it, and POST --------

def clear(req: ApiRequest) -> dict[str, Any]:
    """Delete every item, store and sale (admin only); ids are never reused."""
    require_admin(req)
    with transaction(req.db) as conn:
        queries.wipe(conn)
    return {"status": "ok"}


def create(req: ApiRequest) -> dict[str, Any]:
    """Replace all data with the seed's demo set (admin only); ?seed=N makes it reproducible."""
    require_admin(req)
    seed = int_params(req.query, {"seed": (None, 0, INT64_MAX)})["seed"]
    year = datetime.now(timezone.utc).year
    with transaction(req.db) as conn:
        queries.wipe(conn)
        counts = queries.fill_demo(conn, random.Random(seed), year)
    return {"status": "ok", **counts}


for method in ("GET", "POST"):
    app.route(method, "/clear/", response_schema=STATUS)(clear)
    app.route(method, "/create/", response_schema=STATUS, query={
        "seed": param_doc("seed of the random generator: same seed, same data", 0)})(create)
