"""Shared by the Academy tests: the app's route table without a database, and sample lesson files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ainfluencer.config import Settings
from ainfluencer.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

GOOD_LESSON = """---
title: A lesson
order: 1
level: beginner
minutes: 3
summary: What it teaches.
do_it_now:
  label: Open the vault.
  href: /vault
quiz:
  question: Which one is right?
  options:
    - text: "This one"
      correct: true
    - text: "That one"
  explanation: Because the first one is right, as the lesson says.
---
""" + "A lesson body long enough to teach something. " * 6

COURSE = """---
title: A course
level: beginner
order: 1
summary: A course for tests.
---
Intro.
"""


def build_app(tmp: Path) -> Any:
    """The real app (no background roles) over an unmigrated runtime: enough to read its route table."""
    from ainfluencer.app import create_app

    runtime = Runtime.build(Settings(data_dir=tmp / "data"))
    return create_app(runtime), runtime


def write_course(root: Path, slug: str = "a-course", lessons: dict[str, str] | None = None) -> Path:
    """A course folder with ``_course.md`` and the given lesson files."""
    folder = root / slug
    folder.mkdir(parents=True)
    (folder / "_course.md").write_text(COURSE)
    for name, text in (lessons if lessons is not None else {"a-lesson": GOOD_LESSON}).items():
        (folder / f"{name}.md").write_text(text)
    return folder
