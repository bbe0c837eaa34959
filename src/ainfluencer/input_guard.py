"""One check, at the edge, for what every database accepts: the same data on SQLite and PostgreSQL.

Two layers, both generic, so a new route, schema or table is covered without code of its own:

- :class:`InputGuard`, ASGI middleware in front of every route (API and web pages), and
  :func:`check_int_params`, a dependency of the whole app: path and query parameters, JSON bodies
  and URL-encoded forms. A text value holding a NUL byte or a lone UTF-16
  surrogate (PostgreSQL refuses both; SQLite stores them, and a later SQLite → PostgreSQL restore
  breaks), or an integer outside signed 64 bits (both drivers refuse it: ``OverflowError`` on
  SQLite, ``NumericValueOutOfRange`` on PostgreSQL), is answered 422 naming the field, before any
  handler runs. After routing, integers must also fit signed 32 bits (PostgreSQL ``integer``, the
  type of every id) unless their schema declares a wider maximum.
- :func:`install_flush_guard`, a SQLAlchemy ``before_flush`` hook on every session: each value
  written to a column must fit that column on both databases (``Integer`` is 32-bit on
  PostgreSQL, ``String(n)`` is enforced by PostgreSQL only, text and JSON may not hold NUL or lone
  surrogates), else :class:`~ainfluencer.errors.InvalidInput` names the column. This catches what
  the request layer cannot know (which column a field lands in; multipart uploads; values built by
  services).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, Integer, SmallInteger, String, event, inspect
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ainfluencer.errors import InvalidInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_INT_LITERAL = re.compile(r"[+-]?\d+")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text on every database, or None when it can."""
    match = _BAD_TEXT.search(value)
    if match is None:
        return None
    return "must not contain a NUL byte" if match.group() == "\x00" else "must be valid Unicode (a lone surrogate)"


