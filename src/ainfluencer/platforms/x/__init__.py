"""X (API v2): one package holds the adapter, text rules, OAuth data and posting times."""

from ainfluencer.platforms.spec import Endpoint, OAuthSpec, PlatformSpec
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
    ),
    best_times=((1, 9), (2, 10), (3, 9), (0, 12), (4, 8)),
)
