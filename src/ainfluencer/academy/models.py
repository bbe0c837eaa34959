"""Academy rows: each person's progress per lesson, and the lessons an owner wrote for the team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ainfluencer.db.models import Base, utcnow


class LessonProgress(Base):
    """One person's state in one lesson: the last quiz answer and whether they finished it."""

    __tablename__ = "academy_progress"
    __table_args__ = (UniqueConstraint("user_id", "lesson_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: ``<course>/<lesson>`` for built-in lessons, ``team/<id>`` for a team lesson.
    lesson_key: Mapped[str] = mapped_column(String(200))
    quiz_answer: Mapped[int | None] = mapped_column(Integer, default=None)
    quiz_correct: Mapped[bool | None] = mapped_column(Boolean, default=None)
    quiz_attempts: Mapped[int] = mapped_column(Integer, default=0)
    quiz_answered_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TeamLesson(Base):
    """A lesson an owner wrote for the people of this installation (Markdown, same renderer as built-ins).

    ``workspace_id`` stays NULL (installation-wide) until workspaces exist; it then names the workspace the
    lesson belongs to.
    """

    __tablename__ = "academy_team_lessons"
    __table_args__ = (Index("ix_academy_team_lessons_workspace", "workspace_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(Integer, default=None)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16), default="beginner")
    minutes: Mapped[int] = mapped_column(Integer, default=5)
    position: Mapped[int] = mapped_column(Integer, default=0)
    do_it_now_label: Mapped[str] = mapped_column(String(200), default="")
    do_it_now_href: Mapped[str] = mapped_column(String(300), default="")
    #: ``{"question", "options": [{"text", "correct"}], "explanation"}`` or None for a lesson without a quiz.
    quiz: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
