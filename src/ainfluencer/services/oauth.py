"""OAuth 2.0 redirect flows that connect accounts: one engine, fed by each network's ``OAuthSpec``.

How one flow runs
1. :func:`start` makes a random ``state`` (single-use, :data:`STATE_TTL`), seals what the callback
   needs (user, character, platform, PKCE verifier, redirect URI, a per-instance client) server-side
   and returns the network's authorisation URL to send the browser to.
2. The network sends the browser back to ``/accounts/oauth/{platform}/callback?code=...&state=...``.
   :func:`finish` consumes the state (unknown, already used, expired, started by another user or for
   another network: refused), trades the code for tokens and hands them to the normal connect path
   (``accounts.connect_account``: live check, duplicates refused; ``reconnect_account`` when the
   flow was started from an existing account).
3. A login that manages several accounts (Facebook Pages, Instagram accounts linked to Pages) is
   parked as a *pending choice* and :func:`choose` completes the connect with the one picked.

What differs between networks is data in ``platforms/<name>/__init__.py`` (endpoints, scopes, PKCE,
client settings, how the client authenticates) plus, where a network departs from RFC 6749, hook
functions in its package (``finish_grant``: Facebook's long-lived token and Page list;
``register_client``/``authorization_url``/``exchange_code``: Mastodon's per-instance app). The
authorisation URL, PKCE (S256) and the code exchange go through Authlib's httpx OAuth 2.0 client.

Where things live: states and pending choices are rows of ``stored_secrets`` (owner kinds
``oauth_state`` / ``oauth_pending``, owner id = the user, name = SHA-256 of the state), sealed with
AES-256-GCM like every other credential, so the PKCE verifier and tokens never sit in plain text.
A client registered on an instance is cached as ``mastodon_app`` and reused.

Client ids and secrets come from :mod:`ainfluencer.services.network_apps`: a value set on Settings →
Networks (sealed, read at every connect, so no restart) first, else settings (the names the spec
gives). Endpoints default to each network's production URLs and may be overridden per key through
``settings.oauth_endpoints`` (tests point them at local fakes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
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
from ainfluencer.platforms.registry import DEFAULT, PlatformRegistry
from ainfluencer.platforms.spec import Endpoint, OAuthSpec, PlatformSpec
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, network_apps

log = logging.getLogger(__name__)

STATE_OWNER = "oauth_state"
PENDING_OWNER = "oauth_pending"
APP_OWNER = "mastodon_app"
STATE_TTL = timedelta(minutes=10)
PENDING_TTL = timedelta(minutes=15)
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TOKEN_TIMEOUT_S = 30.0  # a number: Authlib runs on httpx or httpx2, whose Timeout types differ

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


def _spec(runtime: Runtime, platform: str) -> PlatformSpec:
    spec = accounts.known_spec(platform, runtime.platforms)
    if spec.oauth is None:
        raise InvalidInput(f"{platform!r} does not connect through OAuth; use its form.", field="platform")
    return spec


def oauth_platforms(platforms: PlatformRegistry | None = None) -> list[str]:
    """Networks that connect through an OAuth redirect flow."""
    return [s.name for s in (platforms or DEFAULT) if s.oauth is not None]


def endpoint(settings: Settings, key: str, default: str = "") -> str:
    """An OAuth/API base URL: the override from ``settings.oauth_endpoints`` or the production default."""
    value = (settings.oauth_endpoints or {}).get(key)
    return (value if value is not None else default).rstrip("/")


def _url(settings: Settings, where: Endpoint) -> str:
    return endpoint(settings, where.key, where.base) + where.path


def _client(settings: Settings, oauth: OAuthSpec) -> tuple[str, str]:
    id_name, secret_name = oauth.settings
    client_id = str(getattr(settings, id_name, "") or "").strip() if id_name else ""
    secret_value = getattr(settings, secret_name, None) if secret_name else None
    client_secret = secret_value.get_secret_value().strip() if isinstance(secret_value, SecretStr) else ""
    return client_id, client_secret


def not_configured(settings: Settings, platform: str, platforms: PlatformRegistry | None = None, *,
                   session: Session | None = None, runtime: Runtime | None = None) -> str:
    """Why the OAuth flow of ``platform`` cannot start here ("" when it can).

    With ``session`` and ``runtime`` the values set on Settings → Networks count too.
    """
    try:
        oauth = accounts.known_spec(platform, platforms).oauth
    except InvalidInput:
        oauth = None
    if oauth is None:
        return f"{platform} does not connect through OAuth here."
    id_name, secret_name = oauth.settings
    if not id_name:
        return ""  # the client is registered on the person's instance at connect time
    if session is not None and runtime is not None:
        client_id, client_secret = network_apps.client_credentials(session, runtime, oauth)
    else:
        client_id, client_secret = _client(settings, oauth)
    where = f"the owner enters them in Settings → Networks (or sets AINF_{id_name.upper()} and " \
            f"AINF_{secret_name.upper()}); see docs/platforms.md."
    if not client_id:
        return f"This network's app credentials are not set: {where}"
    if oauth.secret_required and not client_secret:
        return f"This network's app secret is not set: {where}"
    return ""


def connect_page_csp(settings: Settings, base_csp: str, platforms: PlatformRegistry | None = None) -> str:
    """``base_csp`` with ``form-action`` widened to the consent screens a Connect form redirects to.

    Chromium applies ``form-action`` to the redirects after a form POST, so ``'self'`` alone stops the
    POST → 303 → network hop. Instances registered at connect time (Mastodon) may be anywhere: ``https:``.
    """
    sources = ["'self'"]
    for spec in platforms or DEFAULT:
        if spec.oauth is None:
            continue
        if spec.oauth.asks_instance and "https:" not in sources:
            sources.append("https:")
        if spec.oauth.authorize is not None:
            parts = urlsplit(_url(settings, spec.oauth.authorize))
            origin = f"{parts.scheme}://{parts.netloc}"
            if parts.netloc and origin not in sources:
                sources.append(origin)
    return base_csp.replace("form-action 'self'", "form-action " + " ".join(sources))


def redirect_uri(settings: Settings, platform: str, base_url: str) -> str:
    """The callback URL to register with the network: the configured public URL, else the request's base."""
    root = (settings.public_url or base_url).rstrip("/")
    return f"{root}/accounts/oauth/{platform}/callback"


