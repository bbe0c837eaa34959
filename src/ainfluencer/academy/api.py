"""REST API of the Academy under /api/v1/academy: courses, lessons, progress, quiz answers, team lessons."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ainfluencer.academy import service as svc
from ainfluencer.academy.content import Course, Lesson
from ainfluencer.academy.links import path_exists
from ainfluencer.academy.models import LessonProgress
from ainfluencer.academy.render import render_markdown
from ainfluencer.academy.schemas import (
    CoursePublic,
    CoursesPublic,
    CourseSummary,
    DoItNowPublic,
    LessonProgressPublic,
    LessonPublic,
    LessonSummary,
    ProgressPublic,
    ProgressUpdate,
    QuizAnswer,
    QuizPublic,
    QuizResult,
    SearchHitPublic,
    SearchResults,
    TeamLessonCreate,
    TeamLessonUpdate,
)
from ainfluencer.api.deps import Reader, SessionDep, Writer
from ainfluencer.db.models import User

router = APIRouter(prefix="/academy", tags=["academy"])


def progress_public(row: LessonProgress) -> LessonProgressPublic:
    """Schema for a progress row."""
    return LessonProgressPublic(lesson_key=row.lesson_key, completed=row.completed_at is not None,
                                completed_at=row.completed_at, quiz_answer=row.quiz_answer,
                                quiz_correct=row.quiz_correct, quiz_attempts=row.quiz_attempts or 0)


def lesson_summary(lesson: Lesson, progress: dict[str, LessonProgress]) -> LessonSummary:
    """Schema for a lesson in a listing."""
    row = progress.get(lesson.key)
    return LessonSummary(course=lesson.course, slug=lesson.slug, key=lesson.key, title=lesson.title,
                         level=lesson.level.value, minutes=lesson.minutes, summary=lesson.summary,
                         href=lesson.href, completed=bool(row and row.completed_at))


def course_summary(course: Course, progress: dict[str, LessonProgress]) -> CourseSummary:
    """Schema for a course in a listing."""
    done = svc.course_progress(course, progress)
    return CourseSummary(slug=course.slug, title=course.title, level=course.level.value, summary=course.summary,
                         minutes=course.minutes, lessons_total=done.total, lessons_done=done.done, href=course.href)


def lesson_public(session: Session, user: User, course: Course, lesson: Lesson) -> LessonPublic:
    """Schema for a whole lesson with this person's progress."""
    progress = svc.progress_map(session, user=user, keys=[lesson.key])
    before, after = svc.neighbours(course, lesson)
    row = progress.get(lesson.key)
    return LessonPublic(
        **lesson_summary(lesson, progress).model_dump(),
        body_markdown=lesson.body, body_html=str(render_markdown(lesson.body)),
        do_it_now=DoItNowPublic(label=lesson.do_it_now.label, href=lesson.do_it_now.href) if lesson.do_it_now else None,
        quiz=QuizPublic(question=lesson.quiz.question, options=[o.text for o in lesson.quiz.options])
        if lesson.quiz else None,
        progress=progress_public(row) if row else None,
        previous=before.key if before else None, next=after.key if after else None,
        team_lesson_id=lesson.team_lesson_id,
    )


@router.get("/courses", response_model=CoursesPublic)
def read_courses(principal: Reader, session: SessionDep) -> CoursesPublic:
    """Every course with its level, estimated time and your progress."""
    progress = svc.progress_map(session, user=principal.user)
    courses = svc.catalog(session)
    return CoursesPublic(data=[course_summary(c, progress) for c in courses], count=len(courses))


@router.get("/courses/{course}", response_model=CoursePublic)
def read_course(course: str, principal: Reader, session: SessionDep) -> CoursePublic:
    """One course: introduction and lessons with your completion marks."""
    found = svc.get_course(session, course)
    progress = svc.progress_map(session, user=principal.user, keys=[x.key for x in found.lessons])
    return CoursePublic(**course_summary(found, progress).model_dump(), intro_html=str(render_markdown(found.intro)),
                        lessons=[lesson_summary(x, progress) for x in found.lessons])


@router.get("/courses/{course}/lessons/{lesson}", response_model=LessonPublic)
def read_lesson(course: str, lesson: str, principal: Reader, session: SessionDep) -> LessonPublic:
    """One lesson: Markdown and safe HTML, 'Do it now' link, quiz (without the answer) and your progress."""
    found_course, found = svc.get_lesson(session, course, lesson)
    return lesson_public(session, principal.user, found_course, found)


