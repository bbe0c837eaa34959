"""Publications: validation, scheduling, the crash-safe publish state machine, reconciliation, webhooks.

Transitions (each one a conditional UPDATE plus a ``publication_events`` row, in one transaction):

============  ===========  ==============================================================
from          to           when
============  ===========  ==============================================================
(new)         planned/due  created; ``due`` when scheduled for now
planned/due/  sending      the ``publish`` job claims it; committed *before* the network call
retry_wait
planned/due/  retry_wait   local token bucket empty, or the account is rate limited (no call)
retry_wait
planned/due/  failed       account disconnected / character not active (no call)
retry_wait
sending       published    the network confirmed the post (id and URL stored)
sending       sending      accepted but still processing: ``publish.check`` polls the status
sending       retry_wait   transient error that cannot have created a post (connect error, 4xx
                           such as 429) — backoff, ``Retry-After`` honoured
sending       unknown      the request may have reached the network (timeout, drop, 5xx,
                           unexpected error) or the worker died while sending
sending       failed       permanent refusal (platform message kept); auth refused after one
                           refresh attempt (account -> needs_reconnect); attempts used up
unknown       published    reconcile found the post by marker/text/id
unknown       retry_wait   reconcile: the adapter can prove the post is absent
unknown       unknown      reconcile cannot tell: left for a person (mark published / resend)
failed/       due          one-click retry: new marker generation, fresh attempt budget
unknown
unknown       published    a person marks it published
planned/      planned      reschedule (validated, future only)
retry_wait
planned/due/  cancelled    a person cancels
retry_wait/
failed/unknown
============  ===========  ==============================================================

Never re-sent blindly: a publish job that finds its publication in ``sending`` (its worker died,
the reaper re-queued the job) moves it to ``unknown`` and asks the network first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import mimetypes
import os
import signal
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import ColumnElement, String, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ainfluencer.db.models import Character, CharacterStatus, Job, JobStatus, User, utcnow
from ainfluencer.db.models_publishing import (
    CLAIMABLE,
    AccountStatus,
    Publication,
    PublicationEvent,
    PublicationStatus,
    SocialAccount,
    Webhook,
    WebhookDelivery,
)
from ainfluencer.errors import Conflict, InvalidInput, NotFound
from ainfluencer.jobs.errors import PermanentJobError, TransientJobError
from ainfluencer.jobs.queue import enqueue
from ainfluencer.jobs.retry import RetryPolicy
from ainfluencer.platforms.base import (
    MediaItem,
    MediaKind,
    PlatformAdapter,
    PlatformAuthError,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
    PostRequest,
    PublishResult,
    PublishState,
)
from ainfluencer.platforms.spec import PlatformSpec
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, public_media
from ainfluencer.services.auth import audit

log = logging.getLogger(__name__)

S = PublicationStatus
MARKER_PREFIX = "ainf"
PAST_GRACE = timedelta(seconds=60)  # "now" typed a minute ago is still now
MAX_AHEAD = timedelta(days=800)
MAX_SEND_ATTEMPTS = 8  # automatic network attempts per generation before failing
PUBLISH_JOB_ATTEMPTS = 25  # job re-runs (worker deaths) before the job system gives up on a job
RECONCILE_JOB_ATTEMPTS = 8
CHECK_JOB_ATTEMPTS = 8
MAX_STATUS_POLLS = 120
# Wait before asking the network whether an uncertain post exists, so its listing has caught up.
RECONCILE_DELAY = timedelta(seconds=15)
STUCK_AFTER = timedelta(minutes=30)
BACKOFF = RetryPolicy(base_seconds=30.0, max_seconds=3600.0, jitter=0.2)
WEBHOOK_EVENTS = ("publication.published", "publication.failed", "publication.unknown")
WEBHOOK_JOB_ATTEMPTS = 8
WEBHOOK_TIMEOUT = 10.0
CRASH_ENV = "AINF_TEST_CRASH_AT"


# ---- errors and small helpers --------------------------------------------------------------------


def crash_point(name: str) -> None:
    """Test hook: SIGKILL this process at the named step when ``AINF_TEST_CRASH_AT`` names it (else no-op)."""
    if os.environ.get(CRASH_ENV) == name:
        log.warning("crash point %s reached: killing this worker (test hook)", name)
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)  # pragma: no cover - the signal arrives first


def marker_for(publication_id: int, generation: int) -> str:
    """The durable idempotency marker sent to the network for one generation of a publication."""
    return f"{MARKER_PREFIX}:{publication_id}:{generation}"


def publish_job_key(publication_id: int, seq: int) -> str:
    """Idempotency key of the publish job for one dispatch of a publication."""
    return f"publish:{publication_id}:{seq}"


def _say(exc: PlatformError) -> str:
    return exc.message + (f" — {exc.platform_message}" if exc.platform_message else "")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def visible_publications(user: User) -> ColumnElement[bool]:
    """SQL condition: publications of characters this user may see."""
    return accounts.visible_characters(user)


# ---- input shapes ------------------------------------------------------------------------------


@dataclass
class MediaSpec:
    """One file to attach, as a person or the vault names it."""

    path: str
    kind: str | None = None
    mime_type: str | None = None
    alt_text: str = ""
    public_url: str = ""
    asset_id: int | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass
class TargetSpec:
    """One account to publish to, with optional per-network variant fields (None inherits)."""

    account_id: int
    text: str | None = None
    title: str | None = None
    media: list[MediaSpec] | None = None
    options: dict[str, Any] | None = None
    first_comment: str | None = None
    tags: list[str] | None = None


@dataclass
class PostSpec:
    """What to publish: shared fields plus one target per account."""

    targets: list[TargetSpec]
    text: str = ""
    title: str = ""
    media: list[MediaSpec] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    first_comment: str = ""
    tags: list[str] = field(default_factory=list)
    ai_generated: bool = True
    scheduled_at: datetime | None = None
    character_id: int | None = None


# ---- validation --------------------------------------------------------------------------------


def _media_kind(spec: MediaSpec, mime: str) -> MediaKind | None:
    if spec.kind:
        try:
            return MediaKind(spec.kind)
        except ValueError:
            return None
    if mime == "image/gif":
        return MediaKind.gif
    if mime.startswith("image/"):
        return MediaKind.image
    if mime.startswith("video/"):
        return MediaKind.video
    return None


def resolve_media(media_dir: Path, spec: MediaSpec, *, where: str) -> tuple[Path, dict[str, Any]]:
    """Check one media reference (inside the media folder, readable, known kind); returns its path and row data."""
    raw = (spec.path or "").strip()
    if not raw:
        raise InvalidInput("Give the media file's path inside the media folder.", field=f"{where}.path")
    root = media_dir.resolve()
    candidate = Path(raw)
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not path.is_relative_to(root):
        raise InvalidInput("Media must be a file inside the media folder.", field=f"{where}.path")
    if not path.is_file():
        raise InvalidInput(f"No media file at {raw!r}.", field=f"{where}.path")
    mime = spec.mime_type or mimetypes.guess_type(path.name)[0] or ""
    kind = _media_kind(spec, mime)
    if kind is None:
        raise InvalidInput(
            f"Cannot tell what kind of media {path.name} is; give kind image, video or gif.", field=f"{where}.kind"
        )
    return path, {
        "path": str(path.relative_to(root)),
        "kind": kind.value,
        "mime_type": mime or {"image": "image/jpeg", "video": "video/mp4", "gif": "image/gif"}[kind.value],
        "alt_text": spec.alt_text or "",
        "public_url": spec.public_url or "",
        "asset_id": spec.asset_id,
        "duration_seconds": spec.duration_seconds,
        "width": spec.width,
        "height": spec.height,
        "size": path.stat().st_size,
    }


def media_items(media_dir: Path, rows: Sequence[dict[str, Any]]) -> list[MediaItem]:
    """Stored media rows as adapter MediaItems."""
    root = media_dir.resolve()
    return [
        MediaItem(
            path=root / row["path"], kind=MediaKind(row["kind"]), mime_type=row.get("mime_type") or "",
            alt_text=row.get("alt_text") or "", public_url=row.get("public_url") or "",
            duration_seconds=row.get("duration_seconds"), width=row.get("width"), height=row.get("height"),
        )
        for row in rows
    ]


def _check_against_capabilities(
    cls: type[PlatformAdapter], spec: PlatformSpec, text: str, title: str, media: list[dict[str, Any]], *, where: str
) -> None:
    caps, name = cls.capabilities, cls.display_name
    if not text.strip() and not media:
        raise InvalidInput(f"A {name} post needs text or media.", field=f"{where}.text")
    if caps.requires_media and not media:
        kinds = " or ".join(sorted(k.value for k in caps.media_kinds)) or "media"
        raise InvalidInput(f"{name} posts need at least one file ({kinds}).", field=f"{where}.media")
    # The network's own text rules (limit and how it counts), the object the writer and Compose use too.
    rules = spec.text_rules_for(has_media=bool(media))
    length = rules.length(text)
    if length > rules.max_length:
        raise InvalidInput(f"The text is {length} {rules.unit}; {name} allows {rules.max_length}.",
                           field=f"{where}.text")
    if title and "title" in spec.rules and spec.rules["title"].length(title) > spec.rules["title"].max_length:
        title_rules = spec.rules["title"]
        raise InvalidInput(f"The title is {title_rules.length(title)} {title_rules.unit}; {name} allows "
                           f"{title_rules.max_length}.", field=f"{where}.title")
    if media and caps.max_media == 0:
        raise InvalidInput(f"{name} posts here carry no media.", field=f"{where}.media")
    if len(media) > caps.max_media:
        raise InvalidInput(f"{len(media)} files; {name} allows {caps.max_media} per post.", field=f"{where}.media")
    for j, row in enumerate(media):
        kind = MediaKind(row["kind"])
        if caps.media_kinds and kind not in caps.media_kinds:
            allowed = ", ".join(sorted(k.value for k in caps.media_kinds))
            raise InvalidInput(f"{name} does not take {kind.value} files (it takes: {allowed}).",
                               field=f"{where}.media.{j}.kind")
        limit = caps.max_video_bytes if kind == MediaKind.video else caps.max_image_bytes
        if limit and row["size"] > limit:
            raise InvalidInput(
                f"{Path(row['path']).name} is {row['size']:,} bytes; {name} accepts at most {limit:,} bytes "
                f"for a {kind.value}.", field=f"{where}.media.{j}.path",
            )
        if kind == MediaKind.video and row.get("duration_seconds") is not None:
            d = float(row["duration_seconds"])
            if caps.max_video_seconds and d > caps.max_video_seconds:
                raise InvalidInput(f"The video is {d:.0f} s; {name} accepts at most {caps.max_video_seconds:.0f} s.",
                                   field=f"{where}.media.{j}.duration_seconds")
            if caps.min_video_seconds and d < caps.min_video_seconds:
                raise InvalidInput(f"The video is {d:.1f} s; {name} needs at least {caps.min_video_seconds:.1f} s.",
                                   field=f"{where}.media.{j}.duration_seconds")
        alt = row.get("alt_text") or ""
        if alt and caps.supports_alt_text and caps.max_alt_text_chars and len(alt) > caps.max_alt_text_chars:
            raise InvalidInput(f"The alt text is {len(alt)} characters; {name} allows {caps.max_alt_text_chars}.",
                               field=f"{where}.media.{j}.alt_text")


def _own_validator(adapter: PlatformAdapter) -> Any:
    # Adapters expose their pre-flight check as ``validate`` (or, in some, ``_validate``); both
    # raise PlatformPermanentError with the network's rule in words.
    return getattr(adapter, "validate", None) or getattr(adapter, "_validate", None)


def validate_post(
    *, cls: type[PlatformAdapter], spec: PlatformSpec, media_dir: Path, text: str, title: str,
    media: Sequence[MediaSpec], options: dict[str, Any], first_comment: str, tags: list[str], ai_generated: bool,
    where: str,
) -> list[dict[str, Any]]:
    """Validate one post for one network before anything is queued; returns the media rows to store."""
    rows = [resolve_media(media_dir, m, where=f"{where}.media.{j}")[1] for j, m in enumerate(media)]
    adapter = cls(accounts.Credentials())
    validator = _own_validator(adapter)
    _check_against_capabilities(cls, spec, text, title, rows, where=where)
    if first_comment and not cls.capabilities.supports_first_comment:
        raise InvalidInput(f"{cls.display_name} has no first comment.", field=f"{where}.first_comment")
    if validator is not None:
        post = PostRequest(text=text, media=media_items(media_dir, rows), marker="validation",
                           ai_generated=ai_generated, first_comment=first_comment, title=title, tags=list(tags),
                           options=dict(options))
        try:
            validator(post)
        except PlatformPermanentError as exc:
            raise InvalidInput(f"{cls.display_name}: {_say(exc)}", field=where) from exc
        except PlatformError as exc:  # a validator has no business failing otherwise; refuse clearly anyway
            raise InvalidInput(f"{cls.display_name}: {_say(exc)}", field=where) from exc
    return rows


def _check_time(scheduled_at: datetime | None, now: datetime) -> datetime:
    if scheduled_at is None:
        return now
    if scheduled_at.tzinfo is None:
        raise InvalidInput("Give the time with a time zone offset (e.g. 2030-01-01T14:00:00+01:00 or ...Z).",
                           field="scheduled_at")
    if scheduled_at < now - PAST_GRACE:
        raise InvalidInput(f"{scheduled_at.isoformat()} is in the past; pick a time from now on.",
                           field="scheduled_at")
    if scheduled_at > now + MAX_AHEAD:
        raise InvalidInput("That is more than two years ahead; pick a nearer time.", field="scheduled_at")
    return max(scheduled_at, now)


# ---- events, transitions, webhooks -----------------------------------------------------------------


def _event(session: Session, pub: Publication, from_status: str, to_status: str, actor: str,
           **detail: Any) -> None:
    session.add(PublicationEvent(publication_id=pub.id, from_status=from_status, to_status=to_status,
                                 actor=actor[:64], detail={k: v for k, v in detail.items() if v not in (None, "")}))


def _transition(
    session: Session,
    pub: Publication,
    to: PublicationStatus,
    *,
    expect: Iterable[PublicationStatus],
    actor: str,
    attempts: int | None = None,
    message: str = "",
    detail: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Move ``pub`` to ``to`` only if it is still in ``expect`` (and at ``attempts``); records the event."""
    expect = tuple(expect)
    now = utcnow()
    q = update(Publication).where(Publication.id == pub.id, Publication.status.in_(expect))
    if attempts is not None:
        q = q.where(Publication.attempts == attempts)
    values.setdefault("awaiting_person", False)
    res = session.execute(q.values(status=to, updated_at=now, **values).execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        return False
    before = pub.status
    # Mirror the UPDATE on the loaded object without another round trip (values are plain data).
    for key, value in {"status": to, "updated_at": now, **values}.items():
        set_committed_value(pub, key, value)
    _event(session, pub, before.value if before else "", to.value, actor, message=message, **(detail or {}))
    if to in (S.published, S.failed):
        _emit_webhooks(session, pub, f"publication.{to.value}")
    return True


def _payload(pub: Publication, account: SocialAccount | None = None) -> dict[str, Any]:
    return {
        "id": pub.id, "status": pub.status.value, "character_id": pub.character_id, "account_id": pub.account_id,
        "platform": account.platform if account else None, "platform_post_id": pub.platform_post_id,
        "url": pub.url, "scheduled_at": _iso(pub.scheduled_at), "published_at": _iso(pub.published_at),
        "attempts": pub.attempts, "last_error": pub.last_error, "platform_message": pub.platform_message,
        "idempotency_key": pub.idempotency_key,
    }


def _emit_webhooks(session: Session, pub: Publication, event: str) -> None:
    hooks = session.scalars(
        select(Webhook).join(User, User.id == Webhook.user_id).where(Webhook.active.is_(True))
    ).all()
    if not hooks:
        return
    character = session.get(Character, pub.character_id)
    account = session.get(SocialAccount, pub.account_id)
    for hook in hooks:
        if event not in (hook.events or WEBHOOK_EVENTS):
            continue
        owner = session.get(User, hook.user_id) if hook.user_id else None
        if owner is None or not (owner.is_owner or (character is not None and character.user_id == owner.id)):
            continue
        delivery = WebhookDelivery(webhook_id=hook.id, event=event, payload={"publication": _payload(pub, account)})
        session.add(delivery)
        session.flush()
        enqueue(session, "webhook.deliver", {"delivery_id": delivery.id},
                idempotency_key=f"webhook.deliver:{delivery.id}", max_attempts=WEBHOOK_JOB_ATTEMPTS,
            user_id=hook.user_id)


def _enqueue_publish(session: Session, pub: Publication, run_at: datetime) -> Job:
    """Bump the dispatch sequence and queue the job that will claim this dispatch."""
    pub.dispatch_seq = (pub.dispatch_seq or 0) + 1
    session.flush()
    return enqueue(session, "publish", {"publication_id": pub.id, "seq": pub.dispatch_seq},
                   idempotency_key=publish_job_key(pub.id, pub.dispatch_seq), run_at=run_at,
                   max_attempts=PUBLISH_JOB_ATTEMPTS, user_id=pub.created_by)


def _cancel_queued_publish(session: Session, pub: Publication) -> None:
    session.execute(
        update(Job)
        .where(Job.idempotency_key == publish_job_key(pub.id, pub.dispatch_seq), Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, finished_at=utcnow(), last_error="superseded: publication changed")
        .execution_options(synchronize_session=False)
    )


def _enqueue_reconcile(session: Session, pub: Publication, *, delay: timedelta | None = None) -> None:
    enqueue(session, "publish.reconcile", {"publication_id": pub.id, "attempt": pub.attempts},
            idempotency_key=f"publish.reconcile:{pub.id}:{pub.generation}:{pub.attempts}:{uuid.uuid4().hex[:8]}",
            run_at=utcnow() + (RECONCILE_DELAY if delay is None else delay), max_attempts=RECONCILE_JOB_ATTEMPTS,
            user_id=pub.created_by)


def _enqueue_check(session: Session, pub: Publication, poll: int) -> None:
    wait = min(60.0, 5.0 * (1 + poll // 3))
    run_at = utcnow() + timedelta(seconds=wait)
    pub.next_attempt_at = run_at
    enqueue(session, "publish.check", {"publication_id": pub.id, "attempt": pub.attempts, "poll": poll},
            idempotency_key=f"publish.check:{pub.id}:{pub.generation}:{pub.attempts}:{poll}:{uuid.uuid4().hex[:8]}",
            run_at=run_at, max_attempts=CHECK_JOB_ATTEMPTS, user_id=pub.created_by)


# ---- reading -------------------------------------------------------------------------------------


def get_publication(session: Session, publication_id: int, *, user: User) -> Publication:
    """One publication the user may see, or NotFound."""
    pub = session.get(Publication, publication_id)
    if pub is None:
        raise NotFound(f"No publication with id {publication_id}.")
    character = session.get(Character, pub.character_id)
    if character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No publication with id {publication_id}.")
    return pub


def events_of(session: Session, pub: Publication) -> list[PublicationEvent]:
    """The publication's audit trail, oldest first."""
    return list(session.scalars(
        select(PublicationEvent).where(PublicationEvent.publication_id == pub.id)
        .order_by(PublicationEvent.at, PublicationEvent.id)
    ))


def list_publications(
    session: Session,
    *,
    user: User,
    statuses: Sequence[PublicationStatus] = (),
    character_id: int | None = None,
    account_id: int | None = None,
    platform: str | None = None,
    group_key: str | None = None,
    scheduled_from: datetime | None = None,
    scheduled_to: datetime | None = None,
    newest_first: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Publication], int]:
    """Publications the user may see, filtered, with the total count."""
    q = (select(Publication).join(Character, Character.id == Publication.character_id)
         .where(visible_publications(user)))
    if statuses:
        q = q.where(Publication.status.in_(list(statuses)))
    if character_id is not None:
        q = q.where(Publication.character_id == character_id)
    if account_id is not None:
        q = q.where(Publication.account_id == account_id)
    if platform:
        q = q.join(SocialAccount, SocialAccount.id == Publication.account_id).where(SocialAccount.platform == platform)
    if group_key:
        q = q.where(Publication.group_key == group_key)
    if scheduled_from is not None:
        q = q.where(Publication.scheduled_at >= scheduled_from)
    if scheduled_to is not None:
        q = q.where(Publication.scheduled_at < scheduled_to)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    order = (Publication.scheduled_at.desc(), Publication.id.desc()) if newest_first else (
        Publication.scheduled_at, Publication.id)
    return list(session.scalars(q.order_by(*order).limit(limit).offset(offset))), total


def allowed_actions(pub: Publication) -> list[str]:
    """What a person may do with the publication now."""
    return {
        S.planned: ["reschedule", "cancel"],
        S.due: ["cancel"],
        S.retry_wait: ["reschedule", "cancel"],
        S.failed: ["retry", "cancel"],
        S.unknown: ["retry", "mark_published", "cancel"],
    }.get(pub.status, [])


def needs_person(pub: Publication) -> bool:
    """True when the machine is waiting for a person's decision."""
    return pub.status == S.failed or (pub.status == S.unknown and pub.awaiting_person)


# ---- creating and changing ---------------------------------------------------------------------------


def create_publications(
    session: Session, *, runtime: Runtime, user: User, spec: PostSpec, ip: str = ""
) -> list[Publication]:
    """Validate every target, then create one publication per account and queue its publish job."""
    now = utcnow()
    when = _check_time(spec.scheduled_at, now)
    if not spec.targets:
        raise InvalidInput("Pick at least one account to publish to.", field="targets")
    seen: set[int] = set()
    planned: list[tuple[SocialAccount, dict[str, Any]]] = []
    for i, target in enumerate(spec.targets):
        where = f"targets.{i}"
        if target.account_id in seen:
            raise InvalidInput("The same account is listed twice.", field=f"{where}.account_id")
        seen.add(target.account_id)
        account = session.get(SocialAccount, target.account_id)
        character = session.get(Character, account.character_id) if account else None
        if account is None or character is None or (not user.is_owner and character.user_id != user.id):
            raise InvalidInput(f"No account with id {target.account_id}.", field=f"{where}.account_id")
        if spec.character_id is not None and account.character_id != spec.character_id:
            raise InvalidInput(f"Account {account.handle or account.id} belongs to another character.",
                               field=f"{where}.account_id")
        if character.status == CharacterStatus.archived:
            raise InvalidInput(f"Character “{character.name}” is archived; it does not publish.",
                               field=f"{where}.account_id")
        reason = accounts.usable_for_publishing(account)
        if reason:
            raise InvalidInput(reason, field=f"{where}.account_id")
        cls = accounts.known_platform(account.platform, runtime.platforms)
        text = spec.text if target.text is None else target.text
        title = spec.title if target.title is None else target.title
        media = spec.media if target.media is None else target.media
        options = dict(spec.options if target.options is None else target.options)
        first_comment = spec.first_comment if target.first_comment is None else target.first_comment
        tags = list(spec.tags if target.tags is None else target.tags)
        rows = validate_post(cls=cls, spec=runtime.platforms.spec(account.platform),
                             media_dir=runtime.settings.media_dir, text=text, title=title, media=media,
                             options=options, first_comment=first_comment, tags=tags,
                             ai_generated=spec.ai_generated, where=where)
        if first_comment:
            options["first_comment"] = first_comment
        if tags:
            options["tags"] = tags
        planned.append((account, {"text": text, "title": title, "media": rows, "options": options}))

    group = uuid.uuid4().hex
    status = S.due if when <= now else S.planned
    created: list[Publication] = []
    for account, values in planned:
        pub = Publication(group_key=group, character_id=account.character_id, account_id=account.id,
                          ai_generated=spec.ai_generated, scheduled_at=when, status=status, created_by=user.id,
                          generation=1, attempts=0, dispatch_seq=0, max_attempts=MAX_SEND_ATTEMPTS, **values)
        session.add(pub)
        session.flush()
        pub.idempotency_key = marker_for(pub.id, pub.generation)
        _event(session, pub, "", status.value, f"user:{user.id}", message="created",
               scheduled_at=_iso(when), platform=account.platform)
        _enqueue_publish(session, pub, when)
        created.append(pub)
    audit(session, "publication.create", user_id=user.id, ip=ip, group=group, ids=[p.id for p in created])
    session.flush()
    return created


def reschedule(session: Session, *, user: User, pub: Publication, scheduled_at: datetime) -> Publication:
    """Move a planned (or waiting) publication to a new future time."""
    if pub.status not in (S.planned, S.retry_wait):
        raise Conflict(f"Publication {pub.id} is {pub.status.value}; only planned or waiting ones can be moved.")
    now = utcnow()
    when = _check_time(scheduled_at, now)
    if scheduled_at < now:
        raise InvalidInput("Pick a time from now on.", field="scheduled_at")
    _cancel_queued_publish(session, pub)
    before = pub.status
    if not _transition(session, pub, S.planned, expect=(S.planned, S.retry_wait), actor=f"user:{user.id}",
                       message="rescheduled", detail={"from": _iso(pub.scheduled_at), "to": _iso(when)},
                       scheduled_at=when, next_attempt_at=None):
        raise Conflict(f"Publication {pub.id} changed state meanwhile ({before.value}); reload and try again.")
    _enqueue_publish(session, pub, when)
    return pub


def retry(session: Session, *, user: User, pub: Publication) -> Publication:
    """One-click retry of a failed or unknown publication: new marker generation, sent now."""
    if pub.status not in (S.failed, S.unknown):
        raise Conflict(f"Publication {pub.id} is {pub.status.value}; only failed or unknown ones can be retried.")
    account = session.get(SocialAccount, pub.account_id)
    if account is not None:
        reason = accounts.usable_for_publishing(account)
        if reason:
            raise Conflict(reason)
    generation = pub.generation + 1
    now = utcnow()
    resend = pub.status == S.unknown
    ok = _transition(
        session, pub, S.due, expect=(S.failed, S.unknown), actor=f"user:{user.id}",
        message="resend requested by a person" if resend else "retry requested by a person",
        detail={"generation": generation}, generation=generation,
        idempotency_key=marker_for(pub.id, generation), max_attempts=pub.attempts + MAX_SEND_ATTEMPTS,
        next_attempt_at=None, last_error="", platform_message="",
    )
    if not ok:
        raise Conflict(f"Publication {pub.id} changed state meanwhile; reload and try again.")
    _enqueue_publish(session, pub, now)
    return pub


def cancel(session: Session, *, user: User, pub: Publication) -> Publication:
    """Cancel a publication that is not being sent and not published."""
    allowed = (S.planned, S.due, S.retry_wait, S.failed, S.unknown)
    if pub.status not in allowed:
        raise Conflict(f"Publication {pub.id} is {pub.status.value}; it cannot be cancelled now.")
    _cancel_queued_publish(session, pub)
    if not _transition(session, pub, S.cancelled, expect=allowed, actor=f"user:{user.id}", message="cancelled",
                       next_attempt_at=None):
        raise Conflict(f"Publication {pub.id} changed state meanwhile; reload and try again.")
    return pub


def mark_published(session: Session, *, user: User, pub: Publication, url: str = "",
                   platform_post_id: str = "") -> Publication:
    """A person confirms an unknown publication is on the network."""
    if pub.status != S.unknown:
        raise Conflict(f"Publication {pub.id} is {pub.status.value}; only unknown ones can be marked published.")
    if url and not url.startswith(("https://", "http://")):
        raise InvalidInput("The URL must start with https:// or http://.", field="url")
    ok = _transition(session, pub, S.published, expect=(S.unknown,), actor=f"user:{user.id}",
                     message="marked published by a person", url=url[:1000] or pub.url,
                     platform_post_id=platform_post_id[:255] or pub.platform_post_id, published_at=utcnow(),
                     last_error="", next_attempt_at=None)
    if not ok:
        raise Conflict(f"Publication {pub.id} changed state meanwhile; reload and try again.")
    return pub


# ---- the worker side -------------------------------------------------------------------------------


@dataclass
class Claimed:
    """What the claim transaction hands to the network step."""

    publication_id: int
    account_id: int
    platform: str
    attempt: int
    generation: int
    credentials: Any
    post: PostRequest
    started_at: datetime


@dataclass
class Outcome:
    """What the network step found: one of result / retry / maybe / auth / permanent."""

    kind: str
    result: PublishResult | None = None
    error: BaseException | None = None
    refreshed: bool = False


def _post_request(runtime: Runtime, pub: Publication) -> PostRequest:
    options = dict(pub.options or {})
    return PostRequest(
        text=pub.text, media=media_items(runtime.settings.media_dir, pub.media or []),
        marker=pub.idempotency_key or marker_for(pub.id, pub.generation), ai_generated=pub.ai_generated,
        first_comment=str(options.pop("first_comment", "") or ""), title=pub.title,
        tags=[str(t) for t in options.pop("tags", []) or []], options=options,
    )


def _lock_publication(session: Session, publication_id: int) -> Publication | None:
    return session.scalars(
        select(Publication).where(Publication.id == publication_id).with_for_update()
    ).one_or_none()


def _backoff(attempt: int, retry_after: float | None) -> timedelta:
    decision = BACKOFF.decide(attempt=attempt, max_attempts=attempt + 1, retry_after=retry_after)
    return decision.delay


def _to_retry_wait(session: Session, pub: Publication, *, at: datetime, actor: str, message: str,
                   expect: Iterable[PublicationStatus], attempts: int | None = None, **detail: Any) -> bool:
    if not _transition(session, pub, S.retry_wait, expect=expect, actor=actor, attempts=attempts, message=message,
                       detail={"retry_at": _iso(at), **detail}, next_attempt_at=at, last_error=message):
        return False
    _enqueue_publish(session, pub, at)
    return True


def _to_unknown(session: Session, pub: Publication, *, actor: str, message: str, attempts: int | None,
                expect: Iterable[PublicationStatus] = (S.sending,), **detail: Any) -> bool:
    if not _transition(session, pub, S.unknown, expect=expect, actor=actor, attempts=attempts, message=message,
                       detail=detail, last_error=message):
        return False
    _enqueue_reconcile(session, pub)
    return True


def claim(runtime: Runtime, publication_id: int, seq: int, *, worker: str = "worker") -> Claimed | dict[str, Any]:
    """Claim a publication for sending (committed before any network call) or say why not."""
    actor = f"job:{worker}"[:64]
    with runtime.db.session() as s:
        row = s.execute(
            select(Publication, SocialAccount, Character)
            .join(SocialAccount, SocialAccount.id == Publication.account_id)
            .join(Character, Character.id == Publication.character_id)
            .where(Publication.id == publication_id)
            .with_for_update(of=Publication)
        ).one_or_none()
        if row is None:
            return {"skipped": "publication deleted"}
        pub, account, character = row
        if pub.dispatch_seq != seq:
            return {"skipped": "superseded by a later dispatch", "status": pub.status.value}
        if pub.status == S.sending:
            if pub.platform_post_id:
                _enqueue_check(s, pub, 0)
                return {"skipped": "already accepted; status polling resumed", "status": "sending"}
            _to_unknown(
                s, pub, actor=actor, attempts=pub.attempts,
                message="The worker stopped while sending (crash or lost lease). Checking the network for the "
                        "post before anything is sent again.",
            )
            return {"skipped": "found in sending: now unknown, reconciling", "status": "unknown"}
        if pub.status not in CLAIMABLE:
            return {"skipped": f"publication is {pub.status.value}", "status": pub.status.value}
        expect = (pub.status,)
        reason = accounts.usable_for_publishing(account)
        if not reason:  # credentials from a backup restored without its key: say so, do not try
            accounts.flag_unreadable_credentials(s, runtime.secrets, [account])
        if not reason and account.status == AccountStatus.needs_reconnect:
            reason = (f"The account needs reconnecting ({account.last_error or 'its token was refused'}); "
                      "reconnect it, then retry.")
        if not reason and character.status != CharacterStatus.active:
            reason = (f"Character “{character.name}” is {character.status.value}; publishing resumes only for "
                      "active characters. Retry once it is active.")
        if reason:
            _transition(s, pub, S.failed, expect=expect, actor=actor, message=reason, last_error=reason)
            return {"status": "failed", "reason": reason}
        try:
            cls = accounts.known_platform(account.platform, runtime.platforms)
        except InvalidInput as exc:
            _transition(s, pub, S.failed, expect=expect, actor=actor, message=exc.message, last_error=exc.message)
            return {"status": "failed", "reason": exc.message}
        if pub.attempts >= pub.max_attempts:
            msg = pub.last_error or "Gave up after the automatic attempts."
            _transition(s, pub, S.failed, expect=expect, actor=actor, message=f"attempts used up: {msg}")
            return {"status": "failed", "reason": "attempts used up"}
        now = utcnow()
        if account.rate_limited_until is not None and account.rate_limited_until > now:
            at = account.rate_limited_until
            _to_retry_wait(s, pub, at=at, actor=actor, expect=expect,
                           message=f"{cls.display_name} asked us to slow down until {at.isoformat()}; waiting.")
            return {"status": "retry_wait", "until": at.isoformat()}
        wait, scope = accounts.take_tokens(s, account, cls.capabilities, media_count=len(pub.media or []), now=now)
        if wait > 0:
            at = now + timedelta(seconds=wait)
            _to_retry_wait(s, pub, at=at, actor=actor, expect=expect, scope=scope,
                           message=f"{cls.display_name} limit {scope} is used up for now; next slot at "
                                   f"{at.isoformat(timespec='seconds')}.")
            return {"status": "retry_wait", "until": at.isoformat(), "scope": scope}
        res = s.execute(
            update(Publication)
            .where(Publication.id == pub.id, Publication.status.in_(CLAIMABLE), Publication.dispatch_seq == seq)
            .values(status=S.sending, attempts=Publication.attempts + 1, sending_started_at=now,
                    next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            s.rollback()  # give the rate-limit tokens back
            return {"skipped": "claimed elsewhere"}
        before = pub.status
        for key, value in {"status": S.sending, "attempts": pub.attempts + 1, "sending_started_at": now,
                           "next_attempt_at": None, "updated_at": now}.items():
            set_committed_value(pub, key, value)
        _event(s, pub, before.value, S.sending.value, actor, message=f"sending (attempt {pub.attempts})",
               marker=pub.idempotency_key)
        creds = accounts.load_credentials(s, runtime.secrets, account)
        return Claimed(publication_id=pub.id, account_id=account.id, platform=account.platform, attempt=pub.attempts,
                       generation=pub.generation, credentials=creds, post=_post_request(runtime, pub), started_at=now)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])
        reason = getattr(e, "reason", None)  # urllib3 wraps the socket error in .reason
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))


