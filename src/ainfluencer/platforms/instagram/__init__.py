"""Instagram (Graph API, professional accounts linked to a Page)."""

from ainfluencer.platforms.facebook.oauth import graph_endpoints
from ainfluencer.platforms.instagram.rules import TEXT_RULES, VIDEO
from ainfluencer.platforms.spec import AppGuide, OAuthSpec, PlatformSpec

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
        guide=AppGuide(
            app_name="Meta app", portal="https://developers.facebook.com/apps/",
            steps=(
                "At developers.facebook.com create an app of type \"Business\" (one Meta app serves both "
                "Facebook Pages and Instagram).",
                "Add the \"Facebook Login for Business\" product and, under its settings, add every callback URL "
                "below to \"Valid OAuth Redirect URIs\".",
                "Copy the App ID and App Secret from App settings → Basic into the fields here.",
                "While the app is in Development mode only people with a role on the app can connect; switch it to "
                "Live after the review below.",
            ),
            review="Meta App Review with Business Verification: request Advanced Access to "
                   "instagram_content_publish, instagram_basic and the Page permissions. The Instagram account "
                   "must be a professional (Business or Creator) account linked to a Facebook Page, and Instagram "
                   "fetches media from a public URL (see Public media below).",
            id_label="App ID", secret_label="App secret",  # noqa: S106 - a field label
        ),
    ),
    best_times=((1, 11), (2, 11), (3, 14), (4, 10), (0, 19)),
)
