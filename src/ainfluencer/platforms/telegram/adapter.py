"""Telegram: a bot posts to a channel or group it administers, through the official Bot API.

Driven by python-telegram-bot (v22). The account is the *chat*, not the bot: ``connect`` checks the
bot token with ``getMe``, then checks with ``getChat``/``getChatMember`` that the bot is an
administrator of ``credentials.extra["chat_id"]`` (and may post there, for channels).
:func:`discover_chats` lists the chats the bot has seen in its pending updates so the UI can offer
"pick the chat from the bot's updates" instead of asking for a numeric id.

Decisions
- AI label: the Bot API has no AI-content flag, so ``supports_ai_label`` is False; the disclosure
  belongs in the channel description and, where the core adds it, the text.
- Reconciliation: the Bot API has no idempotency key and cannot read a channel's history, so a post
  whose outcome is unknown cannot be looked up by our marker. ``find_published`` returns None unless
  the message id is already known (``post.options["platform_post_id"]``). None therefore means
  "cannot tell" here, not "certainly absent" (see ``Capabilities.notes``), and
  ``reconcile_proves_absence`` stays False.
- Post ids: ``"<chat_id>:<message_id>[,<message_id>...]"`` so ``delete`` removes every message of a
  media group and does not depend on the account's current chat setting.
- Errors: ``Forbidden``/``InvalidToken``/``ChatMigrated`` -> auth; ``RetryAfter``/``TimedOut``/
  ``NetworkError`` -> transient; ``BadRequest`` and 413 "Request Entity Too Large" -> permanent.
  Every exception is re-raised ``from None`` with the token masked, because the token is part of
  every Bot API URL and python-telegram-bot quotes it in some messages.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from telegram import (
    Bot,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType, FileSizeLimit, FloodLimit, MediaGroupLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest

from ainfluencer.logging_setup import redact
from ainfluencer.platforms.base import (
    AccountInfo,
    Capabilities,
    Credentials,
    MediaItem,
    MediaKind,
    PlatformAdapter,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishResult,
    PublishState,
    RateLimit,
)
from ainfluencer.platforms.telegram.rules import CAPTION, TEXT

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "https://api.telegram.org"
API_BASE_URL = DEFAULT_SERVER_URL + "/bot"
FILE_BASE_URL = DEFAULT_SERVER_URL + "/file/bot"
# credentials.extra key of a per-account Bot API server (a self-hosted ``telegram-bot-api`` for 2 GB
# uploads and local mode); absent or empty means the public one.
SERVER_URL_KEY = "api_url"


def normalize_server_url(value: str) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash or ``/bot`` ("" means the default)."""
    value = (value or "").strip().rstrip("/")
    if value.endswith("/bot"):
        value = value[: -len("/bot")]
    return "" if value == DEFAULT_SERVER_URL else value


def server_transport(server_url: str) -> dict[str, str]:
    """The ``base_url``/``base_file_url`` pair python-telegram-bot wants for a Bot API server."""
    root = normalize_server_url(server_url) or DEFAULT_SERVER_URL
    return {"base_url": f"{root}/bot", "base_file_url": f"{root}/file/bot"}


class _KnownIdentityBot(Bot):
    """A Bot that starts with the identity saved at connect, so no ``getMe`` precedes every call.

    ``Bot.initialize`` always calls ``getMe``; the token is still checked by the call that
    follows (a revoked token answers 401 there and maps to an auth error).
    """

    def __init__(self, *args: Any, identity: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ainf_identity = identity

    async def initialize(self) -> None:
        """Initialise the HTTP clients and take the cached identity instead of asking getMe."""
        if not self._requests_initialized:
            await asyncio.gather(self._request[0].initialize(), self._request[1].initialize())
            self._requests_initialized = True
        self._bot_user = self._ainf_identity
        self._bot_initialized = True
ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER})


def _default_request() -> BaseRequest:
    # Explicit timeouts: python-telegram-bot's 5 s read default is too tight for a 50 MB video.
    return HTTPXRequest(
        connection_pool_size=4,
        connect_timeout=10.0,
        read_timeout=30.0,
        write_timeout=30.0,
        media_write_timeout=120.0,
        pool_timeout=10.0,
    )


