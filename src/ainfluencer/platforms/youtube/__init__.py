"""YouTube (Data API v3, Google OAuth)."""

from ainfluencer.platforms.spec import AppGuide, Endpoint, OAuthSpec, PlatformSpec
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
        guide=AppGuide(
            app_name="Google Cloud OAuth client", portal="https://console.cloud.google.com/apis/credentials",
            steps=(
                "In Google Cloud Console create a project and enable the \"YouTube Data API v3\".",
                "Configure the OAuth consent screen (External) and add the scopes listed below.",
                "Create credentials → OAuth client ID → type \"Web application\" and add the callback URL below "
                "under \"Authorized redirect URIs\".",
                "Copy the Client ID and Client secret into the fields here.",
            ),
            review="Google's OAuth verification for the sensitive YouTube scopes before the consent screen may be "
                   "published; until then only listed test users can connect and tokens expire after 7 days. "
                   "Videos uploaded by unaudited API projects stay private until the project passes YouTube's API "
                   "compliance audit.",
        ),
        authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
        no_refresh_message=(
            "Google sent no refresh token, so uploads would stop within an hour. Remove AInfluencer's access at "
            "myaccount.google.com/permissions, then connect again."),
    ),
    best_times=((4, 15), (5, 11), (3, 16), (6, 11), (2, 16)),
)
