"""Academy pages: catalogue and search, course, lesson (quiz, done mark, 'Do it now'), team-lesson forms, docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from ainfluencer.academy import service as svc
from ainfluencer.academy.content import TEAM_COURSE, Level
from ainfluencer.academy.links import path_exists
from ainfluencer.academy.render import render_markdown
from ainfluencer.api.deps import SessionDep
from ainfluencer.csrf import csrf_protect
from ainfluencer.errors import AppError, InvalidInput, NotFound, PermissionDenied
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

#: The repository's docs folder (present in a checkout and an editable install, which `make run` makes).
DOCS_DIR = Path(__file__).resolve().parents[3] / "docs"
_DOC_NAME = re.compile(r"^[a-z0-9_-]{1,60}$")
LEVELS = [lv.value for lv in Level]


class TeamLessonForm(BaseModel):
    """The team-lesson form as typed (everything a string; the service checks the values)."""

    title: str = ""
    summary: str = ""
    body: str = ""
    level: str = "beginner"
    minutes: str = "5"
    position: str = "0"
    do_it_now_label: str = ""
    do_it_now_href: str = ""
    quiz_question: str = ""
    quiz_options: str = ""
    quiz_correct: str = ""
    quiz_explanation: str = ""


def _int(value: str, field: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number.", field=field) from None


def _spec_from_form(form: TeamLessonForm) -> svc.TeamLessonSpec:
    options = [line.strip() for line in form.quiz_options.splitlines() if line.strip()]
    quiz: dict[str, Any] | None = None
    if form.quiz_question.strip() or options or form.quiz_explanation.strip():
        # People count options from 1 in the form; the service counts from 0.
        correct = _int(form.quiz_correct or "0", "quiz_correct", "The correct option") - 1
        quiz = {"question": form.quiz_question, "options": options, "correct": correct,
                "explanation": form.quiz_explanation}
    return svc.TeamLessonSpec(
        title=form.title, summary=form.summary, body=form.body, level=form.level,
        minutes=_int(form.minutes, "minutes", "Estimated time"), position=_int(form.position, "position", "Position"),
        do_it_now_label=form.do_it_now_label, do_it_now_href=form.do_it_now_href, quiz=quiz)


def _form_of(spec: svc.TeamLessonSpec) -> TeamLessonForm:
    quiz = spec.quiz or {}
    return TeamLessonForm(
        title=spec.title, summary=spec.summary, body=spec.body, level=spec.level, minutes=str(spec.minutes),
        position=str(spec.position), do_it_now_label=spec.do_it_now_label, do_it_now_href=spec.do_it_now_href,
        quiz_question=quiz.get("question", ""), quiz_options="\n".join(quiz.get("options", [])),
        quiz_correct=str(quiz["correct"] + 1) if quiz else "", quiz_explanation=quiz.get("explanation", ""))


def _form_errors(exc: AppError) -> dict[str, str]:
    return {(exc.field or "_form").replace(".", "_"): exc.message}


def _owner_only(user: Any) -> None:
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can write team lessons.")


# ---- catalogue and search ----------------------------------------------------------------------


@router.get("/academy", response_class=HTMLResponse)
def read_academy(request: Request, session: SessionDep, user: CurrentUser,
                 q: str = Query("", max_length=svc.MAX_QUERY)) -> HTMLResponse:
    """Every course with your progress; with ?q= the lessons that match."""
    courses = svc.catalog(session)
    progress = svc.progress_map(session, user=user)
    hits = svc.search(session, q) if q.strip() else None
    all_lessons = [x for c in courses for x in c.lessons]
    done = sum(1 for x in all_lessons if (p := progress.get(x.key)) and p.completed_at)
    ctx = {"active": "academy", "courses": courses, "progress": progress, "q": q, "hits": hits,
           "course_progress": {c.slug: svc.course_progress(c, progress) for c in courses},
           "done": done, "total": len(all_lessons), "notice": request.query_params.get("done", "")}
    return render(request, "academy/index.html", ctx, user=user)


@router.get("/academy/docs/{name}", response_class=HTMLResponse)
def read_doc(name: str, request: Request, user: CurrentUser) -> HTMLResponse:
    """A guide from the repository's docs/ folder, rendered with the lessons' safe renderer."""
    path = DOCS_DIR / f"{name}.md"
    if not _DOC_NAME.match(name) or not path.is_file():
        raise NotFound(f"There is no guide docs/{name}.md in this installation (the docs folder ships with the "
                       "source code; read it in the repository).")
    return render(request, "academy/doc.html", {"active": "academy", "name": name,
                                                "html": render_markdown(path.read_text(encoding="utf-8"))},
                  user=user)


# ---- team lessons --------------------------------------------------------------------------------


def _team_form_page(request: Request, user: Any, form: TeamLessonForm, errors: dict[str, str],
                    lesson_id: int | None, status_code: int = 200) -> HTMLResponse:
    preview = render_markdown(form.body) if form.body.strip() else None
    return render(request, "academy/team_form.html", {
        "active": "academy", "form": form, "errors": errors, "lesson_id": lesson_id, "levels": LEVELS,
        "preview": preview}, user=user, status_code=status_code)


@router.get("/academy/team/new", response_class=HTMLResponse)
def read_team_new(request: Request, user: CurrentUser) -> HTMLResponse:
    """The form for a new team lesson (owner only)."""
    _owner_only(user)
    return _team_form_page(request, user, TeamLessonForm(), {}, None)


@router.post("/academy/team/new", response_class=HTMLResponse)
def create_team_lesson(request: Request, session: SessionDep, user: CurrentUser,
                       form: Annotated[TeamLessonForm, Form()]) -> Response:
    """Save a new team lesson and open it."""
    try:
        row = svc.create_team_lesson(session, user=user, spec=_spec_from_form(form),
                                     path_exists=lambda href: path_exists(request.app, href))
    except (InvalidInput, PermissionDenied) as exc:
        session.rollback()
        return _team_form_page(request, user, form, _form_errors(exc), None, status_code=exc.status_code)
    session.commit()
    return redirect(f"/academy/{TEAM_COURSE}/{row.id}?saved=1")


@router.get("/academy/team/{lesson_id}/edit", response_class=HTMLResponse)
def read_team_edit(lesson_id: int, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The form for changing a team lesson (owner only)."""
    _owner_only(user)
    row = svc.get_team_lesson(session, lesson_id)
    return _team_form_page(request, user, _form_of(svc.spec_of(row)), {}, row.id)