def _mask(text: str, token: str) -> str:
    """The text with the bot token (and anything else that looks secret) masked."""
    if token:
        text = text.replace(token, "***")
        _, _, secret = token.partition(":")
        if secret:
            text = text.replace(secret, "***")
    return redact(text)


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form becomes a timedelta later
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def map_error(exc: TelegramError, *, token: str = "") -> PlatformError:
    """The one PlatformError kind a python-telegram-bot exception stands for."""
    message = _mask(exc.message, token)
    if isinstance(exc, InvalidToken):
        return PlatformAuthError("Telegram rejected the bot token.", platform_message=message, status=401)
    if isinstance(exc, Forbidden):
        return PlatformAuthError(
            "The bot may not post to this chat (removed, blocked or not an admin).",
            platform_message=message,
            status=403,
        )
    if isinstance(exc, ChatMigrated):
        return PlatformAuthError(
            f"The group became a supergroup with id {exc.new_chat_id}; reconnect the account to that chat.",
            platform_message=message,
            status=400,
        )
    if isinstance(exc, RetryAfter):
        seconds = _retry_seconds(exc)
        return PlatformTransientError(
            f"Telegram flood control: retry in {seconds:g} s.",
            retry_after=seconds,
            platform_message=message,
            status=429,
        )
    if isinstance(exc, BadRequest):  # BadRequest subclasses NetworkError: test it first
        return PlatformPermanentError("Telegram refused the request.", platform_message=message, status=400)
    if isinstance(exc, Conflict):
        return PlatformPermanentError(
            "The bot has a webhook set (or another poller), so its updates cannot be read here.",
            platform_message=message,
            status=409,
        )
    if isinstance(exc, NetworkError) and ("Request Entity Too Large" in exc.message or "(413)" in exc.message):
        return PlatformPermanentError("Telegram refused the file as too large.", platform_message=message, status=413)
    if isinstance(exc, TimedOut):
        return PlatformTransientError("Telegram did not answer in time.", platform_message=message)
    if isinstance(exc, NetworkError):
        return PlatformTransientError("Network error talking to Telegram.", platform_message=message)
    # Anything else (e.g. an unparsable answer) is a glitch on the way, worth one more try later.
    return PlatformTransientError("Unexpected answer from Telegram.", platform_message=message)


def _split_post_id(platform_post_id: str) -> tuple[str, list[int]]:
    chat_id, sep, ids = platform_post_id.rpartition(":")
    try:
        message_ids = [int(part) for part in ids.split(",") if part]
    except ValueError:
        message_ids = []
    if not sep or not chat_id or not message_ids:
        raise PlatformPermanentError(f"Not a Telegram post id: {platform_post_id!r}")
    return chat_id, message_ids


def message_url(chat_id: int | str, username: str | None, message_id: int) -> str:
    """The public link of a message: t.me/<username>/<id>, t.me/c/<id>/<id> for private supergroups/channels."""
    if username:
        return f"https://t.me/{username}/{message_id}"
    text = str(chat_id)
    if text.startswith("-100"):
        return f"https://t.me/c/{text[4:]}/{message_id}"
    return ""  # basic groups have no message links


@dataclass(frozen=True)
class TelegramChat:
    """A chat the bot has seen in its updates (for the "pick a chat" step of connecting)."""

    chat_id: str
    type: str
    title: str
    username: str = ""
    bot_status: str = ""  # the bot's membership status there when known (administrator, member ...)


def _load_media(media: Sequence[MediaItem]) -> list[bytes]:
    """Read the files, refusing what Telegram would refuse (runs in a worker thread)."""
    blobs: list[bytes] = []
    for item in media:
        limit = FileSizeLimit.PHOTOSIZE_UPLOAD if item.kind is MediaKind.image else FileSizeLimit.FILESIZE_UPLOAD
        try:
            size = item.path.stat().st_size
            if size > limit:
                raise PlatformPermanentError(
                    f"{item.path.name} is {size} bytes; Telegram bots may upload at most {int(limit)} bytes for a "
                    f"{item.kind.value}."
                )
            blobs.append(item.path.read_bytes())
        except OSError as exc:
            raise PlatformPermanentError(f"Cannot read media file {item.path.name}: {exc.strerror}") from exc
    return blobs


