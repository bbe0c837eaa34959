"""Posts: create and edit drafts, move them through review, schedule them, comment on them.

The state machine lives in :data:`TRANSITIONS` (action → states it may start from → state it ends
in). Every change is a conditional move plus a ``post_events`` row in the caller's transaction.
Scheduling turns the post into a :class:`compose.Draft` and goes through ``compose.schedule`` (the
same validation and the same ``publishing.create_publications`` as the Compose page); the post
keeps only asset ids. A scheduled post becomes ``published`` once every publication of its group
is published (:func:`sync_published`, run whenever posts are read for a page or the dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ainfluencer.db.models import Character, GeneratedText, User, utcnow
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.errors import AppError, Conflict, InvalidInput, NotFound
from ainfluencer.posts.models import Post, PostComment, PostEvent, PostStatus
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, compose, vault
from ainfluencer.services.auth import audit

S = PostStatus
MAX_TEXT = 70_000
MAX_COMMENT = 5_000
MAX_BULK = 200
EDITABLE = frozenset({S.draft, S.in_review, S.changes_requested, S.approved})
VARIANT_KEYS = frozenset({"text", "title", "first_comment", "asset_ids", "alt_texts"})

# action -> (states it may start from, state it ends in)
TRANSITIONS: dict[str, tuple[frozenset[PostStatus], PostStatus]] = {
    "submit": (frozenset({S.draft, S.changes_requested}), S.in_review),
    "approve": (frozenset({S.in_review}), S.approved),
    "request_changes": (frozenset({S.in_review, S.approved}), S.changes_requested),
    "reject": (frozenset({S.in_review, S.changes_requested, S.approved}), S.rejected),
    "reopen": (frozenset({S.rejected}), S.draft),
    "schedule": (frozenset({S.approved}), S.scheduled),
}
ACTION_LABELS = {
    "submit": "Submit for review", "approve": "Approve", "request_changes": "Request changes",
    "reject": "Reject", "reopen": "Reopen as draft", "schedule": "Schedule",
}
STATUS_LABELS = {
    "draft": "Draft", "in_review": "In review", "changes_requested": "Changes requested", "approved": "Approved",
    "rejected": "Rejected", "scheduled": "Scheduled", "published": "Published",
}


@dataclass
class PostInput:
    """The fields of a post a person or a rule sets; ``None`` leaves a field as it is (on update)."""

    text: str | None = None
    title: str | None = None
    first_comment: str | None = None
    variants: dict[str, dict[str, Any]] | None = None
    asset_ids: list[int] | None = None
    alt_texts: dict[int, str] | None = None
    account_ids: list[int] | None = None
    scheduled_at: datetime | None = None
    clear_scheduled_at: bool = False
    timezone: str | None = None
    require_alt_text: bool | None = None


@dataclass
class BulkResult:
    """What a bulk action did to each post."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


# ---- reading ----------------------------------------------------------------------------------------


def visible(user: User) -> Any:
    """SQL condition: posts of characters the user may see (join Character first)."""
    return accounts.visible_characters(user)


def get_post(session: Session, post_id: int, *, user: User) -> Post:
    """One post the user may see, or NotFound (another user's post is not found either)."""
    post = session.get(Post, post_id)
    if post is None:
        raise NotFound(f"No post with id {post_id}.")
    character = session.get(Character, post.character_id)
    if character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No post with id {post_id}.")
    return post


