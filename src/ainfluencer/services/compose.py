"""Compose: one post for one or many accounts, with per-network variants, a live preview and all-or-nothing scheduling.

A :class:`Draft` is what a person typed: shared text/title/first comment/media (approved vault
assets with alt text), per-network :class:`Variant` overrides, the accounts to post to and when.
:func:`preview` renders every target the way its network counts it (X weighted length, Bluesky
graphemes, Telegram UTF-16, YouTube bytes, see ``writing.platform_rules``) and runs each network's
own validation (``publishing.validate_post``); it has no side effects. :func:`schedule` queues the
publications only when *no* target has a problem (every problem is shown at once), through
``publishing.create_publications``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from ainfluencer.config import Settings
from ainfluencer.db.models import Character, User, utcnow
from ainfluencer.db.models_media import Asset, AssetKind, ReviewState
from ainfluencer.db.models_publishing import Publication, SocialAccount
from ainfluencer.errors import AppError, InvalidInput
from ainfluencer.platforms.rules import TextRules
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing, vault
from ainfluencer.writing import platform_rules

PAST_GRACE = publishing.PAST_GRACE
MAX_TARGETS = 50
COUNTING_LABELS = {
    "chars": "characters",
    "graphemes": "characters (graphemes: 👨‍👩‍👧 counts once)",
    "utf16": "UTF-16 units (most emoji count 2)",
    "utf8": "bytes (UTF-8)",
    "x_weighted": "weighted characters (links 23, emoji and CJK 2)",
}
PLACEHOLDER_PUBLIC_URL = "https://public-media.invalid/preview"  # only ever inside a preview's validation


class ComposeInvalid(InvalidInput):
    """At least one target (or the schedule) has a problem; ``preview`` holds all of them."""

    def __init__(self, message: str, *, preview: Preview) -> None:
        super().__init__(message, field="targets", code="compose_invalid")
        self.preview = preview


@dataclass
class Variant:
    """Per-network overrides; ``None`` (or empty text) inherits the shared value."""

    text: str | None = None
    title: str | None = None
    first_comment: str | None = None
    asset_ids: list[int] | None = None
    alt_texts: dict[int, str] = field(default_factory=dict)


@dataclass
class Draft:
    """What a person composed."""

    account_ids: list[int]
    text: str = ""
    title: str = ""
    first_comment: str = ""
    asset_ids: list[int] = field(default_factory=list)
    alt_texts: dict[int, str] = field(default_factory=dict)
    variants: dict[str, Variant] = field(default_factory=dict)  # by platform name
    publish_now: bool = True
    local_time: str = ""  # "YYYY-MM-DDTHH:MM" in ``timezone`` when not now
    timezone: str = "UTC"
    character_id: int | None = None
    require_alt_text: bool = True
    ai_generated: bool = True


@dataclass
class MediaPreview:
    """One attached vault asset as a target will carry it."""

    asset_id: int
    kind: str
    name: str
    alt_text: str
    url: str


@dataclass
class TargetPreview:
    """One account's rendering and validation."""

    account_id: int
    platform: str
    platform_name: str
    handle: str
    text: str
    title: str = ""
    first_comment: str = ""
    length: int = 0
    limit: int = 0
    counting: str = "characters"
    title_length: int | None = None
    title_limit: int | None = None
    media: list[MediaPreview] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    supports_alt_text: bool = False
    supports_first_comment: bool = False

    @property
    def ok(self) -> bool:
        """True when this target can be queued."""
        return not self.problems

    @property
    def over(self) -> bool:
        """True when the text is over the network's limit."""
        return bool(self.limit) and self.length > self.limit


@dataclass
class Preview:
    """Every target's preview plus problems that concern the whole post."""

    targets: list[TargetPreview]
    problems: list[str] = field(default_factory=list)
    scheduled_at: datetime | None = None  # UTC; None means now

    @property
    def ok(self) -> bool:
        """True when nothing stands in the way of scheduling."""
        return not self.problems and all(t.ok for t in self.targets)

    def all_problems(self) -> list[str]:
        """Every problem, each prefixed with the account it concerns."""
        out = list(self.problems)
        for t in self.targets:
            out.extend(f"{t.platform_name} {t.handle}: {p}" for p in t.problems)
        return out