def _int_problem(value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> str | None:
    if low <= value <= high:
        return None
    return f"must be between {low} and {high}"


def _walk_json(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field, problem) for every value of a JSON document no database would store."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield path, problem
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        problem = _int_problem(value)
        if problem:
            yield path, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problem = text_problem(str(key))
            if problem:
                yield child, problem
            yield from _walk_json(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, f"{path}.{index}" if path else str(index))


def _is_int_annotation(annotation: Any) -> bool:
    """``int``, ``int | None``, ``list[int]``, ``Annotated[int, ...]`` (bool is not an int here)."""
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is None:
        return False
    if origin is typing.Annotated:
        return _is_int_annotation(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return any(_is_int_annotation(a) for a in typing.get_args(annotation))
    return False


def _declared_max(field_info: Any) -> int | None:
    """The upper bound a field declares (``le``/``lt``), if any."""
    for item in getattr(field_info, "metadata", ()):
        for attr, shift in (("le", 0), ("lt", -1)):
            bound = getattr(item, attr, None)
            if isinstance(bound, int):
                return bound + shift
    return None


def _wide(field_info: Any) -> bool:
    bound = _declared_max(field_info)
    return bound is not None and bound > INT32_MAX


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _model_types(arg)


def _wide_body_names(annotation: Any, seen: set[type] | None = None) -> set[str]:
    """Names of integer fields in a body model that declare a maximum past 32 bits (seeds, sizes)."""
    seen = seen if seen is not None else set()
    names: set[str] = set()
    for model in _model_types(annotation):
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            if _is_int_annotation(info.annotation) and _wide(info):
                names.add(info.alias or name)
            names |= _wide_body_names(info.annotation, seen)
    return names


@dataclass(frozen=True)
class _RouteInts:
    path: frozenset[str]
    query: frozenset[str]
    wide: frozenset[str]  # parameter and body field names allowed the full 64 bits


def _route_ints(route: Any) -> _RouteInts:
    """The route's ``int`` path and query parameters (its dependencies' included) and its wide ints."""
    cached = getattr(route, "_ainf_route_ints", None)
    if isinstance(cached, _RouteInts):
        return cached
    path: set[str] = set()
    query: set[str] = set()
    wide: set[str] = set()
    stack = [getattr(route, "dependant", None)]
    while stack:
        dep = stack.pop()
        if dep is None:
            continue
        for fields, names in ((dep.path_params, path), (dep.query_params, query)):
            for f in fields:
                if _is_int_annotation(f.field_info.annotation):
                    names.add(f.alias or f.name)
                    if _wide(f.field_info):
                        wide.add(f.alias or f.name)
        for f in dep.body_params:
            wide |= _wide_body_names(f.field_info.annotation)
        stack.extend(dep.dependencies)
    result = _RouteInts(frozenset(path), frozenset(query), frozenset(wide))
    route._ainf_route_ints = result
    return result


def _int_params(route: Any) -> tuple[frozenset[str], frozenset[str]]:
    """Names of the route's ``int`` path and query parameters."""
    ints = _route_ints(route)
    return ints.path, ints.query


def _leaf_name(path: str) -> str:
    return next((part for part in reversed(path.split(".")) if not part.isdigit()), path)


def _ints_in(value: Any, path: str) -> Iterator[tuple[str, int]]:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _ints_in(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _ints_in(item, f"{path}.{index}" if path else str(index))


def iter_routes(routes: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(full path, route) for every route, through included routers (FastAPI includes them lazily)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from iter_routes(original.routes, prefix + getattr(context, "prefix", ""))
        elif hasattr(route, "path"):
            yield prefix + route.path, route


async def check_int_params(request: Request) -> None:
    """App-wide dependency: an integer the databases cannot compare or store is a 422 naming it.

    Ids and counts live in 32-bit ``integer`` columns (PostgreSQL refuses a larger value even in a
    ``WHERE``; SQLite would take it), so every integer in the path, the query or a JSON body must
    fit signed 32 bits, unless its schema declares a larger maximum (seeds and sizes are 64-bit
    ``bigint``). It runs after routing (the route says which parameters are integers) and before
    the route's own parameters are used, on every route of the app, present and future.
    """
    route = request.scope.get("route")
    if route is None:
        return
    ints = _route_ints(route)

    def check(name: str, value: int) -> None:
        high = INT64_MAX if name in ints.wide else INT32_MAX
        low = INT64_MIN if name in ints.wide else INT32_MIN
        problem = _int_problem(value, low, high)
        if problem:
            raise InvalidInput(f"{name}: {problem}.", field=name)

    for name in ints.path:
        value = request.path_params.get(name)
        if isinstance(value, str) and _INT_LITERAL.fullmatch(value.strip()):
            check(name, int(value))
    for name in ints.query:
        for value in request.query_params.getlist(name):
            if _INT_LITERAL.fullmatch(value.strip()):
                check(name, int(value))
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        try:
            document = await request.json()  # FastAPI has read and cached it already
        except (ValueError, RecursionError):
            return
        for path, value in _ints_in(document, ""):
            leaf = _leaf_name(path)
            high = INT64_MAX if leaf in ints.wide else INT32_MAX
            low = INT64_MIN if leaf in ints.wide else INT32_MIN
            problem = _int_problem(value, low, high)
            if problem:
                raise InvalidInput(f"{path}: {problem}.", field=path)


def _check_params(scope: Scope) -> tuple[str, str] | None:
    path = scope.get("path", "")
    if text_problem(path):
        return "path", text_problem(path) or ""
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        problem = text_problem(name) or text_problem(value)
        if problem:
            return name, problem
    return None


def _check_body(content_type: str, body: bytes) -> tuple[str, str] | None:
    if not body:
        return None
    if "json" in content_type:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return None  # the route answers malformed JSON itself (400)
        return next(_walk_json(document, ""), None)
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            problem = text_problem(name) or text_problem(value)
            if problem:
                return name, problem
    return None


class InputGuard:
    """Answers 422 naming the field for input that SQLite and PostgreSQL would not both store."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, field: str, problem: str) -> None:
        from ainfluencer.api.errors import error_response

        response = error_response(Request(scope), 422, "invalid", f"{field}: {problem}.", field)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = _check_params(scope)
        if found:
            await self._refuse(scope, receive, send, *found)
            return
        headers = dict(scope.get("headers", []))
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        if not ("json" in content_type or content_type.startswith("application/x-www-form-urlencoded")):
            await self.app(scope, receive, send)  # multipart and files: the flush guard stands behind
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        found = _check_body(content_type, body)
        if found:
            await self._refuse(scope, receive, send, *found)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# ---- the store: every value written must fit its column on both databases ----------------------


def column_problem(column: Any, value: Any) -> str | None:
    """Why ``value`` would not be stored in ``column`` by every database, or None."""
    if value is None:
        return None
    kind = column.type
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and isinstance(kind, Integer):
        if isinstance(kind, BigInteger):
            return _int_problem(value)
        if isinstance(kind, SmallInteger):
            return _int_problem(value, INT16_MIN, INT16_MAX)
        return _int_problem(value, INT32_MIN, INT32_MAX)
    if isinstance(value, str) and isinstance(kind, String):
        problem = text_problem(value)
        if problem:
            return problem
        if kind.length is not None and len(value) > kind.length:
            return f"must be at most {kind.length} characters"
        return None
    if isinstance(kind, JSON) and isinstance(value, (dict, list, str)):
        found = next((p for _, p in _walk_json(value, "") if "NUL" in p or "Unicode" in p), None)
        return found
    return None


def _check_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.new) + list(session.dirty):
        state = inspect(obj)
        mapper = state.mapper
        for attr in mapper.column_attrs:
            if obj in session.dirty and not state.attrs[attr.key].history.has_changes():
                continue
            value = state.dict.get(attr.key)
            for column in attr.columns:
                problem = column_problem(column, value)
                if problem:
                    raise InvalidInput(f"{attr.key}: {problem}.", field=attr.key)


_installed = False


def install_flush_guard() -> None:
    """Check every ORM flush in the process (idempotent)."""
    global _installed
    if not _installed:
        event.listen(Session, "before_flush", _check_flush)
        _installed = True
