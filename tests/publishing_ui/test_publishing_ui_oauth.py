"""OAuth connect flows end to end: the web start route, a local consent/token server, the callback, the live check.

Each flow runs through the real pages with a signed-in person; the "browser at the network" step
is an httpx request to the local fake consent screen, whose 302 carries the code back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import httpx
import pytest
from fake_graph import FakeGraph
from fake_oauth import FakeOAuth, local_adapters, s256
from fake_x import FakeX
from fake_youtube import FakeYouTube
from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio
from sqlalchemy import select

from ainfluencer.db.models import StoredSecret, User, utcnow
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.services import accounts, oauth

CALLBACK = "http://testserver/accounts/oauth/{}/callback"


def start(studio: Studio, platform: str, **fields: Any) -> str:
    """Press "Connect": the app answers with a redirect to the network's consent screen."""
    r = studio.post(f"/accounts/oauth/{platform}/start", {"character_id": studio.character_id, **fields})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


def consent(url: str) -> str:
    """The person presses "Allow" on the network; returns the callback path the browser is sent to."""
    r = httpx.get(url, follow_redirects=False)
    assert r.status_code == 302, r.text
    loc = urlsplit(r.headers["location"])
    assert loc.netloc == "testserver"
    return f"{loc.path}?{loc.query}"


def error_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    return unquote_plus(parse_qs(urlsplit(response.headers["location"]).query).get("error", [""])[0])


def accounts_of(studio: Studio) -> list[SocialAccount]:
    with studio.runtime.db.session() as s:
        return list(s.scalars(select(SocialAccount).order_by(SocialAccount.id)))


def stored(studio: Studio, account: SocialAccount) -> accounts.Credentials:
    with studio.runtime.db.session() as s:
        row = s.get(SocialAccount, account.id)
        assert row is not None
        return accounts.load_credentials(s, studio.runtime.secrets, row)


@pytest.fixture
def x_world(studio: Studio) -> Iterator[tuple[FakeX, FakeOAuth]]:
    with FakeX() as api, FakeOAuth(on_token=lambda provider, token: api.valid_tokens.add(token)) as auth, \
            local_adapters(studio.runtime, x={"base_url": api.url, "timeout": 5}):
        studio.runtime.settings.oauth_endpoints = {"x_authorize": f"{auth.url}/i/oauth2/authorize",
                                                   "x_api": auth.url}
        yield api, auth


# ---- X: OAuth 2.0 with PKCE --------------------------------------------------------------------------


def test_x_pkce_flow_connects_after_live_check(studio: Studio, x_world: tuple[FakeX, FakeOAuth]) -> None:
    api, auth = x_world
    url = start(studio, "x")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{auth.url}/i/oauth2/authorize?")
    assert query["redirect_uri"] == [CALLBACK.format("x")] and query["code_challenge_method"] == ["S256"]
    assert "offline.access" in query["scope"][0] and len(query["state"][0]) >= 24

    r = studio.client.get(consent(url), follow_redirects=False)
    assert r.status_code == 303 and "done=connected" in r.headers["location"], r.headers
    # The fake checked the verifier against the challenge; the verifier never left the server before.
    sent = auth.token_requests[-1]
    assert s256(sent["code_verifier"]) == query["code_challenge"][0]
    assert sent["redirect_uri"] == CALLBACK.format("x") and "client_secret" not in sent
    [account] = accounts_of(studio)
    assert (account.platform, account.handle, account.platform_account_id) == ("x", "ava_virtual", api.user_id)
    assert account.token_expires_at is not None and account.token_expires_at > utcnow()
    creds = stored(studio, account)
    assert creds.access_token is not None and creds.access_token.get_secret_value() in api.valid_tokens
    assert creds.refresh_token is not None
    page = studio.client.get(r.headers["location"])
    assert "Account connected" in page.text and "ava_virtual" in page.text
    # Nothing about the flow is left behind.
    with studio.runtime.db.session() as s:
        assert s.scalars(select(StoredSecret).where(StoredSecret.owner_kind == oauth.STATE_OWNER)).all() == []


