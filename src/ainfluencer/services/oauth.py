"""OAuth redirect flows that connect accounts: X (PKCE), Facebook Login (Pages, Instagram), Google (YouTube), Mastodon.

How one flow runs
1. :func:`start` makes a random ``state`` (single-use, :data:`STATE_TTL`), seals what the callback
   needs (user, character, platform, PKCE verifier, redirect URI, the Mastodon app) server-side and
   returns the network's authorisation URL to send the browser to.
2. The network sends the browser back to ``/accounts/oauth/{platform}/callback?code=...&state=...``.
   :func:`finish` consumes the state (unknown, already used, expired, started by another user or for
   another network: refused), trades the code for tokens and hands them to the normal connect path
   (``accounts.connect_account``: live check, duplicates refused; ``reconnect_account`` when the
   flow was started from an existing account).
3. Facebook Login may manage several Pages: then the long-lived user token is parked as a *pending
   choice* and :func:`choose` completes the connect with the Page the person picked (for Instagram:
   the Pages with a linked ``instagram_business_account``).

Where things live: states and pending choices are rows of ``stored_secrets`` (owner kinds
``oauth_state`` / ``oauth_pending``, owner id = the user, name = SHA-256 of the state), sealed with
AES-256-GCM like every other credential, so the PKCE verifier and tokens never sit in plain text.
A Mastodon app registered on an instance is cached as ``mastodon_app`` and reused.

Client ids and secrets come from settings (``x_client_id`` ...); endpoints default to each network's
production URLs and may be overridden per key through ``settings.oauth_endpoints`` (tests point them
at local fakes). The helpers each adapter module exports (``x.authorization_url``/``exchange_code``,
``mastodon.register_app``/``auth_url``/``exchange_code``) are used where they exist; Facebook and Google
token exchanges are plain httpx calls through :func:`_http` (timeout, error mapping, no token logged).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ainfluencer.config import Settings
from ainfluencer.db.models import StoredSecret, User, utcnow
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.errors import InvalidInput
from ainfluencer.platforms.base import (
    Credentials,
    PlatformAuthError,
    PlatformError,
    PlatformTransientError,
)
from ainfluencer.platforms.registry import platform_names
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts

log = logging.getLogger(__name__)

STATE_OWNER = "oauth_state"
PENDING_OWNER = "oauth_pending"
APP_OWNER = "mastodon_app"
STATE_TTL = timedelta(minutes=10)
PENDING_TTL = timedelta(minutes=15)
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_PAGES = 10  # pages of /me/accounts followed
MAX_IG_LOOKUPS = 25  # Pages asked for their linked Instagram account when the list does not say

OAUTH_PLATFORMS = ("x", "facebook", "instagram", "youtube", "mastodon")
FORM_PLATFORMS = ("telegram", "bluesky")

DEFAULT_ENDPOINTS: dict[str, str] = {
    "x_authorize": "https://x.com/i/oauth2/authorize",
    "x_api": "",  # empty: api.x.com (the token endpoint lives on the API host)
    "facebook_dialog": "https://www.facebook.com",
    "graph": "https://graph.facebook.com",
    "google_authorize": "https://accounts.google.com/o/oauth2/v2/auth",
    "google_token": "https://oauth2.googleapis.com/token",  # noqa: S105 - an endpoint, not a secret
}
FACEBOOK_SCOPES = ("pages_show_list", "pages_read_engagement", "pages_manage_posts", "pages_manage_engagement")
INSTAGRAM_SCOPES = ("instagram_basic", "instagram_content_publish", "instagram_manage_comments", "pages_show_list",
                    "pages_read_engagement", "business_management")
SETTING_NAMES = {
    "x": ("x_client_id", "x_client_secret"),
    "facebook": ("facebook_app_id", "facebook_app_secret"),
    "instagram": ("facebook_app_id", "facebook_app_secret"),
    "youtube": ("google_client_id", "google_client_secret"),
}


class OAuthStateError(InvalidInput):
    """The callback's ``state`` is unknown, used, expired or belongs to another flow."""

    code = "oauth_state"


class OAuthDenied(InvalidInput):
    """The person declined on the network's consent screen (or the network refused the request)."""

    code = "oauth_denied"


