"""Telegram's Bot API server per account: set in the connect form, used by every later call; no getMe per send."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_telegram import CHANNEL_ID, TOKEN, FakeTelegram
from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio
from pydantic import SecretStr
from sqlalchemy import select

from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.platforms.base import Credentials, PostRequest
from ainfluencer.platforms.telegram.adapter import TelegramAdapter
from ainfluencer.services import accounts


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def test_connect_form_points_the_account_at_its_own_server(studio: Studio, fake: FakeTelegram) -> None:
    page = studio.client.get(f"/accounts?character={studio.character_id}")
    assert 'name="api_url"' in page.text and "https://api.telegram.org" in page.text
    # No transport override: the URL typed in the form is the only way the adapter finds the fake.
    done = studio.post("/accounts/connect/telegram", {
        "character_id": studio.character_id, "token": TOKEN, "chat_manual": str(CHANNEL_ID),
        "api_url": fake.url + "/", "action": "connect"})
    assert done.status_code == 303, done.text
    with studio.runtime.db.session() as s:
        account = s.scalars(select(SocialAccount)).one()
        assert account.extra["api_url"] == fake.url
        creds = accounts.load_credentials(s, studio.runtime.secrets, account)
    assert len(fake.calls("getMe")) == 1  # the live check at connect
    adapter = accounts.build_adapter(studio.runtime, "telegram", creds)
    for text in ("first", "second"):
        studio.runtime.run(adapter.publish(PostRequest(text=text)))
    assert [c for c in fake.calls("sendMessage")] and len(fake.calls("sendMessage")) == 2
    assert len(fake.calls("getMe")) == 1, "a send asked getMe again instead of using the saved identity"


def test_a_revoked_token_still_fails_as_auth_without_getme(studio: Studio, fake: FakeTelegram) -> None:
    creds = Credentials(access_token=SecretStr(TOKEN), extra={"chat_id": str(CHANNEL_ID), "api_url": fake.url,
                                                              "bot_id": "1", "bot_username": "studio_bot"})
    fake.token = "123456:REVOKED-token-abcdefghijklmnopqrst"
    from ainfluencer.platforms.base import PlatformAuthError

    with pytest.raises(PlatformAuthError):
        studio.runtime.run(TelegramAdapter(creds).publish(PostRequest(text="hi")))
    assert fake.calls("getMe") == []


def test_discover_chats_api_takes_the_server_url(studio: Studio, fake: FakeTelegram) -> None:
    from ainfluencer.services import auth

    with studio.runtime.db.session() as s:
        member = auth.create_user(s, email="member@example.com", password="correct horse battery", verified=True)
        token = auth.create_api_token(s, user=member, name="t", scopes="read,write").raw
        owner_token = auth.create_api_token(s, user=s.get(type(member), studio.user.id), name="o",
                                            scopes="read,write").raw
    body = {"platform": "telegram", "token": TOKEN, "api_url": fake.url}
    api = TestClient(studio.client.app, base_url="http://testserver")  # bearer only: no session cookie, no CSRF
    # A member may not aim the server at a private address (it is reached with the token) ...
    r = api.post("/api/v1/accounts/discover-chats", json=body,
                           headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "api_url"
    # ... the owner, who runs the machine, may.
    r = api.post("/api/v1/accounts/discover-chats", json=body,
                           headers={"Authorization": f"Bearer {owner_token}"})
    assert r.status_code == 200, r.text
    assert fake.calls("getUpdates")
