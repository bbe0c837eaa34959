"""Academy pages through the real forms: catalogue, search, lesson, quiz, done mark, team-lesson form, docs viewer;
and every "Do it now" link opens a working page for a signed-in owner."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ainfluencer.academy.content import builtin_catalog
from ainfluencer.db.models import Character
from ainfluencer.runtime import Runtime

LESSON = "/academy/getting-started/create-from-template"


def post_form(client: TestClient, url: str, data: dict[str, str]) -> Any:
    return client.post(url, data={**data, "csrf_token": client.cookies["ainf_csrf"]}, follow_redirects=False)


@pytest.fixture
def owner(client: TestClient, make_user: Any, login: Any) -> TestClient:
    make_user(owner=True)
    login(client)
    return client


def test_catalogue_lists_every_course_with_progress(owner: TestClient) -> None:
    html = owner.get("/academy").text
    assert "coming soon" not in html
    for course in builtin_catalog():
        assert f'href="{course.href}"' in html and course.title.replace("'", "&#39;") in html
    assert re.search(r"0 of \d\d lessons done", html)
    assert 'aria-current="page"' in html and "/academy/team/new" in html


def test_search_page(owner: TestClient) -> None:
    html = owner.get("/academy", params={"q": "canonical face"}).text
    assert "lessons for “canonical face”" in html
    assert 'href="/academy/consistent-looks/canonical-face"' in html
    assert "No lesson contains every word" in owner.get("/academy", params={"q": "qqqzzz"}).text


def test_lesson_quiz_and_done_mark_through_the_forms(owner: TestClient) -> None:
    html = owner.get(LESSON).text
    assert 'id="do-it-now" href="/characters/new?template=fitness-coach"' in html
    assert "not done yet" in html and 'name="answer"' in html
    r = post_form(owner, f"{LESSON}/quiz", {"answer": "1"})
    assert r.status_code == 303 and r.headers["location"] == f"{LESSON}#quiz"
    html = owner.get(LESSON).text
    assert "Not quite — try again." in html and "not done yet" in html
    post_form(owner, f"{LESSON}/quiz", {"answer": "0"})
    html = owner.get(LESSON).text
    assert "Correct." in html and 'id="lesson-status">done<' in html and "Mark as not done" in html
    course = owner.get("/academy/getting-started").text
    assert re.search(r'lesson-item is-done" id="lesson-create-from-template"', course)
    assert "1 of 5 done" in course
    post_form(owner, f"{LESSON}/complete", {"completed": "0"})
    assert "not done yet" in owner.get(LESSON).text
    assert post_form(owner, "/academy/getting-started/nope/quiz", {"answer": "0"}).status_code == 404


def test_quiz_form_refuses_without_csrf(owner: TestClient) -> None:
    r = owner.post(f"{LESSON}/quiz", data={"answer": "0"}, follow_redirects=False)
    assert r.status_code == 403


def test_team_lesson_form_errors_then_saves_safely(owner: TestClient) -> None:
    form = {"title": "House style", "summary": "How we write", "body": "**Hooks** first. <img src=x onerror=alert(1)>",
            "level": "beginner", "minutes": "4", "position": "0", "do_it_now_label": "Review",
            "do_it_now_href": "/no/such/page", "quiz_question": "", "quiz_options": "", "quiz_correct": "",
            "quiz_explanation": ""}
    r = post_form(owner, "/academy/team/new", form)
    assert r.status_code == 422 and "There is no page at /no/such/page." in r.text
    assert 'id="f-do_it_now_href"' in r.text and "House style" in r.text  # the form keeps what was typed
    form.update(do_it_now_href="/vault/review", quiz_question="What comes first?", quiz_options="Hooks\nHashtags",
                quiz_correct="3", quiz_explanation="Hooks first, hashtags last.")
    r = post_form(owner, "/academy/team/new", form)
    assert r.status_code == 422 and "Say which option is correct" in r.text
    form["quiz_correct"] = "1"
    r = post_form(owner, "/academy/team/new", form)
    assert r.status_code == 303
    page = owner.get(r.headers["location"]).text
    assert "Lesson saved." in page and "<strong>Hooks</strong>" in page
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="/vault/review"' in page and "What comes first?" in page
    assert "From your team" in owner.get("/academy").text
    lesson_id = re.search(r"/academy/team/(\d+)\?saved=1", r.headers["location"])
    assert lesson_id is not None
    edit = owner.get(f"/academy/team/{lesson_id.group(1)}/edit").text
    assert "Hooks\nHashtags" in edit and 'value="1"' in edit
    r = post_form(owner, f"/academy/team/{lesson_id.group(1)}/delete", {})
    assert r.status_code == 303 and "deleted" in owner.get(r.headers["location"]).text


def test_members_cannot_open_the_team_form(client: TestClient, make_user: Any, login: Any) -> None:
    make_user("first@example.com", owner=True)
    make_user("member@example.com", owner=False)
    login(client, "member@example.com")
    assert client.get("/academy/team/new").status_code == 403
    assert "/academy/team/new" not in client.get("/academy").text


def test_docs_viewer(owner: TestClient) -> None:
    html = owner.get("/academy/docs/platforms").text
    assert "Platform setup" in html and "<table>" in html
    assert owner.get("/academy/docs/nope").status_code == 404
    assert owner.get("/academy/docs/..%2Fpyproject").status_code == 404


def test_every_do_it_now_link_opens_a_page(owner: TestClient, runtime: Runtime) -> None:
    # One character, so character-scoped pages (Studio, Compose, Calendar) have something to show.
    with runtime.db.session() as s:
        s.add(Character(user_id=1, name="Nova", handle="nova", timezone="Europe/Berlin"))
    targets = {x.do_it_now.href for c in builtin_catalog() for x in c.lessons if x.do_it_now}
    assert len(targets) >= 10
    for href in sorted(targets):
        r = owner.get(href)
        assert r.status_code == 200, (href, r.status_code)
