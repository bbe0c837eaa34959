"""Form helpers shared by the page modules: the parsed form as a dependency, text fields, "done" notices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def form_data(request: Request) -> FormData:
    """The submitted form (parsed once; the CSRF check reads the same cached copy)."""
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def form_text(form: FormData, name: str, default: str = "") -> str:
    """A text field of the form (an uploaded file in its place counts as absent)."""
    value = form.get(name, default)
    return value if isinstance(value, str) else default


def done_notice(request: Request, messages: Mapping[str, str]) -> str:
    """The message a redirect's ``?done=<key>&n=<count>`` names, with ``{n}`` and plural ``{s}`` filled in."""
    template = messages.get(request.query_params.get("done", ""))
    if not template:
        return ""
    try:
        n = int(request.query_params.get("n", "1"))
    except ValueError:
        n = 1
    return template.format(n=n, s="" if n == 1 else "s")
