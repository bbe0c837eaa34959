"""The Accounts page: Telegram chat picking, Bluesky form, health/expiry/budget display, check, disconnect."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fake_oauth import local_adapters
from fake_telegram import BOT_ID, CHANNEL_ID, GROUP_ID, TOKEN, FakeTelegram
from publishing_ui_helpers import Studio, add_account, assert_csp_clean
from sqlalchemy import select

from ainfluencer.db.models import StoredSecret, utcnow
from ainfluencer.db.models_publishing import AccountStatus, SocialAccount
from ainfluencer.services import accounts


@pytest.fixture
def telegram(studio: Studio) -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake, local_adapters(studio.runtime, telegram={"base_url": fake.base_url,
                                                          "base_file_url": fake.base_file_url}):
        yield fake


def _joined(fake: FakeTelegram, chat_id: int, update_id: int) -> dict[str, Any]:
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "Studio Bot", "username": "studio_bot"}
    return {"update_id": update_id, "my_chat_member": {
        "chat": fake.chats[chat_id], "from": {"id": 42, "is_bot": False, "first_name": "Ada"}, "date": 1,
        "old_chat_member": {"user": bot, "status": "left"},
        "new_chat_member": {"user": bot, **fake.members[chat_id]}}}


def test_telegram_chat_is_picked_from_the_bots_updates(studio: Studio, telegram: FakeTelegram) -> None:
    telegram.updates = [_joined(telegram, CHANNEL_ID, 1), _joined(telegram, GROUP_ID, 2)]
    found = studio.post("/accounts/connect/telegram", {"character_id": studio.character_id, "token": TOKEN,
                                                       "action": "find"})
    assert found.status_code == 200, found.text
    assert "Nova Daily" in found.text and "Nova Fans" in found.text and f'value="{CHANNEL_ID}"' in found.text
    assert f'value="{TOKEN}"' in found.text  # the token stays for the next step
    assert_csp_clean(found.text)

    done = studio.post("/accounts/connect/telegram", {"character_id": studio.character_id, "token": TOKEN,
                                                      "chat_id": str(CHANNEL_ID), "action": "connect"})
    assert done.status_code == 303 and "done=connected" in done.headers["location"]
    with studio.runtime.db.session() as s:
        [account] = s.scalars(select(SocialAccount)).all()
        assert (account.platform, account.handle, account.extra["chat_id"]) == ("telegram", "@nova_daily",
                                                                                 str(CHANNEL_ID))
        account_id = account.id

    # "Check now" runs the live check; a revoked token shows up as "needs reconnect" with the reason.
    assert "done=checked" in studio.post(f"/accounts/{account_id}/check").headers["location"]
    telegram.token = "123456:REVOKED-token-abcdefghijklmnopqrst"
    studio.post(f"/accounts/{account_id}/check")
    page = studio.client.get(f"/accounts?character={studio.character_id}")
    row = page.text.split(f'id="account-{account_id}"', 1)[1].split("</tr>", 1)[0]
    assert "needs reconnect" in row and "last-error" in row and TOKEN not in page.text


def test_telegram_errors_keep_the_input(studio: Studio, telegram: FakeTelegram) -> None:
    r = studio.post("/accounts/connect/telegram", {"character_id": studio.character_id, "token": TOKEN,
                                                   "action": "find"})
    assert r.status_code == 422 and "has seen no channel or group yet" in r.text and f'value="{TOKEN}"' in r.text
    wrong = "999:WRONG-secret-value-abcdefghijkl"
    r = studio.post("/accounts/connect/telegram", {"character_id": studio.character_id, "token": wrong,
                                                   "chat_manual": "@nova_daily", "action": "connect"})
    assert r.status_code == 422 and "refused" in r.text and 'value="@nova_daily"' in r.text
    assert "WRONG-secret" not in r.text.replace(f'value="{wrong}"', "")  # only echoed into its own field


def test_bluesky_form_refuses_incomplete_input_and_keeps_it(studio: Studio) -> None:
    r = studio.post("/accounts/connect/bluesky", {"character_id": studio.character_id, "handle": "nova.bsky.social",
                                                  "app_password": ""})
    assert r.status_code == 422 and "app password" in r.text and 'value="nova.bsky.social"' in r.text
    r = studio.post("/accounts/connect/bluesky", {"character_id": studio.character_id, "handle": "nova.bsky.social",
                                                  "app_password": "abcd-efgh-ijkl-mnop",
                                                  "service": "http://127.0.0.1:9"})
    assert r.status_code in (422, 502) and 'value="http://127.0.0.1:9"' in r.text
    assert "abcd-efgh-ijkl-mnop" not in r.text  # the password is never echoed back
    with studio.runtime.db.session() as s:
        assert s.scalars(select(SocialAccount)).all() == []


def test_accounts_page_shows_health_expiry_budget_and_bot_flag(studio: Studio) -> None:
    ok = add_account(studio.runtime, studio.character_id, "mastodon", "@nova@example.social", is_bot_flagged=True,
                     token_expires_at=utcnow() + timedelta(days=3, hours=1), last_checked_at=utcnow())
    bad = add_account(studio.runtime, studio.character_id, "x", "nova_x", status=AccountStatus.needs_reconnect,
                      last_error="X rejected the access token; refresh or reconnect.",
                      token_expires_at=utcnow() - timedelta(hours=1))
    with studio.runtime.db.session() as s:
        row = s.get(SocialAccount, ok)
        assert row is not None
        accounts.ensure_buckets(s, row, accounts.known_platform("mastodon").capabilities)
    page = studio.client.get(f"/accounts?character={studio.character_id}")
    assert page.status_code == 200
    assert_csp_clean(page.text)
    ok_row = page.text.split(f'id="account-{ok}"', 1)[1].split("</tr>", 1)[0]
    bad_row = page.text.split(f'id="account-{bad}"', 1)[1].split("</tr>", 1)[0]
    assert "healthy" in ok_row and "in 3 days" in ok_row and "badge-ok\">bot" in ok_row
    assert re.search(r"\d+ / 300", ok_row)  # Mastodon: 300 posts per 3 hours
    assert "needs reconnect" in bad_row and "expired" in bad_row and "rejected the access token" in bad_row
    # Connect buttons for every network: OAuth ones as forms to the start route, token ones as forms.
    for platform in ("x", "facebook", "instagram", "youtube", "mastodon"):
        assert f'action="/accounts/oauth/{platform}/start"' in page.text
    assert 'action="/accounts/connect/telegram"' in page.text and 'action="/accounts/connect/bluesky"' in page.text
    overview = studio.client.get("/accounts")
    assert overview.status_code == 200 and f'href="/accounts?character={studio.character_id}"' in overview.text
    assert studio.client.get("/accounts?character=99999").status_code == 200  # unknown: says so, no 500
    assert "No character with id 99999" in studio.client.get("/accounts?character=99999").text
    assert studio.client.get("/accounts?character=abc").status_code == 422


def test_disconnect_asks_first_then_deletes_tokens(studio: Studio) -> None:
    account_id = add_account(studio.runtime, studio.character_id, "bluesky", "nova.bsky.social")
    with studio.runtime.db.session() as s:
        row = s.get(SocialAccount, account_id)
        assert row is not None
        accounts.save_credentials(s, studio.runtime.secrets, row, accounts.credentials_from_input(
            extra={"handle": "nova.bsky.social"}, secret_extra={"app_password": "abcd-efgh-ijkl-mnop"}))
    confirm = studio.client.get(f"/accounts/{account_id}/disconnect")
    assert confirm.status_code == 200 and "data-confirm" in confirm.text and "Disconnect" in confirm.text
    assert_csp_clean(confirm.text)
    with studio.runtime.db.session() as s:
        assert s.get(SocialAccount, account_id).status == AccountStatus.healthy  # type: ignore[union-attr]
    r = studio.post(f"/accounts/{account_id}/disconnect")
    assert r.status_code == 303 and "done=disconnected" in r.headers["location"]
    with studio.runtime.db.session() as s:
        assert s.get(SocialAccount, account_id).status == AccountStatus.disconnected  # type: ignore[union-attr]
        assert s.scalars(select(StoredSecret).where(StoredSecret.owner_id == account_id,
                                                    StoredSecret.owner_kind == "social_account")).all() == []
    reconnect = studio.client.get(f"/accounts/{account_id}/reconnect")
    assert reconnect.status_code == 200 and 'name="app_password"' in reconnect.text


def test_character_page_links_to_its_accounts(studio: Studio) -> None:
    page = studio.client.get(f"/characters/{studio.character_id}")
    assert page.status_code == 200 and f'href="/accounts?character={studio.character_id}"' in page.text