class OAuthNotConfigured(InvalidInput):
    """The app credentials for this network are not set."""

    code = "oauth_not_configured"


# ---- shapes -------------------------------------------------------------------------------------------


@dataclass
class Started:
    """Where to send the browser, and the state that will come back."""

    url: str
    state: str
    expires_at: datetime
    redirect_uri: str


@dataclass(frozen=True)
class Choice:
    """One Page (or Page-linked Instagram account) the person may pick."""

    id: str
    name: str
    detail: str = ""


@dataclass
class Pending:
    """A login that manages several Pages, waiting for the person's pick."""

    id: str
    platform: str
    character_id: int
    choices: list[Choice]
    expires_at: datetime


@dataclass
class Finished:
    """What a callback produced: the connected account, or a pending choice."""

    account: SocialAccount | None = None
    pending: Pending | None = None
    reconnected: bool = False


@dataclass
class _Grant:
    """Credentials from a token exchange, plus the Pages to choose from (Facebook Login)."""

    credentials: Credentials
    choices: list[Choice] = field(default_factory=list)


# ---- configuration ------------------------------------------------------------------------------------


def endpoint(settings: Settings, key: str) -> str:
    """An OAuth/API base URL: the override from ``settings.oauth_endpoints`` or the production default."""
    value = (settings.oauth_endpoints or {}).get(key)
    return (value if value is not None else DEFAULT_ENDPOINTS.get(key, "")).rstrip("/")


def _client(settings: Settings, platform: str) -> tuple[str, str]:
    id_name, secret_name = SETTING_NAMES[platform]
    client_id = str(getattr(settings, id_name) or "").strip()
    secret_value = getattr(settings, secret_name)
    client_secret = secret_value.get_secret_value().strip() if isinstance(secret_value, SecretStr) else ""
    return client_id, client_secret


def not_configured(settings: Settings, platform: str) -> str:
    """Why the OAuth flow of ``platform`` cannot start here ("" when it can)."""
    if platform == "mastodon":
        return ""  # the app is registered on the person's instance at connect time
    if platform not in SETTING_NAMES:
        return f"{platform} does not connect through OAuth here."
    client_id, client_secret = _client(settings, platform)
    id_name, secret_name = SETTING_NAMES[platform]
    env = f"AINF_{id_name.upper()}"
    if not client_id:
        return f"Set {env} (and AINF_{secret_name.upper()}) to connect through OAuth; see docs/platforms.md."
    if platform != "x" and not client_secret:  # X public clients use PKCE without a secret
        return f"Set AINF_{secret_name.upper()} to connect through OAuth; see docs/platforms.md."
    return ""


def redirect_uri(settings: Settings, platform: str, base_url: str) -> str:
    """The callback URL to register with the network: the configured public URL, else the request's base."""
    root = (settings.public_url or base_url).rstrip("/")
    return f"{root}/accounts/oauth/{platform}/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _name(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _platform_module(name: str) -> Any:
    # Imported lazily so one SDK's absence cannot break the other flows.
    return importlib.import_module(f"ainfluencer.platforms.{name}")


# ---- sealed rows ---------------------------------------------------------------------------------------


def _seal(session: Session, runtime: Runtime, *, owner: str, user_id: int, name: str, payload: dict[str, Any]) -> None:
    runtime.secrets.put(session, owner_kind=owner, owner_id=user_id, name=name, value=json.dumps(payload))


def _take(session: Session, runtime: Runtime, *, owner: str, user_id: int, name: str) -> dict[str, Any] | None:
    """Read and delete one sealed row in this transaction; None when it is not there (or already taken)."""
    row = session.scalar(select(StoredSecret).where(
        StoredSecret.owner_kind == owner, StoredSecret.owner_id == user_id, StoredSecret.name == name))
    if row is None:
        return None
    value = runtime.secrets.get(session, owner_kind=owner, owner_id=user_id, name=name)
    gone = session.execute(delete(StoredSecret).where(StoredSecret.id == row.id))
    if gone.rowcount != 1 or value is None:  # type: ignore[attr-defined]  # a concurrent callback took it
        return None
    data: dict[str, Any] = json.loads(value.get_secret_value())
    return data


