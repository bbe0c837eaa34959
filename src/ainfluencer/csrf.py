"""CSRF protection: a double-submit token (cookie + form field or X-CSRF-Token header).

Every unsafe request must echo the ``ainf_csrf`` cookie's value, except one that carries a *valid*
bearer token and no session cookie: a browser never attaches such a token on its own, and without the
session cookie there is no ambient credential to abuse. Any other ``Authorization`` header (``Basic``
from a reverse proxy, which browsers do replay on their own; a made-up bearer) changes nothing.

An unsafe API call with no session cookie and no valid token is answered 401 here (with the token's own
problem, e.g. expired), not 403: it is missing authentication, not a CSRF token.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ainfluencer.errors import AuthRequired, PermissionDenied

CSRF_COOKIE = "ainf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
SESSION_COOKIE = "ainf_session"
API_PREFIX = "/api/"


def csrf_token_for(request: Request) -> str:
    """The request's CSRF token, creating one (the response sets the cookie) when absent."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not token:
        token = secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _check_token(request: Request, raw: str) -> None:
    """Raise AuthRequired unless ``raw`` is a live API token (a short session of its own)."""
    from ainfluencer.services import auth

    with request.app.state.runtime.db.session() as session:
        auth.resolve_api_token(session, raw)


async def csrf_protect(request: Request) -> None:
    """Dependency: refuse unsafe requests without a matching CSRF token (see the module docstring)."""
    if request.method in SAFE_METHODS:
        return
    if not request.cookies.get(SESSION_COOKIE):
        raw = _bearer(request)
        if request.url.path.startswith(API_PREFIX):
            if raw is None:
                raise AuthRequired("Sign in, or send an API token as 'Authorization: Bearer <token>'.")
            await run_in_threadpool(_check_token, request, raw)  # AuthRequired (401) when it is not live
            return
        if raw is not None:
            try:
                await run_in_threadpool(_check_token, request, raw)
                return
            except AuthRequired:
                pass  # a made-up token buys nothing: check CSRF as for any form
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
