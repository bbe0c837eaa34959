"""Academy service: the catalogue (built-in files + team lessons), progress, quiz answers, search, team lessons.

Pages and the API call these functions; they never read the content files or the tables themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ainfluencer.academy.content import (
    TEAM_COURSE,
    Course,
    DoItNow,
    Lesson,
    Level,
    Quiz,
    body_text,
    builtin_catalog,
)
from ainfluencer.academy.models import LessonProgress, TeamLesson
from ainfluencer.db.models import User, utcnow
from ainfluencer.errors import InvalidInput, NotFound, PermissionDenied

TEAM_TITLE = "From your team"
TEAM_SUMMARY = "Lessons the owner of this installation wrote for the people who work here."
MAX_QUERY = 200
MAX_BODY = 50_000
SNIPPET_CHARS = 160
_WORD = re.compile(r"\w+", re.UNICODE)

PathCheck = Callable[[str], bool]


# ---- catalogue -----------------------------------------------------------------------------


def _team_lesson(row: TeamLesson) -> Lesson:
    quiz = Quiz.model_validate(row.quiz) if row.quiz else None
    do_it = DoItNow(label=row.do_it_now_label, href=row.do_it_now_href) if row.do_it_now_href else None
    return Lesson(course=TEAM_COURSE, slug=str(row.id), title=row.title, order=row.position,
                  level=Level(row.level), minutes=row.minutes, summary=row.summary, body=row.body,
                  do_it_now=do_it, quiz=quiz, team_lesson_id=row.id)


def list_team_lessons(session: Session) -> list[TeamLesson]:
    """Team lessons of this installation, in reading order (workspace-less until workspaces exist)."""
    q = select(TeamLesson).where(TeamLesson.workspace_id.is_(None)).order_by(TeamLesson.position, TeamLesson.id)
    return list(session.scalars(q))


def team_course(session: Session) -> Course:
    """The team's own lessons as one course (possibly empty)."""
    lessons = tuple(_team_lesson(r) for r in list_team_lessons(session))
    return Course(slug=TEAM_COURSE, title=TEAM_TITLE, level=Level.beginner, order=10_000, summary=TEAM_SUMMARY,
                  intro="", lessons=lessons)


def catalog(session: Session) -> list[Course]:
    """Every course: the built-in ones, then the team's (when it has lessons)."""
    courses = list(builtin_catalog())
    team = team_course(session)
    if team.lessons:
        courses.append(team)
    return courses


def get_course(session: Session, slug: str) -> Course:
    """One course by slug."""
    if slug == TEAM_COURSE:
        return team_course(session)
    for course in builtin_catalog():
        if course.slug == slug:
            return course
    raise NotFound(f"There is no course '{slug}'.", field="course")


def get_lesson(session: Session, course_slug: str, lesson_slug: str) -> tuple[Course, Lesson]:
    """One lesson and its course."""
    course = get_course(session, course_slug)
    for lesson in course.lessons:
        if lesson.slug == lesson_slug:
            return course, lesson
    raise NotFound(f"The course '{course.title}' has no lesson '{lesson_slug}'.", field="lesson")


def neighbours(course: Course, lesson: Lesson) -> tuple[Lesson | None, Lesson | None]:
    """The lessons before and after ``lesson`` in its course."""
    keys = [x.key for x in course.lessons]
    i = keys.index(lesson.key)
    return (course.lessons[i - 1] if i > 0 else None,
            course.lessons[i + 1] if i + 1 < len(course.lessons) else None)


# ---- progress ------------------------------------------------------------------------------


def progress_map(session: Session, *, user: User, keys: Iterable[str] | None = None) -> dict[str, LessonProgress]:
    """The user's progress rows by lesson key (only ``keys`` when given)."""
    q = select(LessonProgress).where(LessonProgress.user_id == user.id)
    if keys is not None:
        wanted = list(keys)
        if not wanted:
            return {}
        q = q.where(LessonProgress.lesson_key.in_(wanted))
    return {row.lesson_key: row for row in session.scalars(q)}


@dataclass(frozen=True)
class CourseProgress:
    """How far one person is in one course."""

    done: int
    total: int

    @property
    def percent(self) -> int:
        """Whole percent done."""
        return round(100 * self.done / self.total) if self.total else 0


def course_progress(course: Course, progress: dict[str, LessonProgress]) -> CourseProgress:
    """Completed lessons of ``course`` out of its total."""
    done = sum(1 for lesson in course.lessons if (p := progress.get(lesson.key)) and p.completed_at)
    return CourseProgress(done=done, total=len(course.lessons))


def _row(session: Session, user: User, lesson: Lesson) -> LessonProgress:
    row = session.scalar(select(LessonProgress).where(LessonProgress.user_id == user.id,
                                                      LessonProgress.lesson_key == lesson.key))
    if row is None:
        row = LessonProgress(user_id=user.id, lesson_key=lesson.key, quiz_attempts=0)
        session.add(row)
    return row


