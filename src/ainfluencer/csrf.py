"""CSRF protection: a double-submit token (cookie + form field or X-CSRF-Token header).

Every unsafe request that is not authenticated by a bearer token must echo the ``ainf_csrf``
cookie's value. Bearer-token API calls are exempt: browsers never attach them on their own.
"""

from __future__ import annotations

import secrets

from fastapi import Request

from ainfluencer.errors import PermissionDenied

CSRF_COOKIE = "ainf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


def csrf_token_for(request: Request) -> str:
    """The request's CSRF token, creating one (the response sets the cookie) when absent."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


async def csrf_protect(request: Request) -> None:
    """Dependency: refuse unsafe requests without a matching CSRF token."""
    if request.method in SAFE_METHODS or request.headers.get("authorization"):
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get(CSRF_FIELD, "")
        sent = value if isinstance(value, str) else ""
    if not cookie or not sent or not secrets.compare_digest(cookie, sent):
        raise PermissionDenied(
            "This form expired or was sent from another site. Reload the page and try again.", code="csrf_failed"
        )
