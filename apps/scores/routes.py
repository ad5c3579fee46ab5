"""HTTP endpoints of the interests/scores API (API.md §E.2).

Two collections keyed by client_id, ``/api/interests`` and ``/api/scores``, with the same five
endpoints each: list (paginated, ``?client_ids=`` filter), create (201 + Location, 409 on a
taken client_id), read, replace (PUT) and delete. ``Collection`` holds what differs between
them: the table, how a body becomes column values, and how a row becomes JSON.
"""
from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.scores import validation
from apps.scores.tables import SCHEMA
from framework.web.app import ApiError, ApiRequest, App, Example, created
from framework.web.db import transaction
from framework.web.pagination import paginate
from framework.web.responses import Response

app = App("scores", schema=SCHEMA, title="Client interests and scores (OTUS scoring API)")

Row = tuple[Any, ...]


class Statements:
    """The SQL of one collection. Table and column names come from this module's constants,
    never from a request; every value goes through a ``?`` placeholder."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        names = ", ".join(("client_id", *columns))
        in_filter = "client_id IN (SELECT value FROM json_each(?))"  # ? = JSON array of ids
        self.one = f"SELECT {names} FROM {table} WHERE client_id = ?"
        self.count = f"SELECT count(*) FROM {table}"
        self.count_filtered = f"{self.count} WHERE {in_filter}"
        self.page = f"SELECT {names} FROM {table} ORDER BY client_id LIMIT ? OFFSET ?"
        self.page_filtered = (f"SELECT {names} FROM {table} WHERE {in_filter} "
                              "ORDER BY client_id LIMIT ? OFFSET ?")
        self.insert = (f"INSERT INTO {table} ({names}, updated_at) "
                       f"VALUES ({', '.join('?' * (len(columns) + 2))}) "
                       "ON CONFLICT (client_id) DO NOTHING")
        self.update = (f"UPDATE {table} SET {', '.join(c + ' = ?' for c in columns)}, "
                       "updated_at = ? WHERE client_id = ?")
        self.delete = f"DELETE FROM {table} WHERE client_id = ?"


@dataclass(frozen=True)
class Collection:
    path: str
    sql: Statements
    conflict: str  # messages, formatted with the client_id
    missing: str
    parse: Callable[[Any, int | None], tuple[int, Row]]  # body, path id -> client_id, columns
    render: Callable[[Row], dict[str, Any]]  # (client_id, *columns) -> JSON

    def list(self, req: ApiRequest) -> dict[str, Any]:
        raw = req.query.get("client_ids")
        ids = json.dumps(validation.client_ids_filter(raw)) if raw is not None else None
        db = req.db
        with transaction(db, immediate=False):  # one snapshot for the count and the page
            if ids is None:
                count = db.execute(self.sql.count).fetchone()[0]
                return paginate(req, count, lambda limit, offset: [
                    self.render(row) for row in db.execute(self.sql.page, (limit, offset))])
            count = db.execute(self.sql.count_filtered, (ids,)).fetchone()[0]
            return paginate(req, count, lambda limit, offset: [
                self.render(row)
                for row in db.execute(self.sql.page_filtered, (ids, limit, offset))])

    def create(self, req: ApiRequest) -> Response:
        client_id, values = self.parse(req.json(), None)
        with transaction(req.db):
            if req.db.execute(self.sql.insert, (client_id, *values, now())).rowcount == 0:
                raise ApiError(409, self.conflict.format(client_id),
                               {"client_id": ["already exists"]})
        return created(self.render((client_id, *values)), req.url(f"{self.path}/{client_id}"))

    def read(self, req: ApiRequest, client_id: int) -> dict[str, Any]:
        row = req.db.execute(self.sql.one, (client_id,)).fetchone()
        if row is None:
            raise self.not_found(client_id)
        return self.render(row)

    def replace(self, req: ApiRequest, client_id: int) -> dict[str, Any]:
        _, values = self.parse(req.json(), client_id)
        with transaction(req.db):
            if req.db.execute(self.sql.update, (*values, now(), client_id)).rowcount == 0:
                raise self.not_found(client_id)
        return self.render((client_id, *values))

    def delete(self, req: ApiRequest, client_id: int) -> None:
        with transaction(req.db):
            if req.db.execute(self.sql.delete, (client_id,)).rowcount == 0:
                raise self.not_found(client_id)

    def not_found(self, client_id: int) -> ApiError:
        return ApiError(404, self.missing.format(client_id))


def now() -> str:
    """UTC now as API.md §1.9 writes timestamps."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- interests -------------------------------------------------------------------------------

