"""Instagram (Graph API, professional accounts linked to a Page)."""

from ainfluencer.platforms.facebook.oauth import graph_endpoints
from ainfluencer.platforms.instagram.rules import TEXT_RULES, VIDEO
from ainfluencer.platforms.spec import OAuthSpec, PlatformSpec

_AUTHORIZE, _TOKEN = graph_endpoints()

PLATFORM = PlatformSpec(
    name="instagram",
    display_name="Instagram",
    adapter="ainfluencer.platforms.instagram.adapter:InstagramAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"caption": "caption"},
    video=VIDEO,
    oauth=OAuthSpec(
        authorize=_AUTHORIZE, token=_TOKEN,
        scopes=("instagram_basic", "instagram_content_publish", "instagram_manage_comments", "pages_show_list",
                "pages_read_engagement", "business_management"),
        settings=("facebook_app_id", "facebook_app_secret"),
        pkce=False, scope_separator=",", exchange_method="GET", store_client=False,
        hooks="ainfluencer.platforms.instagram.oauth", choice_noun="Instagram account",
    ),
    best_times=((1, 11), (2, 11), (3, 14), (4, 10), (0, 19)),
)
