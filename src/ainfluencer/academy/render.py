"""One safe Markdown renderer for lesson files and team lessons.

markdown-it-py with raw HTML off: a ``<script>`` in a lesson is shown as text, never run, and
markdown-it's own link check drops ``javascript:``/``vbscript:``/``data:`` targets. Links to the
repository's ``docs/*.md`` become the Academy's docs viewer (``/academy/docs/<name>``) so the same
source reads well on GitHub and inside the product.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markupsafe import Markup

_DOCS_LINK = re.compile(r"^(?:\.\./)*docs/([a-z0-9_-]+)\.md(#[A-Za-z0-9_-]+)?$")


def docs_href(href: str) -> str | None:
    """``docs/platforms.md#x`` → ``/academy/docs/platforms#x``; None for any other link."""
    match = _DOCS_LINK.match(href)
    if not match:
        return None
    return f"/academy/docs/{match.group(1)}{match.group(2) or ''}"


def _link_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    local = docs_href(href)
    if local is not None:
        token.attrSet("href", local)
    elif href.startswith(("http://", "https://")):
        # Outside sources open in a new tab and learn nothing about where the reader came from.
        token.attrSet("rel", "noopener noreferrer")
        token.attrSet("target", "_blank")
    return str(self.renderToken(tokens, idx, options, env))


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    # "js-default" is CommonMark + tables + strikethrough with html=False (commonmark's preset has html=True).
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False})
    md.add_render_rule("link_open", _link_open)
    return md


def render_markdown(text: str) -> Markup:
    """Markdown → HTML that is safe to put in a page as is."""
    return Markup(_md().render(text))  # noqa: S704  (html=False: markdown-it escapes every raw tag)


def plain_text(text: str) -> str:
    """The words of a Markdown text (for search snippets): inline text of every token, no markup."""
    words: list[str] = []
    for token in _md().parse(text):
        if token.type == "inline" and token.children:
            words.extend(child.content for child in token.children if child.type in ("text", "code_inline"))
        elif token.type in ("fence", "code_block"):
            words.append(token.content)
    return re.sub(r"\s+", " ", " ".join(words)).strip()


def links(text: str) -> list[str]:
    """Every link target in a Markdown text, as written."""
    found: list[str] = []
    for token in _md().parse(text):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrGet("href") or ""))
    return found
