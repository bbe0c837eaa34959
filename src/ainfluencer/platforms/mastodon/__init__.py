"""Mastodon: OAuth on the person's instance, with an app registered there at connect time."""

from ainfluencer.platforms.mastodon.rules import TEXT_RULES
from ainfluencer.platforms.spec import OAuthSpec, PlatformSpec

PLATFORM = PlatformSpec(
    name="mastodon",
    display_name="Mastodon",
    adapter="ainfluencer.platforms.mastodon.adapter:MastodonAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"tweet": "post"},
    oauth=OAuthSpec(
        authorize=None, token=None,  # per instance: the app is registered there (hooks)
        scopes=("read", "write"), pkce=False, hooks="ainfluencer.platforms.mastodon.oauth", asks_instance=True,
    ),
    best_times=((1, 10), (2, 14), (3, 10), (0, 15), (5, 11)),
)
