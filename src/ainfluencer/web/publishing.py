"""Publishing pages: connected accounts (OAuth and token forms), compose with a live preview, publications.

Thin handlers over ``services.accounts``, ``services.oauth``, ``services.compose`` and
``services.publishing``. Every form works without JavaScript; ``publishing.js`` only adds the
debounced live preview (htmx does the request), the "publish now / at" toggle and confirmations.
Errors come back on the same page with what the person typed kept (secrets included only where the
next step needs them, e.g. the bot token while picking a Telegram chat).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_publishing import AccountStatus, PublicationStatus, SocialAccount
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.middleware import CSP
from ainfluencer.services import accounts, compose, oauth, publishing
from ainfluencer.services import characters as characters_svc
from ainfluencer.web.forms import Form, done_notice
from ainfluencer.web.routes import CurrentUser, redirect, render
from ainfluencer.writing import platform_rules

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

PER_PAGE = 50
DONE = {
    "connected": "Account connected: the credentials were checked live with the network.",
    "reconnected": "Account reconnected.",
    "checked": "Checked just now.",
    "disconnected": "Account disconnected and its tokens deleted. Its publications stay.",
    "scheduled": "Queued {n} publication{s}.",
    "retry": "Sent again.",
    "cancel": "Cancelled.",
    "reschedule": "Rescheduled.",
    "mark_published": "Marked as published.",
}
STATUS_LABELS = {
    "planned": "Planned", "due": "Due", "sending": "Sending", "retry_wait": "Waiting to retry",
    "published": "Published", "failed": "Failed", "unknown": "Unknown", "cancelled": "Cancelled",
}
STATUS_BADGES = {
    "planned": "queued", "due": "running", "sending": "running", "retry_wait": "warn", "published": "ok",
    "failed": "down", "unknown": "warn", "cancelled": "queued",
}
ACCOUNT_BADGES = {"healthy": "ok", "needs_reconnect": "warn", "error": "down", "disconnected": "queued"}


# ---- helpers ------------------------------------------------------------------------------------------


def _text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def _int(value: str | None, field: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"{field.replace('_', ' ')} must be a whole number.", field=field)
    return int(value)


def _ints(values: list[Any], field: str) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, str) and v.strip():
            number = _int(v, field)
            if number is not None:
                out.append(number)
    return out


def _with(url: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + query


def _notice(request: Request) -> str:
    return done_notice(request, DONE)


def _zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(user: User) -> Any:
    zone = _zone(user)

    def fmt(value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M ") + (zone.key if zone.key != "UTC" else "UTC")

    return fmt


def _expiry(value: datetime | None) -> str:
    if value is None:
        return "does not expire"
    delta = value - utcnow()
    days = delta.total_seconds() / 86400
    if delta.total_seconds() <= 0:
        return "expired"
    if days >= 2:
        return f"in {int(days)} days"
    hours = delta.total_seconds() / 3600
    return f"in {int(hours)} h" if hours >= 1 else f"in {int(delta.total_seconds() // 60)} min"


def _characters(session: Session, user: User) -> list[Character]:
    return list(session.scalars(select(Character).where(characters_svc.visible(user)).order_by(Character.name)))


def _helpers(user: User) -> dict[str, Any]:
    return {"local": _local(user), "expiry": _expiry, "status_labels": STATUS_LABELS, "status_badges": STATUS_BADGES,
            "account_badges": ACCOUNT_BADGES}


def _platform_name(platform: str) -> str:
    try:
        return accounts.known_platform(platform).display_name
    except AppError:
        return platform


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# ---- accounts -----------------------------------------------------------------------------------------


def _connect_csp(request: Request) -> dict[str, str]:
    """The page CSP, letting Connect forms redirect to the networks' consent screens."""
    runtime = get_runtime(request)
    return {"Content-Security-Policy": oauth.connect_page_csp(runtime.settings, CSP, runtime.platforms)}