def _peek(session: Session, runtime: Runtime, *, owner: str, user_id: int, name: str) -> dict[str, Any] | None:
    value = runtime.secrets.get(session, owner_kind=owner, owner_id=user_id, name=name)
    if value is None:
        return None
    data: dict[str, Any] = json.loads(value.get_secret_value())
    return data


def purge_expired(session: Session, *, user_id: int, now: datetime | None = None) -> int:
    """Delete this user's states and pending choices older than their lifetime."""
    now = now or utcnow()
    res = session.execute(delete(StoredSecret).where(
        StoredSecret.owner_id == user_id,
        ((StoredSecret.owner_kind == STATE_OWNER) & (StoredSecret.created_at < now - STATE_TTL))
        | ((StoredSecret.owner_kind == PENDING_OWNER) & (StoredSecret.created_at < now - PENDING_TTL)),
    ))
    return int(res.rowcount or 0)  # type: ignore[attr-defined]


# ---- network calls (Facebook, Google) -------------------------------------------------------------------


def _http(method: str, url: str, *, network: str, graph: bool, **kwargs: Any) -> dict[str, Any]:
    """One token-endpoint call: explicit timeout, error mapped to the three kinds, nothing secret logged."""
    log.debug("oauth %s %s %s", network, method, url.split("?", 1)[0])
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            resp = client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise PlatformTransientError(f"Could not reach {network}.", platform_message=str(exc)[:300]) from exc
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 400:
        if graph:
            raise _platform_module("facebook").graph_error(resp.status_code, body, resp.headers, network=network)
        message = str(body.get("error_description") or body.get("error") or resp.text[:300]) if isinstance(
            body, dict) else resp.text[:300]
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PlatformTransientError(f"{network} is having trouble (HTTP {resp.status_code}).",
                                         platform_message=message, status=resp.status_code)
        raise PlatformAuthError(f"{network} refused the authorization code.", platform_message=message,
                                status=resp.status_code)
    if not isinstance(body, dict):
        raise PlatformTransientError(f"{network} sent an unexpected response.")
    return body


def _expires(body: dict[str, Any], now: datetime) -> datetime | None:
    value = body.get("expires_in")
    try:
        return now + timedelta(seconds=int(value)) if value else None
    except (TypeError, ValueError):
        return None


def _graph_url(settings: Settings, path: str) -> str:
    version = _platform_module("facebook").GRAPH_VERSION
    return f"{endpoint(settings, 'graph')}/{version}/{path.lstrip('/')}"


