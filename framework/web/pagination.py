"""DRF-style page-number pagination shared by every list endpoint (API.md §1.10).

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

INVALID_PAGE = "Invalid page."
HUGE = 10 ** 18  # stands for any longer number: past every page count and page size limit


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
    page = pages if raw_page == "last" else positive_int(raw_page)
    if page is None or page > pages:
        raise ApiError(404, INVALID_PAGE)
    results = fetch(size, (page - 1) * size)
    return {
        "count": count,
        "next": page_link(req, page + 1) if page < pages else None,
        "previous": page_link(req, page - 1) if page > 1 else None,
        "results": results,
    }


def positive_int(text: str) -> int | None:
    """``text`` as an int >= 1 if it is plain ASCII digits, else None (huge values -> HUGE)."""
    digits = text.lstrip("0")
    if not (digits.isascii() and digits.isdigit()):
        return None
    return HUGE if len(digits) > len(str(HUGE)) else min(int(digits), HUGE)


def requested_page_size(req: ApiRequest, default: int) -> int:
    raw = req.arg("page_size")
    size = positive_int(raw) if raw is not None else None
    if size is None:
        return default
    return min(size, req.settings["max_page_size"])


def page_link(req: ApiRequest, page: int) -> str:
    """The absolute URL of another page; the link to page 1 drops ``page`` (as DRF does)."""
    params = {k: v for k, v in req.query.items() if k != "page"}
    if page > 1:
        params["page"] = [str(page)]
    query = build_query(dict(sorted(params.items())))
    return req.url(req.path) + ("?" + query if query else "")
