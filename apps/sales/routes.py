"""HTTP endpoints of the sales reports API: thin handlers over validation and store, plus
the admin helpers /clear/ and /create/."""
from __future__ import annotations

import random
from typing import Any

from apps.sales import docs, store
from apps.sales.tables import SCHEMA
from apps.sales.validation import (
    CNT,
    MONTH,
    SEED,
    YEAR,
    validate_item,
    validate_sale,
    validate_store,
)
from framework.web.app import ApiRequest, App, Example
from framework.web.validate import int_query, now_utc, validation_error

# an unmatched path under these is the API's JSON 404, not a static file lookup
app = App("sales", schema=SCHEMA, title="Sales network reports",
          claims=["/items/", "/stores/", "/sales/"])


@app.get("/items/", response_schema=docs.ITEMS, example=Example(response=[docs.ITEM_EXAMPLE]))
def list_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Every item, by id."""
    return store.list_items(req.db)


@app.post("/items/", status=201, request_schema=docs.NEW_ITEM, response_schema=docs.ITEM,
          example=Example(body=docs.without(docs.ITEM_EXAMPLE, "id"), response=docs.ITEM_EXAMPLE))
def create_item(req: ApiRequest) -> dict[str, Any]:
    """Add an item.

    A name may not be only whitespace, which JSON Schema cannot say.
    """
    values = validate_item(req.json())
    return store.insert_item(req.db, values["name"], values["price"])


@app.get("/stores/", response_schema=docs.STORES,
         example=Example(response=[docs.STORE_EXAMPLE]))
def list_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Every store, by id."""
    return store.list_stores(req.db)


@app.post("/stores/", status=201, request_schema=docs.NEW_STORE, response_schema=docs.STORE,
          example=Example(body=docs.without(docs.STORE_EXAMPLE, "id"),
                          response=docs.STORE_EXAMPLE))
def create_store(req: ApiRequest) -> dict[str, Any]:
    """Add a store.

    An address may not be only whitespace, which JSON Schema cannot say.
    """
    values = validate_store(req.json())
    return store.insert_store(req.db, values["address"])


@app.post("/sales/", status=201, request_schema=docs.NEW_SALE, response_schema=docs.SALE,
          example=Example(body=docs.without(docs.SALE_EXAMPLE, "id"), response=docs.SALE_EXAMPLE))
def create_sale(req: ApiRequest) -> dict[str, Any]:
    """Record one sale of one unit.

    The item and the store must exist (a 400 naming the field otherwise), and sale_time must
    be a real ISO-8601 date-time: neither can be said in JSON Schema.
    """
    sale = validate_sale(req.json())
    try:
        return store.insert_sale(req.db, sale["item_id"], sale["store_id"], sale["sale_time"])
    except store.UnknownReference as exc:
        raise validation_error({name: ["does not exist"] for name in exc.names}) from None


@app.get("/stores/top/", response_schema=docs.TOP_STORES, query=docs.TOP_STORES_QUERY,
         example=Example(params={"cnt": 3, "mm": 3, "gg": 2024},
                         response=[{"id": 1, "address": "store-1", "income": 12600}]))
def top_stores(req: ApiRequest) -> list[dict[str, Any]]:
    """Stores by income in one UTC month, highest first, ties by id; no sales, no row."""
    now = now_utc()
    args = int_query(req.query, {"cnt": CNT.bounds(req.settings),
                                  "mm": MONTH.bounds(req.settings, now.month),
                                  "gg": YEAR.bounds(req.settings, now.year)})
    return store.top_stores(req.db, args["gg"], args["mm"], args["cnt"])


@app.get("/items/top/", response_schema=docs.TOP_ITEMS, query=docs.TOP_ITEMS_QUERY,
         example=Example(params={"cnt": 3},
                         response=[{"id": 1, "name": "item-1", "sales_amount": 3}]))
def top_items(req: ApiRequest) -> list[dict[str, Any]]:
    """Items by number of sales over all time, highest first, ties by id."""
    args = int_query(req.query, {"cnt": CNT.bounds(req.settings)})
    return store.top_items(req.db, args["cnt"])


# -- admin helpers: GET, as existing clients call them, and POST ----------------------------

def clear(req: ApiRequest) -> dict[str, Any]:
    """Delete every item, store and sale (admin only); ids are never reused."""
    store.clear(req.db)
    return {"status": "ok"}


def create(req: ApiRequest) -> dict[str, Any]:
    """Replace all data with the demo set (admin only); ?seed=N makes it reproducible.

    Ids start again at 1, as if the tables were new: items item-1 .. item-50, stores
    store-1 .. store-50.
    """
    seed = int_query(req.query, {"seed": SEED.bounds(req.settings)})["seed"]
    year = now_utc().year
    counts = store.replace_with_demo(req.db, random.Random(seed), year)
    return {"status": "ok", **counts}


for method in ("GET", "POST"):
    app.route(method, "/clear/", admin=True, response_schema=docs.STATUS,
              example=Example(response={"status": "ok"}))(clear)
    app.route(method, "/create/", admin=True, response_schema=docs.CREATED,
              query=docs.CREATE_QUERY,
              example=Example(params={"seed": 7}, response={
                  "status": "ok", "items": 50, "stores": 50, "sales": 3600}))(create)
