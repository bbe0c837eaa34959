"""Schemas of the Academy API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LevelName = Literal["beginner", "intermediate", "advanced"]


class DoItNowPublic(BaseModel):
    """The place in the product where a lesson is put to use."""

    label: str
    href: str = Field(description="a path of this app")


class QuizPublic(BaseModel):
    """A lesson's quiz as a reader sees it (which option is correct is not included)."""

    question: str
    options: list[str]


class LessonProgressPublic(BaseModel):
    """One person's state in one lesson."""

    lesson_key: str = Field(description="<course>/<lesson>")
    completed: bool
    completed_at: datetime | None
    quiz_answer: int | None = Field(description="the last answer given (0-based option index)")
    quiz_correct: bool | None
    quiz_attempts: int


class LessonSummary(BaseModel):
    """A lesson in a course listing."""

    course: str
    slug: str
    key: str
    title: str
    level: LevelName
    minutes: int
    summary: str
    href: str = Field(description="the lesson's page")
    completed: bool


class LessonPublic(LessonSummary):
    """A whole lesson: the Markdown source, the safe HTML rendering, the 'Do it now' link and the quiz."""

    body_markdown: str
    body_html: str = Field(description="rendered with raw HTML disabled; safe to insert as is")
    do_it_now: DoItNowPublic | None
    quiz: QuizPublic | None
    progress: LessonProgressPublic | None
    previous: str | None = Field(description="key of the lesson before this one")
    next: str | None = Field(description="key of the lesson after this one")
    team_lesson_id: int | None = Field(description="set for lessons written by the owner of this installation")


class CourseSummary(BaseModel):
    """A course with this person's progress."""

    slug: str
    title: str
    level: LevelName
    summary: str
    minutes: int = Field(description="estimated time for every lesson together")
    lessons_total: int
    lessons_done: int
    href: str


class CoursePublic(CourseSummary):
    """A course with its introduction and lessons."""

    intro_html: str
    lessons: list[LessonSummary]


class CoursesPublic(BaseModel):
    """Every course."""

    data: list[CourseSummary]
    count: int


class ProgressPublic(BaseModel):
    """Everything this person has started or finished."""

    data: list[LessonProgressPublic]
    lessons_done: int
    lessons_total: int


class ProgressUpdate(BaseModel):
    """Mark a lesson done or not done."""

    model_config = ConfigDict(extra="forbid")

    completed: bool


class QuizAnswer(BaseModel):
    """An answer to a lesson's quiz."""

    model_config = ConfigDict(extra="forbid")

    answer: int = Field(description="0-based index of the chosen option")


class QuizResult(BaseModel):
    """Whether the answer was right, why, and the lesson's progress afterwards."""

    correct: bool
    answer: int
    explanation: str
    progress: LessonProgressPublic


class SearchHitPublic(BaseModel):
    """A lesson matching a search."""

    course_title: str
    lesson: LessonSummary
    snippet: str


class SearchResults(BaseModel):
    """Lessons containing every word of the query, best first."""

    query: str
    data: list[SearchHitPublic]
    count: int


class TeamQuiz(BaseModel):
    """A quiz for a team lesson."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=500)
    options: list[str] = Field(description="2 to 6 options")
    correct: int = Field(description="0-based index of the correct option")
    explanation: str = Field(max_length=1500)


class TeamLessonCreate(BaseModel):
    """A lesson the owner writes for the team (Markdown; raw HTML is shown as text)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=200)
    body: str = Field(description="Markdown", max_length=50_000)
    summary: str = Field("", max_length=300)
    level: LevelName = "beginner"
    minutes: int = Field(5, description="estimated time, 1 to 240")
    position: int = Field(0, description="reading order among team lessons")
    do_it_now_label: str = Field("", max_length=200)
    do_it_now_href: str = Field("", max_length=300, description="a path of this app, e.g. /characters/new")
    quiz: TeamQuiz | None = None


class TeamLessonUpdate(BaseModel):
    """Changed fields of a team lesson."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200)
    body: str | None = Field(None, max_length=50_000)
    summary: str | None = Field(None, max_length=300)
    level: LevelName | None = None
    minutes: int | None = None
    position: int | None = None
    do_it_now_label: str | None = Field(None, max_length=200)
    do_it_now_href: str | None = Field(None, max_length=300)
    quiz: TeamQuiz | None = Field(None, description="send null together with clear_quiz to remove the quiz")
    clear_quiz: bool = False
