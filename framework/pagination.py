"""DRF-style page-number pagination shared by every list endpoint (API.md §1.10)."""
from __future__ import annotations

from typing import Any, Callable

from framework.app import ApiError, ApiRequest
from framework.urls import build_query

INVALID_PAGE = "Invalid page."


def paginate(req: ApiRequest, count: int, fetch: Callable[[int, int], list[Any]],
             page_size: int | None = None, client_page_size: bool = True) -> dict[str, Any]:
    """One page of a collection of ``count`` items as {count, next, previous, results}.

    ``fetch(limit, offset)`` returns the page's items. ``?page=`` is 1-based (``last`` is
    accepted); an invalid page is a 404. ``?page_size=`` falls back to the default when
    invalid and is clamped to ``max_page_size`` (DRF's semantics).
    """
    size = page_size or req.settings["page_size"]
    if client_page_size:
        size = requested_page_size(req, size)
    pages = max(1, -(-count // size))
    raw_page = req.arg("page", "1")
    if raw_page == "last":
        page = pages
    elif raw_page.isdigit() and raw_page.isascii() and 1 <= int(raw_page) <= pages:
        page = int(raw_page)
    else:
        raise ApiError(404, INVALID_PAGE)
    results = fetch(size, (page - 1) * size)
    return {
        "count": count,
        "next": page_link(req, page + 1) if page < pages else None,
        "previous": page_link(req, page - 1) if page > 1 else None,
        "results": results,
    }


def requested_page_size(req: ApiRequest, default: int) -> int:
    raw = req.arg("page_size")
    if raw is None or not raw.isdigit() or not raw.isascii() or int(raw) < 1:
        return default
    return min(int(raw), req.settings["max_page_size"])


def page_link(req: ApiRequest, page: int) -> str:
    """The absolute URL of another page; the link to page 1 drops ``page`` (as DRF does)."""
    params = {k: v for k, v in sorted(req.query.items()) if k != "page"}
    if page > 1:
        params["page"] = [str(page)]
        params = dict(sorted(params.items()))
    query = build_query(params)
    return req.url(req.path) + ("?" + query if query else "")
