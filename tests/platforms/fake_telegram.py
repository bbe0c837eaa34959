"""A local Telegram Bot API (core.telegram.org/bots/api) for python-telegram-bot to talk to.

Speaks ``POST /bot<token>/<method>`` with urlencoded or multipart parameters and answers
``{"ok": true, "result": ...}`` / ``{"ok": false, "error_code": ..., "description": ...}``.
State: one bot, chats with the bot's membership, sent messages, pending updates.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from _servers_a import FakeServer, Received, Reply

TOKEN = "123456:TEST-token-abcdefghijklmnopqrstuv"
BOT_ID = 123456
CHANNEL_ID = -1001234567890
GROUP_ID = -1009876543210


def error(code: int, description: str, **parameters: Any) -> Reply:
    """A Bot API error answer."""
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


def _admin(can_post: bool = True) -> dict[str, Any]:
    rights = {
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": False,
        "can_restrict_members": False,
        "can_promote_members": False,
        "can_change_info": False,
        "can_invite_users": False,
        "can_post_stories": False,
        "can_edit_stories": False,
        "can_delete_stories": False,
        "can_post_messages": can_post,
        "can_edit_messages": True,
    }
    return {"status": "administrator", **rights}


class FakeTelegram(FakeServer):
    """The Bot API for one bot; ``chats`` maps chat id -> chat dict + the bot's member record."""

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__(self.handle)
        self.token = token
        self.bot = {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Studio Bot",
            "username": "studio_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.chats: dict[int, dict[str, Any]] = {
            CHANNEL_ID: {"id": CHANNEL_ID, "type": "channel", "title": "Nova Daily", "username": "nova_daily"},
            GROUP_ID: {"id": GROUP_ID, "type": "supergroup", "title": "Nova Fans"},
        }
        self.members: dict[int, dict[str, Any]] = {CHANNEL_ID: _admin(), GROUP_ID: {"status": "member"}}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []
        self._ids = itertools.count(100)
        self._file_ids = itertools.count(1)
        self._groups = itertools.count(5000)

    @property
    def base_url(self) -> str:
        """What ``Bot(base_url=...)`` gets (the token is appended by the SDK)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What ``Bot(base_file_url=...)`` gets."""
        return f"{self.url}/file/bot"

    def calls(self, method: str) -> list[Received]:
        """Logged calls of one Bot API method."""
        return self.requests(rf"/{method}$")

    # -- dispatch -----------------------------------------------------------------------------
    def handle(self, req: Received) -> Reply:
        prefix, _, method = req.path.rpartition("/")
        if prefix != f"/bot{self.token}":
            return error(401, "Unauthorized")
        params = {k: v[-1] for k, v in {**req.query, **req.form}.items()}
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return error(404, "Not Found")
        result = handler(params, req)
        if isinstance(result, Reply):
            return result
        return Reply(200, {"ok": True, "result": result})

    def _chat(self, params: dict[str, str]) -> dict[str, Any] | Reply:
        raw = params.get("chat_id", "")
        for chat in self.chats.values():
            if raw in (str(chat["id"]), f"@{chat.get('username', '')}"):
                return chat
        return error(400, "Bad Request: chat not found")

    def _message(self, chat: dict[str, Any], **content: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat, **content}
        if chat["type"] == "channel":
            message["sender_chat"] = chat
        else:
            message["from"] = {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")}
        self.messages[(chat["id"], message_id)] = message
        return message

    def _file(self, kind: str) -> dict[str, Any]:
        n = next(self._file_ids)
        file = {"file_id": f"{kind}-{n}", "file_unique_id": f"u{kind}{n}", "file_size": 1000}
        if kind in ("video", "animation"):
            file.update(width=640, height=360, duration=3)
        return file

    def _can_post(self, chat: dict[str, Any]) -> Reply | None:
        member = self.members.get(chat["id"], {"status": "left"})
        if member["status"] in ("left", "kicked"):
            return error(403, "Forbidden: bot is not a member of the channel chat")
        if chat["type"] == "channel" and not member.get("can_post_messages", member["status"] == "creator"):
            return error(400, "Bad Request: need administrator rights in the channel chat")
        return None

    # -- methods --------------------------------------------------------------------------------
    def m_getMe(self, params: dict[str, str], req: Received) -> Any:
        return self.bot

    def m_getChat(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def m_getChatMember(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        member = self.members.get(chat["id"], {"status": "left"})
        return {"user": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")}, **member}

    def m_getUpdates(self, params: dict[str, str], req: Received) -> Any:
        offset = int(params.get("offset", "0") or 0)
        if offset:  # acknowledging: drop everything below the offset, as Telegram does
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        return self.updates

    def m_sendMessage(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        if denied := self._can_post(chat):
            return denied
        text = params.get("text", "")
        if not text.strip():
            return error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return error(400, "Bad Request: message is too long")
        return self._message(chat, text=text)

    def _send_file(self, params: dict[str, str], req: Received, kind: str) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        if denied := self._can_post(chat):
            return denied
        upload = req.files.get(kind)
        if upload is None:
            return error(400, f"Bad Request: there is no {kind} in the request")
        caption = params.get("caption")
        if caption and len(caption) > 1024:
            return error(400, "Bad Request: message caption is too long")
        if kind == "photo" and len(upload.data) > 10_000_000:
            return error(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        content: dict[str, Any] = (
            {
                "photo": [
                    self._file("photo") | {"width": 90, "height": 90},
                    self._file("photo") | {"width": 800, "height": 800},
                ]
            }
            if kind == "photo"
            else {kind: self._file(kind)}
        )
        if caption:
            content["caption"] = caption
        return self._message(chat, **content)

    def m_sendPhoto(self, params: dict[str, str], req: Received) -> Any:
        return self._send_file(params, req, "photo")

    def m_sendVideo(self, params: dict[str, str], req: Received) -> Any:
        return self._send_file(params, req, "video")

    def m_sendAnimation(self, params: dict[str, str], req: Received) -> Any:
        return self._send_file(params, req, "animation")

    def m_sendMediaGroup(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        if denied := self._can_post(chat):
            return denied
        media = json.loads(params.get("media", "[]"))
        if not 2 <= len(media) <= 10:
            return error(400, "Bad Request: wrong number of media in the media group")
        group_id = str(next(self._groups))
        messages = []
        for item in media:
            ref = str(item.get("media", ""))
            if not ref.startswith("attach://") or ref[len("attach://") :] not in req.files:
                return error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            kind = item["type"]
            if kind not in ("photo", "video"):
                return error(400, "Bad Request: wrong media type in the media group")
            content: dict[str, Any] = {"media_group_id": group_id}
            content |= (
                {"photo": [self._file("photo") | {"width": 800, "height": 800}]}
                if kind == "photo"
                else {"video": self._file("video")}
            )
            if item.get("caption"):
                content["caption"] = item["caption"]
            messages.append(self._message(chat, **content))
        return messages

    def m_deleteMessage(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        key = (chat["id"], int(params.get("message_id", "0")))
        if key not in self.messages:
            return error(400, "Bad Request: message to delete not found")
        del self.messages[key]
        return True

    def m_deleteMessages(self, params: dict[str, str], req: Received) -> Any:
        chat = self._chat(params)
        if isinstance(chat, Reply):
            return chat
        for message_id in json.loads(params.get("message_ids", "[]")):
            self.messages.pop((chat["id"], int(message_id)), None)
        return True