def parse_interests(body: Any, path_id: int | None) -> tuple[int, Row]:
    client_id, interests = validation.interests_body(body, path_id)
    return client_id, (json.dumps(interests, ensure_ascii=False),)


def render_interests(row: Row) -> dict[str, Any]:
    return {"client_id": row[0], "interests": json.loads(row[1])}


# -- scores ----------------------------------------------------------------------------------

SCORE_COLUMNS = (*validation.SCORE_FIELDS, "score")


def parse_score(body: Any, path_id: int | None) -> tuple[int, Row]:
    client_id, values = validation.score_body(body, path_id)
    return client_id, (*(values[name] for name in validation.SCORE_FIELDS),
                       validation.score(values))


def render_score(row: Row) -> dict[str, Any]:
    item = dict(zip(("client_id", *SCORE_COLUMNS), row))
    iso = item["birthday"]
    if iso is not None:  # stored YYYY-MM-DD, shown DD.MM.YYYY
        item["birthday"] = f"{iso[8:10]}.{iso[5:7]}.{iso[:4]}"
    return item


# -- JSON schemas, for /openapi.json ---------------------------------------------------------

CLIENT_ID = {"type": "integer", "format": "int64", "minimum": 0}
INTERESTS = {"type": "array", "maxItems": validation.MAX_INTERESTS, "uniqueItems": True,
             "items": {"type": "string", "minLength": 1,
                       "maxLength": validation.MAX_INTEREST_LENGTH}}
INTERESTS_ITEM = {"type": "object", "required": ["client_id", "interests"],
                  "properties": {"client_id": CLIENT_ID, "interests": INTERESTS}}
TEXT = {"type": "string", "maxLength": validation.MAX_TEXT_LENGTH, "nullable": True}
SCORE_PROPERTIES = {
    "client_id": CLIENT_ID,
    "phone": {"type": "string", "pattern": "^7[0-9]{10}$", "nullable": True,
              "description": "11 digits starting with 7; a JSON number is accepted too"},
    "email": {**TEXT, "pattern": "@", "description": "must contain '@'"},
    "first_name": TEXT,
    "last_name": TEXT,
    "birthday": {"type": "string", "pattern": "^[0-9]{2}\\.[0-9]{2}\\.[0-9]{4}$",
                 "nullable": True, "description": "DD.MM.YYYY, within the last 70 years"},
    "gender": {"type": "integer", "enum": [0, 1, 2], "nullable": True,
               "description": "0 unknown, 1 male, 2 female"},
}


def present(schema: dict[str, Any]) -> dict[str, Any]:
    """A field given a value: "" and null both mean absent."""
    return {**schema, "nullable": False, **({"minLength": 1} if schema["type"] == "string" else {})}


PAIR_RULE = {"anyOf": [{"required": list(pair),
                        "properties": {name: present(SCORE_PROPERTIES[name]) for name in pair}}
                       for pair in validation.PAIRS]}
SCORE_RULES = ("All fields but client_id are optional; \"\" and null mean absent. At least one "
               "pair must be complete: phone+email, first_name+last_name or gender+birthday. "
               "A birthday must be a real date within the last 70 years (UTC), which JSON "
               "Schema cannot say.")
SCORE_BODY = {"type": "object", "additionalProperties": False, "properties": SCORE_PROPERTIES,
              "required": ["client_id"], **PAIR_RULE, "description": SCORE_RULES}
