"""Does a path lead to a page of this app? Checked against the app's own route table."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.routing import Match


def path_exists(app: Any, href: str, method: str = "GET") -> bool:
    """True when some route of ``app`` fully matches the path of ``href`` (query and fragment ignored)."""
    path = urlsplit(href).path or "/"
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
             "headers": [], "path_params": {}}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)
