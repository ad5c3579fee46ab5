"""HTTP endpoints of the citizens imports API: thin handlers over validation, store and stats,
plus the helpers /generate, /init and /make_citizens_dust."""
from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from apps.citizens import docs, store
from apps.citizens.docs import (
    CITIZEN_EXAMPLE,
    CITIZEN_PATH,
    HELPERS_OFF,
    IMPORT_PATH,
    NO_IMPORT,
)
from apps.citizens.generator import (
    MAX_COUNT,
    default_relations,
    generate,
    max_relations,
)
from apps.citizens.stats import town_percentiles
from apps.citizens.tables import SCHEMA
from apps.citizens.validation import validate_import, validate_patch
from framework.web.app import ApiError, ApiRequest, App, Example
from framework.web.responses import Response, json_response
from framework.web.validate import (
    INT64_MAX,
    int_query,
    integer_range,
    today_utc,
    validation_error,
)

app = App("citizens", schema=SCHEMA, title="Citizens imports")

JSON = "application/json; charset=utf-8"
OK = {"data": {"status": "ok"}}


@contextmanager
def store_answers() -> Iterator[None]:
    """The store's refusals as answers: 404 for a missing import or citizen, 400 for unknown
    relatives."""
    try:
        yield
    except store.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except store.UnknownRelatives as exc:
        raise validation_error({"relatives": [str(exc)]}) from None


@app.post("/imports", status=201, max_body="imports_max_body", description=docs.IMPORT_RULES,
          request_schema=docs.IMPORT_REQUEST, response_schema=docs.IMPORT_CREATED,
          example=Example(body={"citizens": [CITIZEN_EXAMPLE]}, response={"data": IMPORT_PATH}))
def create_import(req: ApiRequest) -> dict[str, Any]:
    """Store a new import of citizens; 400 and nothing stored on any invalid field."""
    citizens = validate_import(req.json())
    return {"data": {"import_id": store.insert_import(req.db, citizens)}}


@app.patch("/imports/<int:import_id>/citizens/<int:citizen_id>",
           request_schema=docs.PATCH_REQUEST, response_schema=docs.ONE_CITIZEN,
           description=docs.PATCH_RULES, responses=docs.NO_CITIZEN,
           example=Example(params=CITIZEN_PATH, body={"name": "Иванова Мария Леонидовна"},
                           response={"data": {**CITIZEN_EXAMPLE,
                                              "name": "Иванова Мария Леонидовна"}}))
def update_citizen(req: ApiRequest, import_id: int, citizen_id: int) -> Response:
    """Change some fields of a citizen; relatives change on both sides."""
    values = validate_patch(req.json())
    with store_answers():
        body = store.patch_citizen(req.db, import_id, citizen_id, values)
    return Response(200, body, content_type=JSON)


@app.get("/imports/<int:import_id>/citizens", response_schema=docs.CITIZEN_LIST,
         responses=NO_IMPORT,
         example=Example(params=IMPORT_PATH, response={"data": [CITIZEN_EXAMPLE]}))
def list_citizens(req: ApiRequest, import_id: int) -> Response:
    """Every citizen of an import, by citizen_id."""
    with store_answers():
        return Response(200, store.citizens_json(req.db, import_id), content_type=JSON)


@app.get("/imports/<int:import_id>/citizens/birthdays", response_schema=docs.BIRTHDAYS,
         responses=NO_IMPORT,
         example=Example(params=IMPORT_PATH, response={"data": docs.BIRTHDAYS_EXAMPLE}))
def birthdays(req: ApiRequest, import_id: int) -> dict[str, Any]:
    """Per month, how many presents each citizen buys for relatives born in it."""
    with store_answers():
        return {"data": store.birthdays(req.db, import_id)}


@app.get("/imports/<int:import_id>/towns/stat/percentile/age",
         response_schema=docs.PERCENTILES, responses=NO_IMPORT,
         example=Example(params=IMPORT_PATH, response={"data": docs.PERCENTILES_EXAMPLE}))
def age_percentiles(req: ApiRequest, import_id: int) -> dict[str, Any]:
    """p50, p75 and p99 of the ages (full years, UTC today) per town."""
    with store_answers():
        ages = store.town_ages(req.db, import_id, today_utc())
    return {"data": town_percentiles(ages)}


# -- helpers: test data, table set-up and an admin wipe ----------------------------------------

def require_helpers(req: ApiRequest) -> None:
    if not req.settings["citizens_helpers"]:
        raise ApiError(404, HELPERS_OFF[404])


def generate_import(req: ApiRequest, count: int) -> Response:
    """A random valid body for POST /imports: ?relations=N pairs, ?seed=S, ?worst=1."""
    require_helpers(req)
    if count > MAX_COUNT:
        raise validation_error({"count": [integer_range(0, MAX_COUNT)]})
    args = int_query(req.query, {"relations": (default_relations(count), 0, max_relations(count)),
                                 "seed": (None, 0, INT64_MAX), "worst": (0, 0, 1)})
    citizens = generate(count, args["relations"], random.Random(args["seed"]), today_utc(),
                        worst=bool(args["worst"]))
    return json_response({"citizens": citizens})


def init_tables(req: ApiRequest) -> dict[str, Any]:
    """Create the tables if they are missing (idempotent)."""
    require_helpers(req)
    store.create_tables(req.db)
    return OK


def make_citizens_dust(req: ApiRequest) -> dict[str, Any]:
    """Delete every import (admin only); ids are never reused."""
    require_helpers(req)
    store.clear(req.db)
    return OK


# GET, as other clients of this API call them, and POST (and DELETE for the wipe), the
# methods that say what they do
for method in ("GET", "POST"):
    app.route(method, "/generate/<int:count>", query=docs.GENERATE_QUERY,
              response_schema=docs.GENERATED, responses=HELPERS_OFF,
              description=f"count is at most {MAX_COUNT}; relations at most "
                          "min(50000, count*(count-1)/2).",
              example=Example(params={"count": 1, "seed": 7, "relations": 0, "worst": 0},
                              response={"citizens": [CITIZEN_EXAMPLE]}))(generate_import)
    app.route(method, "/init", response_schema=docs.STATUS, responses=HELPERS_OFF,
              example=Example(response=OK))(init_tables)
for method in ("GET", "POST", "DELETE"):
    app.route(method, "/make_citizens_dust", admin=True, response_schema=docs.STATUS,
              responses=HELPERS_OFF, example=Example(response=OK))(make_citizens_dust)