def cannot_have_been_delivered(exc: PlatformTransientError) -> bool:
    """True when a transient failure proves the network did not take the post.

    The network answered with a 4xx (429 rate limit, 408 and the like refuse the request), or the
    connection never opened. Anything else (timeouts after sending, dropped connections, 5xx on
    the create call) may have created the post, so it goes to ``unknown`` for reconciliation.
    """
    if getattr(exc, "not_sent", False):
        return True
    if exc.status is not None and 400 <= exc.status < 500:
        return True
    for e in _chain(exc):
        if isinstance(e, httpx.ConnectError | httpx.ConnectTimeout | ConnectionRefusedError):
            return True
        name = type(e).__name__
        if name in ("NewConnectionError", "ConnectTimeoutError", "ConnectTimeout", "NameResolutionError"):
            return True
    return False


def _call_network(runtime: Runtime, claimed: Claimed) -> Outcome:
    """Publish through the adapter: one refresh-and-retry on an auth error; credentials persisted after."""
    adapter = accounts.build_adapter(runtime, claimed.platform, claimed.credentials)
    before = accounts.fingerprint(claimed.credentials)
    refreshed = False
    try:
        try:  # networks that fetch media themselves (Instagram) need public URLs: S3 or signed links
            public_media.attach_public_urls(runtime, adapter, claimed.post.media)
        except (PlatformTransientError, PlatformPermanentError) as exc:
            return Outcome("retry" if isinstance(exc, PlatformTransientError) else "permanent", error=exc)
        if accounts.needs_refresh(claimed.credentials):
            try:
                runtime.run(adapter.refresh())
                refreshed = True
            except PlatformAuthError as exc:
                return Outcome("auth", error=exc)
            except PlatformError as exc:
                log.info("publication %s: early token refresh failed (%s); trying the current token",
                         claimed.publication_id, exc)
        while True:
            try:
                return Outcome("result", result=runtime.run(adapter.publish(claimed.post)), refreshed=refreshed)
            except PlatformAuthError as exc:
                if refreshed or claimed.credentials.refresh_token is None:
                    return Outcome("auth", error=exc, refreshed=refreshed)
                try:
                    runtime.run(adapter.refresh())
                    refreshed = True
                except PlatformError as refresh_exc:
                    return Outcome("auth", error=refresh_exc if isinstance(refresh_exc, PlatformAuthError) else exc)
            except PlatformTransientError as exc:
                kind = "retry" if cannot_have_been_delivered(exc) else "maybe"
                return Outcome(kind, error=exc, refreshed=refreshed)
            except PlatformPermanentError as exc:
                return Outcome("permanent", error=exc, refreshed=refreshed)
            except PlatformError as exc:
                return Outcome("maybe", error=exc, refreshed=refreshed)
            except Exception as exc:  # unknown failure after the claim: the post may exist
                log.exception("publication %s: unexpected error while publishing", claimed.publication_id)
                return Outcome("maybe", error=exc, refreshed=refreshed)
    finally:
        try:
            accounts.persist_credentials(runtime, claimed.account_id, before, adapter)
        except Exception:
            log.exception("publication %s: could not store refreshed credentials", claimed.publication_id)


