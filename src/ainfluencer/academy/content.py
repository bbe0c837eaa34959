"""The built-in courses: Markdown files with YAML front matter under ``academy/content/``.

Layout (one folder per course, one file per lesson)::

    content/<course-slug>/_course.md      front matter: title, level, order, summary; body: the introduction
    content/<course-slug>/<lesson-slug>.md front matter: LessonMeta below; body: the lesson

Files are validated with the pydantic models below when first read (every field checked, unknown keys refused),
so a broken lesson fails the test suite instead of a page. The loaded catalogue is immutable and cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import frontmatter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from ainfluencer.academy.render import plain_text

CONTENT_DIR = Path(__file__).parent / "content"
SLUG_RE = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
#: Course slugs the pages use for their own routes.
RESERVED_SLUGS = frozenset({"team", "docs", "search", "new"})
TEAM_COURSE = "team"

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE, max_length=80)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class Level(StrEnum):
    """How much a reader should know before starting."""

    beginner = "beginner"
    intermediate = "intermediate"
    advanced = "advanced"


class ContentError(ValueError):
    """A lesson or course file that does not validate; the message names the file."""


class QuizOption(BaseModel):
    """One answer a reader can pick."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: ShortText
    correct: bool = False


class Quiz(BaseModel):
    """One question with exactly one correct option and an explanation shown after answering."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=500)]
    options: list[QuizOption] = Field(min_length=2, max_length=6)
    explanation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=1500)]

    @model_validator(mode="after")
    def _one_correct(self) -> Quiz:
        right = sum(1 for o in self.options if o.correct)
        if right != 1:
            raise ValueError(f"a quiz needs exactly one option with 'correct: true' (this one has {right})")
        texts = [o.text.casefold() for o in self.options]
        if len(set(texts)) != len(texts):
            raise ValueError("two options of the quiz have the same text")
        return self

    @property
    def correct_index(self) -> int:
        """Position of the correct option (0-based)."""
        return next(i for i, o in enumerate(self.options) if o.correct)


class DoItNow(BaseModel):
    """Where in the product the reader does what the lesson taught."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: ShortText
    href: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]

    @field_validator("href")
    @classmethod
    def _local(cls, value: str) -> str:
        if not value.startswith("/") or value.startswith("//") or any(c in value for c in "\\\r\n "):
            raise ValueError("'Do it now' must be a path inside the product, starting with a single '/'")
        return value


class CourseMeta(BaseModel):
    """Front matter of ``_course.md``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: ShortText
    level: Level
    order: int = Field(ge=0, le=1000)
    summary: ShortText


class LessonMeta(BaseModel):
    """Front matter of a lesson file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: ShortText
    order: int = Field(ge=0, le=1000)
    level: Level
    minutes: int = Field(ge=1, le=240, description="estimated reading-and-doing time")
    summary: ShortText
    do_it_now: DoItNow
    quiz: Quiz
    tags: list[Slug] = Field(default_factory=list, max_length=12)


@dataclass(frozen=True)
class Lesson:
    """A lesson ready to show: front matter, Markdown body and where it lives."""

    course: str
    slug: str
    title: str
    order: int
    level: Level
    minutes: int
    summary: str
    body: str
    do_it_now: DoItNow | None
    quiz: Quiz | None
    tags: tuple[str, ...] = ()
    source: str = ""
    team_lesson_id: int | None = None

    @property
    def key(self) -> str:
        """Stable id of the lesson in progress rows: ``<course>/<lesson>``."""
        return f"{self.course}/{self.slug}"

    @property
    def href(self) -> str:
        """The lesson's page."""
        return f"/academy/{self.course}/{self.slug}"


@dataclass(frozen=True)
class Course:
    """A course and its lessons in reading order."""

    slug: str
    title: str
    level: Level
    order: int
    summary: str
    intro: str
    lessons: tuple[Lesson, ...] = field(default_factory=tuple)

    @property
    def minutes(self) -> int:
        """Estimated time for the whole course."""
        return sum(lesson.minutes for lesson in self.lessons)

    @property
    def href(self) -> str:
        """The course's page."""
        return f"/academy/{self.slug}"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "front matter"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _read(path: Path) -> tuple[dict[str, object], str]:
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:  # yaml's errors have no common public base worth naming here
        raise ContentError(f"{path}: the front matter is not valid YAML ({exc})") from exc
    if not post.metadata:
        raise ContentError(f"{path}: no front matter (start the file with a '---' block)")
    return dict(post.metadata), post.content.strip()


def load_lesson(path: Path, course: str) -> Lesson:
    """Read and validate one lesson file."""
    slug = path.stem
    if not re.match(SLUG_RE, slug):
        raise ContentError(f"{path}: file names are lowercase words joined by '-' (got {slug!r})")
    raw, body = _read(path)
    try:
        meta = LessonMeta.model_validate(raw)
    except ValidationError as exc:
        raise ContentError(f"{path}: {_describe(exc)}") from exc
    if len(body) < 200:
        raise ContentError(f"{path}: the lesson body is too short to teach anything ({len(body)} characters)")
    return Lesson(course=course, slug=slug, title=meta.title, order=meta.order, level=meta.level,
                  minutes=meta.minutes, summary=meta.summary, body=body, do_it_now=meta.do_it_now,
                  quiz=meta.quiz, tags=tuple(meta.tags), source=str(path))


def load_course(folder: Path) -> Course:
    """Read and validate one course folder."""
    slug = folder.name
    if not re.match(SLUG_RE, slug) or slug in RESERVED_SLUGS:
        raise ContentError(f"{folder}: course folders are lowercase words joined by '-', and not one of "
                           f"{sorted(RESERVED_SLUGS)} (got {slug!r})")
    course_file = folder / "_course.md"
    if not course_file.is_file():
        raise ContentError(f"{folder}: missing _course.md")
    raw, intro = _read(course_file)
    try:
        meta = CourseMeta.model_validate(raw)
    except ValidationError as exc:
        raise ContentError(f"{course_file}: {_describe(exc)}") from exc
    lessons = sorted((load_lesson(p, slug) for p in folder.glob("*.md") if p.name != "_course.md"),
                     key=lambda lesson: (lesson.order, lesson.slug))
    if not lessons:
        raise ContentError(f"{folder}: a course needs at least one lesson")
    orders = [lesson.order for lesson in lessons]
    if len(set(orders)) != len(orders):
        raise ContentError(f"{folder}: two lessons share an 'order' value ({orders})")
    return Course(slug=slug, title=meta.title, level=meta.level, order=meta.order, summary=meta.summary,
                  intro=intro, lessons=tuple(lessons))


def load_catalog(root: Path = CONTENT_DIR) -> tuple[Course, ...]:
    """Every course under ``root``, in order; raises ContentError on the first file that does not validate."""
    courses = [load_course(p) for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
    return tuple(sorted(courses, key=lambda c: (c.order, c.slug)))


@lru_cache(maxsize=1)
def builtin_catalog() -> tuple[Course, ...]:
    """The built-in courses, read once per process (the files ship inside the package)."""
    return load_catalog(CONTENT_DIR)


@lru_cache(maxsize=512)
def body_text(body: str) -> str:
    """Plain text of a lesson body (search and snippets); cached because built-in bodies never change."""
    return plain_text(body)