# ---- helpers --------------------------------------------------------------------------------------------


def public_media_status(settings: Settings) -> Any | None:
    """``public_media.describe(settings)`` when that service exists (``.mode``, ``.message``), else None."""
    try:
        module = importlib.import_module("ainfluencer.services.public_media")
    except ImportError:
        return None
    describe = getattr(module, "describe", None)
    if describe is None:
        return None
    try:
        return describe(settings)
    except Exception:  # a half-configured storage must not break composing
        return None


def parse_when(*, publish_now: bool, local_time: str, timezone: str, now: datetime | None = None) -> datetime | None:
    """The UTC instant for a local wall-clock time in ``timezone`` (None for now); DST gaps are refused."""
    if publish_now:
        return None
    try:
        zone = ZoneInfo((timezone or "UTC").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {timezone!r}; use a name like Europe/Berlin.",
                           field="timezone") from None
    raw = (local_time or "").strip()
    if not raw:
        raise InvalidInput("Pick a date and time, or choose “Publish now”.", field="scheduled_at")
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{raw!r} is not a date and time like 2030-01-31T14:00.", field="scheduled_at") from None
    if naive.tzinfo is not None:
        naive = naive.replace(tzinfo=None)
    local = naive.replace(tzinfo=zone)
    utc = local.astimezone(ZoneInfo("UTC"))
    if utc.astimezone(zone).replace(tzinfo=None) != naive:
        raise InvalidInput(f"{raw} does not exist in {zone.key} (the clocks jump forward then); pick another time.",
                           field="scheduled_at")
    now = now or utcnow()
    if utc < now - PAST_GRACE:
        raise InvalidInput(f"{raw} ({zone.key}) is in the past; pick a time from now on.", field="scheduled_at")
    if utc > now + publishing.MAX_AHEAD:
        raise InvalidInput("That is more than two years ahead; pick a nearer time.", field="scheduled_at")
    return utc


def _count(text: str, rules: TextRules) -> tuple[int, int, str]:
    return rules.length(text), rules.max_length, COUNTING_LABELS.get(rules.counting, rules.counting)


def _media_kind(asset: Asset) -> str | None:
    if asset.kind == AssetKind.image:
        return "gif" if asset.mime == "image/gif" else "image"
    if asset.kind == AssetKind.video:
        return "video"
    return None


def _load_assets(session: Session, user: User, ids: list[int], character_id: int | None) -> tuple[
        dict[int, Asset], list[str]]:
    found: dict[int, Asset] = {}
    problems: list[str] = []
    for asset_id in dict.fromkeys(ids):
        try:
            asset = vault.get_asset(session, asset_id, user=user)
        except AppError:
            problems.append(f"Asset {asset_id} does not exist or is not yours.")
            continue
        if asset.review_state != ReviewState.approved:
            problems.append(f"Asset {asset_id} is {asset.review_state.value.replace('_', ' ')}; only approved "
                            "assets are published. Approve it in the vault first.")
            continue
        if character_id is not None and asset.character_id not in (None, character_id):
            problems.append(f"Asset {asset_id} belongs to another character.")
            continue
        found[asset_id] = asset
    return found, problems


def approved_assets(session: Session, *, user: User, character_id: int | None, limit: int = 60) -> list[Asset]:
    """Approved images and videos to pick from (the character's and unassigned ones), newest first."""
    page = vault.list_assets(session, user=user, filters=vault.AssetFilter(
        character_id=character_id, review_state=[ReviewState.approved]), limit=limit)
    return [a for a in page.items if a.kind in (AssetKind.image, AssetKind.video)]


# ---- preview --------------------------------------------------------------------------------------------


