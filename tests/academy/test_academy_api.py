"""The Academy REST API: courses, lessons, progress, quiz answers, search, team lessons; errors name the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

BASE = "/api/v1/academy"
LESSON = f"{BASE}/courses/getting-started/lessons/create-from-template"


@pytest.fixture
def owner_h(make_user: Any, make_token: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(make_user('owner@example.com', owner=True))}"}


@pytest.fixture
def member_h(make_user: Any, make_token: Any) -> dict[str, str]:
    member = make_user("member@example.com", owner=False)
    return {"Authorization": f"Bearer {make_token(member)}"}


def test_courses_and_lessons_with_progress(client: TestClient, owner_h: dict[str, str]) -> None:
    r = client.get(f"{BASE}/courses", headers=owner_h)
    assert r.status_code == 200
    body = r.json()
    assert body["count"] >= 8 and sum(c["lessons_total"] for c in body["data"]) >= 30
    first = body["data"][0]
    assert first["slug"] == "getting-started" and first["lessons_done"] == 0 and first["minutes"] <= 30
    course = client.get(f"{BASE}/courses/getting-started", headers=owner_h).json()
    assert course["lessons"][0]["key"] == "getting-started/create-from-template"
    lesson = client.get(LESSON, headers=owner_h).json()
    assert lesson["do_it_now"]["href"] == "/characters/new?template=fitness-coach"
    assert lesson["quiz"]["options"] and "correct" not in str(lesson["quiz"])  # the answer is not given away
    assert "<table>" in lesson["body_html"] and lesson["next"] == "getting-started/connect-a-writer"
    assert lesson["progress"] is None and lesson["previous"] is None


def test_quiz_answer_marks_done_and_progress_totals(client: TestClient, owner_h: dict[str, str],
                                                    member_h: dict[str, str]) -> None:
    r = client.post(f"{LESSON}/quiz", json={"answer": 1}, headers=owner_h)
    assert r.status_code == 200 and r.json()["correct"] is False and r.json()["explanation"]
    r = client.post(f"{LESSON}/quiz", json={"answer": 0}, headers=owner_h)
    assert r.json()["correct"] is True and r.json()["progress"]["completed"] is True
    assert r.json()["progress"]["quiz_attempts"] == 2
    progress = client.get(f"{BASE}/progress", headers=owner_h).json()
    assert progress["lessons_done"] == 1 and progress["lessons_total"] >= 30
    assert [p["lesson_key"] for p in progress["data"]] == ["getting-started/create-from-template"]
    courses = client.get(f"{BASE}/courses", headers=owner_h).json()["data"]
    assert courses[0]["lessons_done"] == 1
    # someone else's progress is their own
    assert client.get(f"{BASE}/progress", headers=member_h).json()["lessons_done"] == 0
    r = client.put(f"{LESSON}/progress", json={"completed": False}, headers=owner_h)
    assert r.status_code == 200 and r.json()["completed"] is False


BAD_REQUESTS = [
    ("post", f"{LESSON}/quiz", {"answer": 7}, 422, "answer"),
    ("post", f"{LESSON}/quiz", {"answer": "b"}, 422, "answer"),
    ("post", f"{LESSON}/quiz", {}, 422, "answer"),
    ("post", f"{LESSON}/quiz", {"answer": 0, "extra": 1}, 422, "extra"),
    ("put", f"{LESSON}/progress", {"completed": "maybe"}, 422, "completed"),
    ("get", f"{BASE}/courses/nope", None, 404, "course"),
    ("get", f"{BASE}/courses/getting-started/lessons/nope", None, 404, "lesson"),
    ("get", f"{BASE}/search?q=" + "x" * 201, None, 422, "q"),
    ("get", f"{BASE}/search", None, 422, "q"),
    ("post", f"{BASE}/team-lessons", {"title": "", "body": "x"}, 422, "title"),
    ("post", f"{BASE}/team-lessons", {"title": "T", "body": "x", "level": "guru"}, 422, "level"),
    ("post", f"{BASE}/team-lessons", {"title": "T", "body": "x", "do_it_now_href": "/no/such/page"}, 422,
     "do_it_now_href"),
    ("post", f"{BASE}/team-lessons", {"title": "T", "body": "x", "quiz": {"question": "Which one?",
     "options": ["a", "b"], "correct": 3, "explanation": "because it is"}}, 422, "quiz.correct"),
    ("patch", f"{BASE}/team-lessons/999", {"title": "x"}, 404, "lesson_id"),
]


def test_bad_requests_are_4xx_naming_the_field(client: TestClient, owner_h: dict[str, str]) -> None:
    # One signed-up owner for the whole table (password hashing per row would dominate the run time).
    for method, path, body, status, field in BAD_REQUESTS:
        r = client.request(method.upper(), path, json=body, headers=owner_h)
        assert r.status_code == status, (method, path, body, r.text)
        assert r.json()["error"]["field"] == field, (method, path, body, r.json())


def test_search(client: TestClient, owner_h: dict[str, str]) -> None:
    r = client.get(f"{BASE}/search", params={"q": "app password"}, headers=owner_h)
    assert r.status_code == 200
    keys = [h["lesson"]["key"] for h in r.json()["data"]]
    assert "publishing/connect-each-network" in keys
    assert all(h["snippet"] for h in r.json()["data"])


def test_team_lessons_owner_only_and_rendered_safely(client: TestClient, owner_h: dict[str, str],
                                                     member_h: dict[str, str]) -> None:
    lesson = {"title": "House style", "body": "# Hooks first\n\n<script>alert(1)</script>", "minutes": 3,
              "do_it_now_href": "/vault/review", "quiz": {"question": "What comes first?",
              "options": ["The hook", "Hashtags"], "correct": 0, "explanation": "Hooks first, tags last."}}
    r = client.post(f"{BASE}/team-lessons", json=lesson, headers=member_h)
    assert r.status_code == 403
    r = client.post(f"{BASE}/team-lessons", json=lesson, headers=owner_h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"] == f"team/{created['team_lesson_id']}"
    assert "<script" not in created["body_html"] and "&lt;script&gt;" in created["body_html"]
    # members read it and answer its quiz
    lid = created["team_lesson_id"]
    path = f"{BASE}/courses/team/lessons/{lid}"
    assert client.get(path, headers=member_h).json()["title"] == "House style"
    assert client.post(f"{path}/quiz", json={"answer": 0}, headers=member_h).json()["correct"] is True
    r = client.patch(f"{BASE}/team-lessons/{lid}", json={"title": "House style v2", "clear_quiz": True,
                                                         "summary": None}, headers=owner_h)
    assert r.status_code == 200 and r.json()["title"] == "House style v2" and r.json()["quiz"] is None
    assert client.patch(f"{BASE}/team-lessons/{lid}", json={"title": "x"}, headers=member_h).status_code == 403
    assert client.delete(f"{BASE}/team-lessons/{lid}", headers=member_h).status_code == 403
    assert client.delete(f"{BASE}/team-lessons/{lid}", headers=owner_h).status_code == 204
    assert client.get(path, headers=owner_h).status_code == 404


def test_read_scope_cannot_write_and_anonymous_is_refused(client: TestClient, make_user: Any,
                                                          make_token: Any) -> None:
    user = make_user("reader@example.com", owner=True)
    read_only = {"Authorization": f"Bearer {make_token(user, scopes='read')}"}
    assert client.get(f"{BASE}/courses", headers=read_only).status_code == 200
    r = client.post(f"{LESSON}/quiz", json={"answer": 0}, headers=read_only)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    assert client.get(f"{BASE}/courses").status_code == 401


def test_openapi_describes_the_academy(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/api/v1/academy/courses", "/api/v1/academy/courses/{course}/lessons/{lesson}",
                 "/api/v1/academy/courses/{course}/lessons/{lesson}/quiz", "/api/v1/academy/progress",
                 "/api/v1/academy/search", "/api/v1/academy/team-lessons"):
        assert path in paths, path
    quiz = paths["/api/v1/academy/courses/{course}/lessons/{lesson}/quiz"]["post"]
    assert quiz["tags"] == ["academy"] and "422" in quiz["responses"]
    assert {"QuizAnswer", "QuizResult", "LessonPublic", "TeamLessonCreate"} <= set(spec["components"]["schemas"])
    assert not any(p.startswith("/academy") for p in paths)  # pages stay out of the API schema