def _accounts_context(request: Request, session: Session, user: User, character_id: int | None) -> dict[str, Any]:
    settings = get_runtime(request).settings
    chars = _characters(session, user)
    if character_id is not None:
        chars = [c for c in chars if c.id == character_id]
        if not chars:
            raise InvalidInput(f"No character with id {character_id}.", field="character")
    rows = accounts.list_accounts_checked(session, runtime=get_runtime(request), user=user,
                                          character_id=character_id)
    by_character: dict[int, list[dict[str, Any]]] = {c.id: [] for c in chars}
    registry = get_runtime(request).platforms
    oauth_networks = oauth.oauth_platforms(registry)
    for account in rows:
        by_character.setdefault(account.character_id, []).append({
            "account": account, "name": _platform_name(account.platform),
            "budget": accounts.rate_budget(session, account),
            "oauth": account.platform in oauth_networks,
        })
    return {
        "active": "accounts", "characters": chars, "by_character": by_character, "character_id": character_id,
        "methods": oauth.describe_connect_methods(settings, registry, session=session, runtime=get_runtime(request)),
        "notice": _notice(request),
        "error": request.query_params.get("error", ""), "forms": {}, "chats": [], **_helpers(user),
    }


def _render_accounts(request: Request, session: Session, user: User, character_id: int | None, *,
                     error: str = "", forms: dict[str, dict[str, str]] | None = None,
                     chats: list[dict[str, Any]] | None = None, status_code: int = 200) -> HTMLResponse:
    try:
        ctx = _accounts_context(request, session, user, character_id)
    except AppError as exc:
        ctx = _accounts_context(request, session, user, None)
        error = error or exc.message
    ctx.update(error=error or ctx["error"], forms=forms or {}, chats=chats or [])
    return render(request, "publishing/accounts.html", ctx, user=user, status_code=status_code,
                  headers=_connect_csp(request))


