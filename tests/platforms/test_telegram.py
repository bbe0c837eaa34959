"""Telegram adapter against a local Bot API server, driven through python-telegram-bot."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from _servers_a import Drop, Reply, write_image
from fake_telegram import BOT_ID, CHANNEL_ID, GROUP_ID, TOKEN, FakeTelegram, error
from pydantic import SecretStr

from ainfluencer.platforms.base import (
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishState,
)
from ainfluencer.platforms.registry import adapter_class
from ainfluencer.platforms.telegram.adapter import TelegramAdapter, discover_chats

pytestmark = [
    pytest.mark.nodb,
    # python-telegram-bot's RetryAfter warns about its own int->timedelta migration when it is built
    pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning"),
]

SECRET = TOKEN.split(":", 1)[1]


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def adapter(fake: FakeTelegram, chat_id: str = str(CHANNEL_ID), token: str = TOKEN) -> TelegramAdapter:
    creds = Credentials(access_token=SecretStr(token), extra={"chat_id": chat_id, "chat_username": "nova_daily"})
    return TelegramAdapter(creds, base_url=fake.base_url, base_file_url=fake.base_file_url)


def media(tmp: Path, kind: MediaKind, size: int = 2048, name: str = "") -> MediaItem:
    suffix = {MediaKind.image: ".jpg", MediaKind.video: ".mp4", MediaKind.gif: ".gif"}[kind]
    mime = {MediaKind.image: "image/jpeg", MediaKind.video: "video/mp4", MediaKind.gif: "image/gif"}[kind]
    path = write_image(tmp / (name or f"{kind.value}-{size}{suffix}"), size)
    return MediaItem(path=path, kind=kind, mime_type=mime, duration_seconds=3.0 if kind is MediaKind.video else None)


def assert_no_token(exc: BaseException) -> None:
    rendered = "".join(traceback.format_exception(exc)) + getattr(exc, "platform_message", "")
    assert SECRET not in rendered


# -- publish: one table of (post, platform behaviour, expected outcome) -------------------------


@dataclass
class Row:
    id: str
    post: Callable[[Path], PostRequest]
    faults: list[tuple[str, Any]] = field(default_factory=list)
    error: type[PlatformError] | None = None
    retry_after: float | None = None
    check: Callable[[FakeTelegram, Any], None] | None = None
    no_call: str = ""  # a Bot API method that must not have been called


def _text_ok(fake: FakeTelegram, result: Any) -> None:
    call = fake.calls("sendMessage")[0]
    assert call.field("text") == "Hello from Nova"
    assert call.field("protect_content") == "false"
    assert call.field("chat_id") == str(CHANNEL_ID)
    assert result.platform_post_id == f"{CHANNEL_ID}:{result.raw['message_ids'][0]}"
    assert result.url == f"https://t.me/nova_daily/{result.raw['message_ids'][0]}"


def _photo_ok(fake: FakeTelegram, result: Any) -> None:
    call = fake.calls("sendPhoto")[0]
    assert call.field("caption") == "Sunset"
    assert call.files["photo"].data.startswith(b"\xff\xd8")
    assert len(call.files["photo"].data) == 2048


def _video_ok(fake: FakeTelegram, result: Any) -> None:
    call = fake.calls("sendVideo")[0]
    assert call.field("supports_streaming") == "true"
    assert call.field("duration") == "3"
    assert "video" in call.files


def _gif_ok(fake: FakeTelegram, result: Any) -> None:
    assert "animation" in fake.calls("sendAnimation")[0].files


def _group_ok(fake: FakeTelegram, result: Any) -> None:
    call = fake.calls("sendMediaGroup")[0]
    items = json.loads(call.field("media") or "[]")
    assert [i["type"] for i in items] == ["photo", "video", "photo"]
    assert items[0]["caption"] == "Album" and all("caption" not in i for i in items[1:])
    assert len(call.files) == 3
    ids = result.raw["message_ids"]
    assert len(ids) == 3 and result.platform_post_id == f"{CHANNEL_ID}:{','.join(map(str, ids))}"
    assert result.raw["media_group_id"]


def _text(text: str = "Hello from Nova") -> Callable[[Path], PostRequest]:
    return lambda tmp: PostRequest(text=text, marker="pub-1")


def _with(*kinds: MediaKind, text: str = "Sunset", size: int = 2048) -> Callable[[Path], PostRequest]:
    return lambda tmp: PostRequest(
        text=text, media=[media(tmp, k, size, name=f"m{i}-{k.value}") for i, k in enumerate(kinds)], marker="pub-1"
    )


ROWS = [
    Row("text", _text(), check=_text_ok),
    Row("photo-caption", _with(MediaKind.image), check=_photo_ok),
    Row("video", _with(MediaKind.video), check=_video_ok),
    Row("gif", _with(MediaKind.gif), check=_gif_ok),
    Row("media-group", _with(MediaKind.image, MediaKind.video, MediaKind.image, text="Album"), check=_group_ok),
    Row("401-token", _text(), faults=[("getMe", error(401, "Unauthorized"))], error=PlatformAuthError),
    Row(
        "403-removed",
        _text(),
        faults=[("sendMessage", error(403, "Forbidden: bot was kicked from the channel chat"))],
        error=PlatformAuthError,
    ),
    Row(
        "429-retry-after",
        _text(),
        faults=[("sendMessage", error(429, "Too Many Requests: retry after 7", retry_after=7))],
        error=PlatformTransientError,
        retry_after=7.0,
    ),
    Row("500", _text(), faults=[("sendMessage", error(500, "Internal Server Error"))], error=PlatformTransientError),
    Row(
        "502-html",
        _text(),
        faults=[("sendMessage", Reply(502, "<html>Bad Gateway</html>"))],
        error=PlatformTransientError,
    ),
    Row("malformed-200", _text(), faults=[("sendMessage", Reply(200, "not json"))], error=PlatformTransientError),
    Row(
        "400-validation",
        _text(),
        faults=[("sendMessage", error(400, "Bad Request: can't parse entities"))],
        error=PlatformPermanentError,
    ),
    Row(
        "chat-migrated",
        _text(),
        faults=[("sendMessage", error(400, "Bad Request: group chat was upgraded", migrate_to_chat_id=-100777))],
        error=PlatformAuthError,
    ),
    Row("text-too-long", _text("x" * 4097), error=PlatformPermanentError, no_call="sendMessage"),
    Row("caption-too-long", _with(MediaKind.image, text="x" * 1025), error=PlatformPermanentError, no_call="sendPhoto"),
    Row(
        "photo-too-large",
        _with(MediaKind.image, size=10_000_001),
        error=PlatformPermanentError,
        no_call="sendPhoto",
    ),
    Row(
        "video-413-from-server",
        _with(MediaKind.video),
        faults=[("sendVideo", error(413, "Request Entity Too Large"))],
        error=PlatformPermanentError,
    ),
    Row(
        "drop-mid-upload",
        _with(MediaKind.image, size=3_000_000),
        faults=[("sendPhoto", Drop(after_bytes=64 * 1024))],
        error=PlatformTransientError,
    ),
    Row("eleven-files", _with(*[MediaKind.image] * 11), error=PlatformPermanentError, no_call="sendMediaGroup"),
    Row("gif-in-group", _with(MediaKind.image, MediaKind.gif), error=PlatformPermanentError, no_call="sendMediaGroup"),
    Row("empty", _text("  "), error=PlatformPermanentError, no_call="sendMessage"),
    Row(
        "missing-file",
        lambda tmp: PostRequest(text="x", media=[MediaItem(tmp / "gone.jpg", MediaKind.image, "image/jpeg")]),
        error=PlatformPermanentError,
        no_call="getMe",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_publish(row: Row, fake: FakeTelegram, tmp_path: Path) -> None:
    for method, effect in row.faults:
        fake.fault(rf"/{method}$", effect)
    post = row.post(tmp_path)
    if row.error is None:
        result = asyncio.run(adapter(fake).publish(post))
        assert result.state is PublishState.published
        assert row.check is not None
        row.check(fake, result)
        return
    with pytest.raises(row.error) as info:
        asyncio.run(adapter(fake).publish(post))
    assert type(info.value) is row.error or issubclass(type(info.value), row.error)
    assert_no_token(info.value)
    if row.retry_after is not None:
        assert isinstance(info.value, PlatformTransientError)
        assert info.value.retry_after == row.retry_after
    if row.no_call:
        assert fake.calls(row.no_call) == []
    if row.id == "drop-mid-upload":
        assert fake.calls("sendPhoto")[0].dropped
    if row.id == "chat-migrated":
        assert "-100777" in info.value.message


# -- connect --------------------------------------------------------------------------------


def test_connect_channel_admin(fake: FakeTelegram) -> None:
    info = asyncio.run(adapter(fake, chat_id="@nova_daily").connect())
    assert info.platform_account_id == str(CHANNEL_ID)
    assert info.handle == "@nova_daily" and info.display_name == "Nova Daily"
    assert info.profile_url == "https://t.me/nova_daily"
    assert info.credentials is not None
    assert info.credentials.extra["chat_id"] == str(CHANNEL_ID)
    assert info.credentials.extra["bot_id"] == str(BOT_ID)
    member_call = fake.calls("getChatMember")[0]
    assert member_call.field("user_id") == str(BOT_ID)


CONNECT_FAILURES: list[tuple[str, Callable[[FakeTelegram], Any], str, type[PlatformError]]] = [
    ("bot-only-member", lambda f: None, str(GROUP_ID), PlatformAuthError),
    (
        "admin-without-post-right",
        lambda f: f.members[CHANNEL_ID].update(can_post_messages=False),
        str(CHANNEL_ID),
        PlatformAuthError,
    ),
    ("chat-not-found", lambda f: None, "-100555", PlatformPermanentError),
    ("token-revoked", lambda f: f.fault(r"/getMe$", error(401, "Unauthorized")), str(CHANNEL_ID), PlatformAuthError),
    ("no-chat-picked", lambda f: None, "", PlatformPermanentError),
]


@pytest.mark.parametrize(
    ("setup", "chat_id", "expected"), [c[1:] for c in CONNECT_FAILURES], ids=[c[0] for c in CONNECT_FAILURES]
)
def test_connect_refused(
    fake: FakeTelegram, setup: Callable[[FakeTelegram], Any], chat_id: str, expected: type[PlatformError]
) -> None:
    setup(fake)
    with pytest.raises(expected) as info:
        asyncio.run(adapter(fake, chat_id=chat_id).connect())
    assert_no_token(info.value)


def test_invalid_token_message_never_shows_the_token(fake: FakeTelegram) -> None:
    wrong = "999:WRONG-secret-value-abcdefghijkl"
    with pytest.raises(PlatformAuthError) as info:
        asyncio.run(adapter(fake, token=wrong).connect())
    rendered = "".join(traceback.format_exception(info.value)) + info.value.platform_message
    assert "WRONG-secret-value" not in rendered


# -- discover chats -------------------------------------------------------------------------


def test_discover_chats_from_updates(fake: FakeTelegram) -> None:
    channel = fake.chats[CHANNEL_ID]
    group = fake.chats[GROUP_ID]
    gone = {"id": -100333, "type": "channel", "title": "Old channel"}
    bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "Studio Bot", "username": "studio_bot"}
    someone = {"id": 42, "is_bot": False, "first_name": "Ada"}

    def member_change(update_id: int, chat: dict[str, Any], status: str) -> dict[str, Any]:
        return {
            "update_id": update_id,
            "my_chat_member": {
                "chat": chat,
                "from": someone,
                "date": 1,
                "old_chat_member": {"user": bot_user, "status": "left"},
                "new_chat_member": {"user": bot_user, "status": status}
                | (
                    {k: v for k, v in fake.members[CHANNEL_ID].items() if k != "status"}
                    if status == "administrator"
                    else {}
                ),
            },
        }

    fake.updates = [
        member_change(1, channel, "administrator"),
        {
            "update_id": 2,
            "channel_post": {"message_id": 5, "date": 1, "chat": channel, "sender_chat": channel, "text": "hi"},
        },
        {"update_id": 3, "message": {"message_id": 6, "date": 1, "chat": group, "from": someone, "text": "hello"}},
        member_change(4, gone, "administrator"),
        member_change(5, gone, "left"),
        {
            "update_id": 6,
            "message": {
                "message_id": 7,
                "date": 1,
                "chat": {"id": 42, "type": "private", "first_name": "Ada"},
                "from": someone,
                "text": "dm",
            },
        },
    ]
    chats = asyncio.run(discover_chats(TOKEN, base_url=fake.base_url))
    by_id = {c.chat_id: c for c in chats}
    assert set(by_id) == {str(CHANNEL_ID), str(GROUP_ID)}
    assert by_id[str(CHANNEL_ID)].username == "nova_daily"
    assert by_id[str(CHANNEL_ID)].bot_status == "administrator"
    assert by_id[str(GROUP_ID)].type == "supergroup"
    call = fake.calls("getUpdates")[0]
    assert call.field("offset") is None and call.field("allowed_updates") is None  # nothing consumed or changed
    assert len(fake.updates) == 6


def test_discover_chats_with_webhook_set(fake: FakeTelegram) -> None:
    fake.fault(r"/getUpdates$", error(409, "Conflict: can't use getUpdates method while webhook is active"))
    with pytest.raises(PlatformPermanentError, match="webhook"):
        asyncio.run(discover_chats(TOKEN, base_url=fake.base_url))


# -- reconcile and delete ---------------------------------------------------------------------


def test_find_published_cannot_search_without_an_id(fake: FakeTelegram) -> None:
    a = adapter(fake)
    since = datetime.now(UTC)
    assert asyncio.run(a.find_published(PostRequest(text="Hello", marker="m-1"), since=since)) is None
    known = PostRequest(text="Hello", marker="m-1", options={"platform_post_id": f"{CHANNEL_ID}:101"})
    found = asyncio.run(a.find_published(known, since=since))
    assert found is not None and found.platform_post_id == f"{CHANNEL_ID}:101"
    assert found.url == "https://t.me/nova_daily/101"
    assert fake.log == []  # no network traffic: the Bot API has nothing to ask
    assert "reconciliation returns None" in TelegramAdapter.capabilities.notes


def test_delete_single_and_group(fake: FakeTelegram, tmp_path: Path) -> None:
    a = adapter(fake)
    single = asyncio.run(a.publish(PostRequest(text="one")))
    group = asyncio.run(a.publish(_with(MediaKind.image, MediaKind.image, text="two")(tmp_path)))
    asyncio.run(a.delete(single.platform_post_id))
    asyncio.run(a.delete(group.platform_post_id))
    assert fake.messages == {}
    assert fake.calls("deleteMessage")[0].field("message_id") == str(single.raw["message_ids"][0])
    assert json.loads(fake.calls("deleteMessages")[0].field("message_ids") or "[]") == group.raw["message_ids"]
    with pytest.raises(PlatformPermanentError, match="refused"):
        asyncio.run(a.delete(single.platform_post_id))
    with pytest.raises(PlatformPermanentError):
        asyncio.run(a.delete("not-an-id"))


def test_capabilities_and_registry() -> None:
    caps = TelegramAdapter.capabilities
    assert adapter_class("telegram") is TelegramAdapter
    assert (caps.max_text_chars, caps.max_media, caps.max_image_bytes, caps.max_video_bytes) == (
        4096,
        10,
        10_000_000,
        50_000_000,
    )
    assert caps.supports_ai_label is False and caps.connect_method == "token"
    assert "1024" in caps.notes