def test_state_is_single_use_and_bound_to_user_and_network(
    studio: Studio, x_world: tuple[FakeX, FakeOAuth], app: Any, make_user: Callable[..., User],
    login: Callable[..., None],
) -> None:
    url = start(studio, "x")
    callback = consent(url)
    # Another signed-in person cannot use this state (it is not theirs) ...
    make_user("other@example.com", owner=False)
    with TestClient(app, base_url="http://testserver") as other:
        login(other, "other@example.com")
        assert "unknown or was already used" in error_of(other.get(callback, follow_redirects=False))
    # ... a callback for another network cannot use it either (and it is spent by that attempt) ...
    wrong = callback.replace("/oauth/x/", "/oauth/facebook/")
    assert "started for another network" in error_of(studio.client.get(wrong, follow_redirects=False))
    assert "unknown or was already used" in error_of(studio.client.get(callback, follow_redirects=False))
    # ... and a fresh flow works exactly once.
    callback = consent(start(studio, "x"))
    assert "done=connected" in studio.client.get(callback, follow_redirects=False).headers["location"]
    assert "unknown or was already used" in error_of(studio.client.get(callback, follow_redirects=False))
    assert len(accounts_of(studio)) == 1
    # A made-up state is refused before any network call.
    before = len(x_world[1].token_requests)
    bad = studio.client.get("/accounts/oauth/x/callback?code=abc&state=made-up", follow_redirects=False)
    assert "unknown or was already used" in error_of(bad) and len(x_world[1].token_requests) == before
    missing = studio.client.get("/accounts/oauth/x/callback?code=abc", follow_redirects=False)
    assert "no valid sign-in state" in error_of(missing)


