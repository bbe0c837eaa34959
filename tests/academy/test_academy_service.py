"""Academy service on a real database: progress per person, quiz answers, search, team lessons; the migration."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from ainfluencer.academy import service as svc
from ainfluencer.academy.models import LessonProgress, TeamLesson
from ainfluencer.db.models import Base, User
from ainfluencer.errors import InvalidInput, NotFound, PermissionDenied
from ainfluencer.runtime import Runtime

LESSON = ("getting-started", "create-from-template")


@pytest.fixture
def people(make_user: Any) -> tuple[User, User]:
    owner = make_user("owner@example.com", owner=True)
    member = make_user("member@example.com", owner=False)
    return owner, member


def test_migration_creates_exactly_the_model_tables(runtime: Runtime) -> None:
    with runtime.db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    ours = [d for d in diff if "academy_" in repr(d)]
    assert ours == []
    assert {"academy_progress", "academy_team_lessons"} <= set(Base.metadata.tables)


def test_quiz_answers_and_completion_are_per_person(runtime: Runtime, people: tuple[User, User]) -> None:
    owner, member = people
    with runtime.db.session() as s:
        course, lesson = svc.get_lesson(s, *LESSON)
        assert lesson.quiz is not None
        wrong = (lesson.quiz.correct_index + 1) % len(lesson.quiz.options)
        first = svc.answer_quiz(s, user=owner, lesson=lesson, answer=wrong)
        assert not first.correct and first.progress.completed_at is None and first.explanation
        second = svc.answer_quiz(s, user=owner, lesson=lesson, answer=lesson.quiz.correct_index)
        assert second.correct and second.progress.completed_at is not None
        assert second.progress.quiz_attempts == 2
        done_at = second.progress.completed_at
        # a later wrong answer keeps the lesson done (it was learnt once)
        svc.answer_quiz(s, user=owner, lesson=lesson, answer=wrong)
        assert svc.progress_map(s, user=owner)[lesson.key].completed_at == done_at
        assert svc.progress_map(s, user=member) == {}
        assert svc.course_progress(course, svc.progress_map(s, user=owner)).done == 1
    with runtime.db.session() as s:
        rows = list(s.scalars(select(LessonProgress)))
        assert [(r.user_id, r.lesson_key, r.quiz_correct) for r in rows] == [(owner.id, lesson.key, False)]


def test_bad_answers_and_unknown_lessons_name_the_field(runtime: Runtime, people: tuple[User, User]) -> None:
    owner, _ = people
    with runtime.db.session() as s:
        _, lesson = svc.get_lesson(s, *LESSON)
        with pytest.raises(InvalidInput) as info:
            svc.answer_quiz(s, user=owner, lesson=lesson, answer=9)
        assert info.value.field == "answer"
        with pytest.raises(NotFound) as missing:
            svc.get_lesson(s, "getting-started", "no-such-lesson")
        assert missing.value.field == "lesson"
        with pytest.raises(NotFound) as course:
            svc.get_course(s, "no-such-course")
        assert course.value.field == "course"


def test_mark_done_and_undo(runtime: Runtime, people: tuple[User, User]) -> None:
    owner, _ = people
    with runtime.db.session() as s:
        _, lesson = svc.get_lesson(s, "publishing", "connect-each-network")
        assert svc.set_completed(s, user=owner, lesson=lesson, completed=True).completed_at is not None
        assert svc.set_completed(s, user=owner, lesson=lesson, completed=False).completed_at is None


def test_search_needs_every_word_and_ranks_titles_first(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        hits = svc.search(s, "face score")
        assert hits[0].lesson.key == "consistent-looks/face-score"
        assert all("face" in (h.lesson.title + h.snippet + h.lesson.summary).lower() for h in hits)
        assert [h.lesson.key for h in svc.search(s, "Article 50")][0] == "disclosure-and-law/eu-ai-act-article-50"
        assert svc.search(s, "zzzqqq nothing") == []
        assert svc.search(s, "   ") == []
        with pytest.raises(InvalidInput) as info:
            svc.search(s, "x" * 201)
        assert info.value.field == "q"


def _spec(**overrides: Any) -> svc.TeamLessonSpec:
    values: dict[str, Any] = {
        "title": "Our caption style", "body": "Open with the *hook*.\n\n<script>alert(1)</script>",
        "summary": "How we write", "do_it_now_href": "/vault/review", "do_it_now_label": "Review now",
        "quiz": {"question": "How do captions open?", "options": ["With the hook", "With hashtags"], "correct": 0,
                 "explanation": "The hook comes first; hashtags go last."},
    }
    values.update(overrides)
    return svc.TeamLessonSpec(**values)


def test_team_lessons_owner_only_validated_and_in_the_catalogue(runtime: Runtime, people: tuple[User, User]) -> None:
    owner, member = people
    with runtime.db.session() as s:
        with pytest.raises(PermissionDenied):
            svc.create_team_lesson(s, user=member, spec=_spec())
        for bad, field in [(_spec(title=" "), "title"), (_spec(body=""), "body"), (_spec(level="expert"), "level"),
                           (_spec(minutes=0), "minutes"),
                           (_spec(do_it_now_href="https://evil.test/"), "do_it_now_href"),
                           (_spec(do_it_now_href="", do_it_now_label="Go"), "do_it_now_href"),
                           (_spec(quiz={"question": "Which?", "options": ["a"], "correct": 0,
                                        "explanation": "only one option"}), "quiz.options"),
                           (_spec(quiz={"question": "Which?", "options": ["a", "b"], "correct": 5,
                                        "explanation": "out of range"}), "quiz.correct"),
                           (_spec(quiz={"question": "Which?", "options": ["a", "b"], "correct": 0,
                                        "explanation": ""}), "quiz.explanation")]:
            with pytest.raises(InvalidInput) as info:
                svc.create_team_lesson(s, user=owner, spec=bad)
            assert info.value.field == field, (bad, info.value.message)
        with pytest.raises(InvalidInput) as nowhere:
            svc.create_team_lesson(s, user=owner, spec=_spec(do_it_now_href="/nowhere"),
                                   path_exists=lambda href: href.startswith("/vault"))
        assert nowhere.value.field == "do_it_now_href"
        row = svc.create_team_lesson(s, user=owner, spec=_spec())
        assert row.workspace_id is None and row.created_by == owner.id
        course = svc.catalog(s)[-1]
        assert course.slug == "team" and [x.title for x in course.lessons] == ["Our caption style"]
        _, lesson = svc.get_lesson(s, "team", str(row.id))
        assert lesson.quiz is not None and lesson.quiz.correct_index == 0
        assert svc.search(s, "caption style")[0].lesson.key == f"team/{row.id}"
        svc.answer_quiz(s, user=member, lesson=lesson, answer=0)
        svc.update_team_lesson(s, user=owner, row=row, spec=_spec(title="Caption style v2", quiz=None))
        _, changed = svc.get_lesson(s, "team", str(row.id))
        assert changed.title == "Caption style v2" and changed.quiz is None
        assert svc.progress_map(s, user=member)[f"team/{row.id}"].completed_at is not None
        with pytest.raises(PermissionDenied):
            svc.delete_team_lesson(s, user=member, row=row)
        svc.delete_team_lesson(s, user=owner, row=row)
        assert svc.progress_map(s, user=member) == {}
        assert s.scalar(select(TeamLesson)) is None
        assert "team" not in [c.slug for c in svc.catalog(s)]


def test_migration_downgrades_and_upgrades_again(tmp_path: Any) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from ainfluencer.db import migrate
    from ainfluencer.db.engine import Database

    db = Database(f"sqlite:///{tmp_path / 'academy.db'}")
    try:
        migrate.upgrade(db)
        assert {"academy_progress", "academy_team_lessons"} <= set(inspect(db.engine).get_table_names())
        cfg = migrate.alembic_config(db.url)
        # whatever 0011 follows once branches are merged and re-chained
        before = ScriptDirectory.from_config(cfg).get_revision("0011").down_revision
        with db.engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, str(before))
        names = set(inspect(db.engine).get_table_names())
        assert not {"academy_progress", "academy_team_lessons"} & names and "users" in names
        migrate.upgrade(db)
        assert "academy_progress" in inspect(db.engine).get_table_names()
    finally:
        db.dispose()
