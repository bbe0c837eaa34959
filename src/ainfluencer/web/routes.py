"""Web pages (Jinja2 + htmx): thin handlers over the services, plus the live job feed (SSE)."""

from __future__ import annotations

import importlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import anyio
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ainfluencer import __version__
from ainfluencer.api.deps import SESSION_COOKIE, SessionDep, client_ip, get_runtime
from ainfluencer.api.routes.ops import readiness
from ainfluencer.config import describe_sources
from ainfluencer.csrf import CSRF_COOKIE, csrf_protect, csrf_token_for
from ainfluencer.db.models import AuditLog, Job, JobStatus, OneTimeToken, OutboxMessage, User, utcnow
from ainfluencer.errors import AppError, AuthRequired, InvalidInput, PermissionDenied, RateLimited
from ainfluencer.jobs import queue
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth
from ainfluencer.services.mail import queue_mail

APP_NAME = "AInfluencer"
RECENT_JOBS = 12
SSE_POLL_SECONDS = 0.75
SSE_PING_SECONDS = 15.0
SSE_RECHECK_SESSION_SECONDS = 60.0
RESEND_COOLDOWN = timedelta(seconds=60)
SELFTEST_PAYLOAD = {"steps": 10, "step_seconds": 0.5}
_URL_RE = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class NavItem:
    """One entry of the signed-in navigation; ``ready`` is False while the feature is being built."""

    key: str
    label: str
    href: str
    ready: bool
    group: str = ""


# Grouped by what a creator does: make, publish, look after. The group label is shown above its first item.
NAV_ITEMS = (
    NavItem("dashboard", "Dashboard", "/dashboard", True),
    NavItem("compose", "Compose", "/compose", True, "Create"),
    NavItem("characters", "Characters", "/characters", True, "Create"),
    NavItem("studio", "Studio", "/studio", True, "Create"),
    NavItem("vault", "Vault", "/vault", True, "Create"),
    NavItem("review", "Review", "/review", True, "Publish"),
    NavItem("posts", "Posts", "/posts", True, "Publish"),
    NavItem("calendar", "Calendar", "/calendar", True, "Publish"),
    NavItem("publications", "Publications", "/publications", True, "Publish"),
    NavItem("rules", "Rules", "/automation", True, "Publish"),
    NavItem("accounts", "Accounts", "/accounts", True, "Publish"),
    NavItem("inbox", "Inbox", "/inbox", False, "Engage"),
    NavItem("analytics", "Analytics", "/analytics", False, "Engage"),
    NavItem("academy", "Academy", "/academy", True, "Engage"),
    NavItem("settings", "Settings", "/settings", True, "Engage"),
)