def _apply_result(s: Session, pub: Publication, result: PublishResult, *, actor: str, attempt: int,
                  expect: Iterable[PublicationStatus], how: str) -> str:
    post_id = result.platform_post_id or pub.platform_post_id
    if result.state == PublishState.published:
        _transition(s, pub, S.published, expect=expect, actor=actor, attempts=attempt, message=how,
                    detail={"platform_post_id": post_id, "url": result.url, "note": result.detail},
                    platform_post_id=post_id[:255], url=(result.url or pub.url)[:1000], published_at=utcnow(),
                    last_error="", platform_message="", next_attempt_at=None)
        return "published"
    if result.state == PublishState.processing:
        moved = _transition(s, pub, S.sending, expect=expect, actor=actor, attempts=attempt,
                            message=f"accepted; the network is processing it ({how})",
                            detail={"platform_post_id": post_id, "note": result.detail},
                            platform_post_id=post_id[:255], url=(result.url or pub.url)[:1000])
        if moved:
            _enqueue_check(s, pub, 0)
        return "processing"
    message = result.detail or "The network reported the post as failed."
    _transition(s, pub, S.failed, expect=expect, actor=actor, attempts=attempt, message=message,
                last_error=message, platform_post_id=post_id[:255])
    return "failed"


def settle(runtime: Runtime, claimed: Claimed, outcome: Outcome, *, worker: str = "worker") -> dict[str, Any]:
    """Commit what the network said, conditional on this attempt still owning the publication."""
    actor = f"job:{worker}"[:64]
    attempt = claimed.attempt
    with runtime.db.session() as s:
        pub = _lock_publication(s, claimed.publication_id)
        if pub is None:
            return {"skipped": "publication deleted"}
        if pub.attempts != attempt:
            log.error("publication %s: attempt %s settled after attempt %s began", pub.id, attempt, pub.attempts)
            return {"skipped": "a later attempt owns the publication"}
        display = accounts.known_platform(claimed.platform, runtime.platforms).display_name
        err = outcome.error
        if outcome.kind == "result" and outcome.result is not None:
            # A late success also settles an attempt already moved to unknown/retry_wait by recovery.
            state = _apply_result(s, pub, outcome.result, actor=actor, attempt=attempt,
                                  expect=(S.sending, S.unknown, S.retry_wait), how=f"{display} confirmed the post")
            return {"status": state, "platform_post_id": pub.platform_post_id}
        assert err is not None
        message = _say(err) if isinstance(err, PlatformError) else f"{type(err).__name__}: {err}"
        platform_message = err.platform_message if isinstance(err, PlatformError) else ""
        if outcome.kind == "retry":
            assert isinstance(err, PlatformTransientError)
            if pub.attempts >= pub.max_attempts:
                _transition(s, pub, S.failed, expect=(S.sending,), actor=actor, attempts=attempt,
                            message=f"gave up after {attempt} attempts: {message}", last_error=message,
                            platform_message=platform_message)
                return {"status": "failed"}
            delay = _backoff(attempt, err.retry_after)
            at = utcnow() + delay
            if err.retry_after is not None and err.status == 429:
                account = s.get(SocialAccount, claimed.account_id)
                if account is not None:
                    account.rate_limited_until = utcnow() + timedelta(seconds=err.retry_after)
            _to_retry_wait(s, pub, at=at, actor=actor, expect=(S.sending,), attempts=attempt,
                           message=f"{message} Retrying at {at.isoformat(timespec='seconds')}.",
                           status_code=err.status, retry_after=err.retry_after)
            return {"status": "retry_wait", "retry_at": at.isoformat()}
        if outcome.kind == "maybe":
            _to_unknown(s, pub, actor=actor, attempts=attempt,
                        message=f"{message} The post may have reached {display}; checking before any resend.",
                        status_code=getattr(err, "status", None))
            return {"status": "unknown"}
        if outcome.kind == "auth":
            text = (f"{display} refused the account's credentials: {message} Reconnect the account, then retry.")
            accounts.mark_needs_reconnect(s, claimed.account_id, message)
            _transition(s, pub, S.failed, expect=(S.sending,), actor=actor, attempts=attempt, message=text,
                        last_error=text, platform_message=platform_message)
            return {"status": "failed", "reason": "auth"}
        text = f"{display} refused the post: {message}"
        _transition(s, pub, S.failed, expect=(S.sending,), actor=actor, attempts=attempt, message=text,
                    last_error=text, platform_message=platform_message)
        return {"status": "failed"}


