"""Settings → Networks: developer-app credentials entered in the UI, sealed, shown by source, used without a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fake_oauth import FakeOAuth, local_adapters
from fake_x import FakeX
from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio
from sqlalchemy import select

from ainfluencer.db.models import StoredSecret, User
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.services import network_apps, oauth, public_media

SECRET = "ui-secret-value-WXYZ"  # noqa: S105 - a test value
OTHER_SECRET = "rotated-secret-ABCD"  # noqa: S105 - a test value
S3_SECRET = "s3-secret-key-value-9876"  # noqa: S105 - a test value


@pytest.fixture
def x_fake(studio: Studio) -> Iterator[tuple[FakeX, FakeOAuth]]:
    """X API and consent server that know only the confidential clients entered in the tests."""
    studio.runtime.settings.x_client_id = ""  # nothing from the environment: the UI is the only source
    with FakeX() as api, FakeOAuth(clients={"ui-client": SECRET, "ui-client-2": OTHER_SECRET},
                                   on_token=lambda provider, token: api.valid_tokens.add(token)) as auth, \
            local_adapters(studio.runtime, x={"base_url": api.url, "timeout": 5}):
        studio.runtime.settings.oauth_endpoints = {"x_authorize": f"{auth.url}/i/oauth2/authorize",
                                                   "x_api": auth.url}
        yield api, auth


def _connect_x(studio: Studio) -> httpx.Response:
    r = studio.post("/accounts/oauth/x/start", {"character_id": studio.character_id})
    assert r.status_code == 303, r.text
    url = str(r.headers["location"])
    consent = httpx.get(url, follow_redirects=False)
    assert consent.status_code == 302, consent.text
    loc = urlsplit(consent.headers["location"])
    return studio.client.get(f"{loc.path}?{loc.query}", follow_redirects=False)


def test_x_app_entered_in_ui_connects_without_restart(studio: Studio, x_fake: tuple[FakeX, FakeOAuth],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    page = studio.client.get("/settings/networks")
    assert page.status_code == 200 and "needs app credentials" in page.text
    assert "http://testserver/accounts/oauth/x/callback" in page.text and "tweet.write" in page.text
    blocked = studio.post("/accounts/oauth/x/start", {"character_id": studio.character_id})
    assert blocked.status_code == 422 and "Settings → Networks" in blocked.text

    r = studio.post("/settings/networks/x", {"client_id": "ui-client", "client_secret": SECRET, "intent": "save"})
    assert r.status_code == 303 and "done=saved" in r.headers["location"]
    page = studio.client.get("/settings/networks")
    assert "set here" in page.text and "ui-client" in page.text and "…WXYZ" in page.text
    assert SECRET not in page.text and "ready to connect" in page.text

    # Chromium applies form-action to the redirect after "Connect": the page allows the consent screen's origin.
    csp = studio.client.get(f"/accounts?character={studio.character_id}").headers["content-security-policy"]
    assert "form-action 'self'" in csp and x_fake[1].url in csp
    assert "form-action 'self';" in studio.client.get("/settings").headers["content-security-policy"] + ";"
    done = _connect_x(studio)
    assert "done=connected" in done.headers["location"], done.headers
    sent = x_fake[1].authorize_requests[-1]
    assert sent["client_id"] == "ui-client"
    # The client secret set here went to the token endpoint (HTTP Basic: the fake checked it).
    with studio.runtime.db.session() as s:
        [account] = s.scalars(select(SocialAccount)).all()
        assert account.platform == "x"
        # Secrets are sealed, never in plain text in the table.
        rows = s.scalars(select(StoredSecret).where(StoredSecret.owner_kind == network_apps.OWNER_KIND)).all()
        assert {r.name for r in rows} == {"x_client_id", "x_client_secret"}
        assert all(SECRET.encode() not in r.ciphertext for r in rows)

    # A new app applies to the very next connect, same process, no restart; an empty field keeps its value.
    studio.post("/settings/networks/x", {"client_id": "ui-client-2", "client_secret": "", "intent": "save"})
    assert "…WXYZ" in studio.client.get("/settings/networks").text
    studio.post("/settings/networks/x", {"client_id": "", "client_secret": OTHER_SECRET, "intent": "save"})
    r = studio.post("/accounts/oauth/x/start", {"character_id": studio.character_id})
    assert parse_qs(urlsplit(r.headers["location"]).query)["client_id"] == ["ui-client-2"]
    assert SECRET not in caplog.text and OTHER_SECRET not in caplog.text


def test_source_shown_and_env_fallback(studio: Studio) -> None:
    settings = studio.runtime.settings
    settings.x_client_id = "env-client-id"
    page = studio.client.get("/settings/networks").text
    assert "from environment (AINF_X_CLIENT_ID)" in page and "env-client-id" in page
    studio.post("/settings/networks/x", {"client_id": "here-client", "intent": "save"})
    page = studio.client.get("/settings/networks").text
    assert "overrides AINF_X_CLIENT_ID from the environment" in page and "here-client" in page
    with studio.runtime.db.session() as s:
        spec = studio.runtime.platforms.spec("x")
        assert spec.oauth is not None
        assert network_apps.client_credentials(s, studio.runtime, spec.oauth)[0] == "here-client"
    r = studio.post("/settings/networks/x", {"intent": "clear"})
    assert "done=cleared" in r.headers["location"]
    with studio.runtime.db.session() as s:
        assert network_apps.client_credentials(s, studio.runtime, spec.oauth)[0] == "env-client-id"


def test_meta_app_serves_facebook_and_instagram(studio: Studio) -> None:
    settings = studio.runtime.settings
    settings.facebook_app_id = ""
    page = studio.client.get("/settings/networks").text
    assert "Facebook Page and Instagram" in page and page.count("needs app credentials") == 1
    assert "instagram_content_publish" in page and "signed links" in page.lower() and "S3" in page
    studio.post("/settings/networks/instagram", {"client_id": "meta-app", "client_secret": "meta-secret-1234",
                                                 "intent": "save"})
    # One Meta app, entered on either network's card, serves both.
    with studio.runtime.db.session() as s:
        methods = {m["platform"]: m["blocked"] for m in oauth.describe_connect_methods(
            settings, studio.runtime.platforms, session=s, runtime=studio.runtime)}
    assert methods["facebook"] == "" and methods["instagram"] == ""
    bare = {m["platform"]: m["blocked"] for m in oauth.describe_connect_methods(settings, studio.runtime.platforms)}
    assert "Settings → Networks" in bare["facebook"]  # without the database only the environment counts
    page = studio.client.get(f"/accounts?character={studio.character_id}").text
    assert "meta-secret-1234" not in page and "Connect with Facebook Page" in page and "Connect with Instagram" in page


def test_bad_input_names_the_field(studio: Studio) -> None:
    r = studio.post("/settings/networks/x", {"client_id": "has space", "intent": "save"})
    assert r.status_code == 422 and "client_id contains spaces" in r.text
    r = studio.post("/settings/networks/nope", {"client_id": "a", "intent": "save"})
    assert r.status_code == 422 and "No network app" in r.text
    r = studio.post("/settings/networks/x", {"client_id": "x" * 600, "intent": "save"})
    assert r.status_code == 422 and "at most 512" in r.text


def test_s3_secret_set_here(studio: Studio) -> None:
    studio.runtime.settings.s3_secret_access_key = type(studio.runtime.settings.s3_secret_access_key)("env-s3-key")
    r = studio.post("/settings/networks-s3", {"s3_secret_access_key": S3_SECRET, "intent": "save"})
    assert r.status_code == 303
    page = studio.client.get("/settings/networks").text
    assert S3_SECRET not in page and "…9876" in page and "overrides AINF_S3_SECRET_ACCESS_KEY" in page
    assert public_media.s3_secret(studio.runtime) == S3_SECRET
    studio.post("/settings/networks-s3", {"intent": "clear"})
    assert public_media.s3_secret(studio.runtime) == "env-s3-key"
    r = studio.post("/settings/networks-s3", {"s3_secret_access_key": "", "intent": "save"})
    assert r.status_code == 422 and "Enter the S3 secret access key" in r.text


def test_owner_only_page_and_api(studio: Studio, app: Any, make_user: Callable[..., User],
                                 login: Callable[..., None], make_token: Callable[..., str]) -> None:
    studio.post("/settings/networks/x", {"client_id": "ui-client", "client_secret": SECRET, "intent": "save"})
    assert "/settings/networks" in studio.client.get("/settings").text
    make_user("member@example.com", owner=False)
    with TestClient(app, base_url="http://testserver") as member:
        login(member, "member@example.com")
        assert member.get("/settings/networks").status_code == 403
        assert "/settings/networks" not in member.get("/settings").text
        token = member.cookies["ainf_csrf"]
        r = member.post("/settings/networks/x", data={"client_id": "evil", "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 403
        assert member.get("/api/v1/network-apps").status_code == 403
        r = member.put("/api/v1/network-apps/x", json={"client_id": "evil"}, headers={"X-CSRF-Token": token})
        assert r.status_code == 403 and r.json()["error"]["code"]
    owner_token = make_token(studio.user)
    with TestClient(app, base_url="http://testserver") as api:
        headers = {"Authorization": f"Bearer {owner_token}"}
        body = api.get("/api/v1/network-apps", headers=headers)
        assert body.status_code == 200 and SECRET not in body.text
        x = next(a for a in body.json()["data"] if a["app"] == "x")
        assert x["client_id"] == {"source": "set here", "hint": "ui-client", "env_name": "AINF_X_CLIENT_ID",
                                  "env_hidden": True}  # the fixture also sets it in settings
        assert x["client_secret"]["hint"] == "…WXYZ" and x["redirect_uris"]["x"].endswith("/accounts/oauth/x/callback")
        r = api.put("/api/v1/network-apps/youtube", json={"client_id": "g-id", "client_secret": OTHER_SECRET},
                    headers=headers)
        assert r.status_code == 200 and OTHER_SECRET not in r.text
        assert next(a for a in r.json()["data"] if a["app"] == "youtube")["ready"] is True
        r = api.put("/api/v1/network-apps/x", json={"client_id": "a b"}, headers=headers)
        assert r.status_code == 422 and r.json()["error"]["field"] == "client_id"
        r = api.put("/api/v1/network-apps/s3-secret", json={"secret_access_key": S3_SECRET}, headers=headers)
        assert r.status_code == 200 and S3_SECRET not in r.text
        assert r.json()["s3_secret_access_key"]["source"] == "set here"
