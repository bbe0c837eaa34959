"""Post pages: the Review page, the posts list, one post with its history and comments, form endpoints.

Compose and the writing results post to these forms. Thin: every change goes through ``posts.service``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.db.models import Character, User
from ainfluencer.db.models_media import Asset
from ainfluencer.db.models_publishing import SocialAccount
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.posts import service as svc
from ainfluencer.posts.dashboard import avatars
from ainfluencer.posts.models import Post, PostStatus
from ainfluencer.services import accounts, compose
from ainfluencer.web.forms import Form
from ainfluencer.web.routes import CurrentUser, redirect, render, safe_next

router = APIRouter()
PER_PAGE = 30
BADGES = {"draft": "queued", "in_review": "running", "changes_requested": "retry", "approved": "ok",
          "rejected": "down", "scheduled": "accent", "published": "ok"}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _ints(values: list[Any], field: str) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, str) and v.strip():
            if not v.strip().isdigit():
                raise InvalidInput(f"{v!r} is not an id.", field=field)
            out.append(int(v))
    return out


def _with(url: str, **params: Any) -> str:
    clean = {k: v for k, v in params.items() if v not in (None, "")}
    if not clean:
        return url
    path, _, fragment = url.partition("#")
    joined = path + ("&" if "?" in path else "?") + urlencode(clean)
    return joined + (f"#{fragment}" if fragment else "")


def _local(user: User) -> Any:
    try:
        zone = ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def fmt(value: datetime | None) -> str:
        if value is None:
            return ""
        return value.astimezone(zone).strftime("%a %d %b %H:%M ") + zone.key

    return fmt


def page_helpers(session: Session, user: User) -> dict[str, Any]:
    """Formatting helpers post templates share; networks are named from the session's runtime registry."""
    registry = accounts.platforms_of(session)

    def platform_name(platform: str) -> str:
        try:
            return accounts.known_platform(platform, registry).display_name
        except AppError:
            return platform

    return {"local": _local(user), "post_labels": svc.STATUS_LABELS, "post_badges": BADGES,
            "action_labels": svc.ACTION_LABELS, "platform_name": platform_name}


def _cards(session: Session, request: Request, user: User, rows: list[Post], *,
           with_preview: bool) -> list[dict[str, Any]]:
    """What a post card shows: character, avatar, accounts, media, and (on Review) each network's preview."""
    runtime = get_runtime(request)
    chars = {c.id: c for c in session.scalars(select(Character).where(
        Character.id.in_({p.character_id for p in rows})))}
    faces = avatars(session, list(chars))
    out = []
    for post in rows:
        media_ids = list(post.asset_ids or [])
        media = list(session.scalars(select(Asset).where(Asset.id.in_(media_ids)))) if media_ids else []
        preview = svc.preview_post(session, runtime=runtime, user=user, post=post) if with_preview else None
        out.append({"post": post, "character": chars.get(post.character_id),
                    "avatar": faces.get(post.character_id), "targets": svc.targets_of(session, post),
                    "media": media, "preview": preview, "actions": svc.allowed_actions(post)})
    return out


def _characters(session: Session, user: User) -> list[Character]:
    return list(session.scalars(select(Character).where(accounts.visible_characters(user)).order_by(Character.name)))


# ---- review ---------------------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def read_review(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Posts waiting for review, each with its network previews; approve, edit, request changes or reject."""
    qp = request.query_params
    character_id = int(qp["character"]) if qp.get("character", "").isdigit() else None
    rows, total = svc.list_posts(session, user=user, statuses=[PostStatus.in_review], character_id=character_id,
                                 limit=PER_PAGE)
    rows.sort(key=lambda p: p.id)  # oldest first: the queue is worked from the top
    counts = svc.status_counts(session, user=user)
    ctx = {"active": "review", "cards": _cards(session, request, user, rows, with_preview=True), "total": total,
           "characters": _characters(session, user), "character_id": character_id, "counts": counts,
           "notice": qp.get("notice", ""), "error": qp.get("error", ""), **page_helpers(session, user)}
    return render(request, "posts/review.html", ctx, user=user)