# What each feature will do, said plainly, for its "coming soon" page and the landing page.
COMING_SOON: dict[str, dict[str, Any]] = {
    "characters": {
        "title": "Characters",
        "lead": "Design openly virtual characters: who they are, how they look and how they speak.",
        "points": [
            "Profile and persona: traits on a 0.0-1.0 scale, tone, topics, do and don't lists.",
            "A synthetic canonical face generated inside the platform; physical attributes and styles feed "
            "every prompt.",
            "Templates to start from, a live preview, and export as JSON or as prompt text.",
            "Every public profile carries a disclosure line (\"Virtual character · AI-generated content\") by "
            "default.",
        ],
    },
    "studio": {
        "title": "Studio",
        "lead": "Generate a character's content with the models you choose, local or paid.",
        "points": [
            "Images through ComfyUI, Automatic1111/Forge, in-process diffusers or OpenAI Images, with a "
            "face-consistency score on every image.",
            "Captions and hashtags through Ollama, any OpenAI-compatible server, Anthropic or OpenAI, with "
            "offline persona templates as the always-available fallback.",
            "Voice through Piper and other local text-to-speech, or ElevenLabs.",
            "Short and long videos composed with ffmpeg.",
        ],
    },
    "vault": {
        "title": "Vault",
        "lead": "Every generated or uploaded file, kept with where it came from.",
        "points": [
            "Each asset stored with its prompt, model, seed, scores and provenance.",
            "Tags, folders, search and batch download.",
            "An approval workflow: draft, in review, approved or rejected, archived.",
            "Private metadata (GPS, device serials) stripped; AI provenance added (IPTC digital source type, "
            "C2PA where configured).",
        ],
    },
    "calendar": {
        "title": "Calendar",
        "lead": "Plan and schedule approved posts through each network's official API.",
        "points": [
            "Telegram, X, Facebook Pages, Instagram, YouTube, Mastodon and Bluesky.",
            "Drag-and-drop scheduling across time zones, with conflict detection.",
            "Best-time suggestions from the account's own analytics.",
            "Rules with cron and event triggers; nothing is published without approval by a person or by a "
            "rule you wrote.",
        ],
    },
    "inbox": {
        "title": "Inbox",
        "lead": "Comments, messages and notifications from every connected account in one place.",
        "points": [
            "Reply drafts in the character's voice that never claim to be human.",
            "Auto-reply only under a policy you set: approval queue by default, caps, quiet hours, a safety "
            "filter and hand-over to a person.",
            "Replies only on the character's own posts; no automated likes, follows or comments elsewhere.",
        ],
    },
    "analytics": {
        "title": "Analytics",
        "lead": "How each post, account, character and platform is doing.",
        "points": [
            "Followers, reach and engagement over time, with charts.",
            "Comparisons per post, account, character and platform.",
            "The data behind the Calendar's best-time suggestions.",
        ],
    },
    "academy": {
        "title": "Academy",
        "lead": "Short lessons for running virtual characters well and within the rules, each with a quiz and a "
                "link to the page where you do it.",
        "points": [
            "From a template to a first approved post; consistent faces and what the face score means.",
            "Voice and video; publishing on each network through its official API.",
            "Disclosure, platform AI-content labels and AI-transparency law (not legal advice).",
            "Analytics and a weekly routine, running an agency, and lessons the owner writes for the team.",
        ],
    },
}


# ---- template helpers ----------------------------------------------------------------


