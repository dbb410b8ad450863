"""The UI's route table and its page/form declarations: every page is a RouteTable route like the API's, so the
security middleware authenticates and authorises it through the same RBAC resolver before the handler runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from corral.entrypoints.web.routing import Handler, RouteTable

__all__ = ["PAGE", "form", "page", "routes"]

routes = RouteTable(tag="ui")
PAGE: dict[str, Any] = {"type": "string"}  # an HTML answer, not a JSON one (the UI is not in the API document)


def page(path: str, *, summary: str, params: Any = None, **kw: Any) -> Callable[[Handler], Handler]:
    """A GET page: HTML, hidden from the OpenAPI document, signed in unless it says public=True."""
    return routes.get(path, summary=summary, include_in_schema=False, params=params, response=PAGE,
                      content_type="text/html", **kw)


def form(path: str, *, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
    """A form post (urlencoded; CSRF token in its csrf_token field): answers with a redirect (303) or a page."""
    return routes.post(path, summary=summary, include_in_schema=False, params=None, response=PAGE,
                       content_type="text/html", status=303, **kw)
