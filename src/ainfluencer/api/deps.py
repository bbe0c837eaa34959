"""Shared FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from ainfluencer.csrf import SESSION_COOKIE as SESSION_COOKIE  # re-exported; the one name lives in csrf.py
from ainfluencer.db.models import ApiToken, User
from ainfluencer.errors import AuthRequired, PermissionDenied
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth


def get_runtime(request: Request) -> Runtime:
    """The app's runtime."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_db(runtime: RuntimeDep) -> Iterator[Session]:
    """One database session per request, committed when the handler returns without error."""
    with runtime.db.session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn applies X-Forwarded-For only when proxy headers are trusted)."""
    return request.client.host if request.client else "unknown"


class Principal:
    """Who is calling: a user, and the token they used (None for a browser session)."""

    def __init__(self, user: User, token: ApiToken | None) -> None:
        self.user, self.token = user, token

    def require(self, scope: str) -> None:
        """Refuse when the token lacks ``scope`` (browser sessions have every scope)."""
        if self.token is not None and scope not in self.token.scope_list:
            raise PermissionDenied(
                f"This API token lacks the '{scope}' scope; create one with that scope in Settings.",
                code="insufficient_scope",
            )


# Declares the bearer scheme in the OpenAPI document, so /docs has an "Authorize" button and "Try it out" sends
# the token (a bearer call needs no CSRF token). It never rejects by itself: get_principal decides.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="APIToken",
                           description="A personal API token from Settings → API tokens (ainf_…).")


def get_principal(request: Request, session: SessionDep,
                  _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None) -> Principal:
    """Authenticate by bearer token, or by session cookie for same-origin browser calls."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthRequired("Use 'Authorization: Bearer <token>' with a token from Settings → API tokens.")
        token = auth.resolve_api_token(session, value.strip())
        return Principal(token.user, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = auth.user_for_session(session, cookie)
        if user is not None:
            return Principal(user, None)
    raise AuthRequired("Sign in, or send an API token as 'Authorization: Bearer <token>'.")


def reader(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A caller allowed to read."""
    principal.require("read")
    return principal


def writer(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A caller allowed to change things."""
    principal.require("write")
    return principal


Reader = Annotated[Principal, Depends(reader)]
Writer = Annotated[Principal, Depends(writer)]
