"""Page-number pagination shared by every list endpoint, as Django REST framework does it.

    @app.get("/api/things", paginated=True, response_schema=THING)
    def list_things(req):
        count = req.db.execute("SELECT count(*) FROM things").fetchone()[0]
        return paginate(req, count, lambda limit, offset: [
            thing(row) for row in req.db.execute(
                "SELECT ... ORDER BY id LIMIT ? OFFSET ?", (limit, offset))])
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from framework.web.app import ApiError, ApiRequest
from framework.web.urls import build_query
from framework.web.validate import parse_int

INVALID_PAGE = "Invalid page."


def paginate(req: ApiRequest, count: int, fetch: Callable[[int, int], list[Any]],
             page_size: int | None = None, client_page_size: bool = True) -> dict[str, Any]:
    """One page of a collection of ``count`` items as {count, next, previous, results}.

    ``fetch(limit, offset)`` returns the page's items. ``?page=`` is 1-based (``last`` is
    accepted, empty means 1); an invalid page is a 404. ``?page_size=`` falls back to the
    default when invalid and is clamped to ``max_page_size`` (DRF's semantics). Read ``count``
    and the page in one transaction if writers may interleave.
    """
    size = page_size or req.settings["page_size"]
    if client_page_size:
        size = requested_page_size(req, size)
    pages = max(1, -(-count // size))
    raw_page = req.arg("page") or "1"
    page = pages if raw_page == "last" else parse_int(raw_page, 1, pages)
    if page is None:
        raise ApiError(404, INVALID_PAGE)
    results = fetch(size, (page - 1) * size)
    return {
        "count": count,
        "next": page_link(req, page + 1) if page < pages else None,
        "previous": page_link(req, page - 1) if page > 1 else None,
        "results": results,
    }


def requested_page_size(req: ApiRequest, default: int) -> int:
    """``?page_size=``: invalid is the default, past ``max_page_size`` is the maximum."""
    raw = req.arg("page_size")
    size = parse_int(raw, 1, req.settings["max_page_size"], clamp=True) if raw else None
    return default if size is None else size


def page_link(req: ApiRequest, page: int) -> str:
    """The absolute URL of another page; the link to page 1 drops ``page`` (as DRF does)."""
    params = {k: v for k, v in req.query.items() if k != "page"}
    if page > 1:
        params["page"] = [str(page)]
    query = build_query(dict(sorted(params.items())))
    return req.url(req.path) + ("?" + query if query else "")