def run_publish(runtime: Runtime, publication_id: int, seq: int, *, worker: str = "worker") -> dict[str, Any]:
    """The ``publish`` job: claim, call the network, settle. Crash-safe at every step."""
    crash_point("before_claim")
    claimed = claim(runtime, publication_id, seq, worker=worker)
    if not isinstance(claimed, Claimed):
        return claimed
    crash_point("after_claim")
    outcome = _call_network(runtime, claimed)
    crash_point("after_response")
    summary = settle(runtime, claimed, outcome, worker=worker)
    crash_point("after_commit")
    return summary


def proves_absence(adapter: PlatformAdapter) -> bool:
    """Whether the adapter's ``find_published`` returning None means "certainly not there".

    Adapters opt in with a class attribute ``reconcile_proves_absence = True``; without it None is
    read as "cannot tell" (the Telegram Bot API, for one, cannot search a channel).
    """
    return bool(getattr(adapter, "reconcile_proves_absence", False))


def run_reconcile(runtime: Runtime, publication_id: int, attempt: int, *, worker: str = "worker",
                  last_try: bool = False) -> dict[str, Any]:
    """The ``publish.reconcile`` job: look for an uncertain post on the network before any resend."""
    actor = f"reconcile:{worker}"[:64]
    with runtime.db.session() as s:
        pub = s.get(Publication, publication_id)
        if pub is None or pub.status != S.unknown or pub.attempts != attempt:
            return {"skipped": "nothing to reconcile"}
        account = s.get(SocialAccount, pub.account_id)
        if account is None:
            return {"skipped": "account deleted"}
        platform, account_id = account.platform, account.id
        disconnected = account.status == AccountStatus.disconnected
        creds = accounts.load_credentials(s, runtime.secrets, account)
        post = _post_request(runtime, pub)
        if pub.platform_post_id:
            post.options["platform_post_id"] = pub.platform_post_id
        since = (pub.sending_started_at or pub.created_at) - timedelta(minutes=1)
    cls = accounts.known_platform(platform, runtime.platforms)
    if disconnected:
        return _leave_for_person(runtime, publication_id, attempt, actor,
                                 "The account was disconnected, so the network cannot be checked. Look on "
                                 f"{cls.display_name} and use “Mark published” or “Resend”.")
    adapter = accounts.build_adapter(runtime, platform, creds)
    before = accounts.fingerprint(creds)
    try:
        found = runtime.run(adapter.find_published(post, since=since))
    except PlatformAuthError as exc:
        with runtime.db.session() as s:
            accounts.mark_needs_reconnect(s, account_id, _say(exc))
        return _leave_for_person(runtime, publication_id, attempt, actor,
                                 f"{cls.display_name} refused the credentials while checking ({_say(exc)}). "
                                 "Reconnect the account, then check the post and use “Mark published” or “Resend”.")
    except PlatformTransientError as exc:
        if last_try:
            return _leave_for_person(runtime, publication_id, attempt, actor,
                                     f"{cls.display_name} could not be checked ({_say(exc)}). Look on the network "
                                     "and use “Mark published” or “Resend”.")
        raise TransientJobError(f"reconcile: {_say(exc)}", retry_after=exc.retry_after) from exc
    except PlatformError as exc:
        return _leave_for_person(runtime, publication_id, attempt, actor,
                                 f"Checking {cls.display_name} failed ({_say(exc)}). Look on the network and use "
                                 "“Mark published” or “Resend”.")
    except Exception as exc:  # an adapter bug must not leave the row "reconciling" forever
        log.exception("publication %s: reconciliation failed", publication_id)
        if last_try:
            return _leave_for_person(runtime, publication_id, attempt, actor,
                                     f"Checking {cls.display_name} failed ({type(exc).__name__}). Look on the "
                                     "network and use “Mark published” or “Resend”.")
        raise TransientJobError(f"reconcile: {type(exc).__name__}: {exc}") from exc
    finally:
        accounts.persist_credentials(runtime, account_id, before, adapter)
    with runtime.db.session() as s:
        pub_ = _lock_publication(s, publication_id)
        if pub_ is None or pub_.status != S.unknown or pub_.attempts != attempt:
            return {"skipped": "changed while checking"}
        if found is not None:
            state = _apply_result(s, pub_, found, actor=actor, attempt=attempt, expect=(S.unknown,),
                                  how=f"found on {cls.display_name} by reconciliation")
            return {"status": state, "platform_post_id": pub_.platform_post_id}
        if proves_absence(adapter):
            if pub_.attempts >= pub_.max_attempts:
                _transition(s, pub_, S.failed, expect=(S.unknown,), actor=actor, attempts=attempt,
                            message="not on the network and the automatic attempts are used up")
                return {"status": "failed"}
            at = utcnow() + _backoff(attempt, None) if attempt > 1 else utcnow()
            _to_retry_wait(s, pub_, at=at, actor=actor, expect=(S.unknown,), attempts=attempt,
                           message=f"{cls.display_name} does not have the post; sending it again at "
                                   f"{at.isoformat(timespec='seconds')} with the same marker.")
            return {"status": "retry_wait"}
    return _leave_for_person(
        runtime, publication_id, attempt, actor,
        f"AInfluencer cannot tell whether {cls.display_name} has this post: the API cannot look it up. Check the "
        "account, then use “Mark published” (optionally with its link) or “Resend”.",
    )