@router.get("/accounts", response_class=HTMLResponse)
def read_accounts_page(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Accounts per character with health, token expiry, rate budget, bot flag; connect buttons per network."""
    try:
        character_id = _int(request.query_params.get("character"), "character")
    except AppError as exc:
        return _render_accounts(request, session, user, None, error=exc.message, status_code=422)
    return _render_accounts(request, session, user, character_id)


@router.post("/accounts/oauth/{platform}/start")
def create_oauth_start(platform: str, request: Request, session: SessionDep, user: CurrentUser,
                       form: Form) -> Response:
    """Begin an OAuth connect: send the browser to the network's consent screen."""
    character_id: int | None = None
    try:
        character_id = _int(_text(form, "character_id"), "character_id")
        if character_id is None:
            raise InvalidInput("Choose the character to connect the account to.", field="character_id")
        started = oauth.start(session, runtime=get_runtime(request), user=user, platform=platform,
                              character_id=character_id, base_url=_base_url(request),
                              instance_url=_text(form, "instance_url"),
                              account_id=_int(_text(form, "account_id"), "account_id"))
    except AppError as exc:
        session.rollback()
        forms = {platform: {"instance_url": _text(form, "instance_url")}}
        return _render_accounts(request, session, user, character_id, error=exc.message, forms=forms,
                                status_code=exc.status_code)
    return redirect(started.url)


@router.get("/accounts/oauth/{platform}/callback")
def read_oauth_callback(platform: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """The network sends the browser back here: check state, trade the code, connect (or pick a Page)."""
    params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    try:
        done = oauth.finish(session, runtime=get_runtime(request), user=user, platform=platform, params=params,
                            ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return redirect(_with("/accounts", error=exc.message))
    session.commit()
    if done.pending is not None:
        return redirect(f"/accounts/oauth/pending/{done.pending.id}")
    assert done.account is not None  # noqa: S101 - finish returns one or the other
    return redirect(_with("/accounts", character=done.account.character_id,
                          done="reconnected" if done.reconnected else "connected"))


@router.get("/accounts/oauth/pending/{pending_id}", response_class=HTMLResponse)
def read_oauth_pending(pending_id: str, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Pick which Facebook Page (or Page-linked Instagram account) to connect."""
    try:
        pending = oauth.get_pending(session, runtime=get_runtime(request), user=user, pending_id=pending_id)
    except AppError as exc:
        return redirect(_with("/accounts", error=exc.message))
    oauth_spec = accounts.known_spec(pending.platform, get_runtime(request).platforms).oauth
    ctx = {"active": "accounts", "pending": pending, "name": _platform_name(pending.platform),
           "choice_noun": oauth_spec.choice_noun if oauth_spec else "Page",
           "error": request.query_params.get("error", ""), **_helpers(user)}
    return render(request, "publishing/choose_page.html", ctx, user=user)


@router.post("/accounts/oauth/pending/{pending_id}")
def create_oauth_choice(pending_id: str, request: Request, session: SessionDep, user: CurrentUser,
                        form: Form) -> Response:
    """Connect the picked Page."""
    try:
        done = oauth.choose(session, runtime=get_runtime(request), user=user, pending_id=pending_id,
                            choice_id=_text(form, "choice"), ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        if exc.field == "choice":
            return redirect(_with(f"/accounts/oauth/pending/{pending_id}", error=exc.message))
        return redirect(_with("/accounts", error=exc.message))
    session.commit()
    assert done.account is not None  # noqa: S101
    return redirect(_with("/accounts", character=done.account.character_id,
                          done="reconnected" if done.reconnected else "connected"))


@router.post("/accounts/connect/telegram")
def create_telegram_account(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Telegram: bot token → chats found in the bot's updates → pick one (or type its id) → connect."""
    values = {k: _text(form, k) for k in ("token", "chat_id", "chat_manual", "api_url")}
    character_id: int | None = None
    chats: list[dict[str, Any]] = []
    try:
        character_id = _int(_text(form, "character_id"), "character_id")
        if character_id is None:
            raise InvalidInput("Choose the character to connect the account to.", field="character_id")
        if not values["token"]:
            raise InvalidInput("Enter the bot token from @BotFather.", field="token")
        if _text(form, "action") == "find" or not (values["chat_id"] or values["chat_manual"]):
            allow = get_runtime(request).settings.webhook_allow_private_targets or user.is_owner
            server = accounts.check_server_url(values["api_url"], allow_private=allow)
            chats = accounts.discover_chats(get_runtime(request), "telegram", values["token"], server_url=server)
            if not chats:
                raise InvalidInput("The bot has seen no channel or group yet. Add it as an administrator of your "
                                   "channel (or post something in the group), then press “Find chats” again — or "
                                   "type the chat id.", field="chat_id")
            return _render_accounts(request, session, user, character_id, forms={"telegram": values}, chats=chats)
        chat = values["chat_manual"] or values["chat_id"]
        extra = {"chat_id": chat, "api_url": values["api_url"]} if values["api_url"] else {"chat_id": chat}
        creds = accounts.credentials_from_input(access_token=values["token"], extra=extra)
        account = accounts.connect_account(session, runtime=get_runtime(request), user=user,
                                           character_id=character_id, platform="telegram", credentials=creds,
                                           ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _render_accounts(request, session, user, character_id, error=exc.message,
                                forms={"telegram": values}, chats=chats, status_code=exc.status_code)
    session.commit()
    return redirect(_with("/accounts", character=account.character_id, done="connected"))


@router.post("/accounts/connect/bluesky")
def create_bluesky_account(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Bluesky: handle + app password (account passwords are refused by the adapter)."""
    values = {"handle": _text(form, "handle"), "service": _text(form, "service")}
    character_id: int | None = None
    try:
        character_id = _int(_text(form, "character_id"), "character_id")
        if character_id is None:
            raise InvalidInput("Choose the character to connect the account to.", field="character_id")
        if not values["handle"] or not _text(form, "app_password"):
            raise InvalidInput("Enter the handle and an app password (Settings → Privacy and security → App "
                               "passwords on Bluesky).", field="handle")
        extra = {"handle": values["handle"].lstrip("@")}
        if values["service"]:
            extra["service"] = values["service"]
        creds = accounts.credentials_from_input(extra=extra, secret_extra={"app_password": _text(form, "app_password")})
        account = accounts.connect_account(session, runtime=get_runtime(request), user=user,
                                           character_id=character_id, platform="bluesky", credentials=creds,
                                           ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _render_accounts(request, session, user, character_id, error=exc.message,
                                forms={"bluesky": values}, status_code=exc.status_code)
    session.commit()
    return redirect(_with("/accounts", character=account.character_id, done="connected"))


@router.post("/accounts/{account_id}/check")
def create_account_check(account_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Run a live health check now."""
    back = "/accounts"
    try:
        account = accounts.get_account(session, account_id, user=user)
        back = _with("/accounts", character=account.character_id)
        accounts.check_health(session, runtime=get_runtime(request), account=account)
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="checked"))


@router.get("/accounts/{account_id}/disconnect", response_class=HTMLResponse)
def read_account_disconnect(account_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Confirm before the tokens are deleted."""
    account = accounts.get_account(session, account_id, user=user)
    ctx = {"active": "accounts", "account": account, "name": _platform_name(account.platform)}
    return render(request, "publishing/confirm_disconnect.html", ctx, user=user)


@router.post("/accounts/{account_id}/disconnect")
def create_account_disconnect(account_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Delete the stored tokens and mark the account disconnected."""
    account = accounts.get_account(session, account_id, user=user)
    back = _with("/accounts", character=account.character_id)
    try:
        accounts.disconnect_account(session, runtime=get_runtime(request), user=user, account=account,
                                    ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done="disconnected"))


@router.get("/accounts/{account_id}/reconnect", response_class=HTMLResponse)
def read_account_reconnect(account_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    """Reconnect: OAuth networks restart their flow; token networks show their form."""
    account = accounts.get_account(session, account_id, user=user)
    runtime = get_runtime(request)
    spec = accounts.known_spec(account.platform, runtime.platforms)
    ctx = {"active": "accounts", "account": account, "name": _platform_name(account.platform),
           "oauth": spec.oauth is not None, "asks_instance": bool(spec.oauth and spec.oauth.asks_instance),
           "secret_fields": [f for f in spec.connect_form if f.kind == "password" and f.name != "token"],
           "error": request.query_params.get("error", ""),
           "blocked": oauth.not_configured(runtime.settings, account.platform, runtime.platforms, session=session,
                                           runtime=runtime) if spec.oauth is not None else ""}
    return render(request, "publishing/reconnect.html", ctx, user=user, headers=_connect_csp(request))


@router.post("/accounts/{account_id}/reconnect")
def create_account_reconnect(account_id: int, request: Request, session: SessionDep, user: CurrentUser,
                             form: Form) -> Response:
    """Replace a token account's credentials (the same platform account, checked live)."""
    account = accounts.get_account(session, account_id, user=user)
    extra = dict(account.extra or {})
    secret_extra: dict[str, str | SecretStr] = {}
    token = _text(form, "token") or None
    for field in accounts.known_spec(account.platform, accounts.platforms_of(session)).connect_form:
        if field.kind == "password" and field.name != "token":  # an app password, kept with the secrets
            secret_extra[field.name] = _text(form, field.name)
    try:
        if not token and not any(secret_extra.values()):
            raise InvalidInput("Enter the new token or app password.", field="token")
        creds = accounts.credentials_from_input(access_token=token, extra=extra, secret_extra=secret_extra)
        account = accounts.reconnect_account(session, runtime=get_runtime(request), user=user, account=account,
                                             credentials=creds, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return redirect(_with(f"/accounts/{account_id}/reconnect", error=exc.message))
    session.commit()
    return redirect(_with("/accounts", character=account.character_id, done="reconnected"))


# ---- compose --------------------------------------------------------------------------------------------


def _alt_texts(form: FormData, prefix: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for key in form:
        if key.startswith(prefix):
            suffix = key[len(prefix):]
            if suffix.isdigit():
                value = _text(form, key)
                if value:
                    out[int(suffix)] = value
    return out


def draft_from_form(form: FormData, *, user: User) -> compose.Draft:
    """The compose form as a :class:`compose.Draft` (blank variant fields inherit the shared ones)."""
    variants: dict[str, compose.Variant] = {}
    platforms = {key.split("_", 2)[1] for key in form if key.startswith("v_") and key.count("_") >= 2}
    for platform in platforms:
        p = f"v_{platform}_"
        own = _text(form, p + "own_media") == "1"
        variants[platform] = compose.Variant(
            text=_text(form, p + "text") or None, title=_text(form, p + "title") or None,
            first_comment=_text(form, p + "first_comment") or None,
            asset_ids=_ints(form.getlist(p + "assets"), "assets") if own else None,
            alt_texts=_alt_texts(form, p + "alt_"),
        )
    return compose.Draft(
        account_ids=_ints(form.getlist("account_ids"), "account_ids"),
        text=_text(form, "text"), title=_text(form, "title"), first_comment=_text(form, "first_comment"),
        asset_ids=_ints(form.getlist("asset_ids"), "asset_ids"), alt_texts=_alt_texts(form, "alt_"),
        variants=variants, publish_now=_text(form, "when", "now") != "at",
        local_time=_text(form, "scheduled_local"), timezone=_text(form, "timezone") or user.timezone or "UTC",
        character_id=_int(_text(form, "character_id"), "character_id"),
        require_alt_text=_text(form, "require_alt_text") == "1" if "_submitted" in form else True,
    )


def _compose_context(request: Request, session: Session, user: User, character_id: int | None,
                     draft: compose.Draft | None, preview: compose.Preview | None) -> dict[str, Any]:
    runtime = get_runtime(request)
    chars = _characters(session, user)
    character = compose.character_of(session, character_id, user=user) if character_id is not None else None
    usable = [a for a in accounts.list_accounts(session, user=user, character_id=character_id)
              if a.status != AccountStatus.disconnected] if character is not None else []
    platforms: dict[str, dict[str, Any]] = {}
    for a in usable:
        if a.platform not in platforms:
            registry = accounts.platforms_of(session)
            cls = accounts.known_platform(a.platform, registry)
            caps = cls.capabilities
            platforms[a.platform] = {"name": cls.display_name, "alt": caps.supports_alt_text,
                                     "first_comment": caps.supports_first_comment,
                                     "title": "title" in registry.spec(a.platform).rules,
                                     "public_media": caps.needs_public_media_url}
    assets = compose.approved_assets(session, user=user, character_id=character_id) if character else []
    status = compose.public_media_status(runtime.settings)
    tz = (draft.timezone if draft else "") or user.timezone or "UTC"
    # "Write with <character>" writes for a network the persona writer knows (its text rules); a network
    # without rules (a test or custom adapter) is written for as the first known one it picks.
    writing_platforms = {p: _platform_name(p) for p in platform_rules.PLATFORM_RULES}
    write_default = next((p for p in platforms if p in writing_platforms), next(iter(writing_platforms)))
    return {
        "writing_platforms": writing_platforms, "write_default": write_default,
        "active": "compose", "characters": chars, "character": character, "accounts": usable,
        "platforms": platforms, "assets": assets, "draft": draft or compose.Draft(account_ids=[]),
        "preview": preview, "public_media": status, "timezone": tz, "post": None,
        "default_local": (draft.local_time if draft and draft.local_time else compose.default_local_time(tz)),
        "error": "", **_helpers(user),
    }


@router.get("/compose", response_class=HTMLResponse)
def read_compose(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Compose one post for one or many of a character's accounts."""
    from ainfluencer.posts import service as posts

    error = request.query_params.get("error", "")
    post = None
    try:
        character_id = _int(request.query_params.get("character"), "character")
        post_id = _int(request.query_params.get("post"), "post")
        draft = None
        if post_id is not None:  # editing a saved post: its character and fields fill the form
            post = posts.get_post(session, post_id, user=user)
            character_id, draft = post.character_id, posts.draft_of(post)
        ctx = _compose_context(request, session, user, character_id, draft, None)
    except AppError as exc:
        error = exc.message
        ctx = _compose_context(request, session, user, None, None, None)
    ctx["error"] = error
    ctx["post"] = post
    return render(request, "publishing/compose.html", ctx, user=user, status_code=422 if error else 200)


@router.post("/compose/preview", response_class=HTMLResponse)
def create_compose_preview(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> HTMLResponse:
    """The live per-network preview (an htmx fragment); nothing is saved."""
    try:
        draft = draft_from_form(form, user=user)
        result = compose.preview(session, runtime=get_runtime(request), user=user, draft=draft)
    except AppError as exc:
        result = compose.Preview(targets=[], problems=[exc.message])
    session.rollback()
    return render(request, "publishing/_preview.html", {"preview": result, **_helpers(user)}, user=user)


@router.post("/compose", response_class=HTMLResponse)
def create_compose(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Schedule for every picked account — or nothing, with every problem shown."""
    draft: compose.Draft | None = None
    try:
        draft = draft_from_form(form, user=user)
        created = compose.schedule(session, runtime=get_runtime(request), user=user, draft=draft,
                                   ip=client_ip(request))
    except compose.ComposeInvalid as exc:
        session.rollback()
        ctx = _compose_context(request, session, user, draft.character_id if draft else None, draft, exc.preview)
        ctx["error"] = exc.message
        return render(request, "publishing/compose.html", ctx, user=user, status_code=422)
    except AppError as exc:
        session.rollback()
        cid = draft.character_id if draft else None
        ctx = _compose_context(request, session, user, cid, draft, None)
        ctx["error"] = exc.message
        return render(request, "publishing/compose.html", ctx, user=user, status_code=exc.status_code)
    session.commit()
    return redirect(_with("/publications", character=draft.character_id, done="scheduled", n=len(created)))


# ---- publications -----------------------------------------------------------------------------------------


@router.get("/publications", response_class=HTMLResponse)
def read_publications_page(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Publications with filters (status, character, account)."""
    qp = request.query_params
    params = {k: qp.get(k, "") for k in ("status", "character", "account", "page")}
    error = qp.get("error", "")
    try:
        statuses = [PublicationStatus(params["status"])] if params["status"] else []
    except ValueError:
        statuses, error = [], f"Unknown status {params['status']!r}."
    try:
        character_id = _int(params["character"], "character")
        account_id = _int(params["account"], "account")
        page_no = max(1, _int(params["page"], "page") or 1)
    except AppError as exc:
        character_id = account_id = None
        page_no, error = 1, exc.message
    rows, total = publishing.list_publications(session, user=user, statuses=statuses, character_id=character_id,
                                               account_id=account_id, limit=PER_PAGE,
                                               offset=(page_no - 1) * PER_PAGE)
    account_rows = accounts.list_accounts(session, user=user, character_id=character_id)
    chars = _characters(session, user)
    ctx = {
        "active": "publications", "rows": rows, "total": total, "params": params, "page_no": page_no,
        "pages": max(1, (total + PER_PAGE - 1) // PER_PAGE), "characters": chars,
        "character_names": {c.id: c.name for c in chars},
        "accounts": account_rows, "account_map": {a.id: a for a in account_rows} | {
            a.id: a for a in session.scalars(select(SocialAccount).where(
                SocialAccount.id.in_({p.account_id for p in rows})))},
        "statuses": list(STATUS_LABELS), "notice": _notice(request), "error": error,
        "platform_name": _platform_name, "needs_person": publishing.needs_person, **_helpers(user),
    }
    return render(request, "publishing/publications.html", ctx, user=user)


@router.get("/publications/{publication_id}", response_class=HTMLResponse)
def read_publication_page(publication_id: int, request: Request, session: SessionDep,
                          user: CurrentUser) -> HTMLResponse:
    """One publication: state, events timeline, the platform's message, one-click actions."""
    pub = publishing.get_publication(session, publication_id, user=user)
    account = session.get(SocialAccount, pub.account_id)
    character = session.get(Character, pub.character_id)
    ctx = {
        "active": "publications", "pub": pub, "account": account, "character": character,
        "platform_name": _platform_name(account.platform) if account else "",
        "events": publishing.events_of(session, pub), "actions": publishing.allowed_actions(pub),
        "needs_person": publishing.needs_person(pub), "notice": _notice(request),
        "error": request.query_params.get("error", ""), "timezone": _zone(user).key,
        "default_local": compose.default_local_time(_zone(user).key), **_helpers(user),
    }
    return render(request, "publishing/publication.html", ctx, user=user)


@router.post("/publications/{publication_id}/{action}")
def create_publication_action(publication_id: int, action: str, request: Request, session: SessionDep,
                              user: CurrentUser, form: Form) -> Response:
    """Retry, cancel, reschedule or mark published (only what ``allowed_actions`` offers)."""
    back = f"/publications/{publication_id}"
    action = action.replace("-", "_")
    try:
        pub = publishing.get_publication(session, publication_id, user=user)
        if action not in publishing.allowed_actions(pub):
            raise InvalidInput(f"“{action.replace('_', ' ')}” is not possible while the publication is "
                               f"{STATUS_LABELS.get(pub.status.value, pub.status.value).lower()}.", field="action")
        if action == "retry":
            publishing.retry(session, user=user, pub=pub)
        elif action == "cancel":
            publishing.cancel(session, user=user, pub=pub)
        elif action == "reschedule":
            when = compose.parse_when(publish_now=False, local_time=_text(form, "scheduled_local"),
                                      timezone=_text(form, "timezone") or _zone(user).key)
            assert when is not None  # noqa: S101 - publish_now=False always yields a time
            publishing.reschedule(session, user=user, pub=pub, scheduled_at=when)
        else:
            publishing.mark_published(session, user=user, pub=pub, url=_text(form, "url"),
                                      platform_post_id=_text(form, "platform_post_id"))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, done=action))