def _facebook_token(settings: Settings, code: str, redirect: str, network: str) -> tuple[str, datetime | None]:
    """Code → short-lived user token → long-lived user token (about 60 days)."""
    client_id, client_secret = _client(settings, "facebook")
    short = _http("GET", _graph_url(settings, "oauth/access_token"), network=network, graph=True, params={
        "client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect, "code": code})
    if not short.get("access_token"):
        raise PlatformTransientError(f"{network} returned no access token.")
    long = _http("GET", _graph_url(settings, "oauth/access_token"), network=network, graph=True, params={
        "grant_type": "fb_exchange_token", "client_id": client_id, "client_secret": client_secret,
        "fb_exchange_token": short["access_token"]})
    token = str(long.get("access_token") or short["access_token"])
    return token, _expires(long if long.get("access_token") else short, utcnow())


def _pages(settings: Settings, token: str, network: str) -> list[dict[str, Any]]:
    fields = "id,name,username,instagram_business_account{id,username}"
    url: str | None = _graph_url(settings, "me/accounts")
    params: dict[str, Any] | None = {"fields": fields, "limit": 100, "access_token": token}
    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        if not url:
            break
        body = _http("GET", url, network=network, graph=True, params=params)
        out.extend(p for p in body.get("data") or [] if isinstance(p, dict) and p.get("id"))
        nxt = (body.get("paging") or {}).get("next")
        url, params = (str(nxt), {"access_token": token}) if nxt else (None, None)
    return out


def _facebook_grant(settings: Settings, platform: str, code: str, redirect: str) -> _Grant:
    network = "Instagram" if platform == "instagram" else "Facebook"
    token, expires_at = _facebook_token(settings, code, redirect, network)
    pages = _pages(settings, token, network)
    choices: list[Choice] = []
    if platform == "facebook":
        choices = [Choice(id=str(p["id"]), name=str(p.get("name") or p["id"]),
                          detail=f"@{p['username']}" if p.get("username") else "") for p in pages]
        if not choices:
            raise OAuthDenied("This Facebook login manages no Pages. Create a Page (or ask its admin for access), "
                              "then connect again and tick the Page on Facebook's screen.", field="platform")
    else:
        for page in pages[:MAX_IG_LOOKUPS]:
            linked = page.get("instagram_business_account")
            if linked is None:  # the list did not expand the field: ask the Page itself
                node = _http("GET", _graph_url(settings, str(page["id"])), network=network, graph=True, params={
                    "fields": "instagram_business_account{id,username}", "access_token": token})
                linked = node.get("instagram_business_account")
            if isinstance(linked, dict) and linked.get("id"):
                choices.append(Choice(id=str(page["id"]), name=str(page.get("name") or page["id"]),
                                      detail=f"@{linked.get('username')}" if linked.get("username") else ""))
        if not choices:
            raise OAuthDenied("None of the Pages this login manages has a linked Instagram professional account. "
                              "Switch the Instagram account to Business or Creator and link it to a Page "
                              "(Page settings → Linked accounts), then connect again.", field="platform")
    creds = Credentials(access_token=SecretStr(token), expires_at=expires_at)
    return _Grant(credentials=creds, choices=choices)


def _google_grant(settings: Settings, code: str, redirect: str, verifier: str) -> _Grant:
    client_id, client_secret = _client(settings, "youtube")
    body = _http("POST", endpoint(settings, "google_token"), network="Google", graph=False, data={
        "grant_type": "authorization_code", "code": code, "client_id": client_id, "client_secret": client_secret,
        "redirect_uri": redirect, "code_verifier": verifier})
    if not body.get("access_token"):
        raise PlatformTransientError("Google returned no access token.")
    if not body.get("refresh_token"):
        raise OAuthDenied("Google sent no refresh token, so uploads would stop within an hour. Remove "
                          "AInfluencer's access at myaccount.google.com/permissions, then connect again.",
                          field="platform")
    creds = Credentials(access_token=SecretStr(str(body["access_token"])),
                        refresh_token=SecretStr(str(body["refresh_token"])), expires_at=_expires(body, utcnow()),
                        extra={"client_id": client_id}, secret_extra={"client_secret": SecretStr(client_secret)})
    return _Grant(credentials=creds)


def _x_grant(settings: Settings, code: str, redirect: str, verifier: str) -> _Grant:
    x = _platform_module("x")
    client_id, client_secret = _client(settings, "x")
    creds = accounts.run_coro(x.exchange_code(
        code=code, code_verifier=verifier, client_id=client_id, redirect_uri=redirect,
        client_secret=client_secret or None, base_url=endpoint(settings, "x_api") or None))
    return _Grant(credentials=creds)


def _mastodon_grant(payload: dict[str, Any], code: str, redirect: str) -> _Grant:
    mastodon = _platform_module("mastodon")
    app = mastodon.MastodonApp(instance_url=payload["instance_url"], client_id=payload["app_client_id"],
                               client_secret=SecretStr(payload["app_client_secret"]))
    return _Grant(credentials=accounts.run_coro(mastodon.exchange_code(app, code, redirect)))


def _mastodon_app(session: Session, runtime: Runtime, instance_url: str, redirect: str) -> Any:
    """The app registered on the instance for this redirect URI (registered once, then reused)."""
    mastodon = _platform_module("mastodon")
    name = hashlib.sha256(f"{instance_url}\n{redirect}".encode()).hexdigest()
    cached = _peek(session, runtime, owner=APP_OWNER, user_id=0, name=name)
    if cached:
        return mastodon.MastodonApp(instance_url=instance_url, client_id=cached["client_id"],
                                    client_secret=SecretStr(cached["client_secret"]))
    session.commit()  # the registration is a network call: no write lock held meanwhile
    website = runtime.settings.public_url or None
    app = accounts.run_coro(mastodon.register_app(instance_url, redirect, website=website))
    _seal(session, runtime, owner=APP_OWNER, user_id=0, name=name, payload={
        "client_id": app.client_id, "client_secret": app.client_secret.get_secret_value()})
    return app


def normalise_instance(value: str) -> str:
    """A Mastodon instance as ``https://host`` (``http://`` kept only when typed, for local instances)."""
    raw = (value or "").strip().rstrip("/")
    if not raw:
        raise InvalidInput("Enter your Mastodon instance, e.g. mastodon.social.", field="instance_url")
    if "://" not in raw:
        raw = "https://" + raw.lstrip("@").split("@")[-1]
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise InvalidInput(f"{value!r} is not an instance address; enter it like mastodon.social.",
                           field="instance_url")
    return f"{parts.scheme}://{parts.netloc}"


# ---- the flow ---------------------------------------------------------------------------------------------


def _network_error(platform: str, exc: PlatformError) -> Exception:
    name = accounts.known_platform(platform).display_name
    said = f" ({exc.platform_message})" if exc.platform_message else ""
    if isinstance(exc, PlatformTransientError):
        return accounts.PlatformUnavailable(f"{name} could not be reached: {exc.message}{said} Try again shortly.")
    return OAuthDenied(f"{name} refused the sign-in: {exc.message}{said} Start connecting again.", field="platform")


def start(
    session: Session, *, runtime: Runtime, user: User, platform: str, character_id: int, base_url: str,
    instance_url: str = "", account_id: int | None = None, now: datetime | None = None,
) -> Started:
    """Begin a flow: seal a fresh single-use state and return the network's authorisation URL."""
    if platform not in OAUTH_PLATFORMS:
        raise InvalidInput(f"{platform!r} does not connect through OAuth; use its form.", field="platform")
    settings = runtime.settings
    why = not_configured(settings, platform)
    if why:
        raise OAuthNotConfigured(why, field="platform")
    character = accounts.get_character(session, character_id, user=user)
    if account_id is not None:
        account = accounts.get_account(session, account_id, user=user)
        if account.platform != platform or account.character_id != character.id:
            raise InvalidInput("That account belongs to another network or character.", field="account_id")
    now = now or utcnow()
    purge_expired(session, user_id=user.id, now=now)
    redirect = redirect_uri(settings, platform, base_url)
    state = secrets.token_urlsafe(32)
    payload: dict[str, Any] = {"platform": platform, "user_id": user.id, "character_id": character.id,
                               "account_id": account_id, "redirect_uri": redirect,
                               "expires_at": (now + STATE_TTL).isoformat()}
    if platform == "x":
        x = _platform_module("x")
        client_id, _ = _client(settings, "x")
        url, verifier, state = x.authorization_url(client_id, redirect, authorize_url=endpoint(settings, "x_authorize"))
        payload["verifier"] = verifier
    elif platform in ("facebook", "instagram"):
        client_id, _ = _client(settings, platform)
        version = _platform_module("facebook").GRAPH_VERSION
        scopes = FACEBOOK_SCOPES if platform == "facebook" else INSTAGRAM_SCOPES
        url = f"{endpoint(settings, 'facebook_dialog')}/{version}/dialog/oauth?" + urlencode({
            "client_id": client_id, "redirect_uri": redirect, "state": state, "response_type": "code",
            "scope": ",".join(scopes)})
    elif platform == "youtube":
        client_id, _ = _client(settings, "youtube")
        verifier, challenge = _pkce()
        payload["verifier"] = verifier
        url = endpoint(settings, "google_authorize") + "?" + urlencode({
            "client_id": client_id, "redirect_uri": redirect, "response_type": "code",
            "scope": " ".join(_platform_module("youtube").SCOPES), "access_type": "offline", "prompt": "consent",
            "include_granted_scopes": "true", "state": state, "code_challenge": challenge,
            "code_challenge_method": "S256"})
    else:  # mastodon
        instance = normalise_instance(instance_url)
        session.commit()  # registration and metadata are network calls: hold no write lock meanwhile
        try:
            app = _mastodon_app(session, runtime, instance, redirect)
            url = accounts.run_coro(_platform_module("mastodon").auth_url(app, redirect, state=state))
        except PlatformError as exc:
            session.rollback()
            raise _network_error(platform, exc) from exc
        payload.update(instance_url=instance, app_client_id=app.client_id,
                       app_client_secret=app.client_secret.get_secret_value())
    _seal(session, runtime, owner=STATE_OWNER, user_id=user.id, name=_name(state), payload=payload)
    session.commit()
    log.info("oauth %s: flow started for character %s", platform, character.id)
    return Started(url=url, state=state, expires_at=now + STATE_TTL, redirect_uri=redirect)


def consume_state(
    session: Session, *, runtime: Runtime, user: User, platform: str, state: str, now: datetime | None = None
) -> dict[str, Any]:
    """Take the sealed state (single use): refused when unknown, used, expired or for another flow."""
    if not state or len(state) > 512:
        raise OAuthStateError("The network sent no valid sign-in state back. Start connecting again from the "
                              "Accounts page.", field="state")
    payload = _take(session, runtime, owner=STATE_OWNER, user_id=user.id, name=_name(state))
    session.commit()  # used is used, whatever happens next
    if payload is None:
        raise OAuthStateError("This sign-in is unknown or was already used (each one works once, for the person "
                              "who started it). Start connecting again from the Accounts page.", field="state")
    if payload.get("platform") != platform or payload.get("user_id") != user.id:
        raise OAuthStateError("This sign-in was started for another network. Start connecting again.",
                              field="state")
    if datetime.fromisoformat(payload["expires_at"]) < (now or utcnow()):
        raise OAuthStateError(f"The sign-in took longer than {int(STATE_TTL.total_seconds() // 60)} minutes and "
                              "expired. Start connecting again.", field="state")
    return payload


def finish(
    session: Session, *, runtime: Runtime, user: User, platform: str, params: dict[str, str], ip: str = "",
    now: datetime | None = None,
) -> Finished:
    """Handle the callback: check the state, trade the code, connect (or park a Page choice)."""
    if platform not in OAUTH_PLATFORMS:
        raise InvalidInput(f"{platform!r} does not connect through OAuth.", field="platform")
    payload = consume_state(session, runtime=runtime, user=user, platform=platform, state=params.get("state", ""),
                            now=now)
    name = accounts.known_platform(platform).display_name
    if params.get("error"):
        reason = params.get("error_description") or params.get("error_reason") or params["error"]
        if params["error"] == "access_denied":
            raise OAuthDenied(f"You declined access on {name}, so nothing was connected. Connect again and "
                              "allow the requested permissions to publish there.", field="platform")
        raise OAuthDenied(f"{name} did not authorise the connection: {reason}.", field="platform")
    code = params.get("code", "").strip()
    if not code:
        raise OAuthDenied(f"{name} sent no authorisation code back. Start connecting again.", field="platform")
    redirect = payload["redirect_uri"]
    try:
        if platform == "x":
            grant = _x_grant(runtime.settings, code, redirect, payload["verifier"])
        elif platform in ("facebook", "instagram"):
            grant = _facebook_grant(runtime.settings, platform, code, redirect)
        elif platform == "youtube":
            grant = _google_grant(runtime.settings, code, redirect, payload["verifier"])
        else:
            grant = _mastodon_grant(payload, code, redirect)
    except PlatformError as exc:
        raise _network_error(platform, exc) from exc
    character_id, account_id = int(payload["character_id"]), payload.get("account_id")
    if grant.choices and len(grant.choices) > 1:
        pending = _park(session, runtime, user=user, platform=platform, character_id=character_id,
                        account_id=account_id, grant=grant, now=now)
        return Finished(pending=pending)
    if grant.choices:
        grant.credentials.extra["page_id"] = grant.choices[0].id
    return _connect(session, runtime=runtime, user=user, platform=platform, character_id=character_id,
                    account_id=account_id, credentials=grant.credentials, ip=ip)


def _connect(
    session: Session, *, runtime: Runtime, user: User, platform: str, character_id: int, account_id: int | None,
    credentials: Credentials, ip: str,
) -> Finished:
    if account_id is not None:
        account = accounts.get_account(session, int(account_id), user=user)
        account = accounts.reconnect_account(session, runtime=runtime, user=user, account=account,
                                             credentials=credentials, ip=ip)
        return Finished(account=account, reconnected=True)
    account = accounts.connect_account(session, runtime=runtime, user=user, character_id=character_id,
                                       platform=platform, credentials=credentials, ip=ip)
    return Finished(account=account)


def _park(
    session: Session, runtime: Runtime, *, user: User, platform: str, character_id: int, account_id: int | None,
    grant: _Grant, now: datetime | None,
) -> Pending:
    now = now or utcnow()
    pending_id = secrets.token_urlsafe(24)
    creds = grant.credentials
    token = creds.access_token.get_secret_value() if creds.access_token else ""
    payload = {"platform": platform, "character_id": character_id, "account_id": account_id, "token": token,
               "token_expires_at": creds.expires_at.isoformat() if creds.expires_at else None,
               "choices": [c.__dict__ for c in grant.choices], "expires_at": (now + PENDING_TTL).isoformat()}
    _seal(session, runtime, owner=PENDING_OWNER, user_id=user.id, name=_name(pending_id), payload=payload)
    session.commit()
    return Pending(id=pending_id, platform=platform, character_id=character_id, choices=grant.choices,
                   expires_at=now + PENDING_TTL)


def _pending_payload(payload: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    if payload is None:
        raise OAuthStateError("This choice is unknown or was already made. Start connecting again.", field="pending")
    if datetime.fromisoformat(payload["expires_at"]) < now:
        raise OAuthStateError("This choice expired. Start connecting again.", field="pending")
    return payload


def get_pending(
    session: Session, *, runtime: Runtime, user: User, pending_id: str, now: datetime | None = None
) -> Pending:
    """The Pages a parked login may connect (for the picker page)."""
    payload = _pending_payload(_peek(session, runtime, owner=PENDING_OWNER, user_id=user.id,
                                     name=_name(pending_id or "-")), now or utcnow())
    return Pending(id=pending_id, platform=payload["platform"], character_id=int(payload["character_id"]),
                   choices=[Choice(**c) for c in payload["choices"]],
                   expires_at=datetime.fromisoformat(payload["expires_at"]))


def choose(
    session: Session, *, runtime: Runtime, user: User, pending_id: str, choice_id: str, ip: str = "",
    now: datetime | None = None,
) -> Finished:
    """Complete a parked Facebook/Instagram login with the Page the person picked (single use)."""
    name = _name(pending_id or "-")
    payload = _pending_payload(_peek(session, runtime, owner=PENDING_OWNER, user_id=user.id, name=name),
                               now or utcnow())
    if choice_id not in {c["id"] for c in payload["choices"]}:
        raise InvalidInput("Pick one of the listed Pages.", field="choice")
    taken = _take(session, runtime, owner=PENDING_OWNER, user_id=user.id, name=name)
    session.commit()
    if taken is None:
        raise OAuthStateError("This choice was already made. Start connecting again.", field="pending")
    expires = taken.get("token_expires_at")
    creds = Credentials(access_token=SecretStr(taken["token"]),
                        expires_at=datetime.fromisoformat(expires) if expires else None,
                        extra={"page_id": choice_id})
    return _connect(session, runtime=runtime, user=user, platform=taken["platform"],
                    character_id=int(taken["character_id"]), account_id=taken.get("account_id"), credentials=creds,
                    ip=ip)


def describe_connect_methods(settings: Settings) -> list[dict[str, Any]]:
    """Every network with how it connects here and whether it is ready (for the Accounts page and API)."""
    out = []
    for platform in platform_names():
        try:
            cls = accounts.known_platform(platform)
        except InvalidInput:
            continue
        method = "oauth" if platform in OAUTH_PLATFORMS else "form" if platform in FORM_PLATFORMS else "token"
        out.append({"platform": platform, "name": cls.display_name, "method": method,
                    "blocked": not_configured(settings, platform) if method == "oauth" else ""})
    return out

