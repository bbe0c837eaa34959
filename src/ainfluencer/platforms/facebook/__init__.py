"""Facebook Pages (Graph API)."""

from ainfluencer.platforms.facebook.oauth import graph_endpoints
from ainfluencer.platforms.facebook.rules import TEXT_RULES, VIDEO
from ainfluencer.platforms.spec import OAuthSpec, PlatformSpec

_AUTHORIZE, _TOKEN = graph_endpoints()

PLATFORM = PlatformSpec(
    name="facebook",
    display_name="Facebook Page",
    adapter="ainfluencer.platforms.facebook.adapter:FacebookPageAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"caption": "post"},
    video=VIDEO,
    oauth=OAuthSpec(
        authorize=_AUTHORIZE, token=_TOKEN,
        scopes=("pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement"),
        settings=("facebook_app_id", "facebook_app_secret"),
        pkce=False, scope_separator=",", exchange_method="GET", store_client=False,
        hooks="ainfluencer.platforms.facebook.oauth",
    ),
    best_times=((1, 9), (2, 13), (3, 9), (4, 10), (0, 12)),
)