def set_completed(session: Session, *, user: User, lesson: Lesson, completed: bool) -> LessonProgress:
    """Mark a lesson done (keeps the first completion time) or not done."""
    row = _row(session, user, lesson)
    if completed and row.completed_at is None:
        row.completed_at = utcnow()
    elif not completed:
        row.completed_at = None
    session.flush()
    return row


@dataclass(frozen=True)
class QuizOutcome:
    """What answering a quiz did."""

    correct: bool
    answer: int
    explanation: str
    progress: LessonProgress


def answer_quiz(session: Session, *, user: User, lesson: Lesson, answer: int) -> QuizOutcome:
    """Record an answer (0-based option index); a correct one completes the lesson."""
    if lesson.quiz is None:
        raise InvalidInput("This lesson has no quiz; mark it done instead.", field="answer")
    if not 0 <= answer < len(lesson.quiz.options):
        raise InvalidInput(f"Pick one of the {len(lesson.quiz.options)} options (0 to "
                           f"{len(lesson.quiz.options) - 1}).", field="answer")
    row = _row(session, user, lesson)
    correct = answer == lesson.quiz.correct_index
    row.quiz_answer, row.quiz_correct = answer, correct
    row.quiz_attempts = (row.quiz_attempts or 0) + 1
    row.quiz_answered_at = utcnow()
    if correct and row.completed_at is None:
        row.completed_at = row.quiz_answered_at
    session.flush()
    return QuizOutcome(correct=correct, answer=answer, explanation=lesson.quiz.explanation, progress=row)


# ---- search --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """A lesson that matches every word of a query, with a snippet of its text."""

    course: Course
    lesson: Lesson
    score: int
    snippet: str


def _terms(query: str) -> list[str]:
    return [t.casefold() for t in _WORD.findall(query)]


def _snippet(text: str, terms: Sequence[str], fallback: str) -> str:
    lowered = text.casefold()
    positions = [p for t in terms if (p := lowered.find(t)) >= 0]
    if not positions:
        return fallback
    start = max(0, min(positions) - SNIPPET_CHARS // 3)
    end = min(len(text), start + SNIPPET_CHARS)
    # Cut at spaces so the snippet starts and ends with whole words.
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < min(positions) else start
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    piece = text[start:end].strip()
    return ("…" if start else "") + piece + ("…" if end < len(text) else "")


def search(session: Session, query: str, *, limit: int = 30) -> list[SearchHit]:
    """Lessons containing every word of ``query`` (title, summary, tags, body), best first."""
    query = query.strip()
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"Search for at most {MAX_QUERY} characters.", field="q")
    terms = _terms(query)
    if not terms:
        return []
    hits: list[SearchHit] = []
    for course in catalog(session):
        for lesson in course.lessons:
            title, summary = lesson.title.casefold(), lesson.summary.casefold()
            tags = " ".join(lesson.tags).casefold()
            plain = body_text(lesson.body)
            body = plain.casefold()
            score = 0
            for term in terms:
                in_title, in_summary = term in title, term in summary or term in tags
                in_body = term in body or term in course.title.casefold()
                if not (in_title or in_summary or in_body):
                    break
                score += 5 * in_title + 3 * in_summary + 1 * in_body
            else:
                hits.append(SearchHit(course=course, lesson=lesson, score=score,
                                      snippet=_snippet(plain, terms, lesson.summary)))
    hits.sort(key=lambda h: (-h.score, h.course.order, h.lesson.order))
    return hits[:limit]


# ---- team lessons --------------------------------------------------------------------------


@dataclass
class TeamLessonSpec:
    """What an owner fills in for a team lesson; ``quiz`` as {question, options: [str], correct, explanation}."""

    title: str
    body: str
    summary: str = ""
    level: str = "beginner"
    minutes: int = 5
    position: int = 0
    do_it_now_label: str = ""
    do_it_now_href: str = ""
    quiz: dict[str, Any] | None = field(default=None)


def _require_owner(user: User) -> None:
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can write team lessons.")