def _leave_for_person(runtime: Runtime, publication_id: int, attempt: int, actor: str, message: str) -> dict[str, Any]:
    with runtime.db.session() as s:
        pub = _lock_publication(s, publication_id)
        if pub is None or pub.status != S.unknown or pub.attempts != attempt:
            return {"skipped": "changed while checking"}
        pub.last_error = message
        pub.awaiting_person = True
        _event(s, pub, S.unknown.value, S.unknown.value, actor, message=message, needs_person=True)
        s.flush()
        _emit_webhooks(s, pub, "publication.unknown")
    return {"status": "unknown", "needs_person": True}


def run_check_status(runtime: Runtime, publication_id: int, attempt: int, poll: int, *,
                     worker: str = "worker") -> dict[str, Any]:
    """The ``publish.check`` job: poll an accepted post the network is still processing."""
    actor = f"job:{worker}"[:64]
    with runtime.db.session() as s:
        pub = s.get(Publication, publication_id)
        if pub is None or pub.status != S.sending or pub.attempts != attempt or not pub.platform_post_id:
            return {"skipped": "nothing to poll"}
        account = s.get(SocialAccount, pub.account_id)
        if account is None:
            return {"skipped": "account deleted"}
        platform, account_id, post_id = account.platform, account.id, pub.platform_post_id
        creds = accounts.load_credentials(s, runtime.secrets, account)
    cls = accounts.known_platform(platform, runtime.platforms)
    adapter = accounts.build_adapter(runtime, platform, creds)
    before = accounts.fingerprint(creds)
    error: PlatformError | None = None
    result: PublishResult | None = None
    try:
        result = runtime.run(adapter.check_status(post_id))
    except PlatformTransientError as exc:
        raise TransientJobError(f"status check: {_say(exc)}", retry_after=exc.retry_after) from exc
    except PlatformError as exc:
        error = exc
    finally:
        accounts.persist_credentials(runtime, account_id, before, adapter)
    with runtime.db.session() as s:
        pub_ = _lock_publication(s, publication_id)
        if pub_ is None or pub_.status != S.sending or pub_.attempts != attempt:
            return {"skipped": "changed while polling"}
        if error is not None:
            if isinstance(error, PlatformAuthError):
                accounts.mark_needs_reconnect(s, account_id, _say(error))
            _to_unknown(s, pub_, actor=actor, attempts=attempt,
                        message=f"{cls.display_name} accepted the post but its status could not be read "
                                f"({_say(error)}).")
            return {"status": "unknown"}
        assert result is not None
        if result.state == PublishState.processing:
            if result.platform_post_id and result.platform_post_id != pub_.platform_post_id:
                pub_.platform_post_id = result.platform_post_id[:255]
            if poll + 1 >= MAX_STATUS_POLLS:
                _to_unknown(s, pub_, actor=actor, attempts=attempt,
                            message=f"{cls.display_name} is still processing the post after {poll + 1} checks.")
                return {"status": "unknown"}
            _enqueue_check(s, pub_, poll + 1)
            return {"status": "processing", "poll": poll + 1}
        state = _apply_result(s, pub_, result, actor=actor, attempt=attempt, expect=(S.sending,),
                              how=f"{cls.display_name} finished processing")
        return {"status": state}