def fmt_time(value: datetime | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS UTC' (empty for None)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def linkify(text: str) -> Markup:
    """Escape text and turn http(s) URLs into links."""
    out, pos = [], 0
    for match in _URL_RE.finditer(text):
        out.append(escape(text[pos : match.start()]))
        url = escape(match.group(0))
        out.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        pos = match.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _kind_label(platform: str, kind: str) -> str:
    from ainfluencer.services.writing import kind_label

    return kind_label(platform, kind)


def _feed_style(platform: str) -> Any:
    from ainfluencer.posts.preview_style import feed_style

    return feed_style(platform)


def template_globals(runtime: Runtime) -> dict[str, Any]:
    """Values every template can read: app name, version, navigation, formatting helpers."""
    return {
        "app_name": APP_NAME,
        "version": __version__,
        "nav_items": NAV_ITEMS,
        "coming_soon": COMING_SOON,
        "fmt_time": fmt_time,
        "linkify": linkify,
        "kind_label": _kind_label,
        "feed_style": _feed_style,
        "embedded_mail": not runtime.settings.smtp_enabled,
    }


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def _set_csrf_cookie(request: Request, response: Response) -> None:
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="lax", secure=request.url.scheme == "https", path="/"
        )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    user: User | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page with the CSRF token and signed-in user, setting the CSRF cookie when new."""
    ctx: dict[str, Any] = {"user": user, "csrf_token": csrf_token_for(request), "active": ""}
    ctx.update(context or {})
    response = _templates(request).TemplateResponse(
        request, name, ctx, status_code=status_code, headers=headers
    )
    _set_csrf_cookie(request, response)
    return response


def redirect(url: str) -> RedirectResponse:
    """A 303 See Other (the right answer to a form POST)."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/dashboard") -> str:
    """A local path to return to after sign-in; anything else falls back to ``default``."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ch in value for ch in "\r\n\\"):
        return default
    return value


def _base_url(request: Request) -> str:
    runtime = get_runtime(request)
    return (runtime.settings.public_url or str(request.base_url)).rstrip("/")


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _errors(exc: AppError) -> dict[str, str]:
    return {exc.field or "_form": exc.message}


# ---- who is signed in ----------------------------------------------------------------------


def optional_user(request: Request, session: SessionDep) -> User | None:
    """The signed-in user, or None."""
    raw = request.cookies.get(SESSION_COOKIE)
    return auth.user_for_session(session, raw) if raw else None


def require_user(request: Request, user: Annotated[User | None, Depends(optional_user)]) -> User:
    """The signed-in user; otherwise send the browser to the sign-in page and back."""
    if user is not None:
        return user
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login_url = "/login?" + urlencode({"next": target})
    if _is_htmx(request):
        raise HTTPException(status_code=401, detail="Your session ended; sign in again.",
                            headers={"HX-Redirect": login_url})
    raise HTTPException(status_code=303, detail="Sign in to continue.", headers={"Location": login_url})


MaybeUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(require_user)]


def _require_owner(user: User, what: str) -> None:
    if not user.is_owner:
        raise PermissionDenied(f"Only the owner of this installation can {what}.")


# ---- e-mail links ----------------------------------------------------------------------


def _recently_issued(session: Session, user: User, purpose: str) -> bool:
    """True when a link of this purpose went out moments ago (stops mail-bombing an inbox)."""
    since = utcnow() - RESEND_COOLDOWN
    found = session.scalar(
        select(OneTimeToken.id).where(
            OneTimeToken.user_id == user.id, OneTimeToken.purpose == purpose, OneTimeToken.created_at >= since
        ).limit(1)
    )
    return found is not None


def _send_verification(request: Request, session: SessionDep, user: User) -> None:
    runtime = get_runtime(request)
    token = auth.issue_link_token(session, secret=runtime.secret, user=user, purpose="verify")
    link = f"{_base_url(request)}/verify-email?{urlencode({'token': token})}"
    body = (
        f"Hello {user.display_name},\n\n"
        f"Confirm the e-mail address of your {APP_NAME} account by opening this link:\n\n"
        f"{link}\n\n"
        "The link works once and expires in 48 hours.\n"
        "If you did not create this account, ignore this message.\n"
    )
    queue_mail(session, runtime.settings, to=user.email, subject=f"Confirm your {APP_NAME} e-mail address",
               body=body)


def _send_reset(request: Request, session: SessionDep, user: User) -> None:
    runtime = get_runtime(request)
    token = auth.issue_link_token(session, secret=runtime.secret, user=user, purpose="reset")
    link = f"{_base_url(request)}/reset-password?{urlencode({'token': token})}"
    body = (
        f"Hello {user.display_name},\n\n"
        f"Someone asked to reset the password of your {APP_NAME} account. Choose a new one here:\n\n"
        f"{link}\n\n"
        "The link works once and expires in 1 hour.\n"
        "If it was not you, ignore this message; your password stays as it is.\n"
    )
    queue_mail(session, runtime.settings, to=user.email, subject=f"Reset your {APP_NAME} password", body=body)


# ---- jobs snapshot (dashboard and SSE) -------------------------------------------------------


def jobs_snapshot(session: Session, user: User) -> dict[str, Any]:
    """Recent jobs and counts per status for the live jobs panel: the user's own (the owner: all)."""
    jobs, total = queue.list_jobs(session, user=user, limit=RECENT_JOBS)
    return {"jobs": jobs, "total": total, "counts": queue.status_counts(session, user=user)}


def _jobs_signature(runtime: Runtime, user_id: int) -> tuple[Any, ...]:
    with runtime.db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return ()
        row = s.execute(select(func.count(Job.id), func.max(Job.updated_at), func.max(Job.id))
                        .where(queue.visible_jobs(user))).one()
    return tuple(row)


