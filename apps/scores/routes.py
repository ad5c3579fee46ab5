"""HTTP endpoints of the interests/scores API.

Two collections keyed by client_id, ``/api/interests`` and ``/api/scores``, with the same five
endpoints each: list (paginated, ``?client_ids=`` filter), create (201 + Location, 409 on a
taken client_id), read, replace (PUT) and delete. ``Collection`` holds what differs between
them: the table, how a body becomes column values, and how a row becomes JSON.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.scores import docs, store, validation
from apps.scores.docs import Shapes
from apps.scores.tables import SCHEMA
from framework.web.app import ApiError, ApiRequest, App, Example, created
from framework.web.db import transaction
from framework.web.pagination import paginate
from framework.web.responses import Response

app = App("scores", schema=SCHEMA, title="Client interests and scores (OTUS scoring API)")

Row = store.Row


@dataclass(frozen=True)
class Collection:
    path: str
    table: store.Table
    conflict: str  # messages, formatted with the client_id
    missing: str
    parse: Callable[[Any, int | None], tuple[int, Row]]  # body, path id -> client_id, columns
    render: Callable[[Row], dict[str, Any]]  # (client_id, *columns) -> JSON

    def list(self, req: ApiRequest) -> dict[str, Any]:
        raw = req.query.get("client_ids")
        ids = validation.client_ids_filter(raw) if raw is not None else None
        conn = req.db
        with transaction(conn, immediate=False):  # one snapshot for the count and the page
            return paginate(req, self.table.count(conn, ids), lambda limit, offset: [
                self.render(row) for row in self.table.page(conn, ids, limit, offset)])

    def create(self, req: ApiRequest) -> Response:
        client_id, values = self.parse(req.json(), None)
        if not self.table.insert(req.db, client_id, values):
            raise ApiError(409, self.conflict.format(client_id),
                           {"client_id": ["already exists"]})
        return created(self.render((client_id, *values)), req.url(f"{self.path}/{client_id}"))

    def read(self, req: ApiRequest, client_id: int) -> dict[str, Any]:
        row = self.table.get(req.db, client_id)
        if row is None:
            raise self.not_found(client_id)
        return self.render(row)

    def replace(self, req: ApiRequest, client_id: int) -> dict[str, Any]:
        _, values = self.parse(req.json(), client_id)
        if not self.table.update(req.db, client_id, values):
            raise self.not_found(client_id)
        return self.render((client_id, *values))

    def delete(self, req: ApiRequest, client_id: int) -> None:
        if not self.table.delete(req.db, client_id):
            raise self.not_found(client_id)

    def not_found(self, client_id: int) -> ApiError:
        return ApiError(404, self.missing.format(client_id))


# -- interests -------------------------------------------------------------------------------

def parse_interests(body: Any, path_id: int | None) -> tuple[int, Row]:
    client_id, interests = validation.interests_body(body, path_id)
    return client_id, (json.dumps(interests, ensure_ascii=False),)


def render_interests(row: Row) -> dict[str, Any]:
    return {"client_id": row[0], "interests": json.loads(row[1])}


# -- scores ----------------------------------------------------------------------------------

SCORE_COLUMNS = docs.SCORE_COLUMNS


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


def mount(collection: Collection, shapes: Shapes) -> None:
    """Declare the five endpoints of ``collection`` on the app."""
    one = collection.path + "/<int:client_id>"
    what, item = shapes.what, shapes.item_example
    client = {"client_id": item["client_id"]}
    missing = {404: collection.missing.format(item["client_id"])}
    app.get(collection.path, paginated=True, query=docs.CLIENT_IDS_QUERY,
            response_schema=shapes.item,
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


mount(Collection("/api/interests", store.Table("client_interests", ("interests",)),
                 "client {} already has interests", "client {} has no interests",
                 parse_interests, render_interests),
      docs.INTERESTS_SHAPES)
mount(Collection("/api/scores", store.Table("client_scores", SCORE_COLUMNS),
                 "client {} already has a score", "client {} has no score",
                 parse_score, render_score),
      docs.SCORE_SHAPES)
