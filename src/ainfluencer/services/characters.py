"""Characters: create, change, list and retire openly virtual characters; templates; import/export.

Visibility: a member sees and manages the characters they created; the install's owner sees all.
Handles are unique per install, compared case-insensitively (they are stored in lower case).
Every change is validated in full before anything is written, so a refused request saves nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, case, delete, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ainfluencer.characters.persona import (
    DISCLOSURE_LINE,
    Persona,
    export_persona_json,
    import_persona_json,
    persona_system_prompt,
    validate_persona,
)
from ainfluencer.characters.templates import BUILTIN_TEMPLATES
from ainfluencer.db.models import (
    Character,
    CharacterStatus,
    GeneratedText,
    PersonaTemplate,
    TextBackendConfig,
    TextUsage,
    User,
    utcnow,
)
from ainfluencer.errors import AppError, Conflict, InvalidInput, NotFound
from ainfluencer.services.auth import audit

NAME_MAX = 80
BIO_MAX = 1000
DISCLOSURE_MAX = 200
HANDLE_RE = re.compile(r"^[a-z0-9_.]{2,30}$")
HANDLE_MAX = 30
TEMPLATE_NAME_MAX = 80
TEMPLATE_DESCRIPTION_MAX = 500
CHAIN_MAX = 5
CAP_MAX_USD = 100_000.0
OFFLINE_BACKEND = "offline"
LOCAL_BACKEND = "local"  # the in-process llama.cpp model (backends/text/local.py); needs no Settings row
PAGE_MAX = 200
BULK_MAX = 500
NOT_YET = "Platform figures (followers, reach, engagement) appear once Analytics lands"

SortKey = Literal["name", "-name", "handle", "-handle", "created", "-created", "updated", "-updated", "status"]
SORTS: dict[str, str] = {
    "-created": "Newest first",
    "created": "Oldest first",
    "name": "Name A–Z",
    "-name": "Name Z–A",
    "handle": "Handle A–Z",
    "-updated": "Recently changed",
    "status": "Status",
}
BulkAction = Literal["pause", "resume", "archive", "delete"]
BULK_ACTIONS: tuple[str, ...] = ("pause", "resume", "archive", "delete")

# Character columns a caller may change, and what the public field is called.
UPDATABLE = (
    "name", "handle", "bio", "persona", "disclosure_enabled", "disclosure_text", "text_backend", "text_model",
    "fallback_chain", "monthly_usage_cap_usd", "timezone",
)


class InvalidFields(InvalidInput):
    """Several values are wrong at once; ``errors`` maps each field to its message (first one is ``field``)."""

    def __init__(self, errors: dict[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)
        self.errors = dict(errors)


class _Errors:
    """Collects field errors so a form can show every problem at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field_name: str, message: str) -> None:
        self.errors.setdefault(field_name, message)

    def capture(self, exc: AppError, *, prefix: str = "") -> None:
        """Record an AppError (its own field list when it carries one)."""
        if isinstance(exc, InvalidFields):
            for name, message in exc.errors.items():
                self.add(prefix + name, message)
            return
        self.add(f"{prefix}{exc.field}" if exc.field else "_form", exc.message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidFields(self.errors)


# ---- field rules ------------------------------------------------------------------------------------


def clean_name(raw: str | None) -> str:
    """A display name: trimmed, 1–80 characters, no control characters."""
    name = " ".join((raw or "").split())
    if not name:
        raise InvalidInput("Give the character a name.", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"The name is {len(name)} characters; keep it to {NAME_MAX} or fewer.", field="name")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise InvalidInput("The name contains control characters; type it again.", field="name")
    return name


def normalize_handle(raw: str | None) -> str:
    """A handle in canonical form (lower case, no @), or InvalidInput saying what to change."""
    handle = (raw or "").strip().lstrip("@").lower()
    if not handle:
        raise InvalidInput("Choose a handle, e.g. mira.travels.", field="handle")
    if len(handle) > HANDLE_MAX or len(handle) < 2:
        raise InvalidInput(f"A handle is 2 to {HANDLE_MAX} characters long (this one has {len(handle)}).",
                           field="handle")
    if not HANDLE_RE.match(handle):
        raise InvalidInput("A handle may use only letters a–z, digits, '_' and '.' (no spaces or accents).",
                           field="handle")
    return handle


def suggest_handle(name: str) -> str:
    """A handle derived from a name (ASCII letters, digits, '_' and '.')."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    handle = re.sub(r"[^a-z0-9_.]+", "_", ascii_name).strip("_.")[:HANDLE_MAX] or "character"
    return handle if len(handle) >= 2 else f"{handle}_1"


def clean_bio(raw: str | None) -> str:
    """The bio, trimmed, at most 1,000 characters."""
    bio = (raw or "").strip()
    if len(bio) > BIO_MAX:
        raise InvalidInput(f"The bio is {len(bio)} characters; keep it to {BIO_MAX} or fewer.", field="bio")
    return bio


def clean_timezone(raw: str | None) -> str:
    """An IANA time zone name such as Europe/Berlin."""
    tz = (raw or "UTC").strip() or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{tz!r} is not a time zone; use a name like Europe/Berlin or UTC.",
                           field="timezone") from None
    return tz


def clean_cap(value: float | str | None) -> float | None:
    """A monthly spending cap in US dollars (None or blank: no cap)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        cap = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("The monthly cap is a number of US dollars, e.g. 5 or 12.50.",
                           field="monthly_usage_cap_usd") from None
    if cap != cap or cap < 0 or cap > CAP_MAX_USD:
        raise InvalidInput(f"The monthly cap must be between 0 and {CAP_MAX_USD:,.0f} US dollars.",
                           field="monthly_usage_cap_usd")
    return round(cap, 4)


def clean_persona(value: Persona | dict[str, Any] | None) -> Persona:
    """A validated Persona; errors name the persona field (``persona.traits.warmth``)."""
    if value is None:
        return Persona()
    if isinstance(value, Persona):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        raise InvalidInput("The persona must be a JSON object.", field="persona")
    try:
        return validate_persona(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"persona.{exc.field}" if exc.field else "persona") from None


def backend_names(session: Session) -> list[str]:
    """Text backends a character may name: the local model, the offline template writer and every configured one."""
    rows = session.scalars(select(TextBackendConfig.name).order_by(TextBackendConfig.name))
    return list(dict.fromkeys([LOCAL_BACKEND, OFFLINE_BACKEND, *rows]))


def clean_chain(session: Session, primary: str | None, chain: Sequence[Any] | None) -> tuple[str, list[dict[str, str]]]:
    """Validate the primary backend name and the fallback chain ([{backend, model}]) against configured backends."""
    known = set(backend_names(session))
    name = (primary or OFFLINE_BACKEND).strip() or OFFLINE_BACKEND
    if name not in known:
        raise InvalidInput(f"There is no text backend named {name!r}; add it in Settings → Text models first.",
                           field="text_backend")
    out: list[dict[str, str]] = []
    for i, item in enumerate(chain or []):
        if isinstance(item, str):
            item = {"backend": item, "model": ""}
        if not isinstance(item, dict):
            raise InvalidInput("Each fallback step is {backend, model}.", field=f"fallback_chain.{i}")
        step_backend = str(item.get("backend") or "").strip()
        step_model = str(item.get("model") or "").strip()
        if not step_backend:
            continue
        if step_backend not in known:
            raise InvalidInput(f"There is no text backend named {step_backend!r}.", field=f"fallback_chain.{i}")
        if len(step_model) > 120:
            raise InvalidInput("A model name is at most 120 characters.", field=f"fallback_chain.{i}")
        step = {"backend": step_backend, "model": step_model}
        if step not in out:
            out.append(step)
    if len(out) > CHAIN_MAX:
        raise InvalidInput(f"A fallback chain has at most {CHAIN_MAX} steps.", field="fallback_chain")
    return name, out


# ---- reading -------------------------------------------------------------------------------------------


def visible(user: User) -> ColumnElement[bool]:
    """The condition restricting Character rows to what ``user`` may see."""
    return true() if user.is_owner else Character.user_id == user.id


def get_character(session: Session, character_id: int, *, user: User) -> Character:
    """One character the user may see, or NotFound."""
    character = session.get(Character, character_id)
    if character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No character with id {character_id}.")
    return character


def persona_of(character: Character) -> Persona:
    """The character's persona as a model (stored JSON is validated on the way in)."""
    return Persona.model_validate(character.persona or {})


def public_bio(character: Character) -> str:
    """The bio as shown on a public profile, disclosure included unless it was turned off (and recorded)."""
    bio = (character.bio or "").strip()
    if not character.disclosure_enabled:
        return bio
    line = (character.disclosure_text or DISCLOSURE_LINE).strip()
    if line.casefold() in bio.casefold():
        return bio
    return f"{bio}\n{line}" if bio else line


@dataclass
class CharacterPage:
    """One page of a filtered, sorted character list."""

    items: list[Character]
    total: int
    limit: int
    offset: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def page(self) -> int:
        """1-based page number."""
        return self.offset // self.limit + 1 if self.limit else 1

    @property
    def pages(self) -> int:
        """How many pages the filter yields (at least 1)."""
        return max(1, -(-self.total // self.limit)) if self.limit else 1


def _order(sort: str) -> list[Any]:
    column = {
        "name": func.lower(Character.name), "handle": Character.handle, "created": Character.created_at,
        "updated": Character.updated_at, "status": Character.status,
    }
    key = sort.lstrip("-")
    if key not in column:
        raise InvalidInput(f"Sort by one of: {', '.join(SORTS)}.", field="sort")
    col = column[key]
    desc = sort.startswith("-")
    tiebreak = Character.id.desc() if desc else Character.id.asc()
    if key == "status":
        return [Character.status.asc(), func.lower(Character.name).asc(), Character.id.asc()]
    return [col.desc() if desc else col.asc(), tiebreak]


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_characters(
    session: Session,
    *,
    user: User,
    status: CharacterStatus | str | None = None,
    q: str | None = None,
    sort: str = "-created",
    limit: int = 24,
    offset: int = 0,
    with_counts: bool = False,
) -> CharacterPage:
    """Characters the user may see, filtered by status and a name/handle search, sorted and paged."""
    if limit < 1 or limit > PAGE_MAX:
        raise InvalidInput(f"limit must be from 1 to {PAGE_MAX}.", field="limit")
    if offset < 0:
        raise InvalidInput("offset must be 0 or more.", field="offset")
    conditions: list[ColumnElement[bool]] = [visible(user)]
    if status:
        try:
            status = CharacterStatus(status)
        except ValueError:
            raise InvalidInput(f"status is one of {', '.join(s.value for s in CharacterStatus)}.",
                               field="status") from None
        conditions.append(Character.status == status)
    search = (q or "").strip().lstrip("@").lower()
    if search:
        pattern = f"%{_escape_like(search)}%"
        conditions.append(or_(func.lower(Character.name).like(pattern, escape="\\"),
                              Character.handle.like(pattern, escape="\\")))
    order = _order(sort)
    counts = status_counts(session, user=user) if with_counts else {}
    if counts and not search:
        total = counts[status.value if isinstance(status, CharacterStatus) else "all"]
    else:
        total = session.scalar(select(func.count(Character.id)).where(*conditions)) or 0
    # Sort and page over ids only, then load the page's rows: the sorter never carries persona JSON.
    ids = list(session.scalars(select(Character.id).where(*conditions).order_by(*order).limit(limit).offset(offset)))
    loaded = {c.id: c for c in session.scalars(select(Character).where(Character.id.in_(ids)))} if ids else {}
    rows = [loaded[i] for i in ids if i in loaded]
    return CharacterPage(items=rows, total=int(total), limit=limit, offset=offset, counts=counts)


def status_counts(session: Session, *, user: User) -> dict[str, int]:
    """How many of the user's characters are in each status (every status present, 'all' included)."""
    query = select(Character.status, func.count(Character.id)).where(visible(user)).group_by(Character.status)
    counts = {s.value: 0 for s in CharacterStatus}
    for status, n in session.execute(query):
        counts[CharacterStatus(status).value] = int(n)
    counts["all"] = sum(counts.values())
    return counts


def month_start(tz_name: str, now: datetime | None = None) -> datetime:
    """The first instant of the current month in ``tz_name``, as an aware datetime."""
    tz = ZoneInfo(tz_name or "UTC")
    local = (now or utcnow()).astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass
class CharacterStats:
    """Figures for one character from real rows (vault assets, publications, texts, model usage)."""

    texts_generated: int = 0
    texts_flagged: int = 0
    last_text_at: datetime | None = None
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_total_usd: float = 0.0
    cost_month_usd: float = 0.0
    paid_cost_month_usd: float = 0.0
    assets: int = 0
    scheduled_posts: int = 0
    published_posts: int = 0
    not_yet_note: str = NOT_YET

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly figures."""
        return {
            "texts_generated": self.texts_generated, "texts_flagged": self.texts_flagged,
            "last_text_at": self.last_text_at, "calls": self.calls, "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out, "cost_total_usd": round(self.cost_total_usd, 6),
            "cost_month_usd": round(self.cost_month_usd, 6), "paid_cost_month_usd": round(self.paid_cost_month_usd, 6),
            "assets": self.assets, "scheduled_posts": self.scheduled_posts, "published_posts": self.published_posts,
            "not_yet_note": self.not_yet_note,
        }


def stats_for(
    session: Session, characters: Sequence[Character], *, now: datetime | None = None
) -> dict[int, CharacterStats]:
    """Statistics for several characters in a few grouped queries (one page of the dashboard)."""
    ids = [c.id for c in characters]
    out = {cid: CharacterStats() for cid in ids}
    if not ids:
        return out
    texts = session.execute(
        select(GeneratedText.character_id, func.count(GeneratedText.id),
               func.sum(case((GeneratedText.flagged.is_(True), 1), else_=0)), func.max(GeneratedText.created_at))
        .where(GeneratedText.character_id.in_(ids)).group_by(GeneratedText.character_id)
    )
    for cid, n, flagged, last in texts:
        s = out[cid]
        s.texts_generated, s.texts_flagged, s.last_text_at = int(n), int(flagged or 0), _aware(last)
    usage = session.execute(
        select(TextUsage.character_id, func.count(TextUsage.id), func.sum(TextUsage.tokens_in),
               func.sum(TextUsage.tokens_out), func.sum(TextUsage.cost_usd))
        .where(TextUsage.character_id.in_(ids)).group_by(TextUsage.character_id)
    )
    for cid, n, tin, tout, cost in usage:
        s = out[int(cid or 0)]
        s.calls, s.tokens_in, s.tokens_out, s.cost_total_usd = int(n), int(tin or 0), int(tout or 0), float(cost or 0)
    from ainfluencer.db.models_media import Asset, AssetSource, ReviewState
    from ainfluencer.db.models_publishing import Publication, PublicationStatus

    assets = session.execute(
        select(Asset.character_id, func.count(Asset.id))
        .where(Asset.character_id.in_(ids), Asset.source != AssetSource.reference,
               Asset.review_state != ReviewState.archived)
        .group_by(Asset.character_id)
    )
    for cid, n in assets:
        out[int(cid or 0)].assets = int(n)
    waiting = [PublicationStatus.planned, PublicationStatus.due, PublicationStatus.sending,
               PublicationStatus.retry_wait, PublicationStatus.unknown]
    posts = session.execute(
        select(Publication.character_id, Publication.status, func.count(Publication.id))
        .where(Publication.character_id.in_(ids),
               Publication.status.in_([*waiting, PublicationStatus.published]))
        .group_by(Publication.character_id, Publication.status)
    )
    for cid, status, n in posts:
        if status == PublicationStatus.published:
            out[int(cid)].published_posts += int(n)
        else:
            out[int(cid)].scheduled_posts += int(n)
    # Month boundaries follow each character's own time zone; group the page by zone.
    by_tz: dict[str, list[int]] = {}
    for c in characters:
        by_tz.setdefault(c.timezone or "UTC", []).append(c.id)
    for tz, tz_ids in by_tz.items():
        since = month_start(tz, now)
        month = session.execute(
            select(TextUsage.character_id, TextUsage.paid, func.sum(TextUsage.cost_usd))
            .where(TextUsage.character_id.in_(tz_ids), TextUsage.at >= since)
            .group_by(TextUsage.character_id, TextUsage.paid)
        )
        for cid, paid, cost in month:
            s = out[int(cid or 0)]
            s.cost_month_usd += float(cost or 0)
            if paid:
                s.paid_cost_month_usd += float(cost or 0)
    return out


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def character_stats(session: Session, character: Character) -> CharacterStats:
    """Statistics for one character."""
    return stats_for(session, [character])[character.id]


def paid_cost_this_month(session: Session, character: Character, *, now: datetime | None = None) -> float:
    """Month-to-date paid spend of a character in US dollars (its own time zone's month)."""
    since = month_start(character.timezone or "UTC", now)
    total = session.scalar(
        select(func.coalesce(func.sum(TextUsage.cost_usd), 0.0))
        .where(TextUsage.character_id == character.id, TextUsage.paid.is_(True), TextUsage.at >= since)
    )
    return float(total or 0.0)


def usage_by_model(session: Session, *, character: Character | None = None, user: User | None = None,
                   since: datetime | None = None) -> list[dict[str, Any]]:
    """Calls, tokens and cost grouped by backend and model (one character, or everything the user sees)."""
    query = select(
        TextUsage.backend, TextUsage.model, TextUsage.paid, func.count(TextUsage.id), func.sum(TextUsage.tokens_in),
        func.sum(TextUsage.tokens_out), func.sum(TextUsage.cost_usd),
    ).group_by(TextUsage.backend, TextUsage.model, TextUsage.paid)
    if character is not None:
        query = query.where(TextUsage.character_id == character.id)
    elif user is not None and not user.is_owner:
        query = query.where(TextUsage.character_id.in_(select(Character.id).where(Character.user_id == user.id)))
    if since is not None:
        query = query.where(TextUsage.at >= since)
    rows = [
        {"backend": b, "model": m, "paid": bool(p), "calls": int(n), "tokens_in": int(ti or 0),
         "tokens_out": int(to or 0), "cost_usd": round(float(c or 0), 6)}
        for b, m, p, n, ti, to, c in session.execute(query)
    ]
    return sorted(rows, key=lambda r: (-r["cost_usd"], -r["calls"], r["backend"], r["model"]))


# ---- writing ---------------------------------------------------------------------------------------------


def _handle_taken(session: Session, handle: str, *, exclude_id: int | None = None) -> bool:
    query = select(Character.id).where(Character.handle == handle)
    if exclude_id is not None:
        query = query.where(Character.id != exclude_id)
    return session.scalar(query.limit(1)) is not None


def _flush_or_conflict(session: Session, handle: str) -> None:
    # The pre-check gives the friendly message; the unique constraint settles a race between two writers.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"The handle @{handle} is taken; choose another.", field="handle", code="handle_taken") from None


def persona_from_template_key(session: Session, key: str) -> Persona:
    """The persona of a built-in template (slug) or a saved one ('saved:<id>')."""
    key = (key or "").strip()
    if key in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[key].persona.model_copy(deep=True)
    if key.startswith("saved:") and key[6:].isdigit():
        row = session.get(PersonaTemplate, int(key[6:]))
        if row is not None:
            return clean_persona(row.persona)
    raise InvalidInput(f"There is no persona template {key!r}; pick one from the list.", field="template")


def create_character(
    session: Session,
    *,
    user: User,
    name: str,
    handle: str | None = None,
    bio: str | None = None,
    persona: Persona | dict[str, Any] | None = None,
    template: str | None = None,
    disclosure_text: str | None = None,
    text_backend: str | None = None,
    text_model: str = "",
    fallback_chain: Sequence[Any] | None = None,
    monthly_usage_cap_usd: float | str | None = None,
    timezone: str | None = "UTC",
    status: CharacterStatus = CharacterStatus.active,
    ip: str = "",
) -> Character:
    """Create a character; every field is checked first, so a refused request saves nothing."""
    errors = _Errors()
    values: dict[str, Any] = {}
    try:
        values["name"] = clean_name(name)
    except AppError as exc:
        errors.capture(exc)
    try:
        values["handle"] = normalize_handle(handle if handle else suggest_handle(name or ""))
        if _handle_taken(session, values["handle"]):
            errors.add("handle", f"The handle @{values['handle']} is taken; choose another.")
    except AppError as exc:
        errors.capture(exc)
    try:
        if template:
            base = persona_from_template_key(session, template)
            if persona is not None:
                base = clean_persona({**base.model_dump(mode="json"), **_as_dict(persona)})
            values["persona"] = base
        else:
            values["persona"] = clean_persona(persona)
    except AppError as exc:
        errors.capture(exc)
    steps: list[tuple[str, Callable[[Any], Any], Any]] = [
        ("bio", clean_bio, bio), ("timezone", clean_timezone, timezone),
        ("monthly_usage_cap_usd", clean_cap, monthly_usage_cap_usd),
        ("disclosure_text", _clean_disclosure, disclosure_text),
    ]
    for key, fn, raw in steps:
        try:
            values[key] = fn(raw)
        except AppError as exc:
            errors.capture(exc)
    try:
        values["text_backend"], values["fallback_chain"] = clean_chain(session, text_backend, fallback_chain)
        values["text_model"] = _clean_model(text_model)
    except AppError as exc:
        errors.capture(exc)
    errors.raise_if_any()
    p: Persona = values["persona"]
    # One bio: the top-level field wins, a template's or import's bio fills in when none is typed.
    if values["bio"]:
        p.bio = values["bio"]
    else:
        values["bio"] = p.bio
    character = Character(
        user_id=user.id, name=values["name"], handle=values["handle"], status=status, bio=values["bio"],
        persona=p.model_dump(mode="json"), disclosure_enabled=True, disclosure_text=values["disclosure_text"],
        text_backend=values["text_backend"], text_model=values["text_model"],
        fallback_chain=values["fallback_chain"], monthly_usage_cap_usd=values["monthly_usage_cap_usd"],
        timezone=values["timezone"],
    )
    session.add(character)
    _flush_or_conflict(session, character.handle)
    audit(session, "character.created", user_id=user.id, ip=ip, character_id=character.id, handle=character.handle,
          template=template or "")
    return character


def _as_dict(persona: Persona | dict[str, Any]) -> dict[str, Any]:
    return persona.model_dump(mode="json") if isinstance(persona, Persona) else dict(persona)


def _clean_disclosure(raw: str | None) -> str:
    text = " ".join((raw if raw is not None else DISCLOSURE_LINE).split())
    if not text:
        raise InvalidInput("The disclosure line can be reworded but not emptied. To stop showing it, turn the "
                           "disclosure off explicitly (that change is recorded).", field="disclosure_text")
    if len(text) > DISCLOSURE_MAX:
        raise InvalidInput(f"Keep the disclosure line to {DISCLOSURE_MAX} characters.", field="disclosure_text")
    return text


def _clean_model(raw: str | None) -> str:
    model = (raw or "").strip()
    if len(model) > 120:
        raise InvalidInput("A model name is at most 120 characters.", field="text_model")
    return model


def update_character(session: Session, *, user: User, character: Character, changes: dict[str, Any],
                     ip: str = "") -> Character:
    """Apply a partial update (keys from ``UPDATABLE``); all values are checked before any is written."""
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} cannot be changed here.", field=unknown[0])
    errors = _Errors()
    new: dict[str, Any] = {}
    cleaners: dict[str, Callable[[Any], Any]] = {"name": clean_name, "bio": clean_bio, "timezone": clean_timezone,
                "monthly_usage_cap_usd": clean_cap, "disclosure_text": _clean_disclosure, "text_model": _clean_model}
    for key, fn in cleaners.items():
        if key in changes:
            try:
                new[key] = fn(changes[key])
            except AppError as exc:
                errors.capture(exc)
    if "handle" in changes:
        try:
            handle = normalize_handle(changes["handle"])
            if handle != character.handle and _handle_taken(session, handle, exclude_id=character.id):
                errors.add("handle", f"The handle @{handle} is taken; choose another.")
            new["handle"] = handle
        except AppError as exc:
            errors.capture(exc)
    if "persona" in changes:
        try:
            new["persona"] = clean_persona(changes["persona"])
        except AppError as exc:
            errors.capture(exc)
    if "text_backend" in changes or "fallback_chain" in changes:
        try:
            new["text_backend"], new["fallback_chain"] = clean_chain(
                session, changes.get("text_backend", character.text_backend),
                changes.get("fallback_chain", character.fallback_chain),
            )
        except AppError as exc:
            errors.capture(exc)
    if "disclosure_enabled" in changes and not isinstance(changes["disclosure_enabled"], bool):
        errors.add("disclosure_enabled", "disclosure_enabled is true or false.")
    errors.raise_if_any()

    if "persona" in new:
        p: Persona = new["persona"]
        if "bio" in new:
            p.bio = new["bio"]
        else:
            new["bio"] = p.bio
        new["persona"] = p.model_dump(mode="json")
    elif "bio" in new:
        p = persona_of(character)
        p.bio = new["bio"]
        new["persona"] = p.model_dump(mode="json")
    changed = [k for k, v in new.items() if getattr(character, k) != v]
    for key in changed:
        setattr(character, key, new[key])
    if "disclosure_enabled" in changes and changes["disclosure_enabled"] != character.disclosure_enabled:
        set_disclosure(session, user=user, character=character, enabled=changes["disclosure_enabled"], ip=ip)
    if changed:
        character.updated_at = utcnow()
        if "handle" in changed:
            _flush_or_conflict(session, character.handle)
        audit(session, "character.updated", user_id=user.id, ip=ip, character_id=character.id, fields=sorted(changed))
    return character


def set_disclosure(session: Session, *, user: User, character: Character, enabled: bool, ip: str = "") -> Character:
    """Turn the public disclosure line on or off; turning it off records who and when (and audits it)."""
    if enabled == character.disclosure_enabled:
        return character
    character.disclosure_enabled = enabled
    if enabled:
        character.disclosure_disabled_by = None
        character.disclosure_disabled_at = None
    else:
        character.disclosure_disabled_by = user.id
        character.disclosure_disabled_at = utcnow()
    character.updated_at = utcnow()
    audit(session, "character.disclosure_enabled" if enabled else "character.disclosure_disabled",
          user_id=user.id, ip=ip, character_id=character.id, handle=character.handle)
    return character


_TRANSITIONS: dict[str, tuple[set[CharacterStatus], CharacterStatus]] = {
    "pause": ({CharacterStatus.active, CharacterStatus.error}, CharacterStatus.paused),
    "resume": ({CharacterStatus.paused, CharacterStatus.error, CharacterStatus.archived}, CharacterStatus.active),
    "archive": ({CharacterStatus.active, CharacterStatus.paused, CharacterStatus.error}, CharacterStatus.archived),
}


def change_status(session: Session, *, user: User, character: Character, action: str, ip: str = "") -> Character:
    """Pause, resume or archive a character (Conflict when its status does not allow it)."""
    if action not in _TRANSITIONS:
        raise InvalidInput(f"action is one of {', '.join(_TRANSITIONS)}.", field="action")
    allowed, target = _TRANSITIONS[action]
    if character.status == target:
        return character
    if character.status not in allowed:
        raise Conflict(f"@{character.handle} is {character.status.value}; it cannot be {action}d from there.")
    previous = character.status
    character.status = target
    character.status_reason = ""
    character.updated_at = utcnow()
    audit(session, f"character.{action}d", user_id=user.id, ip=ip, character_id=character.id,
          previous=previous.value)
    return character


def mark_error(session: Session, *, character: Character, reason: str) -> Character:
    """Put a character in the error status with a reason a person can act on (used by background work)."""
    character.status = CharacterStatus.error
    character.status_reason = reason[:255]
    character.updated_at = utcnow()
    return character


def _purge_reference_photos(session: Session, settings: Any, ids: list[int]) -> None:
    # Photos of real people were accepted for one character only: they go with it (SCOPE.md).
    from ainfluencer.services.studio import purge_reference_photos

    purge_reference_photos(session, settings=settings, character_ids=ids)


def delete_character(session: Session, *, user: User, character: Character, settings: Any, ip: str = "") -> None:
    """Delete a character, its generated texts and reference photos (usage rows keep their cost history)."""
    _purge_reference_photos(session, settings, [character.id])
    audit(session, "character.deleted", user_id=user.id, ip=ip, character_id=character.id, handle=character.handle,
          name=character.name)
    session.delete(character)
    session.flush()


def _free_handle(session: Session, base: str) -> str:
    stem = base[: HANDLE_MAX - 6].rstrip("._") or "copy"
    for n in range(1, 1000):
        candidate = f"{stem}_copy" if n == 1 else f"{stem}_copy{n}"
        if not _handle_taken(session, candidate):
            return candidate
    raise Conflict("Could not find a free handle for the copy; create it by hand.", field="handle")


def duplicate_character(session: Session, *, user: User, character: Character, name: str | None = None,
                        handle: str | None = None, ip: str = "") -> Character:
    """Copy a character's profile, persona and model settings (not its history); the copy starts paused."""
    new_name = name or f"{character.name} (copy)"[:NAME_MAX]
    new_handle = handle or _free_handle(session, character.handle)
    copy = create_character(
        session, user=user, name=new_name, handle=new_handle, bio=character.bio, persona=character.persona,
        disclosure_text=character.disclosure_text or DISCLOSURE_LINE, text_backend=character.text_backend,
        text_model=character.text_model, fallback_chain=character.fallback_chain,
        monthly_usage_cap_usd=character.monthly_usage_cap_usd, timezone=character.timezone,
        status=CharacterStatus.paused, ip=ip,
    )
    audit(session, "character.duplicated", user_id=user.id, ip=ip, character_id=copy.id, source_id=character.id)
    return copy


@dataclass
class BulkResult:
    """What a bulk action did: ids changed, and ids skipped with the reason."""

    action: str
    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def bulk_action(
    session: Session, *, user: User, ids: Iterable[int], action: str, settings: Any, ip: str = ""
) -> BulkResult:
    """Pause, resume, archive or delete many characters in one transaction; unknown ids are skipped."""
    if action not in BULK_ACTIONS:
        raise InvalidInput(f"action is one of {', '.join(BULK_ACTIONS)}.", field="action")
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise InvalidInput("Select at least one character.", field="ids")
    if len(wanted) > BULK_MAX:
        raise InvalidInput(f"Select at most {BULK_MAX} characters at a time.", field="ids")
    result = BulkResult(action=action)
    rows = {c.id: c for c in session.scalars(select(Character).where(visible(user), Character.id.in_(wanted)))}
    for cid in wanted:
        if cid not in rows:
            result.skipped[cid] = "not found"
    if action == "delete":
        found = [cid for cid in wanted if cid in rows]
        if found:
            _purge_reference_photos(session, settings, found)
            audit(session, "character.bulk_deleted", user_id=user.id, ip=ip, ids=found,
                  handles=[rows[c].handle for c in found])
            session.execute(delete(Character).where(Character.id.in_(found)))
            for gone in rows.values():
                session.expunge(gone)
        result.done = found
        return result
    allowed, target = _TRANSITIONS[action]
    for cid in wanted:
        row = rows.get(cid)
        if row is None:
            continue
        if row.status == target:
            result.skipped[cid] = f"already {target.value}"
        elif row.status not in allowed:
            result.skipped[cid] = f"is {row.status.value}"
        else:
            row.status, row.status_reason, row.updated_at = target, "", utcnow()
            result.done.append(cid)
    if result.done:
        audit(session, f"character.bulk_{action}d", user_id=user.id, ip=ip, ids=result.done)
    return result


# ---- templates, import and export ----------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateChoice:
    """A template as offered in a picker: built-in (slug) or saved ('saved:<id>')."""

    key: str
    name: str
    description: str
    builtin: bool
    persona: Persona
    template_id: int | None = None
    created_at: datetime | None = None


def list_templates(session: Session) -> list[TemplateChoice]:
    """Built-in templates first, then templates users saved on this install."""
    out = [TemplateChoice(key=slug, name=t.name, description=t.description, builtin=True, persona=t.persona)
           for slug, t in BUILTIN_TEMPLATES.items()]
    for row in session.scalars(select(PersonaTemplate).order_by(func.lower(PersonaTemplate.name))):
        try:
            persona = Persona.model_validate(row.persona)
        except ValueError:
            continue  # a template saved under an older schema that no longer validates is not offered
        out.append(TemplateChoice(key=f"saved:{row.id}", name=row.name, description=row.description, builtin=False,
                                  persona=persona, template_id=row.id, created_at=row.created_at))
    return out


def save_as_template(session: Session, *, user: User, character: Character, name: str, description: str = "",
                     ip: str = "") -> PersonaTemplate:
    """Save a character's persona as a new template everyone on the install can start from."""
    clean = " ".join((name or "").split())
    if not clean:
        raise InvalidInput("Name the template.", field="name")
    if len(clean) > TEMPLATE_NAME_MAX:
        raise InvalidInput(f"Keep the template name to {TEMPLATE_NAME_MAX} characters.", field="name")
    desc = (description or "").strip()
    if len(desc) > TEMPLATE_DESCRIPTION_MAX:
        raise InvalidInput(f"Keep the description to {TEMPLATE_DESCRIPTION_MAX} characters.", field="description")
    taken = session.scalar(select(PersonaTemplate.id).where(func.lower(PersonaTemplate.name) == clean.lower()))
    if taken is not None or clean.lower() in {t.name.lower() for t in BUILTIN_TEMPLATES.values()}:
        raise Conflict(f"A template called {clean!r} exists; choose another name.", field="name")
    row = PersonaTemplate(user_id=user.id, name=clean, description=desc, persona=persona_of(character).model_dump(
        mode="json"), source_character_id=character.id)
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"A template called {clean!r} exists; choose another name.", field="name") from None
    audit(session, "persona_template.created", user_id=user.id, ip=ip, template_id=row.id, character_id=character.id)
    return row


def delete_template(session: Session, *, user: User, template_id: int, ip: str = "") -> None:
    """Delete a saved template (its creator or the owner)."""
    row = session.get(PersonaTemplate, template_id)
    if row is None or (not user.is_owner and row.user_id != user.id):
        raise NotFound(f"No saved template with id {template_id}.")
    audit(session, "persona_template.deleted", user_id=user.id, ip=ip, template_id=row.id, name=row.name)
    session.delete(row)


def export_json(character: Character) -> str:
    """The character's persona as a versioned JSON document."""
    return export_persona_json(persona_of(character))


def export_prompt(character: Character) -> str:
    """The persona as a plain-text system prompt for other AI tools."""
    return persona_system_prompt(persona_of(character), character_name=character.name, handle=character.handle)


def import_persona(text: str | bytes) -> Persona:
    """Parse an exported persona file; errors name the field and the line."""
    try:
        return import_persona_json(text)
    except InvalidInput as exc:
        field_name = exc.field if exc.field in (None, "json", "schema_version") else f"persona.{exc.field}"
        raise InvalidInput(exc.message, field=field_name) from None


def import_character(session: Session, *, user: User, text: str | bytes, name: str, handle: str | None = None,
                     ip: str = "") -> Character:
    """Create a character from an exported persona file (nothing is saved when the file is refused)."""
    persona = import_persona(text)
    return create_character(session, user=user, name=name, handle=handle, persona=persona, ip=ip)


def replace_persona(session: Session, *, user: User, character: Character, text: str | bytes,
                    ip: str = "") -> Character:
    """Replace a character's persona with an imported file."""
    persona = import_persona(text)
    return update_character(session, user=user, character=character, changes={"persona": persona}, ip=ip)


def since_days(days: int) -> datetime:
    """Now minus ``days`` (for usage windows)."""
    return utcnow() - timedelta(days=days)