def recover_stuck(runtime: Runtime, *, older_than: timedelta = STUCK_AFTER) -> int:
    """Safety net for the scheduler: ``sending`` rows whose publish job is gone become ``unknown``."""
    cutoff = utcnow() - older_than
    moved = 0
    with runtime.db.session() as s:
        rows = s.scalars(select(Publication).where(
            Publication.status == S.sending, Publication.sending_started_at < cutoff).limit(500)).all()
        for pub in rows:
            if pub.platform_post_id:
                if pub.next_attempt_at is None or pub.next_attempt_at < cutoff:
                    _enqueue_check(s, pub, 0)
                    moved += 1
                continue
            job_status = s.scalar(select(Job.status).where(
                Job.idempotency_key == publish_job_key(pub.id, pub.dispatch_seq)))
            if job_status in (JobStatus.queued, JobStatus.running):
                continue  # the reaper hands the job back; its re-run reconciles
            if _to_unknown(s, pub, actor="recovery", attempts=pub.attempts,
                           message="Found in sending with no worker on it; checking the network before any resend."):
                moved += 1
    return moved


WATCH_ACTOR = "watch"
WATCH_GRACE = timedelta(minutes=1)
WATCH_MAX_REQUEUES = 3  # per generation; after that a person decides (the row turns failed / awaiting a person)
_LIVE = (JobStatus.queued, JobStatus.running)