class TelegramAdapter(PlatformAdapter):
    """A channel or group administered by a bot (Bot API)."""

    name = "telegram"
    display_name = "Telegram"
    server_url_key = SERVER_URL_KEY
    capabilities = Capabilities(
        # core.telegram.org/bots/api#sendmessage (1-4096), #sendphoto caption 0-1024 (see notes).
        max_text_chars=TEXT.max_length,
        text_counting=TEXT.counting,
        media_kinds=frozenset({MediaKind.image, MediaKind.video, MediaKind.gif}),
        max_media=int(MediaGroupLimit.MAX_MEDIA_LENGTH),  # sendMediaGroup: 2-10 items
        max_image_bytes=int(FileSizeLimit.PHOTOSIZE_UPLOAD),  # sendPhoto: 10 MB
        max_video_bytes=int(FileSizeLimit.FILESIZE_UPLOAD),  # multipart uploads: 50 MB
        supports_alt_text=False,
        supports_first_comment=False,
        supports_ai_label=False,
        supports_delete=True,
        connect_method="token",
        rate_limits=(
            # core.telegram.org/bots/faq "My bot is hitting limits": 1/s per chat, 20/min per group, 30/s overall.
            RateLimit("chat", int(FloodLimit.MESSAGES_PER_SECOND_PER_CHAT), 1),
            RateLimit("post", int(FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP), 60),
            RateLimit("api", int(FloodLimit.MESSAGES_PER_SECOND), 1),
        ),
        notes=(
            "Captions of photo/video posts are limited to 1024 characters (text-only posts: 4096). "
            "A GIF cannot be part of a media group. No AI-content label exists in the Bot API. "
            "No idempotency key and no way to read a channel's history: a post whose outcome is unknown "
            "cannot be found by its marker, so reconciliation returns None unless the message id is known. "
            "Bots can delete their messages only within 48 hours in some chats."
        ),
    )

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def _token(self) -> str:
        token = self.credentials.access_token
        if token is None or not token.get_secret_value():
            raise PlatformAuthError("No Telegram bot token is stored for this account.")
        return token.get_secret_value()

    @property
    def _chat_id(self) -> str:
        chat_id = self.credentials.extra.get("chat_id", "").strip()
        if not chat_id:
            raise PlatformPermanentError("Pick the channel or group this bot should post to (chat id missing).")
        return chat_id

    @asynccontextmanager
    async def _bot(self, op: str) -> AsyncIterator[Bot]:
        """The choke point: one initialised Bot per operation, every failure mapped and masked."""
        token = self._token
        transport = dict(self.transport)
        if "base_url" not in transport and self.credentials.extra.get(SERVER_URL_KEY):
            transport.update(server_transport(self.credentials.extra[SERVER_URL_KEY]))
        if op != "connect":  # connect checks the token and refreshes the identity with getMe
            identity = self._cached_identity()
            if identity is not None:
                transport["identity"] = identity
        async with _bot_session(token, op=op, transport=transport) as bot:
            yield bot

    def _cached_identity(self) -> User | None:
        extra = self.credentials.extra
        bot_id = extra.get("bot_id", "")
        if not bot_id.isdigit():
            return None
        username = extra.get("bot_username", "")
        return User(id=int(bot_id), first_name=username or "bot", is_bot=True, username=username or None)

    # -- contract -----------------------------------------------------------------------------
    async def connect(self) -> AccountInfo:
        """Check the token (getMe) and that the bot administers the chat; returns the chat's identity."""
        chat_id = self._chat_id
        async with self._bot("connect") as bot:
            me = bot.bot  # initialize() already called getMe
            chat = await bot.get_chat(chat_id)
            member = await bot.get_chat_member(chat.id, me.id)
        if member.status not in ADMIN_STATUSES:
            raise PlatformAuthError(
                f"@{me.username} is not an administrator of {chat.title or chat.id}; promote it and reconnect.",
                platform_message=f"status={member.status}",
            )
        if chat.type == ChatType.CHANNEL and member.status != ChatMemberStatus.OWNER:
            if not getattr(member, "can_post_messages", False):
                raise PlatformAuthError(
                    f"@{me.username} is an administrator of {chat.title} but lacks the 'Post messages' right.",
                )
        credentials = Credentials(
            access_token=self.credentials.access_token,
            extra={
                **self.credentials.extra,
                "chat_id": str(chat.id),
                "chat_type": str(chat.type),
                "chat_title": chat.title or "",
                "chat_username": chat.username or "",
                "bot_id": str(me.id),
                "bot_username": me.username or "",
            },
            secret_extra=dict(self.credentials.secret_extra),
        )
        return AccountInfo(
            platform_account_id=str(chat.id),
            handle=f"@{chat.username}" if chat.username else (chat.title or str(chat.id)),
            display_name=chat.title or chat.full_name or "",
            profile_url=f"https://t.me/{chat.username}" if chat.username else "",
            is_bot_flagged=None,  # a channel has no bot flag; the posting bot always is one
            credentials=credentials,
        )

    async def publish(self, post: PostRequest) -> PublishResult:
        """Send text, one photo/video/GIF, or a media group of 2-10 photos/videos with a caption."""
        chat_id = self._chat_id
        self._validate(post)
        blobs = await asyncio.to_thread(_load_media, post.media)
        async with self._bot("publish") as bot:
            messages = await self._send(bot, chat_id, post, blobs)
        first = messages[0]
        ids = ",".join(str(m.message_id) for m in messages)
        return PublishResult(
            state=PublishState.published,
            platform_post_id=f"{first.chat.id}:{ids}",
            url=message_url(first.chat.id, first.chat.username, first.message_id),
            raw={
                "chat_id": first.chat.id,
                "message_ids": [m.message_id for m in messages],
                "media_group_id": first.media_group_id,
                "date": first.date.isoformat() if first.date else None,
            },
        )

    async def find_published(self, post: PostRequest, *, since: datetime) -> PublishResult | None:
        """Only a known message id can be confirmed: the Bot API cannot search a channel (see module docs)."""
        known = str(post.options.get("platform_post_id") or "")
        if not known:
            return None
        chat_id, message_ids = _split_post_id(known)
        username = self.credentials.extra.get("chat_username", "")
        return PublishResult(
            state=PublishState.published,
            platform_post_id=known,
            url=message_url(chat_id, username, message_ids[0]),
            detail="message id was already known; the Bot API cannot read it back",
        )

    async def delete(self, platform_post_id: str) -> None:
        """Delete the message (or every message of a media group)."""
        chat_id, message_ids = _split_post_id(platform_post_id)
        async with self._bot("delete") as bot:
            if len(message_ids) == 1:
                await bot.delete_message(chat_id=chat_id, message_id=message_ids[0])
            else:
                await bot.delete_messages(chat_id=chat_id, message_ids=message_ids)

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _validate(post: PostRequest) -> None:
        """Refuse what Telegram would refuse, before any upload."""
        media = post.media
        if not post.text.strip() and not media:
            raise PlatformPermanentError("A Telegram post needs text or media.")
        rules = CAPTION if media else TEXT  # Telegram counts UTF-16 code units
        if rules.length(post.text) > rules.max_length:
            raise PlatformPermanentError(
                f"{'Caption' if media else 'Text'} is {rules.length(post.text)} {rules.unit}; Telegram allows "
                f"{rules.max_length}{' with media' if media else ''}."
            )
        if len(media) > MediaGroupLimit.MAX_MEDIA_LENGTH:
            raise PlatformPermanentError(
                f"{len(media)} files; a Telegram media group holds at most {int(MediaGroupLimit.MAX_MEDIA_LENGTH)}."
            )
        if len(media) > 1 and any(item.kind is MediaKind.gif for item in media):
            raise PlatformPermanentError("Telegram cannot put a GIF (animation) into a media group; post it alone.")

    @staticmethod
    async def _send(bot: Bot, chat_id: str, post: PostRequest, blobs: list[bytes]) -> list[Message]:
        common: dict[str, Any] = {"chat_id": chat_id, "protect_content": False}
        if not post.media:
            return [await bot.send_message(text=post.text, **common)]
        caption = post.text or None
        if len(post.media) == 1:
            item, data = post.media[0], blobs[0]
            if item.kind is MediaKind.image:
                return [await bot.send_photo(photo=data, filename=item.path.name, caption=caption, **common)]
            if item.kind is MediaKind.gif:
                return [await bot.send_animation(animation=data, filename=item.path.name, caption=caption, **common)]
            return [
                await bot.send_video(
                    video=data,
                    filename=item.path.name,
                    caption=caption,
                    duration=int(item.duration_seconds) if item.duration_seconds else None,
                    width=item.width,
                    height=item.height,
                    supports_streaming=True,
                    **common,
                )
            ]
        group: list[InputMediaPhoto | InputMediaVideo] = []
        for item, data in zip(post.media, blobs, strict=True):
            if item.kind is MediaKind.image:
                group.append(InputMediaPhoto(media=data, filename=item.path.name))
            else:
                group.append(
                    InputMediaVideo(
                        media=data,
                        filename=item.path.name,
                        width=item.width,
                        height=item.height,
                        duration=int(item.duration_seconds) if item.duration_seconds else None,
                        supports_streaming=True,
                    )
                )
        return list(await bot.send_media_group(media=group, caption=caption, **common))