# ---- list and detail ---------------------------------------------------------------------------------------


@router.get("/posts", response_class=HTMLResponse)
def read_posts_page(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Every post (drafts, in review, scheduled, published), filtered by state and character."""
    qp = request.query_params
    status_raw = qp.get("status", "")
    error = ""
    try:
        statuses = [PostStatus(status_raw)] if status_raw else []
    except ValueError:
        statuses, error = [], f"Unknown state {status_raw!r}."
    character_id = int(qp["character"]) if qp.get("character", "").isdigit() else None
    rows, total = svc.list_posts(session, user=user, statuses=statuses, character_id=character_id,
                                 limit=PER_PAGE * 2)
    if svc.sync_published(session, rows):
        session.commit()
    ctx = {"active": "posts", "cards": _cards(session, request, user, rows, with_preview=False), "total": total,
           "characters": _characters(session, user), "character_id": character_id, "status": status_raw,
           "statuses": list(svc.STATUS_LABELS), "counts": svc.status_counts(session, user=user),
           "notice": qp.get("notice", ""), "error": error, **page_helpers(session, user)}
    return render(request, "posts/list.html", ctx, user=user)


@router.get("/posts/{post_id}", response_class=HTMLResponse)
def read_post_page(post_id: int, request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """One post: previews, who did what and when, comments, and the next steps."""
    post = svc.get_post(session, post_id, user=user)
    if svc.sync_published(session, [post]):
        session.commit()
    card = _cards(session, request, user, [post], with_preview=post.status not in (
        PostStatus.scheduled, PostStatus.published))[0]
    events = svc.events_of(session, post)
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(
        {e.actor_id for e in events if e.actor_id} | {c.user_id for c in svc.comments_of(session, post)
                                                        if c.user_id})))}
    pubs = svc.publications_of(session, post)
    pub_accounts = {a.id: a for a in session.scalars(select(SocialAccount).where(
        SocialAccount.id.in_({p.account_id for p in pubs})))}
    ctx = {"active": "posts", "card": card, "post": post, "events": events, "comments": svc.comments_of(session, post),
           "people": people, "publications": pubs, "pub_accounts": pub_accounts,
           "notice": request.query_params.get("notice", ""), "error": request.query_params.get("error", ""),
           **page_helpers(session, user)}
    return render(request, "posts/detail.html", ctx, user=user)


# ---- changes --------------------------------------------------------------------------------------------


def input_from_compose(form: FormData, *, user: User) -> tuple[int | None, svc.PostInput]:
    """The Compose form as post fields (the character id, then the fields)."""
    from ainfluencer.web.publishing import draft_from_form

    draft = draft_from_form(form, user=user)
    when = compose.parse_when(publish_now=draft.publish_now, local_time=draft.local_time, timezone=draft.timezone)
    variants: dict[str, dict[str, Any]] = {}
    for platform, v in draft.variants.items():
        values: dict[str, Any] = {k: getattr(v, k) for k in ("text", "title", "first_comment") if getattr(v, k)}
        if v.asset_ids is not None:
            values["asset_ids"] = v.asset_ids
        if v.alt_texts:
            values["alt_texts"] = v.alt_texts
        if values:
            variants[platform] = values
    return draft.character_id, svc.PostInput(
        text=draft.text, title=draft.title, first_comment=draft.first_comment, variants=variants,
        asset_ids=draft.asset_ids, alt_texts=draft.alt_texts, account_ids=draft.account_ids, scheduled_at=when,
        clear_scheduled_at=when is None, timezone=draft.timezone, require_alt_text=draft.require_alt_text,
    )


@router.post("/posts/save", response_class=HTMLResponse)
def create_post_from_compose(request: Request, session: SessionDep, user: CurrentUser,
                             form: Form) -> Response:
    """Save the Compose form as a draft (or send it to review); a ``post_id`` field edits that post."""
    intent = _text(form, "intent") or "draft"
    post_id = int(_text(form, "post_id")) if _text(form, "post_id").isdigit() else None
    settings = get_runtime(request).settings
    try:
        character_id, data = input_from_compose(form, user=user)
        if post_id is not None:
            post = svc.get_post(session, post_id, user=user)
            svc.update_post(session, user=user, post=post, data=data,
                            review_after_edit=settings.posts_review_after_edit, ip=client_ip(request))
        else:
            if character_id is None:
                raise InvalidInput("Choose a character first.", field="character_id")
            post = svc.create_post(session, user=user, character_id=character_id, data=data, ip=client_ip(request))
        if intent == "review" and post.status in svc.TRANSITIONS["submit"][0]:
            svc.transition(session, user=user, post=post, action="submit", ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        back = _with("/compose", character=_text(form, "character_id"), post=post_id, error=exc.message)
        return redirect(back)
    session.commit()
    notice = "Sent to review." if post.status == PostStatus.in_review else "Draft saved."
    return redirect(_with(f"/posts/{post.id}", notice=notice))


@router.post("/posts/from-text/{generated_text_id}")
def create_post_from_text(generated_text_id: int, request: Request, session: SessionDep,
                          user: CurrentUser) -> Response:
    """“Use in a post”: a draft holding a written text, opened in Compose."""
    post = svc.post_from_text(session, user=user, generated_text_id=generated_text_id, ip=client_ip(request))
    session.commit()
    return redirect(_with("/compose", post=post.id))


@router.post("/posts/bulk")
def create_posts_bulk_page(request: Request, session: SessionDep, user: CurrentUser,
                           form: Form) -> Response:
    """Approve, reject or request changes on the ticked posts of the Review page."""
    back = safe_next(_text(form, "next"), "/review")
    try:
        ids = _ints(form.getlist("ids"), "ids")
        result = svc.bulk(session, runtime=get_runtime(request), user=user, ids=ids,
                          action=_text(form, "action"), note=_text(form, "note"), ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    label = svc.ACTION_LABELS.get(_text(form, "action"), "Done").lower()
    notice = f"{label.capitalize()}: {len(result.done)} post{'s' if len(result.done) != 1 else ''}."
    if result.refused:
        notice += " Not possible for " + "; ".join(f"#{k}: {v}" for k, v in result.refused.items())
    return redirect(_with(back, notice=notice))


@router.post("/posts/{post_id}/comments")
def create_post_comment_page(post_id: int, request: Request, session: SessionDep, user: CurrentUser,
                             form: Form) -> Response:
    """Add a comment to a post."""
    post = svc.get_post(session, post_id, user=user)
    try:
        svc.add_comment(session, user=user, post=post, body=_text(form, "body"))
    except AppError as exc:
        session.rollback()
        return redirect(_with(f"/posts/{post_id}", error=exc.message) + "#comments")
    session.commit()
    return redirect(f"/posts/{post_id}#comments")


@router.post("/posts/{post_id}/do/{action}")
def create_post_step(post_id: int, action: str, request: Request, session: SessionDep, user: CurrentUser,
                     form: Form) -> Response:
    """One review step, or scheduling an approved post (which creates its publications)."""
    back = safe_next(_text(form, "next"), f"/posts/{post_id}")
    action = action.replace("-", "_")
    try:
        post = svc.get_post(session, post_id, user=user)
        if action == "schedule":
            created = svc.schedule_post(session, runtime=get_runtime(request), user=user, post=post,
                                        ip=client_ip(request))
            notice = f"Scheduled: {len(created)} publication{'s' if len(created) != 1 else ''} queued."
        else:
            svc.transition(session, user=user, post=post, action=action, note=_text(form, "note"),
                           ip=client_ip(request))
            notice = f"{svc.ACTION_LABELS.get(action, action)}: post #{post.id} is now " \
                     f"{svc.STATUS_LABELS[post.status.value].lower()}."
    except AppError as exc:
        session.rollback()
        return redirect(_with(back, error=exc.message))
    session.commit()
    return redirect(_with(back, notice=notice))
