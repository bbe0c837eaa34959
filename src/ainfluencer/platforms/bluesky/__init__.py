"""Bluesky (AT Protocol): handle plus an app password."""

from ainfluencer.platforms.bluesky.rules import TEXT_RULES, VIDEO
from ainfluencer.platforms.spec import FormField, PlatformSpec

PLATFORM = PlatformSpec(
    name="bluesky",
    display_name="Bluesky",
    adapter="ainfluencer.platforms.bluesky.adapter:BlueskyAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"tweet": "post"},
    video=VIDEO,
    connect_form=(
        FormField("handle", "Handle", placeholder="name.bsky.social"),
        FormField("app_password", "App password", "password", help="Settings → Privacy and security → App passwords"),
        FormField("service", "PDS URL", "url", required=False, placeholder="https://bsky.social"),
    ),
    best_times=((1, 10), (2, 13), (3, 10), (0, 16), (4, 12)),
    reconnect_in_form=True,
)
