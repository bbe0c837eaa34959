"""Every built-in lesson file validates: front matter, one correct answer with an explanation per quiz, and every
link ("Do it now" and the links in the text) resolves to a route of the app or a file in docs/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from academy_helpers import DOCS, GOOD_LESSON, build_app, write_course

from ainfluencer.academy import content
from ainfluencer.academy.content import ContentError, builtin_catalog, load_catalog
from ainfluencer.academy.links import path_exists
from ainfluencer.academy.render import docs_href, links, render_markdown

COURSES = builtin_catalog()
LESSONS = [lesson for course in COURSES for lesson in course.lessons]
#: Outside sources a lesson may cite: the law and the regulators' own pages.
OFFICIAL_HOSTS = {"eur-lex.europa.eu", "www.ecfr.gov", "www.ftc.gov"}
WANTED_COURSES = {
    "getting-started": "Getting started", "consistent-looks": "Consistent looks", "voice-and-video": "Voice and video",
    "publishing": "Publishing on each network", "disclosure-and-law": "Disclosure and the law",
    "growing-with-analytics": "Growing with analytics and the weekly loop", "running-an-agency": "Running an agency",
    "what-we-dont-build": "What we don't build and why",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    built, runtime = build_app(tmp_path_factory.mktemp("academy-routes"))
    yield built
    runtime.close()


def test_catalogue_size_and_the_courses_the_issue_names() -> None:
    assert len(COURSES) >= 8
    assert len(LESSONS) >= 30
    assert {c.slug: c.title for c in COURSES if c.slug in WANTED_COURSES} == WANTED_COURSES
    assert all(len(c.lessons) >= 3 for c in COURSES)
    # "from template to first approved post in 30 minutes" holds for the estimates too
    assert next(c for c in COURSES if c.slug == "getting-started").minutes <= 30


@pytest.mark.parametrize("lesson", LESSONS, ids=[x.key for x in LESSONS])
def test_every_lesson_has_a_quiz_with_one_correct_answer_and_an_explanation(lesson: content.Lesson) -> None:
    assert lesson.quiz is not None and lesson.do_it_now is not None
    assert sum(o.correct for o in lesson.quiz.options) == 1
    assert len(lesson.quiz.options) >= 2
    assert len(lesson.quiz.explanation) >= 40
    assert lesson.minutes >= 1 and lesson.summary and lesson.title


@pytest.mark.parametrize("lesson", LESSONS, ids=[x.key for x in LESSONS])
def test_every_link_resolves_to_a_route_or_a_docs_file(lesson: content.Lesson, app: Any) -> None:
    assert lesson.do_it_now is not None
    assert path_exists(app, lesson.do_it_now.href), f"{lesson.source}: no route for {lesson.do_it_now.href}"
    for href in links(lesson.body):
        target = docs_href(href)
        if target is not None:
            name = re.sub(r"#.*$", "", target).removeprefix("/academy/docs/")
            assert (DOCS / f"{name}.md").is_file(), f"{lesson.source}: {href} is not a file in docs/"
        elif href.startswith("/"):
            assert path_exists(app, href), f"{lesson.source}: no route for {href}"
        else:
            parts = urlsplit(href)
            assert parts.scheme == "https" and parts.hostname in OFFICIAL_HOSTS, f"{lesson.source}: {href}"


def test_course_introductions_link_only_to_real_places(app: Any) -> None:
    for course in COURSES:
        for href in links(course.intro):
            target = docs_href(href)
            assert target is not None or path_exists(app, href), f"{course.slug}: {href}"
            if target:
                assert (DOCS / f"{target.removeprefix('/academy/docs/').split('#')[0]}.md").is_file()


def test_route_check_refuses_what_does_not_exist(app: Any) -> None:
    assert path_exists(app, "/characters/new?template=fitness-coach")
    assert path_exists(app, "/academy/getting-started/create-from-template")
    assert not path_exists(app, "/nowhere")
    assert not path_exists(app, "/characters/new/extra/parts")


def test_lesson_files_ship_as_package_data() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"academy/content/**/*.md"' in pyproject


# ---- the loader refuses broken files, naming the file and the field ---------------------------


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace('      correct: true\n', ''), "exactly one option with 'correct: true' (this one has 0)"),
    (lambda t: t.replace('    - text: "That one"', '    - text: "That one"\n      correct: true'), "has 2"),
    (lambda t: t.replace("  explanation: Because the first one is right, as the lesson says.\n", ""),
     "quiz.explanation"),
    (lambda t: t.replace("  href: /vault", "  href: https://example.com/"), "do_it_now.href"),
    (lambda t: t.replace("level: beginner", "level: expert"), "level"),
    (lambda t: t.replace("minutes: 3", "minutes: 3\nauthor: me"), "author"),
    (lambda t: t.replace("---\ntitle", "title", 1), "no front matter"),
    (lambda t: t.replace("order: 1", "order: [1"), "not valid YAML"),
])
def test_broken_lesson_files_are_refused(tmp_path: Path, change: Any, message: str) -> None:
    folder = write_course(tmp_path, lessons={"broken-one": change(GOOD_LESSON)})
    with pytest.raises(ContentError) as info:
        load_catalog(tmp_path)
    assert str(folder / "broken-one.md") in str(info.value)
    assert message in str(info.value)


def test_good_file_loads_and_folder_rules_hold(tmp_path: Path) -> None:
    write_course(tmp_path)
    (course,) = load_catalog(tmp_path)
    assert course.lessons[0].key == "a-course/a-lesson" and course.minutes == 3
    with pytest.raises(ContentError, match="reserved|lowercase"):
        write_course(tmp_path / "x", slug="team")
        load_catalog(tmp_path / "x")
    with pytest.raises(ContentError, match="share an 'order'"):
        write_course(tmp_path / "y", lessons={"one": GOOD_LESSON, "two": GOOD_LESSON})
        load_catalog(tmp_path / "y")


# ---- the renderer is safe -------------------------------------------------------------------------


def test_raw_html_is_escaped_and_script_links_are_not_links() -> None:
    html = str(render_markdown('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n'
                               '[click](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=)'))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html and 'href="data' not in html


def test_docs_links_point_at_the_viewer_and_outside_links_are_marked() -> None:
    html = str(render_markdown("[setup](docs/platforms.md#composing) and [law](https://eur-lex.europa.eu/x)"))
    assert 'href="/academy/docs/platforms#composing"' in html
    assert 'rel="noopener noreferrer"' in html and 'target="_blank"' in html