def _live_job(*patterns: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: a queued or running job whose idempotency key matches one of the LIKE ``patterns``."""
    return select(Job.id).where(Job.status.in_(_LIVE), or_(*(Job.idempotency_key.like(p) for p in patterns))).exists()


def ensure_live_jobs(runtime: Runtime, *, grace: timedelta = WATCH_GRACE) -> dict[str, int]:
    """Scheduler invariant: every waiting publication has a live job, or a person is told why it has none.

    ``planned``/``due``/``retry_wait`` rows have sent nothing, so re-queuing their publish job is safe;
    an ``unknown`` row gets a fresh reconcile job (it looks before anything is resent). Each repair is an
    event row saying what happened to the job; after ``WATCH_MAX_REQUEUES`` repairs of one generation the
    row is handed to a person instead (``failed``, or ``unknown`` awaiting a person) with the reason.
    ``sending`` rows are ``recover_stuck``'s.
    """
    cutoff = utcnow() - grace
    pid = cast(Publication.id, String)
    publish_key = literal("publish:") + pid + literal(":") + cast(Publication.dispatch_seq, String)
    counts = {"requeued": 0, "reconciling": 0, "to_person": 0}
    with runtime.db.session() as s:
        waiting = s.scalars(select(Publication).where(
            Publication.status.in_(CLAIMABLE), Publication.updated_at < cutoff, ~_live_job(publish_key),
        ).limit(500)).all()
        unknown = s.scalars(select(Publication).where(
            Publication.status == S.unknown, Publication.awaiting_person.is_(False), Publication.updated_at < cutoff,
            ~_live_job(literal("publish.reconcile:") + pid + literal(":%"),
                       literal("publish.check:") + pid + literal(":%")),
        ).limit(500)).all()
        for pub in [*waiting, *unknown]:
            if pub.status == S.unknown:
                what = "its reconcile job"
            else:
                job = s.scalar(select(Job).where(Job.idempotency_key == publish_job_key(pub.id, pub.dispatch_seq)))
                what = (f"its publish job #{job.id} is {job.status.value}"
                        + (f" ({job.last_error})" if job.last_error else "")) if job else "it has no publish job"
            repairs = sum(1 for e in events_of(s, pub) if e.actor == WATCH_ACTOR
                          and (e.detail or {}).get("generation") == pub.generation)
            status = pub.status
            if repairs >= WATCH_MAX_REQUEUES:
                reason = (f"Stuck: {what}, and re-queuing it {repairs} times did not help. "
                          "Retry it or cancel it.")
                if status == S.unknown:
                    moved = _transition(s, pub, S.unknown, expect=(S.unknown,), actor=WATCH_ACTOR, message=reason,
                                        detail={"generation": pub.generation, "stuck": True}, awaiting_person=True)
                else:
                    moved = _transition(s, pub, S.failed, expect=(status,), actor=WATCH_ACTOR, message=reason,
                                        detail={"generation": pub.generation, "stuck": True}, last_error=reason)
                counts["to_person"] += int(moved)
            elif status == S.unknown:
                _event(s, pub, status.value, status.value, WATCH_ACTOR, generation=pub.generation,
                       message="No job was checking the network for this post; checking again.")
                _enqueue_reconcile(s, pub, delay=timedelta(0))
                counts["reconciling"] += 1
            else:
                # Conditional on the dispatch we looked at: a concurrent reschedule wins and we skip.
                seq = pub.dispatch_seq
                res = s.execute(update(Publication).where(
                    Publication.id == pub.id, Publication.status == status, Publication.dispatch_seq == seq,
                ).values(dispatch_seq=seq + 1, updated_at=utcnow()).execution_options(synchronize_session=False))
                if res.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                set_committed_value(pub, "dispatch_seq", seq + 1)
                when = pub.next_attempt_at if status == S.retry_wait and pub.next_attempt_at else pub.scheduled_at
                enqueue(s, "publish", {"publication_id": pub.id, "seq": seq + 1},
                        idempotency_key=publish_job_key(pub.id, seq + 1), run_at=max(when, utcnow()),
                        max_attempts=PUBLISH_JOB_ATTEMPTS, user_id=pub.created_by)
                _event(s, pub, status.value, status.value, WATCH_ACTOR, generation=pub.generation,
                       message=f"Queued again: {what}. To stop this post, cancel the publication.")
                counts["requeued"] += 1
    return counts


# ---- webhooks ----------------------------------------------------------------------------------------


SIGNATURE_HEADER = "X-AInfluencer-Signature"
TIMESTAMP_HEADER = "X-AInfluencer-Timestamp"
WEBHOOK_SECRET_OWNER = "webhook"  # noqa: S105 - an owner kind, not a secret


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact request body with the webhook's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str, *, timestamp: str | None = None,
                     tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Check a delivery's signature (and, when given, that its timestamp is recent)."""
    if not hmac.compare_digest(sign(secret, body), header or ""):
        return False
    if timestamp is not None:
        try:
            age = abs((now if now is not None else time.time()) - float(timestamp))
        except ValueError:
            return False
        if age > tolerance_s:
            return False
        try:
            stamped = json.loads(body).get("timestamp")
        except (ValueError, AttributeError):
            return False
        return str(stamped) == str(timestamp)
    return True


def _check_webhook_url(url: str, *, allow_private: bool) -> str:
    from ainfluencer.net_guard import DestinationRefused, check_url

    try:
        return check_url(url or "", allow_private=allow_private)
    except DestinationRefused as exc:
        raise InvalidInput(str(exc), field="url") from None


def _check_events(events: Sequence[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or WEBHOOK_EVENTS))
    bad = [e for e in chosen if e not in WEBHOOK_EVENTS]
    if bad:
        raise InvalidInput(f"Unknown event {bad[0]!r}; choose from {', '.join(WEBHOOK_EVENTS)}.", field="events")
    return chosen


def create_webhook(session: Session, *, runtime: Runtime, user: User, url: str, events: Sequence[str] | None = None,
                   description: str = "", active: bool = True, ip: str = "") -> tuple[Webhook, str]:
    """Register a webhook; returns it with its signing secret (shown once, stored encrypted)."""
    import secrets as pysecrets

    checked = _check_webhook_url(url, allow_private=runtime.settings.webhook_allow_private_targets)
    hook = Webhook(user_id=user.id, url=checked, events=_check_events(events),
                   description=description.strip()[:200], active=active)
    session.add(hook)
    session.flush()
    secret = "whsec_" + pysecrets.token_urlsafe(32)
    runtime.secrets.put(session, owner_kind=WEBHOOK_SECRET_OWNER, owner_id=hook.id, name="signing", value=secret)
    audit(session, "webhook.create", user_id=user.id, ip=ip, webhook_id=hook.id, url=hook.url)
    return hook, secret


def get_webhook(session: Session, webhook_id: int, *, user: User) -> Webhook:
    """One webhook of this user (the owner sees all), or NotFound."""
    hook = session.get(Webhook, webhook_id)
    if hook is None or (not user.is_owner and hook.user_id != user.id):
        raise NotFound(f"No webhook with id {webhook_id}.")
    return hook


def list_webhooks(session: Session, *, user: User) -> list[Webhook]:
    """The user's webhooks (the owner sees all)."""
    q = select(Webhook).order_by(Webhook.id)
    if not user.is_owner:
        q = q.where(Webhook.user_id == user.id)
    return list(session.scalars(q))


def update_webhook(session: Session, *, hook: Webhook, url: str | None = None, events: Sequence[str] | None = None,
                   description: str | None = None, active: bool | None = None,
                   allow_private: bool = False) -> Webhook:
    """Change a webhook's URL, events, description or active flag."""
    if url is not None:
        hook.url = _check_webhook_url(url, allow_private=allow_private)
    if events is not None:
        hook.events = _check_events(events)
    if description is not None:
        hook.description = description.strip()[:200]
    if active is not None:
        hook.active = active
    session.flush()
    return hook


def delete_webhook(session: Session, *, runtime: Runtime, user: User, hook: Webhook, ip: str = "") -> None:
    """Remove a webhook, its secret and its delivery log."""
    runtime.secrets.delete(session, owner_kind=WEBHOOK_SECRET_OWNER, owner_id=hook.id, name="signing")
    audit(session, "webhook.delete", user_id=user.id, ip=ip, webhook_id=hook.id, url=hook.url)
    session.delete(hook)
    session.flush()


def ping_webhook(session: Session, *, hook: Webhook) -> WebhookDelivery:
    """Queue a signed test delivery."""
    delivery = WebhookDelivery(webhook_id=hook.id, event="ping", payload={"message": "AInfluencer webhook test"})
    session.add(delivery)
    session.flush()
    enqueue(session, "webhook.deliver", {"delivery_id": delivery.id},
            idempotency_key=f"webhook.deliver:{delivery.id}", max_attempts=WEBHOOK_JOB_ATTEMPTS,
            user_id=hook.user_id)
    return delivery


def deliveries_of(session: Session, hook: Webhook, *, limit: int = 50) -> list[WebhookDelivery]:
    """Latest deliveries of a webhook, newest first."""
    return list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
                                .order_by(WebhookDelivery.id.desc()).limit(limit)))


