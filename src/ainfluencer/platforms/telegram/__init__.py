"""Telegram (Bot API): connected with a bot token and a chat picked from the bot's updates."""

from ainfluencer.platforms.spec import FormField, PlatformSpec
from ainfluencer.platforms.telegram.rules import TEXT_RULES, VIDEO

PLATFORM = PlatformSpec(
    name="telegram",
    display_name="Telegram",
    adapter="ainfluencer.platforms.telegram.adapter:TelegramAdapter",
    text_rules=TEXT_RULES,
    media_text_kind="caption",
    writer_kinds={"telegram_post": "text"},
    video=VIDEO,
    connect_form=(
        FormField("token", "Bot token", "password", placeholder="123456:ABC…", help="from @BotFather"),
        FormField("chat_id", "Chat", placeholder="@channel or -100…", help="press Find chats to pick one"),
    ),
    best_times=((0, 9), (2, 19), (4, 18), (1, 12), (6, 11)),
    helpers="ainfluencer.platforms.telegram.adapter",  # discover_chats
)