@router.post("/academy/team/{lesson_id}/edit", response_class=HTMLResponse)
def update_team_lesson(lesson_id: int, request: Request, session: SessionDep, user: CurrentUser,
                       form: Annotated[TeamLessonForm, Form()]) -> Response:
    """Save changes to a team lesson."""
    row = svc.get_team_lesson(session, lesson_id)
    try:
        svc.update_team_lesson(session, user=user, row=row, spec=_spec_from_form(form),
                               path_exists=lambda href: path_exists(request.app, href))
    except (InvalidInput, PermissionDenied) as exc:
        session.rollback()
        return _team_form_page(request, user, form, _form_errors(exc), lesson_id, status_code=exc.status_code)
    session.commit()
    return redirect(f"/academy/{TEAM_COURSE}/{lesson_id}?saved=1")


@router.post("/academy/team/{lesson_id}/delete")
def delete_team_lesson(lesson_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """Remove a team lesson."""
    svc.delete_team_lesson(session, user=user, row=svc.get_team_lesson(session, lesson_id))
    session.commit()
    return redirect("/academy?done=deleted")


# ---- courses and lessons ---------------------------------------------------------------------------


@router.get("/academy/{course}", response_class=HTMLResponse)
def read_course(course: str, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One course: introduction and lessons with completion marks."""
    found = svc.get_course(session, course)
    progress = svc.progress_map(session, user=user, keys=[x.key for x in found.lessons])
    return render(request, "academy/course.html", {
        "active": "academy", "course": found, "intro": render_markdown(found.intro), "progress": progress,
        "course_done": svc.course_progress(found, progress)}, user=user)


@router.get("/academy/{course}/{lesson}", response_class=HTMLResponse)
def read_lesson(course: str, lesson: str, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One lesson: text, 'Do it now', quiz with your last answer, done mark, previous and next."""
    found_course, found = svc.get_lesson(session, course, lesson)
    progress = svc.progress_map(session, user=user, keys=[x.key for x in found_course.lessons])
    before, after = svc.neighbours(found_course, found)
    return render(request, "academy/lesson.html", {
        "active": "academy", "course": found_course, "lesson": found, "body": render_markdown(found.body),
        "row": progress.get(found.key), "before": before, "after": after,
        "course_done": svc.course_progress(found_course, progress),
        "saved": request.query_params.get("saved") == "1"}, user=user)


@router.post("/academy/{course}/{lesson}/quiz")
def create_quiz_answer(course: str, lesson: str, session: SessionDep, user: CurrentUser,
                       answer: Annotated[str, Form()] = "") -> Response:
    """Record a quiz answer and show the lesson with the result."""
    _, found = svc.get_lesson(session, course, lesson)
    if not answer.strip():
        raise InvalidInput("Pick an answer first.", field="answer")
    svc.answer_quiz(session, user=user, lesson=found, answer=_int(answer, "answer", "The answer"))
    session.commit()
    return redirect(f"{found.href}#quiz")


@router.post("/academy/{course}/{lesson}/complete")
def update_lesson_complete(course: str, lesson: str, session: SessionDep, user: CurrentUser,
                           completed: Annotated[str, Form()] = "1") -> Response:
    """Mark the lesson done or not done."""
    _, found = svc.get_lesson(session, course, lesson)
    svc.set_completed(session, user=user, lesson=found, completed=completed.strip() in ("1", "true", "on"))
    session.commit()
    return redirect(f"{found.href}#progress")