def _name(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


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


# ---- the engine: Authlib's OAuth 2.0 client, fed by the spec ----------------------------------------------


def _query_auth(auth: Any, method: str, uri: str, headers: Any, body: str) -> tuple[str, Any, str]:
    """Client id and secret in the query string (Facebook's token endpoint is a GET)."""
    uri = add_params_to_uri(uri, [("client_id", auth.client_id), ("client_secret", auth.client_secret)])
    return uri, headers, body


class Flow:
    """One network's code flow: authorisation URL, code exchange, and the Graph-style calls hooks make."""

    Choice = Choice

    def __init__(self, runtime: Runtime, spec: PlatformSpec, redirect: str,
                 client: tuple[str, str] | None = None) -> None:
        assert spec.oauth is not None  # noqa: S101 - _spec() checked it
        self.runtime, self.spec, self.oauth, self.redirect = runtime, spec, spec.oauth, redirect
        self.settings = runtime.settings
        self.client_id, self.client_secret = client or _client(self.settings, self.oauth)
        mapper = self.oauth.hook("error_mapper")
        self._map_error = mapper(spec.display_name) if mapper else None

    def _client(self) -> OAuth2Client:
        method = "client_secret_query" if self.oauth.exchange_method == "GET" else (
            self.oauth.client_auth if self.client_secret else "none")
        client = OAuth2Client(
            client_id=self.client_id, client_secret=self.client_secret or None, redirect_uri=self.redirect,
            scope=self.oauth.scope_separator.join(self.oauth.scopes), token_endpoint_auth_method=method,
            code_challenge_method="S256" if self.oauth.pkce else None, timeout=TOKEN_TIMEOUT_S,
        )
        client.register_client_auth_method(("client_secret_query", _query_auth))
        return client

    def authorization_url(self, state: str) -> tuple[str, str]:
        """(URL to send the browser to, PKCE verifier to keep — "" without PKCE)."""
        assert self.oauth.authorize is not None  # noqa: S101 - spec data
        verifier = secrets.token_urlsafe(64)[:96] if self.oauth.pkce else ""
        with self._client() as client:
            url, _ = client.create_authorization_url(
                _url(self.settings, self.oauth.authorize), state=state, code_verifier=verifier or None,
                **dict(self.oauth.authorize_params))
        return str(url), verifier

    def _check(self, resp: Any) -> Any:
        """Authlib compliance hook: map an error response to the three adapter error kinds."""
        if resp.status_code < 400:
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if self._map_error is not None:
            raise self._map_error(resp.status_code, body, resp.headers)
        message = str(body.get("error_description") or body.get("error") or resp.text[:300]) if isinstance(
            body, dict) else resp.text[:300]
        network = self.spec.display_name
        if resp.status_code >= 500 or resp.status_code == 429:
            raise PlatformTransientError(f"{network} is having trouble (HTTP {resp.status_code}).",
                                         platform_message=message, status=resp.status_code)
        raise PlatformAuthError(f"{network} refused the authorization code.", platform_message=message,
                                status=resp.status_code)

    def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """Trade the code for a token (explicit timeout, errors mapped, nothing secret logged)."""
        assert self.oauth.token is not None  # noqa: S101 - spec data
        url = _url(self.settings, self.oauth.token)
        log.debug("oauth %s token exchange %s", self.spec.name, url.split("?", 1)[0])
        extra = {"code_verifier": verifier} if verifier else {}
        try:
            with self._client() as client:
                client.register_compliance_hook("access_token_response", self._check)
                token = client.fetch_token(url, code=code, method=self.oauth.exchange_method, **extra)
        except PlatformError:
            raise
        except OAuthError as exc:
            raise PlatformAuthError(f"{self.spec.display_name} refused the authorization code.",
                                    platform_message=str(exc.description or exc.error)[:300]) from exc
        except Exception as exc:  # noqa: BLE001 - transport failures of whichever httpx Authlib runs on
            raise PlatformTransientError(f"Could not reach {self.spec.display_name}.",
                                         platform_message=str(exc)[:300]) from exc
        if not token.get("access_token"):
            raise PlatformTransientError(f"{self.spec.display_name} returned no access token.")
        return dict(token)

    def graph(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One call to the token endpoint's host (Facebook's Graph: Pages, long-lived tokens)."""
        assert self.oauth.token is not None  # noqa: S101 - spec data
        base = endpoint(self.settings, self.oauth.token.key, self.oauth.token.base)
        version = self.oauth.token.path.strip("/").split("/", 1)[0]
        url = path if path.startswith(("http://", "https://")) else f"{base}/{version}/{path.lstrip('/')}"
        log.debug("oauth %s %s %s", self.spec.name, method, url.split("?", 1)[0])
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT) as client:
                resp = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise PlatformTransientError(f"Could not reach {self.spec.display_name}.",
                                         platform_message=str(exc)[:300]) from exc
        self._check(resp)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PlatformTransientError(f"{self.spec.display_name} sent an unexpected response.")
        return body

    def deny(self, message: str) -> None:
        """Refuse the connection with a message the person can act on."""
        raise OAuthDenied(message, field="platform")

    def grant(self, code: str, verifier: str) -> _Grant:
        """Code → credentials (plus accounts to choose from, where the network's hook offers them)."""
        token = self.exchange(code, verifier)
        choices: list[Choice] = []
        finish_grant = self.oauth.hook("finish_grant")
        if finish_grant is not None:
            token, choices = finish_grant(self, token)
        if self.oauth.no_refresh_message and not token.get("refresh_token"):
            self.deny(self.oauth.no_refresh_message)
        refresh = token.get("refresh_token")
        creds = Credentials(access_token=SecretStr(str(token["access_token"])),
                            refresh_token=SecretStr(str(refresh)) if refresh else None,
                            expires_at=_expires(token, utcnow()))
        if self.oauth.store_client:
            creds.extra["client_id"] = self.client_id
            if self.client_secret:
                creds.secret_extra["client_secret"] = SecretStr(self.client_secret)
        return _Grant(credentials=creds, choices=choices)


def _expires(body: dict[str, Any], now: datetime) -> datetime | None:
    value = body.get("expires_in")
    try:
        return now + timedelta(seconds=int(value)) if value else None
    except (TypeError, ValueError):
        return None


def _instance_client(session: Session, runtime: Runtime, spec: PlatformSpec, instance_url: str,
                     redirect: str) -> tuple[str, str]:
    """The client registered on the instance for this redirect URI (registered once, then reused)."""
    assert spec.oauth is not None  # noqa: S101
    name = hashlib.sha256(f"{instance_url}\n{redirect}".encode()).hexdigest()
    cached = _peek(session, runtime, owner=APP_OWNER, user_id=0, name=name)
    if cached:
        return str(cached["client_id"]), str(cached["client_secret"])
    session.commit()  # the registration is a network call: no write lock held meanwhile
    client_id, client_secret = spec.oauth.hook("register_client")(
        runtime.run, instance_url, redirect, website=runtime.settings.public_url or None)
    _seal(session, runtime, owner=APP_OWNER, user_id=0, name=name, payload={
        "client_id": client_id, "client_secret": client_secret})
    return client_id, client_secret


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


def _network_error(runtime: Runtime, platform: str, exc: PlatformError) -> Exception:
    name = accounts.known_spec(platform, runtime.platforms).display_name
    said = f" ({exc.platform_message})" if exc.platform_message else ""
    if isinstance(exc, PlatformTransientError):
        return accounts.PlatformUnavailable(f"{name} could not be reached: {exc.message}{said} Try again shortly.")
    return OAuthDenied(f"{name} refused the sign-in: {exc.message}{said} Start connecting again.", field="platform")


def start(
    session: Session, *, runtime: Runtime, user: User, platform: str, character_id: int, base_url: str,
    instance_url: str = "", account_id: int | None = None, now: datetime | None = None,
) -> Started:
    """Begin a flow: seal a fresh single-use state and return the network's authorisation URL."""
    spec = _spec(runtime, platform)
    assert spec.oauth is not None  # noqa: S101 - _spec() checked it
    settings = runtime.settings
    why = not_configured(settings, platform, runtime.platforms, session=session, runtime=runtime)
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
    if spec.oauth.asks_instance:  # a client registered on the person's own instance (Mastodon)
        instance = normalise_instance(instance_url)
        session.commit()  # registration and metadata are network calls: hold no write lock meanwhile
        try:
            client_id, client_secret = _instance_client(session, runtime, spec, instance, redirect)
            url = spec.oauth.hook("authorization_url")(runtime.run, instance, client_id, client_secret, redirect,
                                                       state)
        except PlatformError as exc:
            session.rollback()
            raise _network_error(runtime, platform, exc) from exc
        payload.update(instance_url=instance, app_client_id=client_id, app_client_secret=client_secret)
    else:
        client = network_apps.client_credentials(session, runtime, spec.oauth)
        url, verifier = Flow(runtime, spec, redirect, client).authorization_url(state)
        if verifier:
            payload["verifier"] = verifier
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
    spec = _spec(runtime, platform)
    assert spec.oauth is not None  # noqa: S101 - _spec() checked it
    payload = consume_state(session, runtime=runtime, user=user, platform=platform, state=params.get("state", ""),
                            now=now)
    name = spec.display_name
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
        if spec.oauth.asks_instance:
            creds = spec.oauth.hook("exchange_code")(runtime.run, payload["instance_url"], payload["app_client_id"],
                                                     payload["app_client_secret"], code, redirect)
            grant = _Grant(credentials=creds)
        else:
            client = network_apps.client_credentials(session, runtime, spec.oauth)
            grant = Flow(runtime, spec, redirect, client).grant(code, payload.get("verifier", ""))
    except PlatformError as exc:
        raise _network_error(runtime, platform, exc) from exc
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


def describe_connect_methods(settings: Settings, platforms: PlatformRegistry | None = None, *,
                             session: Session | None = None, runtime: Runtime | None = None) -> list[dict[str, Any]]:
    """Every network with how it connects here and whether it is ready (for the Accounts page and API)."""
    out = []
    for spec in sorted(platforms or DEFAULT, key=lambda s: s.name):
        method = spec.connect_method
        out.append({"platform": spec.name, "name": spec.display_name, "method": method,
                    "asks_instance": bool(spec.oauth and spec.oauth.asks_instance),
                    "fields": [f.__dict__ for f in spec.connect_form],
                    "blocked": not_configured(settings, spec.name, platforms, session=session, runtime=runtime)
                    if method == "oauth" else ""})
    return out
