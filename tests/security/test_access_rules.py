"""CSRF only skipped for a live bearer token without a session cookie; 401 before CSRF; media by asset id; jobs
panels show a member only their own jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ainfluencer.db.models import Character, Job, User, utcnow
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.jobs import queue
from ainfluencer.runtime import Runtime

PASSWORD = "correct horse battery"


def _jobs(runtime: Runtime) -> int:
    with runtime.db.session() as s:
        return int(s.scalar(select(func.count(Job.id))) or 0)


def _signed_in(app: Any, email: str) -> TestClient:
    c = TestClient(app, base_url="http://testserver")
    c.get("/login")
    r = c.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": c.cookies["ainf_csrf"]},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    return c


@pytest.fixture
def people(runtime: Runtime, make_user: Callable[..., User]) -> tuple[User, User, User]:
    """The owner and two members."""
    return (make_user("owner@example.com", PASSWORD, owner=True), make_user("a@example.com", PASSWORD, owner=False),
            make_user("b@example.com", PASSWORD, owner=False))


@pytest.fixture
def browser(app: Any, people: tuple[User, User, User]) -> Iterator[TestClient]:
    """Member A signed in through the form (session + CSRF cookies)."""
    with _signed_in(app, "a@example.com") as c:
        yield c


@pytest.mark.parametrize("authorization", ["Basic YTpjb3JyZWN0IGhvcnNl", "Bearer ainf_made_up_token", "Bearer"])
def test_an_authorization_header_does_not_switch_csrf_off_for_a_cookie_session(
    browser: TestClient, runtime: Runtime, authorization: str,
) -> None:
    # A reverse proxy's Basic auth is replayed by browsers on their own; a made-up bearer proves nothing.
    r = browser.post("/dashboard/selftest", headers={"Authorization": authorization}, follow_redirects=False)
    assert r.status_code == 403 and "sent from another site" in r.text
    assert _jobs(runtime) == 0
    r = browser.post("/dashboard/selftest", headers={"Authorization": authorization},
                     data={"csrf_token": browser.cookies["ainf_csrf"]}, follow_redirects=False)
    assert r.status_code == 303 and _jobs(runtime) == 1  # the same post with the token goes through


def test_a_live_bearer_token_still_needs_csrf_when_a_session_cookie_rides_along(
    browser: TestClient, runtime: Runtime, people: tuple[User, User, User], make_token: Callable[..., str],
) -> None:
    token = make_token(people[1])
    r = browser.post("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, json={"kind": "selftest"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert _jobs(runtime) == 0


def test_a_live_bearer_token_without_a_session_cookie_skips_csrf(
    client: TestClient, runtime: Runtime, people: tuple[User, User, User], make_token: Callable[..., str],
) -> None:
    r = client.post("/api/v1/jobs", headers={"Authorization": f"Bearer {make_token(people[1])}"},
                    json={"kind": "selftest"})
    assert r.status_code == 201, r.text
    assert _jobs(runtime) == 1


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "unauthorized"),
    ({"Authorization": "Bearer ainf_made_up_token"}, "bad_token"),
    ({"Authorization": "Basic YTpi"}, "unauthorized"),
])
def test_an_unauthenticated_api_post_is_401_not_a_csrf_failure(
    client: TestClient, runtime: Runtime, headers: dict[str, str], code: str,
) -> None:
    r = client.post("/api/v1/jobs", headers=headers, json={"kind": "selftest"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == code
    assert _jobs(runtime) == 0


def _asset_of(runtime: Runtime, user: User) -> int:
    media = runtime.settings.media_dir
    media.mkdir(parents=True, exist_ok=True)
    (media / "private.jpg").write_bytes(b"\xff\xd8\xff" + b"0" * 64)
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Ava", handle="ava")
        s.add(character)
        s.flush()
        asset = Asset(character_id=character.id, created_by=user.id, kind=AssetKind.image, sha256="b" * 64,
                      path="private.jpg", mime="image/jpeg", size=67, review_state=ReviewState.approved)
        s.add(asset)
        s.flush()
        return asset.id


def _account_of(runtime: Runtime, user: User) -> int:
    with runtime.db.session() as s:
        character = Character(user_id=user.id, name="Bo", handle="bo")
        s.add(character)
        s.flush()
        account = SocialAccount(character_id=character.id, platform="mastodon", platform_account_id="7",
                                handle="@bo", created_by=user.id)
        s.add(account)
        s.flush()
        return account.id


def test_media_are_named_by_asset_id_and_only_visible_assets_resolve(
    client: TestClient, runtime: Runtime, people: tuple[User, User, User], make_token: Callable[..., str],
) -> None:
    _, a, b = people
    private = _asset_of(runtime, a)
    as_b = {"Authorization": f"Bearer {make_token(b)}"}
    target = [{"account_id": _account_of(runtime, b)}]
    # A's private file, by id: B cannot see it, so it does not exist for him.
    r = client.post("/api/v1/publications", headers=as_b,
                    json={"text": "mine now", "targets": target, "media": [{"asset_id": private}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "media.0.asset_id", r.text
    assert "No asset" in r.json()["error"]["message"]
    # ... and by path, as the old API allowed: a path is not a field any more.
    r = client.post("/api/v1/publications", headers=as_b,
                    json={"text": "mine now", "targets": target, "media": [{"path": "private.jpg"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "media.0.asset_id", r.text
    with runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_the_asset_api_and_openapi_say_how_to_attach_media(
    client: TestClient, runtime: Runtime, people: tuple[User, User, User], make_token: Callable[..., str],
) -> None:
    _, a, _ = people
    asset_id = _asset_of(runtime, a)
    body = client.get(f"/api/v1/assets/{asset_id}", headers={"Authorization": f"Bearer {make_token(a)}"}).json()
    assert body["asset_id"] == body["id"] == asset_id
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    media = schemas["MediaIn"]
    assert media["required"] == ["asset_id"] and "path" not in media["properties"]
    assert "asset_id" in media["description"]
    assert "POST /api/v1/publications" in schemas["AssetPublic"]["properties"]["asset_id"]["description"]


def test_the_jobs_panel_and_live_feed_show_a_member_only_their_jobs(
    app: Any, runtime: Runtime, people: tuple[User, User, User],
) -> None:
    from ainfluencer.web.routes import _render_jobs_fragment

    owner, a, b = people
    with runtime.db.session() as s:
        a_job = queue.enqueue(s, "selftest", {"steps": 1}, user_id=a.id, run_at=utcnow()).id
        system_job = queue.enqueue(s, "backup", {}).id
    with _signed_in(app, "b@example.com") as as_b:
        panel = as_b.get("/dashboard/jobs").text
        assert f'href="/jobs/{a_job}"' not in panel and f'href="/jobs/{system_job}"' not in panel
        assert as_b.get(f"/jobs/{a_job}").status_code == 404
    feed_b = _render_jobs_fragment(runtime, app.state.templates, b.id)
    feed_a = _render_jobs_fragment(runtime, app.state.templates, a.id)
    feed_owner = _render_jobs_fragment(runtime, app.state.templates, owner.id)
    assert f'href="/jobs/{a_job}"' not in feed_b
    assert f'href="/jobs/{a_job}"' in feed_a and f'href="/jobs/{system_job}"' not in feed_a
    assert f'href="/jobs/{a_job}"' in feed_owner and f'href="/jobs/{system_job}"' in feed_owner


def test_session_cookie_is_random_hashed_at_rest_flagged_and_ended_by_a_password_change(
    app: Any, runtime: Runtime, people: tuple[User, User, User],
) -> None:
    from ainfluencer.db.models import WebSession
    from ainfluencer.services import auth

    with _signed_in(app, "a@example.com") as first, _signed_in(app, "a@example.com") as second:
        raw_1, raw_2 = first.cookies["ainf_session"], second.cookies["ainf_session"]
        assert raw_1 != raw_2 and len(raw_1) >= 43  # 256 random bits per sign-in, never reused
        r = first.post("/login", data={"email": "a@example.com", "password": PASSWORD,
                                       "csrf_token": first.cookies["ainf_csrf"]}, follow_redirects=False)
        header = r.headers["set-cookie"].lower()
        assert "ainf_session=" in header and "httponly" in header and "samesite=lax" in header and "path=/" in header
        assert first.cookies["ainf_session"] != raw_1  # signing in again issues a new value
        with runtime.db.session() as s:
            stored = set(s.scalars(select(WebSession.token_hash)))
            assert raw_2 not in stored and auth.sha256(raw_2) in stored  # only the hash is kept
            user = s.get(User, people[1].id)
            assert user is not None
            auth.change_password(s, user=user, new_password="another horse battery staple")
        with runtime.db.session() as s:
            assert auth.user_for_session(s, raw_2) is None  # every browser of that user is signed out
        assert second.get("/dashboard", follow_redirects=False).status_code in (302, 303)