@router.put("/courses/{course}/lessons/{lesson}/progress", response_model=LessonProgressPublic)
def update_lesson_progress(course: str, lesson: str, body: ProgressUpdate, principal: Writer,
                           session: SessionDep) -> LessonProgressPublic:
    """Mark a lesson done (`{"completed": true}`) or not done."""
    _, found = svc.get_lesson(session, course, lesson)
    return progress_public(svc.set_completed(session, user=principal.user, lesson=found, completed=body.completed))


@router.post("/courses/{course}/lessons/{lesson}/quiz", response_model=QuizResult)
def create_quiz_answer(course: str, lesson: str, body: QuizAnswer, principal: Writer,
                       session: SessionDep) -> QuizResult:
    """Answer a lesson's quiz; a correct answer marks the lesson done. The explanation comes back either way."""
    _, found = svc.get_lesson(session, course, lesson)
    outcome = svc.answer_quiz(session, user=principal.user, lesson=found, answer=body.answer)
    return QuizResult(correct=outcome.correct, answer=outcome.answer, explanation=outcome.explanation,
                      progress=progress_public(outcome.progress))


@router.get("/progress", response_model=ProgressPublic)
def read_progress(principal: Reader, session: SessionDep) -> ProgressPublic:
    """Every lesson you have started or finished, and your totals over the whole catalogue."""
    progress = svc.progress_map(session, user=principal.user)
    lessons = [x for c in svc.catalog(session) for x in c.lessons]
    done = sum(1 for x in lessons if (row := progress.get(x.key)) and row.completed_at)
    known = {x.key for x in lessons}
    rows = sorted((r for r in progress.values() if r.lesson_key in known), key=lambda r: r.lesson_key)
    return ProgressPublic(data=[progress_public(r) for r in rows], lessons_done=done, lessons_total=len(lessons))


@router.get("/search", response_model=SearchResults)
def read_search(principal: Reader, session: SessionDep,
                q: str = Query(..., min_length=1, max_length=svc.MAX_QUERY)) -> SearchResults:
    """Lessons containing every word of `q` (titles count most, then summaries and tags, then the text)."""
    hits = svc.search(session, q)
    progress = svc.progress_map(session, user=principal.user, keys=[h.lesson.key for h in hits])
    return SearchResults(query=q, count=len(hits), data=[
        SearchHitPublic(course_title=h.course.title, lesson=lesson_summary(h.lesson, progress), snippet=h.snippet)
        for h in hits])


def _spec(body: TeamLessonCreate) -> svc.TeamLessonSpec:
    return svc.TeamLessonSpec(title=body.title, body=body.body, summary=body.summary, level=body.level,
                              minutes=body.minutes, position=body.position, do_it_now_label=body.do_it_now_label,
                              do_it_now_href=body.do_it_now_href,
                              quiz=body.quiz.model_dump() if body.quiz else None)


@router.post("/team-lessons", response_model=LessonPublic, status_code=status.HTTP_201_CREATED)
def create_team_lesson(body: TeamLessonCreate, request: Request, principal: Writer,
                       session: SessionDep) -> LessonPublic:
    """Owner only: add a lesson for everyone here (course `team`). 422 names the field that is wrong."""
    row = svc.create_team_lesson(session, user=principal.user, spec=_spec(body),
                                 path_exists=lambda href: path_exists(request.app, href))
    course, lesson = svc.get_lesson(session, "team", str(row.id))
    return lesson_public(session, principal.user, course, lesson)


@router.patch("/team-lessons/{lesson_id}", response_model=LessonPublic)
def update_team_lesson(lesson_id: int, body: TeamLessonUpdate, request: Request, principal: Writer,
                       session: SessionDep) -> LessonPublic:
    """Owner only: change a team lesson (progress on it is kept)."""
    row = svc.get_team_lesson(session, lesson_id)
    spec = svc.spec_of(row)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"quiz", "clear_quiz"}).items()
               if v is not None}
    spec = replace(spec, **changes)
    if body.quiz is not None:
        spec.quiz = body.quiz.model_dump()
    elif body.clear_quiz:
        spec.quiz = None
    svc.update_team_lesson(session, user=principal.user, row=row, spec=spec,
                           path_exists=lambda href: path_exists(request.app, href))
    course, lesson = svc.get_lesson(session, "team", str(row.id))
    return lesson_public(session, principal.user, course, lesson)


@router.delete("/team-lessons/{lesson_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_team_lesson(lesson_id: int, principal: Writer, session: SessionDep) -> Response:
    """Owner only: remove a team lesson and everyone's progress on it."""
    svc.delete_team_lesson(session, user=principal.user, row=svc.get_team_lesson(session, lesson_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