def _clean(spec: TeamLessonSpec, path_exists: PathCheck | None) -> dict[str, Any]:
    title = spec.title.strip()
    if not title:
        raise InvalidInput("Give the lesson a title.", field="title")
    if len(title) > 200:
        raise InvalidInput("Keep the title under 200 characters.", field="title")
    summary = spec.summary.strip()
    if len(summary) > 300:
        raise InvalidInput("Keep the summary under 300 characters.", field="summary")
    body = spec.body.strip()
    if not body:
        raise InvalidInput("Write the lesson (Markdown).", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"Keep the lesson under {MAX_BODY:,} characters.", field="body")
    if spec.level not in {lv.value for lv in Level}:
        raise InvalidInput("Level is beginner, intermediate or advanced.", field="level")
    if not 1 <= spec.minutes <= 240:
        raise InvalidInput("Estimated time is 1 to 240 minutes.", field="minutes")
    if not 0 <= spec.position <= 10_000:
        raise InvalidInput("Position is 0 to 10000.", field="position")
    label, href = spec.do_it_now_label.strip(), spec.do_it_now_href.strip()
    if href:
        try:
            DoItNow(label=label or "Do it now", href=href)
        except ValidationError:
            raise InvalidInput("'Do it now' is a path inside the product, e.g. /characters/new.",
                               field="do_it_now_href") from None
        if path_exists is not None and not path_exists(href):
            raise InvalidInput(f"There is no page at {href.split('?')[0]}.", field="do_it_now_href")
    elif label:
        raise InvalidInput("Give the path 'Do it now' opens, or leave both empty.", field="do_it_now_href")
    if len(label) > 200:
        raise InvalidInput("Keep the button text under 200 characters.", field="do_it_now_label")
    return {"title": title, "summary": summary, "body": body, "level": spec.level, "minutes": spec.minutes,
            "position": spec.position, "do_it_now_label": label or ("Do it now" if href else ""),
            "do_it_now_href": href, "quiz": _clean_quiz(spec.quiz)}


def _clean_quiz(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    if not raw:
        return None
    question = str(raw.get("question") or "").strip()
    options = [str(o).strip() for o in raw.get("options") or [] if str(o).strip()]
    explanation = str(raw.get("explanation") or "").strip()
    if not (question or options or explanation):
        return None
    if len(question) < 5:
        raise InvalidInput("Write the quiz question (or leave the whole quiz empty).", field="quiz.question")
    if not 2 <= len(options) <= 6:
        raise InvalidInput("A quiz has 2 to 6 options.", field="quiz.options")
    correct = raw.get("correct")
    if not isinstance(correct, int) or isinstance(correct, bool) or not 0 <= correct < len(options):
        raise InvalidInput(f"Say which option is correct (0 to {len(options) - 1}).", field="quiz.correct")
    if len(explanation) < 10:
        raise InvalidInput("Explain the answer in a sentence; readers see it after answering.",
                           field="quiz.explanation")
    data = {"question": question, "explanation": explanation,
            "options": [{"text": text, "correct": i == correct} for i, text in enumerate(options)]}
    try:
        Quiz.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"The quiz is not valid: {exc.errors()[0]['msg']}", field="quiz.options") from None
    return data


def get_team_lesson(session: Session, lesson_id: int) -> TeamLesson:
    """One team lesson of this installation."""
    row = session.get(TeamLesson, lesson_id)
    if row is None or row.workspace_id is not None:
        raise NotFound("There is no such team lesson.", field="lesson_id")
    return row


def create_team_lesson(session: Session, *, user: User, spec: TeamLessonSpec,
                       path_exists: PathCheck | None = None) -> TeamLesson:
    """An owner adds a lesson for everyone on this installation."""
    _require_owner(user)
    row = TeamLesson(**_clean(spec, path_exists), created_by=user.id, updated_by=user.id)
    session.add(row)
    session.flush()
    return row


def update_team_lesson(session: Session, *, user: User, row: TeamLesson, spec: TeamLessonSpec,
                       path_exists: PathCheck | None = None) -> TeamLesson:
    """An owner rewrites a team lesson; progress on it is kept."""
    _require_owner(user)
    for key, value in _clean(spec, path_exists).items():
        setattr(row, key, value)
    row.updated_by = user.id
    session.flush()
    return row


def delete_team_lesson(session: Session, *, user: User, row: TeamLesson) -> None:
    """An owner removes a team lesson and everyone's progress on it."""
    _require_owner(user)
    key = f"{TEAM_COURSE}/{row.id}"
    session.execute(delete(LessonProgress).where(LessonProgress.lesson_key == key))
    session.delete(row)
    session.flush()


def spec_of(row: TeamLesson) -> TeamLessonSpec:
    """The editable fields of a team lesson."""
    quiz = None
    if row.quiz:
        options = row.quiz.get("options") or []
        quiz = {"question": row.quiz.get("question", ""), "explanation": row.quiz.get("explanation", ""),
                "options": [o.get("text", "") for o in options],
                "correct": next((i for i, o in enumerate(options) if o.get("correct")), 0)}
    return TeamLessonSpec(title=row.title, body=row.body, summary=row.summary, level=row.level, minutes=row.minutes,
                          position=row.position, do_it_now_label=row.do_it_now_label,
                          do_it_now_href=row.do_it_now_href, quiz=quiz)