def _render_jobs_fragment(runtime: Runtime, templates: Jinja2Templates, user_id: int) -> str:
    with runtime.db.session() as s:
        user = s.get(User, user_id)
        snapshot = jobs_snapshot(s, user) if user is not None else {
            "jobs": [], "total": 0, "counts": {st.value: 0 for st in JobStatus}}
    return templates.get_template("_jobs_table.html").render(**snapshot)


def _session_user_id(runtime: Runtime, raw: str | None) -> int | None:
    if not raw:
        return None
    with runtime.db.session() as s:
        user = auth.user_for_session(s, raw)
        return user.id if user is not None else None


def dashboard_context(session: Session, user: User) -> dict[str, Any]:
    """What the dashboard body (``_dashboard_live.html``) needs."""
    from ainfluencer.posts.dashboard import board
    from ainfluencer.posts.pages import page_helpers

    return {"board": board(session, user=user), **page_helpers(session, user)}


def _dashboard_signature(runtime: Runtime, user_id: int) -> tuple[Any, ...]:
    from ainfluencer.posts.dashboard import signature

    with runtime.db.session() as s:
        user = s.get(User, user_id)
        return signature(s, user) if user is not None else ()


def _render_dashboard_fragment(runtime: Runtime, templates: Jinja2Templates, user_id: int) -> str:
    with runtime.db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return ""
        ctx = dashboard_context(s, user)
        return templates.get_template("_dashboard_live.html").render(**ctx)


def sse_frame(event: str, data: str) -> str:
    """One server-sent event; every line of ``data`` becomes its own ``data:`` line."""
    lines = data.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


async def job_events(
    request: Request, runtime: Runtime, templates: Jinja2Templates, user_id: int
) -> AsyncIterator[str]:
    """Push the user's jobs panel and the creator's dashboard whenever one of them changes.

    A member sees their own jobs, the owner every job.

    A comment line every 15 s keeps proxies from closing the stream.
    """
    raw_session = request.cookies.get(SESSION_COOKIE)
    last: tuple[Any, ...] | None = None
    last_board: tuple[Any, ...] | None = None
    now = time.monotonic()
    last_sent, last_check = now, now
    yield "retry: 3000\n\n"
    while not await request.is_disconnected():
        signature = await run_in_threadpool(_jobs_signature, runtime, user_id)
        board_sig = await run_in_threadpool(_dashboard_signature, runtime, user_id)
        now = time.monotonic()
        sent = False
        if signature != last:
            html = await run_in_threadpool(_render_jobs_fragment, runtime, templates, user_id)
            last, last_sent, sent = signature, now, True
            yield sse_frame("jobs", html)
        if user_id and board_sig != last_board:
            html = await run_in_threadpool(_render_dashboard_fragment, runtime, templates, user_id)
            last_board, last_sent, sent = board_sig, now, True
            yield sse_frame("dashboard", html)
        if not sent and now - last_sent >= SSE_PING_SECONDS:
            last_sent = now
            yield ": ping\n\n"
        if now - last_check >= SSE_RECHECK_SESSION_SECONDS:
            last_check = now
            if await run_in_threadpool(_session_user_id, runtime, raw_session) != user_id:
                return
        await anyio.sleep(SSE_POLL_SECONDS)


# ---- settings page data ----------------------------------------------------------------


def _audit_rows(session: Session, user: User) -> list[AuditLog]:
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(50)
    if not user.is_owner:
        q = q.where(AuditLog.user_id == user.id)
    return list(session.scalars(q))


def _settings_context(request: Request, session: Session, user: User) -> dict[str, Any]:
    runtime = get_runtime(request)
    settings = runtime.settings
    allowed, reason = auth.signups_allowed(session, settings)
    return {
        "active": "settings",
        "sources": describe_sources(settings),
        "signups_open": allowed,
        "signups_reason": reason,
        "signups_locked": settings.allow_signups is not None,
        "tokens": auth.list_api_tokens(session, user=user),
        "audit": _audit_rows(session, user),
        "now": utcnow(),
        "new_token": None,
        "token_errors": {},
        "token_form": {"name": "", "scopes": ["read"], "expires_days": ""},
    }