def test_expired_state_is_refused(studio: Studio, x_world: tuple[FakeX, FakeOAuth],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    callback = consent(start(studio, "x"))
    later = utcnow() + oauth.STATE_TTL + timedelta(seconds=1)
    monkeypatch.setattr(oauth, "utcnow", lambda: later)
    r = studio.client.get(callback, follow_redirects=False)
    assert "expired" in error_of(r)
    assert x_world[1].token_requests == [] and accounts_of(studio) == []
    page = studio.client.get(r.headers["location"])
    assert page.status_code == 200 and "expired" in page.text


def test_pkce_verifier_of_another_flow_is_refused_by_the_network(
    studio: Studio, x_world: tuple[FakeX, FakeOAuth]
) -> None:
    first = consent(start(studio, "x"))
    second_url = start(studio, "x")
    code = parse_qs(urlsplit(first).query)["code"][0]
    state = parse_qs(urlsplit(second_url).query)["state"][0]
    # The code of the first consent with the second flow's state: its verifier does not match.
    r = studio.client.get(f"/accounts/oauth/x/callback?code={code}&state={state}", follow_redirects=False)
    message = error_of(r)
    assert "X refused the sign-in" in message and "code_verifier" in message
    assert accounts_of(studio) == []


def test_denied_consent_and_unreachable_network(studio: Studio, x_world: tuple[FakeX, FakeOAuth]) -> None:
    api, auth = x_world
    auth.deny = True
    r = studio.client.get(consent(start(studio, "x")), follow_redirects=False)
    assert "You declined access on X" in error_of(r)
    auth.deny = False
    studio.runtime.settings.oauth_endpoints = {**studio.runtime.settings.oauth_endpoints,
                                               "x_api": "http://127.0.0.1:9"}
    r = studio.client.get(consent(start(studio, "x")), follow_redirects=False)
    assert "could not be reached" in error_of(r) and accounts_of(studio) == []


def test_oauth_needs_client_settings(studio: Studio) -> None:
    studio.runtime.settings.x_client_id = ""
    page = studio.client.get(f"/accounts?character={studio.character_id}")
    assert "AINF_X_CLIENT_ID" in page.text and "Settings → Networks" in page.text
    r = studio.post("/accounts/oauth/x/start", {"character_id": studio.character_id})
    assert r.status_code == 422 and "Settings → Networks" in r.text


def test_api_start_returns_authorize_url(studio: Studio, x_world: tuple[FakeX, FakeOAuth],
                                         make_token: Callable[..., str]) -> None:
    token = make_token(studio.user)
    with TestClient(studio.client.app, base_url="http://testserver") as api:
        r = api.post("/api/v1/compose/oauth/x/start", json={"character_id": studio.character_id},
                     headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["redirect_uri"] == CALLBACK.format("x") and body["state"] in body["authorize_url"]
        bad = api.post("/api/v1/compose/oauth/telegram/start", json={"character_id": studio.character_id},
                       headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 422 and "use its form" in bad.json()["error"]["message"]
    # The browser (signed in to the web app) completes it.
    assert "done=connected" in studio.client.get(consent(body["authorize_url"]),
                                                 follow_redirects=False).headers["location"]


# ---- Facebook Login: Pages ----------------------------------------------------------------------------


@pytest.fixture
def graph_world(studio: Studio) -> Iterator[tuple[FakeGraph, FakeOAuth]]:
    with FakeGraph() as graph, FakeOAuth() as auth:
        auth.on_token = lambda provider, token: graph.tokens.__setitem__(token, ("user", graph.user_id))
        auth.mount_graph(graph)
        with local_adapters(studio.runtime, facebook={"base_url": graph.url}, instagram={"base_url": graph.url}):
            studio.runtime.settings.oauth_endpoints = {"facebook_dialog": auth.url, "graph": graph.url}
            yield graph, auth


def test_facebook_login_long_lived_token_then_pick_a_page(studio: Studio,
                                                          graph_world: tuple[FakeGraph, FakeOAuth]) -> None:
    graph, auth = graph_world
    url = start(studio, "facebook")
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).path.endswith("/dialog/oauth") and "pages_manage_posts" in query["scope"][0]
    r = studio.client.get(consent(url), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/accounts/oauth/pending/")
    kinds = [t.get("grant_type", "") for t in auth.token_requests]
    assert kinds == ["authorization_code", "fb_exchange_token"]  # short-lived (RFC 6749 grant), then long-lived
    picker = studio.client.get(r.headers["location"])
    assert picker.status_code == 200 and "Ava Virtual" in picker.text and "Other Page" in picker.text
    bad = studio.post(r.headers["location"], {"choice": "999"})
    assert "Pick one of the listed Pages" in error_of(bad)
    done = studio.post(r.headers["location"], {"choice": graph.page_id})
    assert "done=connected" in done.headers["location"], done.headers
    [account] = accounts_of(studio)
    assert (account.platform, account.platform_account_id) == ("facebook", graph.page_id)
    creds = stored(studio, account)
    assert creds.access_token is not None and creds.access_token.get_secret_value() == "page-token"
    # The choice works once.
    assert "already made" in error_of(studio.post(r.headers["location"], {"choice": graph.page_id}))


def test_instagram_via_facebook_login_finds_the_linked_account(studio: Studio,
                                                               graph_world: tuple[FakeGraph, FakeOAuth]) -> None:
    graph, _ = graph_world
    url = start(studio, "instagram")
    assert "instagram_content_publish" in parse_qs(urlsplit(url).query)["scope"][0]
    r = studio.client.get(consent(url), follow_redirects=False)
    # Only one of the two Pages has an instagram_business_account: no choice needed.
    assert "done=connected" in r.headers["location"], r.headers
    [account] = accounts_of(studio)
    assert (account.platform, account.platform_account_id, account.handle) == ("instagram", graph.ig_user_id,
                                                                               "ava.virtual")
    assert account.token_expires_at is not None and account.token_expires_at - utcnow() > timedelta(days=50)
    # Connecting the same Instagram account again (to another character) is refused as a duplicate.
    from publishing_ui_helpers import make_character

    other = make_character(studio.runtime, studio.user, name="Lux", handle="lux")
    r = studio.post("/accounts/oauth/instagram/start", {"character_id": other})
    again = studio.client.get(consent(str(r.headers["location"])), follow_redirects=False)
    assert "already connected" in error_of(again) and len(accounts_of(studio)) == 1


def test_facebook_login_without_pages_says_what_to_do(studio: Studio,
                                                      graph_world: tuple[FakeGraph, FakeOAuth]) -> None:
    graph, _ = graph_world
    graph.pages = []
    r = studio.client.get(consent(start(studio, "facebook")), follow_redirects=False)
    assert "manages no Pages" in error_of(r)


# ---- Google OAuth for YouTube ---------------------------------------------------------------------------


def test_google_oauth_offline_access_connects_the_channel(studio: Studio) -> None:
    with FakeYouTube() as yt, FakeOAuth() as auth, \
            local_adapters(studio.runtime, youtube={"base_url": yt.url, "timeout": 5}):
        auth.on_token = lambda provider, token: yt.valid_tokens.add(token)
        studio.runtime.settings.oauth_endpoints = {"google_authorize": f"{auth.url}/o/oauth2/v2/auth",
                                                   "google_token": f"{auth.url}/token"}
        url = start(studio, "youtube")
        query = parse_qs(urlsplit(url).query)
        assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
        assert "youtube.upload" in query["scope"][0] and query["code_challenge_method"] == ["S256"]
        r = studio.client.get(consent(url), follow_redirects=False)
        assert "done=connected" in r.headers["location"], r.headers
        assert s256(auth.token_requests[-1]["code_verifier"]) == query["code_challenge"][0]
        [account] = accounts_of(studio)
        assert (account.platform, account.platform_account_id, account.handle) == ("youtube", yt.channel_id,
                                                                                   "@ava_virtual")
        creds = stored(studio, account)
        assert creds.refresh_token is not None and creds.extra["client_id"] == "google-client"
        assert creds.secret_extra["client_secret"].get_secret_value() == "google-secret"

        # Without a refresh token uploads would stop within the hour: refused with the way out.
        auth.omit_refresh_token = True
        r = studio.client.get(consent(start(studio, "youtube")), follow_redirects=False)
        assert "no refresh token" in error_of(r)


# ---- Mastodon: an app registered on the person's instance ------------------------------------------------


@pytest.fixture(scope="module")
def mastodon_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from mastodon_mock.config import DatabaseConfig, MastodonMockConfig, StreamingConfig
    from mastodon_mock.testing.seed import DEFAULT_TEST_SEED
    from mastodon_mock.testing.server import MockServer

    config = MastodonMockConfig(database=DatabaseConfig(path=":memory:"), seed=DEFAULT_TEST_SEED,
                                streaming=StreamingConfig(heartbeat_seconds=0.2),
                                media_storage_path=str(tmp_path_factory.mktemp("oauth_mastodon_media")))
    with MockServer(config=config, host="127.0.0.1") as server:
        yield server


def test_mastodon_registers_an_app_then_authorizes(studio: Studio, mastodon_instance: Any) -> None:
    base = mastodon_instance.base_url
    url = start(studio, "mastodon", instance_url=base + "/")
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}" == base and parts.path == "/oauth/authorize"
    assert query["redirect_uri"] == [CALLBACK.format("mastodon")]
    # The person signs in on their instance and allows access.
    answer = httpx.post(f"{base}/oauth/authorize", follow_redirects=False, data={
        "username": "bob", "redirect_uri": query["redirect_uri"][0], "client_id": query["client_id"][0],
        "state": query["state"][0]})
    loc = urlsplit(answer.headers["location"])
    r = studio.client.get(f"{loc.path}?{loc.query}", follow_redirects=False)
    assert "done=connected" in r.headers["location"], r.headers
    [account] = accounts_of(studio)
    assert account.platform == "mastodon" and account.handle.startswith("@bob@")
    assert account.extra["instance_url"] == base
    # The app is registered once per instance and reused.
    second = start(studio, "mastodon", instance_url=base)
    assert parse_qs(urlsplit(second).query)["client_id"] == query["client_id"]


def test_mastodon_instance_input_is_checked_and_kept(studio: Studio) -> None:
    r = studio.post("/accounts/oauth/mastodon/start", {"character_id": studio.character_id,
                                                       "instance_url": "https://example.test/some/path"})
    assert r.status_code == 422 and "is not an instance address" in r.text
    assert 'value="https://example.test/some/path"' in r.text  # what the person typed stays in the field


def test_reconnect_runs_the_flow_again_for_the_same_account(studio: Studio,
                                                            x_world: tuple[FakeX, FakeOAuth]) -> None:
    api, _ = x_world
    assert "done=connected" in studio.client.get(consent(start(studio, "x")),
                                                 follow_redirects=False).headers["location"]
    [account] = accounts_of(studio)
    old = stored(studio, account).access_token
    page = studio.client.get(f"/accounts/{account.id}/reconnect")
    assert page.status_code == 200 and 'name="account_id"' in page.text
    r = studio.client.get(consent(start(studio, "x", account_id=account.id)), follow_redirects=False)
    assert "done=reconnected" in r.headers["location"], r.headers
    [again] = accounts_of(studio)
    new = stored(studio, again).access_token
    assert again.id == account.id and old is not None and new is not None
    assert new.get_secret_value() != old.get_secret_value()
    # Another X identity cannot replace this account's credentials.
    api.user_id, api.username = "999", "someone_else"
    r = studio.client.get(consent(start(studio, "x", account_id=account.id)), follow_redirects=False)
    assert "belong to someone_else" in error_of(r)
