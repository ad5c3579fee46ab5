"""JSON Schemas and worked examples of the sales app, for /openapi.json."""
from __future__ import annotations

from typing import Any

from apps.sales.tables import MAX_PRICE
from apps.sales.validation import CNT, MAX_TEXT, MONTH, SEED, YEAR

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


TOP_STORES_QUERY = {"cnt": CNT, "mm": MONTH, "gg": YEAR}
TOP_ITEMS_QUERY = {"cnt": CNT}
CREATE_QUERY = {"seed": SEED}

ITEM_EXAMPLE = {"id": 1, "name": "item-1", "price": 4200}
STORE_EXAMPLE = {"id": 1, "address": "store-1"}
SALE_EXAMPLE = {"id": 1, "sale_time": "2024-03-05T12:34:56.000000Z", "item_id": 1,
                "store_id": 1}


def without(example: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in example.items() if k not in names}


NEW_SALE = {
    "type": "object", "additionalProperties": False, "required": ["item_id", "store_id"],
    "properties": {"item_id": ID, "store_id": ID, "sale_time": {
        "type": "string", "description": "ISO-8601; UTC when no offset is given; default now"}}}
CREATED = {**STATUS, "properties": {**STATUS["properties"], **{
    name: {"type": "integer", "minimum": 0} for name in ("items", "stores", "sales")}}}
ITEMS, STORES = array_of(ITEM), array_of(STORE)
TOP_STORES, TOP_ITEMS = array_of(TOP_STORE), array_of(TOP_ITEM)
NEW_ITEM, NEW_STORE = without_id(ITEM), without_id(STORE)
