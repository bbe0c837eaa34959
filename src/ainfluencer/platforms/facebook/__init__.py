"""Facebook Pages (Graph API)."""

from ainfluencer.platforms.facebook.oauth import graph_endpoints
from ainfluencer.platforms.facebook.rules import TEXT_RULES, VIDEO
from ainfluencer.platforms.spec import AppGuide, OAuthSpec, PlatformSpec

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
            review="Meta App Review with Business Verification: request Advanced Access to pages_manage_posts, "
                   "pages_read_engagement and pages_show_list (a screencast of the connect flow is asked for). "
                   "Until then only app admins, developers and testers can connect their Pages.",
            id_label="App ID", secret_label="App secret",  # noqa: S106 - a field label
        ),
    ),
    best_times=((1, 9), (2, 13), (3, 9), (4, 10), (0, 12)),
)