SCORE_REPLACEMENT = {"type": "object", "additionalProperties": False,
                     "properties": SCORE_PROPERTIES, **PAIR_RULE,
                     "description": SCORE_RULES + " client_id may be left out; if given it "
                                                  "must equal the path's."}
SCORE_ITEM = {
    "type": "object", "required": ["client_id", *SCORE_COLUMNS],
    "properties": {**SCORE_PROPERTIES, "score": {
        "type": "number", "minimum": 0, "readOnly": True,
        "description": "1.5 for phone, 1.5 for email, 1.5 for gender (1 or 2) with birthday, "
                       "0.5 for both names"}},
}
INTERESTS_BODY = {**INTERESTS_ITEM, "additionalProperties": False}
INTERESTS_REPLACEMENT = {**INTERESTS_BODY, "required": ["interests"], "description":
                         "client_id may be left out; if given it must equal the path's."}
CLIENT_IDS_QUERY = {"client_ids": {
    "type": "string", "pattern": "^[0-9]+(,[0-9]+)*$",
    "description": "only these clients: ids separated by commas, e.g. 1,2,3"}}

SCORE_EXAMPLE = {"client_id": 1, "phone": "79175002040", "email": "stupnikov@otus.ru",
                 "first_name": "Станислав", "last_name": "Ступников", "birthday": "01.01.1990",
                 "gender": 1}
INTERESTS_EXAMPLE = {"client_id": 1, "interests": ["books", "hi-tech"]}


@dataclass(frozen=True)
class Shapes:
    """What ``mount`` documents for one collection: schemas and a worked example."""
    what: str  # the item, in words
    item: dict[str, Any]
    create: dict[str, Any]  # POST body
    replace: dict[str, Any]  # PUT body
    body_example: dict[str, Any]
    item_example: dict[str, Any]


def mount(collection: Collection, shapes: Shapes) -> None:
    """Declare the five endpoints of ``collection`` on the app."""
    one = collection.path + "/<int:client_id>"
    what, item = shapes.what, shapes.item_example
    client = {"client_id": item["client_id"]}
    missing = {404: collection.missing.format(item["client_id"])}
    app.get(collection.path, paginated=True, query=CLIENT_IDS_QUERY, response_schema=shapes.item,
            summary=f"The {what} of every client, by client_id, a page at a time",
            example=Example(params={"client_ids": "1,2"}, response={
                "count": 1, "next": None, "previous": None, "results": [item]}))(
        collection.list)
    app.post(collection.path, status=201, request_schema=shapes.create,
             response_schema=shapes.item,
             summary=f"Store the {what} of a client (409 if it has some already)",
             responses={409: collection.conflict.format(item["client_id"])},
             example=Example(body=shapes.body_example, response=item))(collection.create)
    app.get(one, response_schema=shapes.item, summary=f"The {what} of one client",
            responses=missing, example=Example(params=client, response=item))(collection.read)
    app.put(one, request_schema=shapes.replace, response_schema=shapes.item,
            summary=f"Replace the {what} of a client", responses=missing,
            example=Example(params=client, body=shapes.body_example, response=item))(
        collection.replace)
    app.delete(one, status=204, summary=f"Delete the {what} of a client", responses=missing,
               example=Example(params=client))(collection.delete)


mount(Collection("/api/interests", Statements("client_interests", ("interests",)),
                 "client {} already has interests", "client {} has no interests",
                 parse_interests, render_interests),
      Shapes("interests", INTERESTS_ITEM, INTERESTS_BODY, INTERESTS_REPLACEMENT,
             INTERESTS_EXAMPLE, INTERESTS_EXAMPLE))
mount(Collection("/api/scores", Statements("client_scores", SCORE_COLUMNS),
                 "client {} already has a score", "client {} has no score",
                 parse_score, render_score),
      Shapes("score", SCORE_ITEM, SCORE_BODY, SCORE_REPLACEMENT, SCORE_EXAMPLE,
             {**SCORE_EXAMPLE, "score": 5.0}))
