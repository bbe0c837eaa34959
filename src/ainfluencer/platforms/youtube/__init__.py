"""YouTube (Data API v3, Google OAuth)."""

from ainfluencer.platforms.spec import Endpoint, OAuthSpec, PlatformSpec
from ainfluencer.platforms.youtube.rules import TEXT_RULES, VIDEO

SCOPES = (
    "https://www.googleapis.com/auth/youtube.upload",
    "https://www.googleapis.com/auth/youtube.force-ssl",  # list, delete, comments
)

PLATFORM = PlatformSpec(
    name="youtube",
    display_name="YouTube",
    adapter="ainfluencer.platforms.youtube.adapter:YouTubeAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"youtube_description": "description", "youtube_title": "title"},
    video=VIDEO,
    oauth=OAuthSpec(
        authorize=Endpoint("google_authorize", "https://accounts.google.com/o/oauth2/v2/auth"),
        token=Endpoint("google_token", "https://oauth2.googleapis.com/token"),
        scopes=SCOPES,
        settings=("google_client_id", "google_client_secret"),
        authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
        no_refresh_message=(
            "Google sent no refresh token, so uploads would stop within an hour. Remove AInfluencer's access at "
            "myaccount.google.com/permissions, then connect again."),
    ),
    best_times=((4, 15), (5, 11), (3, 16), (6, 11), (2, 16)),
)
