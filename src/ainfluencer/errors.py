"""The exception hierarchy, written down once.

AppError
├── NotFound           404  the thing does not exist (or is not yours)
├── Conflict           409  it exists already / state forbids the change
├── InvalidInput       422  a value a person typed is wrong (carries ``field``)
├── PermissionDenied   403  signed in, but not allowed
├── AuthRequired       401  not signed in / bad token
└── RateLimited        429  too many attempts; ``retry_after`` seconds

Backend and platform adapters add their own subtree (auth / transient / permanent) on top.
"""

from __future__ import annotations


class AppError(Exception):
    """Base for errors that reach a person with a message they can act on."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class NotFound(AppError):
    """The thing does not exist or is not visible to this user."""

    status_code = 404
    code = "not_found"


class Conflict(AppError):
    """The change clashes with what exists."""

    status_code = 409
    code = "conflict"


class InvalidInput(AppError):
    """A value is wrong; ``field`` names it."""

    status_code = 422
    code = "invalid"


class PermissionDenied(AppError):
    """Signed in but not allowed."""

    status_code = 403
    code = "forbidden"


class AuthRequired(AppError):
    """Missing or bad credentials."""

    status_code = 401
    code = "unauthorized"


class RateLimited(AppError):
    """Too many attempts."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