@asynccontextmanager
async def _bot_session(token: str, *, op: str, transport: dict[str, Any]) -> AsyncIterator[Bot]:
    """An initialised Bot pointed at ``transport['base_url']`` (tests) or api.telegram.org."""
    factory: Callable[[], BaseRequest] = transport.get("request_factory", _default_request)
    options: dict[str, Any] = {
        "base_url": transport.get("base_url", API_BASE_URL),
        "base_file_url": transport.get("base_file_url", FILE_BASE_URL),
        "request": factory(),
        "get_updates_request": factory(),
    }
    identity = transport.get("identity")
    bot = _KnownIdentityBot(token, identity=identity, **options) if identity is not None else Bot(token, **options)
    log.debug("telegram %s", op)
    try:
        async with bot:
            yield bot
    except TelegramError as exc:
        _raise_mapped(exc, token, op)


def _raise_mapped(exc: TelegramError, token: str, op: str) -> NoReturn:
    mapped = map_error(exc, token=token)
    log.info("telegram %s failed: %s (%s)", op, type(mapped).__name__, mapped.platform_message)
    raise mapped from None  # the original may quote the token


async def discover_chats(token: str, *, server_url: str = "", **transport: Any) -> list[TelegramChat]:
    """Channels and groups the bot saw in its pending updates (first-seen order, latest membership state).

    Calls ``getUpdates`` without an offset, so nothing is acknowledged or consumed, and without
    ``allowed_updates``, so the bot's update subscription is left as it was. A bot with a webhook
    cannot use getUpdates (Telegram answers 409); that maps to PlatformPermanentError.
    """
    chats: dict[str, TelegramChat] = {}
    if server_url and "base_url" not in transport:
        transport = {**transport, **server_transport(server_url)}
    async with _bot_session(token, op="discover_chats", transport=transport) as bot:
        updates = await bot.get_updates(timeout=0, limit=100)
    for update in updates:
        if update.my_chat_member is not None:
            change = update.my_chat_member
            chat, status = change.chat, str(change.new_chat_member.status)
            if status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
                chats.pop(str(chat.id), None)  # the bot was removed: not a candidate any more
                continue
        elif update.channel_post is not None:
            chat, status = update.channel_post.chat, chats.get(str(update.channel_post.chat.id), _NO_CHAT).bot_status
        elif update.message is not None and update.message.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
            chat, status = update.message.chat, chats.get(str(update.message.chat.id), _NO_CHAT).bot_status
        else:
            continue
        chats[str(chat.id)] = TelegramChat(
            chat_id=str(chat.id),
            type=str(chat.type),
            title=chat.title or chat.full_name or str(chat.id),
            username=chat.username or "",
            bot_status=status,
        )
    return list(chats.values())


_NO_CHAT = TelegramChat(chat_id="", type="", title="")