def list_posts(session: Session, *, user: User, statuses: list[PostStatus] | None = None,
               character_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[list[Post], int]:
    """Posts the user may see, newest change first, with the total count."""
    q = select(Post).join(Character, Character.id == Post.character_id).where(visible(user))
    if statuses:
        q = q.where(Post.status.in_(statuses))
    if character_id is not None:
        q = q.where(Post.character_id == character_id)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(Post.updated_at.desc(), Post.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def status_counts(session: Session, *, user: User) -> dict[str, int]:
    """How many visible posts are in each state."""
    q = (select(Post.status, func.count()).join(Character, Character.id == Post.character_id)
         .where(visible(user)).group_by(Post.status))
    return {status.value: n for status, n in session.execute(q)}


def events_of(session: Session, post: Post) -> list[PostEvent]:
    """The post's history, oldest first."""
    return list(session.scalars(select(PostEvent).where(PostEvent.post_id == post.id)
                                .order_by(PostEvent.at, PostEvent.id)))


def comments_of(session: Session, post: Post) -> list[PostComment]:
    """Comments on the post, oldest first."""
    return list(session.scalars(select(PostComment).where(PostComment.post_id == post.id)
                                .order_by(PostComment.created_at, PostComment.id)))


def publications_of(session: Session, post: Post) -> list[Publication]:
    """The publications scheduling created (none before)."""
    if not post.group_key:
        return []
    return list(session.scalars(select(Publication).where(Publication.group_key == post.group_key)
                                .order_by(Publication.id)))


def allowed_actions(post: PostStatus | Post) -> list[str]:
    """The actions possible from the post's state, in the order a page shows them."""
    status = post.status if isinstance(post, Post) else post
    return [action for action, (sources, _) in TRANSITIONS.items() if status in sources]


# ---- checking input ----------------------------------------------------------------------------------


def _clean_text(value: str, *, field_name: str, limit: int = MAX_TEXT) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{field_name.replace('_', ' ').capitalize()} is longer than {limit:,} characters.",
                           field=field_name)
    return value


def _clean_accounts(session: Session, user: User, character: Character, ids: list[int]) -> list[int]:
    out: list[int] = []
    for account_id in dict.fromkeys(ids):
        try:
            account = accounts.get_account(session, account_id, user=user)
        except NotFound:
            raise InvalidInput(f"No account with id {account_id}.", field="account_ids") from None
        if account.character_id != character.id:
            raise InvalidInput(f"Account {account.handle or account.id} belongs to another character.",
                               field="account_ids")
        out.append(account.id)
    if len(out) > compose.MAX_TARGETS:
        raise InvalidInput(f"Pick at most {compose.MAX_TARGETS} accounts.", field="account_ids")
    return out


def _clean_assets(session: Session, user: User, character: Character, ids: list[int], where: str) -> list[int]:
    out: list[int] = []
    for asset_id in dict.fromkeys(ids):
        try:
            asset = vault.get_asset(session, asset_id, user=user)
        except NotFound:
            raise InvalidInput(f"No asset with id {asset_id}.", field=where) from None
        if asset.character_id not in (None, character.id):
            raise InvalidInput(f"Asset {asset_id} belongs to another character.", field=where)
        out.append(asset.id)
    return out


def _clean_alt(raw: dict[Any, Any] | None, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        if not str(key).isdigit():
            raise InvalidInput(f"Alt texts are keyed by asset id, not {key!r}.", field=where)
        text = str(value or "").strip()
        if len(text) > 1500:
            raise InvalidInput("An alt text is longer than 1,500 characters.", field=where)
        if text:
            out[str(int(key))] = text
    return out


def _clean_variants(session: Session, user: User, character: Character,
                    raw: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    known = set(accounts.platforms_of(session).names())
    out: dict[str, dict[str, Any]] = {}
    for platform, values in raw.items():
        where = f"variants.{platform}"
        if platform not in known:
            raise InvalidInput(f"Unknown network {platform!r}; use one of {', '.join(sorted(known))}.", field=where)
        if not isinstance(values, dict):
            raise InvalidInput("A variant is an object of text, title, first_comment, asset_ids, alt_texts.",
                               field=where)
        extra = set(values) - VARIANT_KEYS
        if extra:
            raise InvalidInput(f"Unknown variant field(s): {', '.join(sorted(extra))}.", field=where)
        variant: dict[str, Any] = {}
        for key in ("text", "title", "first_comment"):
            value = values.get(key)
            if value:
                variant[key] = _clean_text(str(value), field_name=f"{where}.{key}")
        if values.get("asset_ids") is not None:
            variant["asset_ids"] = _clean_assets(session, user, character, list(values["asset_ids"]),
                                                 f"{where}.asset_ids")
        if values.get("alt_texts"):
            variant["alt_texts"] = _clean_alt(values["alt_texts"], f"{where}.alt_texts")
        if variant:
            out[platform] = variant
    return out


def _clean_zone(name: str) -> str:
    try:
        return ZoneInfo((name or "UTC").strip()).key
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {name!r}; use a name like Europe/Berlin.", field="timezone") from None


def _apply(session: Session, user: User, character: Character, post: Post, data: PostInput) -> bool:
    """Write the given fields onto ``post``; True when anything changed."""
    before = _snapshot(post)
    if data.text is not None:
        post.text = _clean_text(data.text, field_name="text")
    if data.title is not None:
        post.title = _clean_text(data.title, field_name="title", limit=200)
    if data.first_comment is not None:
        post.first_comment = _clean_text(data.first_comment, field_name="first_comment", limit=5000)
    if data.variants is not None:
        post.variants = _clean_variants(session, user, character, data.variants)
    if data.asset_ids is not None:
        post.asset_ids = _clean_assets(session, user, character, data.asset_ids, "asset_ids")
    if data.alt_texts is not None:
        post.alt_texts = _clean_alt(data.alt_texts, "alt_texts")
    if data.account_ids is not None:
        post.account_ids = _clean_accounts(session, user, character, data.account_ids)
    if data.timezone is not None:
        post.timezone = _clean_zone(data.timezone)
    if data.clear_scheduled_at:
        post.scheduled_at = None
    elif data.scheduled_at is not None:
        if data.scheduled_at.tzinfo is None:
            raise InvalidInput("Give the time with its UTC offset, e.g. 2030-01-31T14:00:00+01:00.",
                               field="scheduled_at")
        post.scheduled_at = data.scheduled_at
    if data.require_alt_text is not None:
        post.require_alt_text = data.require_alt_text
    return _snapshot(post) != before


def _snapshot(post: Post) -> tuple[Any, ...]:
    return (post.text, post.title, post.first_comment, post.variants, list(post.asset_ids or []),
            dict(post.alt_texts or {}), list(post.account_ids or []), post.scheduled_at, post.timezone,
            post.require_alt_text)


# ---- changing -----------------------------------------------------------------------------------------


def _event(session: Session, post: Post, action: str, from_status: str, to_status: str, *, user: User | None,
           actor: str = "", note: str = "") -> PostEvent:
    event = PostEvent(post_id=post.id, action=action, from_status=from_status, to_status=to_status,
                      actor_id=user.id if user else None, actor=actor or (f"user:{user.id}" if user else "system"),
                      note=note, at=utcnow())
    session.add(event)
    return event


def create_post(session: Session, *, user: User, character_id: int, data: PostInput, submit: bool = False,
                source: str = "manual", generated_text_id: int | None = None, automation_run_id: int | None = None,
                actor: str = "", ip: str = "") -> Post:
    """A new draft (or, with ``submit``, a post already in review) for one of the user's characters."""
    character = accounts.get_character(session, character_id, user=user)
    post = Post(character_id=character.id, status=S.draft, text="", title="", first_comment="", variants={},
                asset_ids=[], alt_texts={}, account_ids=[], timezone=user.timezone or "UTC", source=source,
                generated_text_id=generated_text_id, automation_run_id=automation_run_id, group_key="",
                require_alt_text=True, created_by=user.id)
    _apply(session, user, character, post, data)
    session.add(post)
    session.flush()
    _event(session, post, "create", "", S.draft.value, user=user, actor=actor)
    if submit:
        _move(session, post, "submit", user=user, actor=actor)
    audit(session, "post.create", user_id=user.id, ip=ip, post=post.id, source=source)
    session.flush()
    return post


def update_post(session: Session, *, user: User, post: Post, data: PostInput, review_after_edit: bool = True,
                ip: str = "") -> Post:
    """Edit a post that is not scheduled yet.

    An approved post that changes goes back to review when ``review_after_edit`` (the
    ``posts_review_after_edit`` setting) is on.
    """
    if post.status not in EDITABLE:
        raise Conflict(f"Post {post.id} is {STATUS_LABELS[post.status.value].lower()}; it can no longer be edited.")
    character = accounts.get_character(session, post.character_id, user=user)
    if not _apply(session, user, character, post, data):
        return post
    post.updated_at = utcnow()
    if post.status == S.approved and review_after_edit:
        _event(session, post, "edit", S.approved.value, S.in_review.value, user=user,
               note="edited after approval; it needs a new approval")
        post.status = S.in_review
    else:
        _event(session, post, "edit", post.status.value, post.status.value, user=user)
    audit(session, "post.update", user_id=user.id, ip=ip, post=post.id)
    session.flush()
    return post


def _move(session: Session, post: Post, action: str, *, user: User | None, actor: str = "", note: str = "") -> None:
    sources, target = TRANSITIONS[action]
    if post.status not in sources:
        raise Conflict(f"“{ACTION_LABELS[action]}” is not possible while post {post.id} is "
                       f"{STATUS_LABELS[post.status.value].lower()}.", field="action")
    before = post.status.value
    post.status = target
    post.updated_at = utcnow()
    _event(session, post, action, before, target.value, user=user, actor=actor, note=note)


def transition(session: Session, *, user: User, post: Post, action: str, note: str = "", ip: str = "") -> Post:
    """Submit, approve, request changes, reject or reopen (``schedule`` goes through :func:`schedule_post`)."""
    if action not in TRANSITIONS or action == "schedule":
        raise InvalidInput(f"Unknown action {action!r}; use one of "
                           f"{', '.join(a for a in TRANSITIONS if a != 'schedule')} or schedule.", field="action")
    note = _clean_text(note.strip(), field_name="note", limit=MAX_COMMENT)
    if action == "request_changes" and not note:
        raise InvalidInput("Say what should change, so the writer knows.", field="note")
    _move(session, post, action, user=user, note=note)
    if note:
        session.add(PostComment(post_id=post.id, user_id=user.id, body=note, created_at=utcnow()))
    audit(session, f"post.{action}", user_id=user.id, ip=ip, post=post.id)
    session.flush()
    return post


def draft_of(post: Post) -> compose.Draft:
    """The post as Compose's :class:`compose.Draft` (what preview and scheduling read)."""
    variants = {
        platform: compose.Variant(
            text=v.get("text") or None, title=v.get("title") or None, first_comment=v.get("first_comment") or None,
            asset_ids=list(v["asset_ids"]) if v.get("asset_ids") is not None else None,
            alt_texts={int(k): t for k, t in (v.get("alt_texts") or {}).items()},
        ) for platform, v in (post.variants or {}).items()
    }
    local = ""
    if post.scheduled_at is not None:
        local = post.scheduled_at.astimezone(ZoneInfo(post.timezone or "UTC")).strftime("%Y-%m-%dT%H:%M")
    return compose.Draft(
        account_ids=list(post.account_ids or []), text=post.text, title=post.title, first_comment=post.first_comment,
        asset_ids=list(post.asset_ids or []), alt_texts={int(k): t for k, t in (post.alt_texts or {}).items()},
        variants=variants, publish_now=post.scheduled_at is None, local_time=local,
        timezone=post.timezone or "UTC", character_id=post.character_id, require_alt_text=post.require_alt_text,
    )


def preview_post(session: Session, *, runtime: Runtime, user: User, post: Post) -> compose.Preview:
    """Every target's network preview and problems (no side effects)."""
    return compose.preview(session, runtime=runtime, user=user, draft=draft_of(post))


def schedule_post(session: Session, *, runtime: Runtime, user: User, post: Post, ip: str = "",
                  now: datetime | None = None) -> list[Publication]:
    """Create the publications of an approved post (all targets or none) and mark it scheduled."""
    sources, _ = TRANSITIONS["schedule"]
    if post.status not in sources:
        raise Conflict(f"Only approved posts are scheduled; post {post.id} is "
                       f"{STATUS_LABELS[post.status.value].lower()}.", field="action")
    created = compose.schedule(session, runtime=runtime, user=user, draft=draft_of(post), ip=ip, now=now)
    post.group_key = created[0].group_key if created else ""
    when = created[0].scheduled_at if created else None
    _move(session, post, "schedule", user=user,
          note=f"{len(created)} publication{'s' if len(created) != 1 else ''}" +
               (f" at {when:%Y-%m-%d %H:%M} UTC" if when else ""))
    audit(session, "post.schedule", user_id=user.id, ip=ip, post=post.id, publications=[p.id for p in created])
    session.flush()
    return created


def sync_published(session: Session, posts: list[Post]) -> int:
    """Mark scheduled posts whose every publication is published as published; returns how many moved."""
    moved = 0
    for post in posts:
        if post.status != S.scheduled or not post.group_key:
            continue
        statuses = list(session.scalars(select(Publication.status).where(Publication.group_key == post.group_key)))
        if statuses and all(s == PublicationStatus.published for s in statuses):
            _move_published(session, post)
            moved += 1
    if moved:
        session.flush()
    return moved


def _move_published(session: Session, post: Post) -> None:
    post.status = S.published
    post.updated_at = utcnow()
    _event(session, post, "published", S.scheduled.value, S.published.value, user=None, actor="system",
           note="every publication is out")


def sync_all_published(session: Session) -> int:
    """:func:`sync_published` over every scheduled post (the dashboard calls it before reading)."""
    return sync_published(session, list(session.scalars(select(Post).where(Post.status == S.scheduled))))


def add_comment(session: Session, *, user: User, post: Post, body: str) -> PostComment:
    """A comment on the post."""
    text = body.strip()
    if not text:
        raise InvalidInput("Write a comment first.", field="body")
    comment = PostComment(post_id=post.id, user_id=user.id, body=_clean_text(text, field_name="body",
                                                                               limit=MAX_COMMENT),
                          created_at=utcnow())
    session.add(comment)
    session.flush()
    return comment


def bulk(session: Session, *, runtime: Runtime, user: User, ids: list[int], action: str, note: str = "",
         review_after_edit: bool = True, ip: str = "") -> BulkResult:
    """Apply one action to many posts; each post succeeds or is refused on its own (a savepoint each)."""
    if action not in TRANSITIONS:
        raise InvalidInput(f"Unknown action {action!r}.", field="action")
    if not ids:
        raise InvalidInput("Pick at least one post.", field="ids")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"Pick at most {MAX_BULK} posts at once.", field="ids")
    result = BulkResult()
    for post_id in dict.fromkeys(ids):
        try:
            with session.begin_nested():
                post = get_post(session, post_id, user=user)
                if action == "schedule":
                    schedule_post(session, runtime=runtime, user=user, post=post, ip=ip)
                else:
                    transition(session, user=user, post=post, action=action, note=note, ip=ip)
        except AppError as exc:
            result.refused[post_id] = exc.message
        else:
            result.done.append(post_id)
    return result


def post_from_text(session: Session, *, user: User, generated_text_id: int, ip: str = "") -> Post:
    """A draft holding a written text, aimed at the character's accounts on the network it was written for."""
    row = session.get(GeneratedText, generated_text_id)
    character = session.get(Character, row.character_id) if row is not None else None
    if row is None or character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No written text with id {generated_text_id}.", field="generated_text_id")
    targets = [a.id for a in accounts.list_accounts(session, user=user, character_id=character.id,
                                                    include_disconnected=False) if a.platform == row.platform]
    text = "\n\n".join(row.parts) if row.parts else row.text
    return create_post(session, user=user, character_id=character.id, source="writing",
                       generated_text_id=row.id, data=PostInput(text=text, account_ids=targets), ip=ip)


def targets_of(session: Session, post: Post) -> list[SocialAccount]:
    """The post's accounts that still exist."""
    if not post.account_ids:
        return []
    found = {a.id: a for a in session.scalars(select(SocialAccount).where(SocialAccount.id.in_(post.account_ids)))}
    return [found[i] for i in post.account_ids if i in found]