# ---- router ---------------------------------------------------------------------------------


def build_web_router() -> APIRouter:
    """Every HTML page, the htmx fragments and the /events stream; CSRF guards every form."""
    router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])
    router.include_router(importlib.import_module("ainfluencer.web.characters").router)  # issue 3: character pages
    router.include_router(importlib.import_module("ainfluencer.web.vault").router)  # issue 4: vault and studio pages
    router.include_router(importlib.import_module("ainfluencer.web.studio_av").router)  # issue 4: voice and video
    router.include_router(importlib.import_module("ainfluencer.web.calendar").router)  # issue 5: calendar
    router.include_router(importlib.import_module("ainfluencer.web.automation").router)  # issue 5: automation rules
    router.include_router(importlib.import_module("ainfluencer.web.publishing").router)  # issue 5: accounts, compose
    router.include_router(importlib.import_module("ainfluencer.posts.pages").router)  # review, posts
    router.include_router(importlib.import_module("ainfluencer.web.networks").router)  # Settings → Networks

    # -- public --------------------------------------------------------------------------

    @router.get("/", response_class=HTMLResponse)
    def read_landing(request: Request, user: MaybeUser) -> HTMLResponse:
        """The public landing page."""
        runtime = get_runtime(request)
        page_url = (runtime.settings.public_url or str(request.base_url)).rstrip("/") + "/"
        return render(request, "landing.html", {"page_url": page_url}, user=user)

    # -- sign-up and e-mail verification ---------------------------------------------------

    @router.get("/signup", response_class=HTMLResponse)
    def read_signup(request: Request, session: SessionDep, user: MaybeUser) -> Response:
        """The sign-up form, or a page saying sign-ups are closed."""
        if user is not None:
            return redirect("/dashboard")
        allowed, reason = auth.signups_allowed(session, get_runtime(request).settings)
        if not allowed:
            return render(request, "signup_closed.html", {"reason": reason})
        first = auth.user_count(session) == 0
        return render(request, "signup.html", {"form": {}, "errors": {}, "first": first})

    @router.post("/signup", response_class=HTMLResponse)
    def create_signup(
        request: Request,
        session: SessionDep,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        display_name: Annotated[str, Form()] = "",
    ) -> Response:
        """Create an account and mail its verification link."""
        settings = get_runtime(request).settings
        allowed, reason = auth.signups_allowed(session, settings)
        if not allowed:
            return render(request, "signup_closed.html", {"reason": reason}, status_code=403)
        first = auth.user_count(session) == 0
        form = {"email": email, "display_name": display_name}
        try:
            new_user = auth.create_user(session, email=email, password=password, display_name=display_name)
        except AppError as exc:
            session.rollback()
            return render(request, "signup.html", {"form": form, "errors": _errors(exc), "first": first},
                          status_code=exc.status_code)
        _send_verification(request, session, new_user)
        session.commit()
        return render(request, "check_inbox.html", {
            "email": new_user.email, "owner": new_user.is_owner,
            "verification_required": settings.require_email_verification,
        })

    @router.get("/verify-email", response_class=HTMLResponse)
    def read_verify_email(request: Request, session: SessionDep, token: str = Query("", max_length=2000)) -> Response:
        """Use a verification link."""
        runtime = get_runtime(request)
        try:
            if not token:
                raise InvalidInput("This verification link is incomplete. Ask for a new one.")
            verified = auth.verify_email(session, secret=runtime.secret, token=token, ip=client_ip(request))
        except AppError as exc:
            session.rollback()
            return render(request, "verify_failed.html", {"message": exc.message}, status_code=400)
        session.commit()
        return render(request, "verify_ok.html", {"email": verified.email})

    @router.post("/verify-email/resend", response_class=HTMLResponse)
    def create_verification_resend(
        request: Request, session: SessionDep, email: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        """Send a new verification link; the answer is the same whether or not the account exists."""
        found = auth.get_user_by_email(session, email)
        if (found is not None and found.is_active and found.email_verified_at is None
                and not _recently_issued(session, found, "verify")):
            _send_verification(request, session, found)
            session.commit()
        return render(request, "link_sent.html", {"kind": "verify"})

    # -- sign-in and sign-out --------------------------------------------------------------

    @router.get("/login", response_class=HTMLResponse)
    def read_login(request: Request, user: MaybeUser, next: str = Query("", max_length=2000)) -> Response:
        """The sign-in form."""
        if user is not None:
            return redirect(safe_next(next))
        return render(request, "login.html", {"form": {}, "next": safe_next(next, ""), "error": None})

    @router.post("/login", response_class=HTMLResponse)
    def create_login(
        request: Request,
        session: SessionDep,
        email: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "",
    ) -> Response:
        """Check credentials, start a browser session, and go on to the dashboard or ``next``."""
        runtime = get_runtime(request)
        settings, ip = runtime.settings, client_ip(request)
        try:
            signed_in = auth.authenticate(session, settings, email=email, password=password, ip=ip)
        except AppError as exc:
            session.rollback()
            headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
            ctx = {"form": {"email": email}, "next": safe_next(next, ""), "error": exc.message,
                   "unverified": exc.code == "email_unverified"}
            return render(request, "login.html", ctx, status_code=exc.status_code, headers=headers)
        raw = auth.create_web_session(
            session, settings, user=signed_in, ip=ip, user_agent=request.headers.get("user-agent", "")
        )
        session.commit()
        response = redirect(safe_next(next))
        response.set_cookie(
            SESSION_COOKIE, raw, max_age=settings.session_days * 86400, httponly=True, samesite="lax",
            secure=request.url.scheme == "https", path="/",
        )
        return response

    @router.post("/logout")
    def create_logout(request: Request, session: SessionDep) -> Response:
        """Sign this browser out."""
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            auth.end_web_session(session, raw, ip=client_ip(request))
            session.commit()
        response = redirect("/")
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")
        return response

    # -- password reset --------------------------------------------------------------------

    @router.get("/forgot-password", response_class=HTMLResponse)
    def read_forgot_password(request: Request) -> HTMLResponse:
        """Ask for a password-reset link."""
        return render(request, "forgot_password.html", {"form": {}})

    @router.post("/forgot-password", response_class=HTMLResponse)
    def create_forgot_password(
        request: Request, session: SessionDep, email: Annotated[str, Form()] = ""
    ) -> HTMLResponse:
        """Mail a reset link when the account exists; the answer never says whether it does."""
        found = auth.get_user_by_email(session, email)
        if found is not None and found.is_active and not _recently_issued(session, found, "reset"):
            _send_reset(request, session, found)
            session.commit()
        return render(request, "link_sent.html", {"kind": "reset"})

    @router.get("/reset-password", response_class=HTMLResponse)
    def read_reset_password(request: Request, token: str = Query("", max_length=2000)) -> HTMLResponse:
        """The new-password form for a reset link."""
        if not token:
            return render(request, "reset_password.html",
                          {"token": "", "errors": {"_form": "This reset link is incomplete. Ask for a new one."},
                           "link_problem": True}, status_code=400)
        return render(request, "reset_password.html", {"token": token, "errors": {}, "link_problem": False})

    @router.post("/reset-password", response_class=HTMLResponse)
    def create_reset_password(
        request: Request,
        session: SessionDep,
        token: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        password_confirm: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        """Set the new password from a reset link."""
        runtime = get_runtime(request)
        if password != password_confirm:
            errors = {"password_confirm": "The two passwords are not the same."}
            return render(request, "reset_password.html", {"token": token, "errors": errors, "link_problem": False},
                          status_code=422)
        try:
            auth.reset_password(session, secret=runtime.secret, token=token, new_password=password,
                                ip=client_ip(request))
        except AppError as exc:
            session.rollback()
            link_problem = exc.field is None
            return render(request, "reset_password.html",
                          {"token": token, "errors": _errors(exc), "link_problem": link_problem},
                          status_code=400 if link_problem else exc.status_code)
        session.commit()
        return render(request, "reset_done.html")

    # -- signed-in shell ---------------------------------------------------------------------

    @router.get("/dashboard", response_class=HTMLResponse)
    def read_dashboard(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """The creator's dashboard: per character what goes out next, what waits for review, what failed."""
        ctx = {"active": "dashboard", **dashboard_context(session, user)}
        session.commit()  # the board may have marked fully published posts as published
        return render(request, "dashboard.html", ctx, user=user)

    @router.get("/settings/operations", response_class=HTMLResponse)
    def read_operations(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """System status (database, worker, scheduler) and the live jobs table."""
        # readiness() opens its own session; end ours first (SQLite transactions take the write lock).
        session.commit()
        ok, checks = readiness(get_runtime(request))
        ctx = {"active": "settings", "ready": ok, "checks": checks, "checked_at": utcnow(),
               **jobs_snapshot(session, user)}
        return render(request, "operations.html", ctx, user=user)

    @router.get("/dashboard/jobs", response_class=HTMLResponse)
    def read_dashboard_jobs(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """The jobs panel alone (htmx refresh and fallback)."""
        return render(request, "_jobs_table.html", jobs_snapshot(session, user), user=user)

    @router.post("/dashboard/selftest", response_class=HTMLResponse)
    def create_selftest(request: Request, session: SessionDep, user: CurrentUser) -> Response:
        """Queue a self-test job whose progress the dashboard shows live."""
        queue.enqueue(session, "selftest", dict(SELFTEST_PAYLOAD), user_id=user.id)
        session.commit()
        if _is_htmx(request):
            return render(request, "_jobs_table.html", jobs_snapshot(session, user), user=user)
        return redirect("/settings/operations")

    @router.get("/events")
    async def read_events(request: Request) -> StreamingResponse:
        """Server-sent events: ``jobs`` (the jobs panel) and ``dashboard`` (the creator's dashboard).

        Each is sent again whenever a job, or a post or publication, changes.
        """
        runtime = get_runtime(request)
        user_id = await run_in_threadpool(_session_user_id, runtime, request.cookies.get(SESSION_COOKIE))
        if user_id is None:
            raise AuthRequired("Sign in to follow live updates.")
        return StreamingResponse(
            job_events(request, runtime, _templates(request), user_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    def read_job(request: Request, job_id: int, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """One job's details (the panel refreshes itself while the job is active)."""
        job = queue.get_job(session, job_id, user=user)
        ctx = {"active": "settings", "job": job,
               "payload_json": json.dumps(job.payload, indent=2, sort_keys=True, default=str),
               "result_json": json.dumps(job.result, indent=2, sort_keys=True, default=str),
               "live": job.status in (JobStatus.queued, JobStatus.running)}
        name = "_job_detail.html" if _is_htmx(request) else "job.html"
        return render(request, name, ctx, user=user)

    @router.post("/jobs/{job_id}/cancel")
    def create_job_cancel(job_id: int, session: SessionDep, user: CurrentUser) -> Response:
        """Cancel a queued or running job."""
        queue.cancel_job(session, queue.get_job(session, job_id, user=user))
        session.commit()
        return redirect(f"/jobs/{job_id}")

    @router.post("/jobs/{job_id}/retry")
    def create_job_retry(job_id: int, session: SessionDep, user: CurrentUser) -> Response:
        """Put a failed or cancelled job back on the queue."""
        queue.retry_job(session, queue.get_job(session, job_id, user=user))
        session.commit()
        return redirect(f"/jobs/{job_id}")

    def _coming_soon(key: str) -> Any:
        def read_page(request: Request, user: CurrentUser) -> HTMLResponse:
            return render(request, "coming_soon.html", {"active": key, "feature": COMING_SOON[key]}, user=user)

        read_page.__name__ = f"read_{key}"
        read_page.__doc__ = f"{COMING_SOON[key]['title']}: what it will do (being built)."
        return read_page

    for item in NAV_ITEMS:
        if item.key in COMING_SOON and not item.ready:
            router.add_api_route(item.href, _coming_soon(item.key), methods=["GET"], response_class=HTMLResponse)

    # -- settings --------------------------------------------------------------------------

    @router.get("/settings", response_class=HTMLResponse)
    def read_settings(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """Configuration with sources, sign-ups, API tokens and the audit log."""
        return render(request, "settings.html", _settings_context(request, session, user), user=user)

    @router.post("/settings/signups")
    def update_signups(
        request: Request, session: SessionDep, user: CurrentUser, enabled: Annotated[str, Form()] = ""
    ) -> Response:
        """Owner opens or closes sign-ups."""
        on = enabled.strip().lower() in ("1", "true", "on", "yes")
        auth.set_signups_allowed(session, get_runtime(request).settings, enabled=on, by=user, ip=client_ip(request))
        session.commit()
        return redirect("/settings#signups")

    @router.post("/settings/tokens", response_class=HTMLResponse)
    def create_settings_token(
        request: Request,
        session: SessionDep,
        user: CurrentUser,
        name: Annotated[str, Form()] = "",
        scopes: Annotated[list[str] | None, Form()] = None,
        expires_days: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        """Create an API token and show its secret this one time."""
        form = {"name": name, "scopes": scopes or [], "expires_days": expires_days}
        try:
            days: int | None = None
            if expires_days.strip():
                try:
                    days = int(expires_days.strip())
                except ValueError:
                    raise InvalidInput("Expiry must be a whole number of days.", field="expires_days") from None
            new = auth.create_api_token(session, user=user, name=name, scopes=scopes or [], expires_days=days,
                                        ip=client_ip(request))
        except AppError as exc:
            session.rollback()
            ctx = _settings_context(request, session, user)
            ctx.update(token_errors=_errors(exc), token_form=form)
            return render(request, "settings.html", ctx, user=user, status_code=exc.status_code)
        session.commit()
        ctx = _settings_context(request, session, user)
        ctx["new_token"] = {"raw": new.raw, "name": new.token.name}
        return render(request, "settings.html", ctx, user=user, headers={"Cache-Control": "no-store"})

    @router.post("/settings/tokens/{token_id}/revoke")
    def create_token_revoke(request: Request, token_id: int, session: SessionDep, user: CurrentUser) -> Response:
        """Revoke one of your API tokens."""
        auth.revoke_api_token(session, user=user, token_id=token_id, ip=client_ip(request))
        session.commit()
        return redirect("/settings#tokens")

    @router.post("/settings/tokens/{token_id}/auto-approve")
    def update_token_auto_approve(
        request: Request, token_id: int, session: SessionDep, user: CurrentUser,
        enabled: Annotated[str, Form()] = "",
    ) -> Response:
        """Owner grants or withdraws a token's auto-approval of what assistants create through MCP."""
        on = enabled.strip().lower() in ("1", "true", "on", "yes")
        auth.set_token_auto_approve(session, by=user, token_id=token_id, enabled=on, with_token=False,
                                    ip=client_ip(request))
        session.commit()
        return redirect("/settings#tokens")

    @router.get("/settings/outbox", response_class=HTMLResponse)
    def read_outbox(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
        """Every e-mail the app sent or queued (owner only)."""
        _require_owner(user, "read the outbox")
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(100)))
        return render(request, "outbox.html", {"active": "settings", "messages": messages}, user=user)

    return router
