"""X (API v2): one package holds the adapter, text rules, OAuth data and posting times."""

from ainfluencer.platforms.spec import AppGuide, Endpoint, OAuthSpec, PlatformSpec
from ainfluencer.platforms.x.rules import TEXT_RULES, VIDEO

PLATFORM = PlatformSpec(
    name="x",
    display_name="X",
    adapter="ainfluencer.platforms.x.adapter:XAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"tweet": "post", "thread": "thread"},
    video=VIDEO,
    oauth=OAuthSpec(
        authorize=Endpoint("x_authorize", "https://x.com/i/oauth2/authorize"),
        token=Endpoint("x_api", "https://api.x.com", "/2/oauth2/token"),
        scopes=("tweet.read", "tweet.write", "users.read", "media.write", "offline.access"),
        settings=("x_client_id", "x_client_secret"),
        secret_required=False,  # public (native) clients use PKCE without a secret
        client_auth="client_secret_basic",
        guide=AppGuide(
            app_name="X app", portal="https://developer.x.com/en/portal/dashboard",
            steps=(
                "Sign in to the X developer portal and create a Project with an App inside it.",
                "In the app's \"User authentication settings\" turn on OAuth 2.0, choose type \"Web App\" "
                "(confidential client) and app permissions \"Read and write\".",
                "Add the callback URL below exactly as shown, and your website URL.",
                "Copy the OAuth 2.0 Client ID and Client Secret (not the API key) into the fields here.",
            ),
            review="No review, but posting needs an API plan that includes writes: the Free tier allows a small "
                   "monthly number of posts per app; more needs a paid tier. Media upload needs the media.write "
                   "scope, which new apps get with OAuth 2.0.",
        ),
    ),
    best_times=((1, 9), (2, 10), (3, 9), (0, 12), (4, 8)),
)