def _target(
    session: Session, runtime: Runtime, user: User, draft: Draft, account: SocialAccount, assets: dict[int, Asset],
    public_media: Any | None,
) -> TargetPreview:
    cls = accounts.known_platform(account.platform, runtime.platforms)
    spec = runtime.platforms.spec(account.platform)
    title_rules = spec.rules.get("title")
    caps = cls.capabilities
    variant = draft.variants.get(account.platform) or Variant()
    text = variant.text if variant.text else draft.text
    title = variant.title if variant.title else draft.title
    first_comment = variant.first_comment if variant.first_comment else draft.first_comment
    ids = draft.asset_ids if variant.asset_ids is None else variant.asset_ids
    target = TargetPreview(account_id=account.id, platform=account.platform, platform_name=cls.display_name,
                           handle=account.handle or account.platform_account_id, text=text,
                           title=title if title_rules is not None else "",
                           first_comment=first_comment if caps.supports_first_comment else "",
                           supports_alt_text=caps.supports_alt_text,
                           supports_first_comment=caps.supports_first_comment)
    reason = accounts.usable_for_publishing(account)
    if reason:
        target.problems.append(reason)
    specs: list[publishing.MediaSpec] = []
    for asset_id in ids:
        asset = assets.get(asset_id)
        if asset is None:
            continue  # its problem is reported once, for the whole post
        alt = variant.alt_texts.get(asset_id) or draft.alt_texts.get(asset_id, "")
        kind = _media_kind(asset)
        name = asset.original_name or f"asset {asset.id}"
        target.media.append(MediaPreview(asset_id=asset.id, kind=kind or asset.kind.value, name=name,
                                         alt_text=alt if caps.supports_alt_text else "",
                                         url=f"/api/v1/assets/{asset.id}/file"))
        if kind is None:
            target.problems.append(f"{name} is {asset.kind.value}; {cls.display_name} takes "
                                   f"{', '.join(sorted(k.value for k in caps.media_kinds)) or 'no media'}. "
                                   "Make a video of it in the Studio first.")
            continue
        if draft.require_alt_text and caps.supports_alt_text and kind in ("image", "gif") and not alt.strip():
            target.problems.append(f"Add alt text to {name}: {cls.display_name} shows it to people who use "
                                   "screen readers (or untick “Require alt text”).")
        specs.append(publishing.MediaSpec(
            path=asset.path, kind=kind, mime_type=asset.mime, alt_text=alt, asset_id=asset.id,
            duration_seconds=asset.duration_s, width=asset.width, height=asset.height,
        ))
    has_media = bool(ids)
    rules = spec.text_rules_for(has_media=has_media)
    target.length, target.limit, target.counting = _count(text, rules)
    checked_text = text
    if target.over:
        target.problems.append(f"The text is {target.length:,} {target.counting.split(' (')[0]}; "
                               f"{cls.display_name} allows {target.limit:,}. Shorten it or write a "
                               f"{cls.display_name} variant.")
        checked_text = platform_rules.fit_within(text, rules, rules.max_length)  # the other problems, not this twice
    checked_title = title
    if title_rules is not None:
        target.title_length = title_rules.length(title)
        target.title_limit = title_rules.max_length
        if target.title_length > target.title_limit:
            target.problems.append(f"The title is {target.title_length} characters; {cls.display_name} "
                                   f"allows {target.title_limit}.")
            checked_title = platform_rules.fit_within(title, title_rules, title_rules.max_length)
    if caps.needs_public_media_url:
        if public_media is not None:
            target.notes.append(str(getattr(public_media, "message", "")))
            if getattr(public_media, "mode", "none") == "none":
                target.problems.append(f"{cls.display_name} cannot fetch media until a public base URL or S3 "
                                       "storage is configured (see the note above).")
            else:  # the real link is made when the post is sent; validate the rest now
                for media_spec in specs:
                    media_spec.public_url = media_spec.public_url or PLACEHOLDER_PUBLIC_URL
        else:
            target.notes.append(f"{cls.display_name} fetches media from a public URL; make sure one is configured.")
    if first_comment and not caps.supports_first_comment:
        first_comment = ""
    try:
        publishing.validate_post(
            cls=cls, spec=spec, media_dir=runtime.settings.media_dir, text=checked_text, title=checked_title,
            media=specs, options={},
            first_comment=first_comment, tags=[], ai_generated=draft.ai_generated, where=f"account {account.id}",
        )
    except AppError as exc:
        message = exc.message
        if message not in target.problems:
            target.problems.append(message)
    return target