def deliver_webhook(runtime: Runtime, delivery_id: int, *, attempt: int, last_try: bool,
                    client: httpx.Client | None = None) -> dict[str, Any]:
    """The ``webhook.deliver`` job: POST the signed event; non-2xx and network errors retry."""
    with runtime.db.session() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return {"skipped": "delivery deleted"}
        if delivery.status == "delivered":
            return {"skipped": "already delivered"}
        hook = s.get(Webhook, delivery.webhook_id)
        secret = runtime.secrets.get(s, owner_kind=WEBHOOK_SECRET_OWNER, owner_id=delivery.webhook_id, name="signing")
        if hook is None or secret is None:
            delivery.status, delivery.last_error = "failed", "webhook deleted"
            return {"skipped": "webhook deleted"}
        url, event, payload = hook.url, delivery.event, dict(delivery.payload)
    timestamp = str(int(time.time()))
    body = json.dumps({"id": delivery_id, "event": event, "timestamp": timestamp, "data": payload},
                      separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json", "User-Agent": "AInfluencer-Webhook/1",
        "X-AInfluencer-Event": event, "X-AInfluencer-Delivery": str(delivery_id),
        TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret.get_secret_value(), body),
    }
    # The delivery log keeps the status code and the time taken, never what the endpoint answered
    # or why a connection failed: those would turn webhooks into a probe of other hosts.
    from ainfluencer.net_guard import DestinationRefused, parse_url, pinned_request, resolve_public

    error, status_code, started = "", None, time.monotonic()
    try:
        parsed = parse_url(url)
        address = resolve_public(parsed, allow_private=runtime.settings.webhook_allow_private_targets)
        target, host_header, extensions = pinned_request(parsed, address)
        headers.update(host_header)
        if client is not None:
            resp = client.post(target, content=body, headers=headers, extensions=extensions)
        else:
            with httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False, trust_env=False) as c:
                resp = c.post(target, content=body, headers=headers, extensions=extensions)
        status_code = resp.status_code
        if not 200 <= resp.status_code < 300:
            error = f"HTTP {resp.status_code}"
    except DestinationRefused:
        error, status_code = "refused: the URL resolves to an address webhooks may not reach", None
    except httpx.TimeoutException:
        error = "no response in time"
    except httpx.HTTPError:
        error = "could not deliver (connection failed)"
    duration_ms = int((time.monotonic() - started) * 1000)
    refused = error.startswith("refused:")
    permanent = refused or (status_code is not None and 400 <= status_code < 500 and status_code not in (408, 429))
    with runtime.db.session() as s:
        delivery = s.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return {"skipped": "delivery deleted"}
        delivery.attempts = attempt
        delivery.response_status = status_code
        delivery.duration_ms = duration_ms
        delivery.last_error = error
        if not error:
            delivery.status, delivery.delivered_at = "delivered", utcnow()
        elif permanent or last_try:
            delivery.status = "failed"
        else:
            delivery.status = "retrying"
    if not error:
        return {"status": "delivered", "http": status_code}
    if permanent:
        raise PermanentJobError(f"webhook endpoint refused the delivery: {error}")
    raise TransientJobError(f"webhook delivery failed: {error}")