def preview(session: Session, *, runtime: Runtime, user: User, draft: Draft, now: datetime | None = None) -> Preview:
    """Render and validate every target (no side effects)."""
    result = Preview(targets=[])
    if not draft.account_ids:
        result.problems.append("Pick at least one account to publish to.")
    if len(draft.account_ids) > MAX_TARGETS:
        result.problems.append(f"Pick at most {MAX_TARGETS} accounts at once.")
    try:
        result.scheduled_at = parse_when(publish_now=draft.publish_now, local_time=draft.local_time,
                                         timezone=draft.timezone, now=now)
    except AppError as exc:
        result.problems.append(exc.message)
    assets, asset_problems = _load_assets(session, user, list(draft.asset_ids) + [
        i for v in draft.variants.values() for i in (v.asset_ids or [])], draft.character_id)
    result.problems.extend(asset_problems)
    status = public_media_status(runtime.settings)
    for account_id in list(dict.fromkeys(draft.account_ids))[:MAX_TARGETS]:
        try:
            account = accounts.get_account(session, account_id, user=user)
        except AppError:
            result.problems.append(f"No account with id {account_id}.")
            continue
        if draft.character_id is not None and account.character_id != draft.character_id:
            result.problems.append(f"Account {account.handle or account.id} belongs to another character.")
            continue
        result.targets.append(_target(session, runtime, user, draft, account, assets, status))
    return result


def schedule(
    session: Session, *, runtime: Runtime, user: User, draft: Draft, ip: str = "", now: datetime | None = None
) -> list[Publication]:
    """Queue one publication per target — only when no target has a problem (all of them reported at once)."""
    checked = preview(session, runtime=runtime, user=user, draft=draft, now=now)
    if not checked.ok:
        problems = checked.all_problems()
        raise ComposeInvalid(f"Nothing was scheduled: {len(problems)} problem{'s' if len(problems) != 1 else ''} "
                             "to fix first.", preview=checked)
    targets = []
    for t in checked.targets:
        media = [publishing.MediaSpec(path=_asset_path(session, m.asset_id), kind=m.kind, alt_text=m.alt_text,
                                      asset_id=m.asset_id) for m in t.media]
        for spec, m in zip(media, t.media, strict=True):
            asset = session.get(Asset, m.asset_id)
            if asset is not None:
                spec.mime_type, spec.duration_seconds = asset.mime, asset.duration_s
                spec.width, spec.height = asset.width, asset.height
        targets.append(publishing.TargetSpec(account_id=t.account_id, text=t.text, title=t.title, media=media,
                                             first_comment=t.first_comment))
    post = publishing.PostSpec(targets=targets, ai_generated=draft.ai_generated, character_id=draft.character_id,
                               scheduled_at=checked.scheduled_at)
    return publishing.create_publications(session, runtime=runtime, user=user, spec=post, ip=ip)


def _asset_path(session: Session, asset_id: int) -> str:
    asset = session.get(Asset, asset_id)
    return asset.path if asset is not None else ""


def default_local_time(timezone: str, *, now: datetime | None = None) -> str:
    """A sensible first value for the schedule field: the next full hour in ``timezone``."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = (now or utcnow()).astimezone(zone) + timedelta(hours=1)
    return local.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")


def character_of(session: Session, character_id: int | None, *, user: User) -> Character | None:
    """The character a compose page is for (None when not chosen)."""
    if character_id is None:
        return None
    return accounts.get_character(session, character_id, user=user)
