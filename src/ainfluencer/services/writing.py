"""Persona-driven writing: the model chain per character, platform fitting, uniqueness, usage and cost.

A generation runs: persona → system prompt (+ the platform's rules) → the character's backend chain
(its primary model, its fallbacks, the offline writer last) → cleaned and fitted to the platform
(length counted the platform's way, hashtags in the persona's habit) → checked against the
character's earlier texts (regenerated up to ``max_attempts`` times, then flagged for a person) →
saved as a GeneratedText with one TextUsage row per model call. ``generate`` does it in one call;
``stream_generate`` yields the text as the model writes it (for the UI), then the same saved result.
Both go through ``prepare_generation`` → ``Generation.run`` → ``Generation.save``.

Paid backends are skipped once the character's month-to-date paid spend reaches its cap; the chain
then falls through to free backends and always ends at the offline writer.

This module also keeps the install's text-backend configurations (keys in the secrets service,
owner_kind ``text_backend``) and the editable price table.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ainfluencer.backends.text.base import ChatMessage, ChatResult, ConnectionReport, TextBackend
from ainfluencer.backends.text.errors import BackendError, ChainExhausted
from ainfluencer.backends.text.local import LocalTextBackend
from ainfluencer.backends.text.offline import OfflineTextBackend
from ainfluencer.backends.text.registry import (
    DEFAULT_PRICES,
    TEXT_BACKENDS,
    ChainDelta,
    ChainEntry,
    ChainResult,
    FallbackChain,
    PriceTable,
    cost_of,
)
from ainfluencer.characters.persona import TRAIT_NAMES, Persona, persona_system_prompt, trait_guidance
from ainfluencer.db.models import (
    Character,
    GeneratedText,
    Job,
    ModelPrice,
    TextBackendConfig,
    TextUsage,
    User,
    utcnow,
)
from ainfluencer.errors import AppError, Conflict, InvalidInput, NotFound, PermissionDenied
from ainfluencer.jobs import queue
from ainfluencer.jobs.errors import PermanentJobError
from ainfluencer.jobs.registry import JobContext
from ainfluencer.platforms.registry import spec as platform_spec
from ainfluencer.runtime import Runtime
from ainfluencer.services import characters as chars
from ainfluencer.services.auth import audit
from ainfluencer.services.model_files import text_models_dir
from ainfluencer.writing.disclosure import enforce_disclosure
from ainfluencer.writing.offline import STYLES, WritingRequest
from ainfluencer.writing.platform_rules import (
    PLATFORM_RULES,
    TextRules,
    apply_hashtags,
    fit_text,
    hashtags_in,
    rules_for,
    split_thread,
    text_length,
)
from ainfluencer.writing.uniqueness import DEFAULT_THRESHOLD, UniquenessIndex

T = TypeVar("T")
log = logging.getLogger(__name__)
SECRET_KIND = "text_backend"  # noqa: S105 - a row label, not a secret
SECRET_NAME = "api_key"  # noqa: S105 - a row label, not a secret
HISTORY_LIMIT = 2000
MAX_ATTEMPTS = 6
# built in, never a Settings row: the template writer and the in-process local model
BUILTIN_BACKENDS = ("offline", "local")
BACKEND_KINDS: tuple[str, ...] = tuple(k for k in TEXT_BACKENDS if k not in BUILTIN_BACKENDS)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")
_THREAD_NUMBER = re.compile(r"\s\d{1,3}/\d{1,3}$")
_PREFACE = re.compile(r"^(?:sure[,!.]?\s*)?(?:here(?:'s| is) (?:a|an|the|your|my)\b[^:\n]{0,80}:\s*)", re.IGNORECASE)
_DUP_TAG = re.compile(r"(?<![\w#])#(\w+)")
_TAIL_TAGS = re.compile(r"(?:(?<=\s)|^)(?:#\w+\s*)+$")

# Writer kinds (what the persona writer knows) and the platform kinds they land on.
WRITER_KINDS = ("caption", "tweet", "thread", "youtube_title", "youtube_description", "telegram_post", "reply")
_KIND_WORDS = {
    "post": None, "tweet": None, "caption": None, "text": None, "message": None, "telegram_post": None,
    "title": "youtube_title", "youtube_title": "youtube_title",
    "description": "youtube_description", "youtube_description": "youtube_description",
    "thread": "thread", "reply": "reply",
}
def kind_label(platform: str, kind: str) -> str:
    """What a person calls a text of ``kind`` on ``platform``.

    The writer's default kind shows as the network's own word ("tweet" is only how the writer shapes a
    short text; on X, Bluesky and Mastodon it is a "post").
    """
    try:
        default_writer, platform_kind = next(iter(platform_spec(platform).writer_kinds.items()))
    except (KeyError, StopIteration):  # a network this installation does not know (an old row)
        return kind.replace("_", " ")
    if kind == default_writer and platform_kind:
        return platform_kind
    return kind.replace("_", " ")


MAX_TOKENS = {"youtube_title": 80, "tweet": 220, "reply": 220, "caption": 600, "telegram_post": 700,
              "youtube_description": 1000, "thread": 1000}
STYLE_LABELS = {"casual": "Casual", "professional": "Professional", "promotional": "Promotional",
                "storytelling": "Storytelling", "question": "Question to followers"}


@dataclass(frozen=True)
class ContentTemplate:
    """A reusable brief: ``{topic}`` is filled with the user's brief or one of the persona's topics."""

    label: str
    brief: str
    style: str


CONTENT_TEMPLATES: dict[str, ContentTemplate] = {
    "tip": ContentTemplate("Tip of the day", "Share one practical, specific tip about {topic}.", "professional"),
    "behind_the_scenes": ContentTemplate("Behind the scenes", "Show what happens behind the scenes of {topic}.",
                                         "storytelling"),
    "ask": ContentTemplate("Ask the audience", "Ask followers about their own experience with {topic}.", "question"),
    "milestone": ContentTemplate("Small milestone", "Celebrate a small milestone in {topic} and thank the audience.",
                                 "casual"),
    "recap": ContentTemplate("Weekly recap", "Recap this week's highlights in {topic}.", "casual"),
    "announcement": ContentTemplate("Announcement", "Announce something new about {topic}; clear and upbeat.",
                                    "promotional"),
    "story": ContentTemplate("Short story", "Tell a short story from a day spent on {topic}.", "storytelling"),
    "myth": ContentTemplate("Myth vs fact", "Correct one common myth about {topic}, kindly.", "professional"),
}

SAMPLE_COMMENTS = (
    "This is so helpful, thank you!",
    "What would you recommend for a total beginner?",
    "Are you a real person or an AI?",
    "Not sure I agree with this one.",
    "Love this, more please!",
)


# ---- running async backends from sync code -------------------------------------------------------------


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code (a fresh loop; a helper thread inside a running loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_as_coro(make))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="writing") as pool:
        return pool.submit(lambda: asyncio.run(_as_coro(make))).result()


async def _as_coro(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


_SSL_LOCK = threading.Lock()
_SSL_CONTEXT: ssl.SSLContext | None = None


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every backend client (building one costs ~25 ms; a generation must not pay it)."""
    global _SSL_CONTEXT
    with _SSL_LOCK:
        if _SSL_CONTEXT is None:
            _SSL_CONTEXT = httpx.create_ssl_context()
        return _SSL_CONTEXT


def new_http_client() -> httpx.AsyncClient:
    """An AsyncClient for backend calls (each backend passes its own timeouts per request)."""
    return httpx.AsyncClient(verify=shared_ssl_context(), timeout=httpx.Timeout(60.0))


# ---- prices ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PriceEntry:
    """One row of the price table as shown in Settings."""

    backend_kind: str
    model: str
    input_per_mtok_usd: float
    output_per_mtok_usd: float
    source: str  # "default" (built-in list price) or "edited"


def price_rows(session: Session) -> list[PriceEntry]:
    """The price table: edited rows, then built-in defaults for models not edited."""
    rows = list(session.scalars(select(ModelPrice).order_by(ModelPrice.backend_kind, ModelPrice.model)))
    out = [PriceEntry(r.backend_kind, r.model, r.input_per_mtok_usd, r.output_per_mtok_usd, "edited") for r in rows]
    edited = {r.model for r in rows}
    for model, price in sorted(DEFAULT_PRICES.items()):
        if model not in edited:
            out.append(PriceEntry("", model, float(price.input_per_mtok), float(price.output_per_mtok), "default"))
    return out


def set_price_table(session: Session, *, user: User, rows: Sequence[dict[str, Any]], ip: str = "") -> list[PriceEntry]:
    """Replace the edited price rows (owner only); defaults apply again to models left out."""
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can edit prices.")
    seen: set[tuple[str, str]] = set()
    clean: list[ModelPrice] = []
    for i, row in enumerate(rows):
        kind = str(row.get("backend_kind") or "").strip()
        model = str(row.get("model") or "").strip()
        if kind and kind not in BACKEND_KINDS:
            raise InvalidInput(f"Row {i + 1}: backend kind is empty (any) or one of {', '.join(BACKEND_KINDS)}.",
                               field=f"data.{i}.backend_kind")
        if not model or len(model) > 120:
            raise InvalidInput(f"Row {i + 1}: give a model name (up to 120 characters).", field=f"data.{i}.model")
        try:
            inp, out = float(row.get("input_per_mtok_usd", -1)), float(row.get("output_per_mtok_usd", -1))
        except (TypeError, ValueError):
            raise InvalidInput(f"Row {i + 1}: prices are numbers of US dollars per million tokens.",
                               field=f"data.{i}.input_per_mtok_usd") from None
        if not (0 <= inp <= 10_000 and 0 <= out <= 10_000):
            raise InvalidInput(f"Row {i + 1}: prices are between 0 and 10,000 US dollars per million tokens.",
                               field=f"data.{i}.input_per_mtok_usd")
        if (kind, model) in seen:
            raise InvalidInput(f"Row {i + 1}: {model!r} is listed twice.", field=f"data.{i}.model")
        seen.add((kind, model))
        clean.append(ModelPrice(backend_kind=kind, model=model, input_per_mtok_usd=inp, output_per_mtok_usd=out))
    session.execute(delete(ModelPrice))
    session.add_all(clean)
    session.flush()
    audit(session, "text.prices_updated", user_id=user.id, ip=ip, rows=len(clean))
    return price_rows(session)


def price_table_for(session: Session, backend_kind: str) -> PriceTable:
    """The registry's PriceTable for one backend kind: defaults, then edits for any kind, then for this kind."""
    table = PriceTable()
    rows = session.scalars(select(ModelPrice).where(ModelPrice.backend_kind.in_(["", backend_kind])))
    for row in sorted(rows, key=lambda r: r.backend_kind != ""):
        table.set(row.model, Decimal(str(row.input_per_mtok_usd)), Decimal(str(row.output_per_mtok_usd)))
    return table


# ---- backend configurations ----------------------------------------------------------------------------


def _paid_default(kind: str, base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if kind == "openai_compat" and (host.endswith("openai.com") or host.endswith("openrouter.ai")):
        return True
    return TEXT_BACKENDS[kind].paid


def _default_url(kind: str) -> str:
    return str(getattr(TEXT_BACKENDS.get(kind), "default_base_url", ""))


def _clean_url(raw: str | None, kind: str) -> str:
    url = (raw or "").strip().rstrip("/")
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        example = _default_url(kind) or "http://127.0.0.1:11434"
        raise InvalidInput(f"The base URL must start with http:// or https://, e.g. {example}.", field="base_url")
    if len(url) > 500:
        raise InvalidInput("The base URL is at most 500 characters.", field="base_url")
    return url


def _clean_backend_name(raw: str | None) -> str:
    name = (raw or "").strip().lower()
    if not _NAME_RE.match(name):
        raise InvalidInput("A name is 2–64 of a–z, 0–9, '-', '_' and '.', starting with a letter or digit "
                           "(e.g. local-ollama).", field="name")
    if name in (chars.OFFLINE_BACKEND, chars.LOCAL_BACKEND):
        raise InvalidInput(f"{name!r} is a built-in writer; choose another name.", field="name")
    return name


def _require_owner(user: User) -> None:
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can change text backends.")


def list_backend_configs(session: Session) -> list[TextBackendConfig]:
    """Configured text backends, by name."""
    return list(session.scalars(select(TextBackendConfig).order_by(TextBackendConfig.name)))


def get_backend_config(session: Session, config_id: int) -> TextBackendConfig:
    """One configured backend, or NotFound."""
    row = session.get(TextBackendConfig, config_id)
    if row is None:
        raise NotFound(f"No text backend with id {config_id}.")
    return row


def has_api_key(session: Session, runtime: Runtime, config: TextBackendConfig) -> bool:
    """Whether a key is stored for the backend (the key itself is never shown)."""
    return runtime.secrets.get(session, owner_kind=SECRET_KIND, owner_id=config.id, name=SECRET_NAME) is not None


def create_backend_config(
    session: Session, runtime: Runtime, *, user: User, name: str, kind: str, base_url: str = "",
    default_model: str = "", api_key: str | None = None, paid: bool | None = None, enabled: bool = True,
    timeout_s: float = 60.0, ip: str = "",
) -> TextBackendConfig:
    """Add a text backend (owner only); the key goes to the secrets service, encrypted."""
    _require_owner(user)
    if kind not in BACKEND_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(BACKEND_KINDS)}.", field="kind")
    clean = _clean_backend_name(name)
    url = _clean_url(base_url, kind)
    model = (default_model or "").strip()
    if len(model) > 120:
        raise InvalidInput("A model name is at most 120 characters.", field="default_model")
    if not 0 < float(timeout_s) <= 600:
        raise InvalidInput("The timeout is between 1 and 600 seconds.", field="timeout_s")
    key = (api_key or "").strip()
    if TEXT_BACKENDS[kind].needs_api_key and not key:
        raise InvalidInput(f"{TEXT_BACKENDS[kind].label} needs an API key.", field="api_key")
    if session.scalar(select(TextBackendConfig.id).where(TextBackendConfig.name == clean)) is not None:
        raise Conflict(f"A text backend called {clean!r} exists; choose another name.", field="name")
    row = TextBackendConfig(
        name=clean, kind=kind, base_url=url, default_model=model,
        paid=_paid_default(kind, url or _default_url(kind)) if paid is None else bool(paid),
        enabled=enabled, timeout_s=float(timeout_s), created_by=user.id,
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"A text backend called {clean!r} exists; choose another name.", field="name") from None
    if key:
        runtime.secrets.put(session, owner_kind=SECRET_KIND, owner_id=row.id, name=SECRET_NAME, value=key)
    audit(session, "text_backend.created", user_id=user.id, ip=ip, backend=row.name, kind=kind, has_key=bool(key))
    return row


def update_backend_config(
    session: Session, runtime: Runtime, *, user: User, config: TextBackendConfig, changes: dict[str, Any],
    ip: str = "",
) -> TextBackendConfig:
    """Change a backend (owner only); ``api_key: ''`` removes the stored key; renames follow into characters."""
    _require_owner(user)
    new: dict[str, Any] = {}
    if "name" in changes and changes["name"] is not None:
        new["name"] = _clean_backend_name(changes["name"])
        if new["name"] != config.name and session.scalar(
            select(TextBackendConfig.id).where(TextBackendConfig.name == new["name"])
        ) is not None:
            raise Conflict(f"A text backend called {new['name']!r} exists; choose another name.", field="name")
    if changes.get("base_url") is not None:
        new["base_url"] = _clean_url(changes["base_url"], config.kind)
    if changes.get("default_model") is not None:
        model = str(changes["default_model"]).strip()
        if len(model) > 120:
            raise InvalidInput("A model name is at most 120 characters.", field="default_model")
        new["default_model"] = model
    for flag in ("paid", "enabled"):
        if changes.get(flag) is not None:
            new[flag] = bool(changes[flag])
    if changes.get("timeout_s") is not None:
        if not 0 < float(changes["timeout_s"]) <= 600:
            raise InvalidInput("The timeout is between 1 and 600 seconds.", field="timeout_s")
        new["timeout_s"] = float(changes["timeout_s"])
    key = changes.get("api_key")
    if key is not None and not str(key).strip() and TEXT_BACKENDS[config.kind].needs_api_key:
        raise InvalidInput(f"{TEXT_BACKENDS[config.kind].label} needs an API key; replace it rather than remove it.",
                           field="api_key")
    old_name = config.name
    for k, v in new.items():
        setattr(config, k, v)
    if key is not None:
        if str(key).strip():
            runtime.secrets.put(session, owner_kind=SECRET_KIND, owner_id=config.id, name=SECRET_NAME,
                                value=str(key).strip())
        else:
            runtime.secrets.delete(session, owner_kind=SECRET_KIND, owner_id=config.id, name=SECRET_NAME)
    if config.name != old_name:
        _rename_in_characters(session, old_name, config.name)
    config.updated_at = utcnow()
    session.flush()
    audit(session, "text_backend.updated", user_id=user.id, ip=ip, backend=config.name,
          fields=sorted([*new, *(["api_key"] if key is not None else [])]))
    return config


def _rename_in_characters(session: Session, old: str, new: str | None) -> None:
    """Point characters at a renamed backend, or (new=None) drop a deleted one from their chains."""
    for c in session.scalars(select(Character)):
        chain = [dict(s) for s in c.fallback_chain or []]
        touched = False
        if c.text_backend == old:
            c.text_backend, touched = (new or chars.OFFLINE_BACKEND), True
            if new is None:
                c.text_model = ""
        kept = []
        for step in chain:
            if step.get("backend") == old:
                touched = True
                if new is None:
                    continue
                step["backend"] = new
            kept.append(step)
        if touched:
            c.fallback_chain = kept


def delete_backend_config(session: Session, runtime: Runtime, *, user: User, config: TextBackendConfig,
                          ip: str = "") -> None:
    """Remove a backend and its key; characters using it fall back to the next step (or offline)."""
    _require_owner(user)
    runtime.secrets.delete(session, owner_kind=SECRET_KIND, owner_id=config.id, name=SECRET_NAME)
    _rename_in_characters(session, config.name, None)
    audit(session, "text_backend.deleted", user_id=user.id, ip=ip, backend=config.name)
    session.delete(config)
    session.flush()


def build_backend(session: Session, runtime: Runtime, config: TextBackendConfig,
                  client: httpx.AsyncClient | None = None) -> TextBackend:
    """An instance of the configured backend with its key; its ``name`` is the config's name."""
    cls = TEXT_BACKENDS[config.kind]
    key = runtime.secrets.get(session, owner_kind=SECRET_KIND, owner_id=config.id, name=SECRET_NAME)
    backend = cls(base_url=config.base_url or None, api_key=key, timeout=config.timeout_s,  # type: ignore[call-arg]
                  model=config.default_model or None, client=client)
    # Per-install facts override the class defaults: the name characters use, and whether calls cost money.
    backend.name = config.name  # type: ignore[misc]
    backend.paid = config.paid  # type: ignore[misc]
    return backend


def test_backend_config(session: Session, runtime: Runtime, *, config: TextBackendConfig) -> ConnectionReport:
    """Run "Test connection" on a saved backend and remember the outcome."""
    client = new_http_client()
    backend = build_backend(session, runtime, config, client=client)

    async def go() -> ConnectionReport:
        async with client, backend:
            return await backend.test_connection()

    report = run_async(go)
    config.last_test_at = utcnow()
    config.last_test_ok = report.ok
    config.last_test_message = report.message[:500]
    if report.ok and config.default_model and config.default_model not in report.models and report.models:
        config.last_test_message = (f"{report.message}; the default model {config.default_model!r} is not among "
                                    f"them (on Ollama: ollama pull {config.default_model})")[:500]
    return ConnectionReport(ok=report.ok, message=config.last_test_message, models=report.models)


def test_backend_values(*, kind: str, base_url: str = "", api_key: str | None = None,
                        timeout_s: float = 15.0) -> ConnectionReport:
    """Test connection settings before they are saved (nothing is stored)."""
    if kind not in BACKEND_KINDS:
        raise InvalidInput(f"kind is one of {', '.join(BACKEND_KINDS)}.", field="kind")
    url = _clean_url(base_url, kind)
    cls = TEXT_BACKENDS[kind]

    async def go() -> ConnectionReport:
        client = new_http_client()
        backend = cls(base_url=url or None, api_key=(api_key or None), timeout=timeout_s,  # type: ignore[call-arg]
                      client=client)
        async with client, backend:
            return await backend.test_connection()

    return run_async(go)


# ---- pulling an Ollama model (a job with progress) ------------------------------------------------------

PULL_JOB = "text_backend.pull_model"


def enqueue_pull(session: Session, *, user: User, config: TextBackendConfig, model: str) -> Job:
    """Queue a download of ``model`` on an Ollama backend; the job's progress shows on its page."""
    _require_owner(user)
    if config.kind != "ollama":
        raise InvalidInput("Only Ollama servers pull models; pick the model on the server itself.", field="model")
    model = (model or config.default_model or "").strip()
    if not model or len(model) > 120 or any(ch.isspace() for ch in model):
        raise InvalidInput("Name the model to pull, e.g. llama3.2 or qwen2.5:7b.", field="model")
    return queue.enqueue(session, PULL_JOB, {"backend_id": config.id, "model": model}, user_id=user.id,
                         max_attempts=3, idempotency_key=f"pull:{config.id}:{model}:{utcnow():%Y%m%d%H%M}")


def pull_model_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Pull a model onto an Ollama server, reporting download progress."""
    from ainfluencer.backends.text.ollama import OllamaBackend

    runtime = ctx.runtime
    model = str(payload.get("model") or "")
    with runtime.db.session() as s:
        config = s.get(TextBackendConfig, int(payload.get("backend_id") or 0))
        if config is None or config.kind != "ollama":
            raise PermanentJobError("the Ollama backend no longer exists")
        client = new_http_client()
        backend = build_backend(s, runtime, config, client=client)
    if not isinstance(backend, OllamaBackend):
        raise PermanentJobError("not an Ollama backend")
    ctx.progress(1, f"asking {config.name} for {model}")

    async def go() -> str:
        last = ""
        async with client, backend:
            async for step in backend.pull(model):
                ctx.check()
                fraction = step.fraction
                percent = 5 + int(90 * fraction) if fraction is not None else 5
                if step.status != last or fraction is not None:
                    ctx.progress(min(99, percent), step.status)
                last = step.status
        return last

    try:
        status = run_async(go)
    except BackendError as exc:
        raise exc.as_job_error() from exc
    ctx.progress(100, f"{model} is ready")
    return {"model": model, "status": status}


# Job kinds this feature runs (listed in jobs/registry.py FEATURES).
JOB_HANDLERS = {PULL_JOB: pull_model_job}


# ---- the chain of one character -------------------------------------------------------------------------


@dataclass
class PlannedStep:
    """One backend of a character's chain, or why it was left out."""

    name: str
    model: str
    config: TextBackendConfig | None
    skipped: str = ""
    builtin: bool = False


def ends_with_template(character: Character) -> bool:
    """Whether the character itself names the offline template writer (as primary or as a fallback)."""
    steps = [character.text_backend or chars.OFFLINE_BACKEND,
             *(str(s.get("backend") or "") for s in character.fallback_chain or [])]
    return chars.OFFLINE_BACKEND in steps


def plan_chain(session: Session, character: Character) -> list[PlannedStep]:
    """The character's primary backend and fallbacks in order, up to the first 'offline' step."""
    configs = {c.name: c for c in list_backend_configs(session)}
    steps = [{"backend": character.text_backend or chars.OFFLINE_BACKEND, "model": character.text_model or ""},
             *(character.fallback_chain or [])]
    out: list[PlannedStep] = []
    for step in steps:
        name, model = str(step.get("backend") or ""), str(step.get("model") or "")
        if name == chars.OFFLINE_BACKEND:
            break  # the offline writer ends every chain; steps after it would never run
        config = configs.get(name)
        if config is None and name == chars.LOCAL_BACKEND:
            out.append(PlannedStep(name, model or LocalTextBackend.default_model, None, builtin=True))
        elif config is None:
            out.append(PlannedStep(name, model, None, "no longer configured"))
        elif not config.enabled:
            out.append(PlannedStep(name, model, config, "disabled in Settings"))
        else:
            out.append(PlannedStep(name, model or config.default_model, config))
    return out


@dataclass
class _Call:
    """A chain answer plus the kind of backend that gave it."""

    chain: ChainResult
    backend_kind: str


class CharacterWriter:
    """The backends of one character for one request: build once, call, close."""

    def __init__(self, session: Session, runtime: Runtime, *, character: Character | None, persona: Persona,
                 name: str, handle: str, seed: int | None = None, use_models: bool = True,
                 client: httpx.AsyncClient | None = None, allow_template: bool = False) -> None:
        self.persona, self.name, self.handle = persona, name, handle
        self.kinds: dict[str, str] = {chars.OFFLINE_BACKEND: "offline", chars.LOCAL_BACKEND: "local"}
        self.entries: list[ChainEntry] = []
        self.notes: list[str] = []
        self._own_client: httpx.AsyncClient | None = None
        # The template writer answers only when the character names it or the person chose it for this
        # text: a configured model that is down is reported, never silently replaced.
        self.template_allowed = allow_template or not use_models or character is None or ends_with_template(character)
        if character is not None and use_models:
            for step in plan_chain(session, character):
                if step.builtin:
                    local = LocalTextBackend(models_dir=text_models_dir(runtime.settings.resolved_data_dir),
                                             model=step.model or None, seed=seed)
                    self.entries.append(ChainEntry(local, step.model or None))
                    continue
                if step.config is None or step.skipped:
                    self.notes.append(f"{step.name}: skipped ({step.skipped})")
                    continue
                if client is None:
                    client = self._own_client = new_http_client()
                backend = build_backend(session, runtime, step.config, client=client)
                self.kinds[step.config.name] = step.config.kind
                self.entries.append(ChainEntry(backend, step.model or None))
        self.offline = OfflineTextBackend(persona, character_name=name, seed=seed)
        # Month-to-date paid spend, advanced by every paid call this writer makes.
        self.cap = character.monthly_usage_cap_usd if character is not None else None
        self.spent = chars.paid_cost_this_month(session, character) if character is not None and self.entries else 0.0
        self._lock = threading.Lock()

    def allow_paid(self) -> bool:
        """Paid calls stop once month-to-date paid spend reaches the cap."""
        return self.cap is None or self.spent < self.cap

    def chain(self) -> FallbackChain:
        """A fresh FallbackChain over this writer's backends, ending with the offline writer when allowed."""
        return FallbackChain(self.entries, offline=self.offline if self.template_allowed else None,
                             allow_paid=self.allow_paid)

    async def aclose(self) -> None:
        """Close every backend and the shared HTTP client."""
        async with AsyncExitStack() as stack:
            if self._own_client is not None:
                stack.push_async_callback(self._own_client.aclose)
            for entry in self.entries:
                stack.push_async_callback(entry.backend.aclose)

    async def call(self, messages: Sequence[ChatMessage], *, temperature: float, max_tokens: int) -> _Call:
        """Ask the chain once."""
        return self.answered(await self.chain().chat(messages, temperature=temperature, max_tokens=max_tokens))

    def answered(self, result: ChainResult) -> _Call:
        """A chain answer (asked at once or streamed) with the kind of backend that gave it."""
        return _Call(result, self.kinds.get(result.backend, result.backend))


def _record_usage(session: Session, *, character_id: int | None, call: _Call, purpose: str,
                  writer: CharacterWriter | None = None) -> tuple[float, str]:
    """Save one TextUsage row for a chain answer; returns (cost, note)."""
    result: ChatResult = call.chain.result
    cost = cost_of(result, price_table_for(session, call.backend_kind))
    note = ""
    if cost is None:
        note = (f"no price for model {result.model!r}; add it in Settings → Text models so the cap can count it")
        cost = Decimal(0)
    usd = float(cost)
    session.add(TextUsage(
        character_id=character_id, backend=call.chain.backend, backend_kind=call.backend_kind, model=result.model,
        purpose=purpose, tokens_in=result.input_tokens, tokens_out=result.output_tokens, cost_usd=usd,
        paid=result.paid, ok=True, error=note[:500],
    ))
    if writer is not None and result.paid:
        writer.spent += usd
    return usd, note


# ---- prompt, cleaning and fitting --------------------------------------------------------------------------


def resolve_kind(platform: str, kind: str | None) -> tuple[str, str | None, TextRules]:
    """(writer kind, platform kind, rules) for a requested platform and kind; InvalidInput names the field."""
    platform = (platform or "").strip().lower()
    if platform not in PLATFORM_RULES:
        raise InvalidInput(f"platform is one of {', '.join(PLATFORM_RULES)}.", field="platform")
    spec = platform_spec(platform)
    default_writer, default_platform_kind = next(iter(spec.writer_kinds.items()))
    k = (kind or "").strip().lower() or None
    if k is None:
        return default_writer, default_platform_kind, rules_for(platform, default_platform_kind)
    if k not in _KIND_WORDS:
        raise InvalidInput("kind is one of caption, post, thread, title, description, text, reply.", field="kind")
    writer_kind = _KIND_WORDS[k]
    if writer_kind is None:  # a generic word: the network's own kind of that name (a caption), else its default
        platform_kind = k if k in spec.rules and k not in spec.writer_kinds.values() else default_platform_kind
        return default_writer, platform_kind, rules_for(platform, platform_kind)
    if writer_kind == "reply":
        return "reply", None, rules_for(platform, default_platform_kind)
    if writer_kind == "thread":
        if "thread" not in PLATFORM_RULES[platform]:
            raise InvalidInput(f"Threads are written for X; on {platform} write a post.", field="kind")
        return "thread", "thread", rules_for(platform, "thread")
    if writer_kind not in spec.writer_kinds:
        raise InvalidInput(f"A {k} is written for YouTube; on {platform} write a post.", field="kind")
    platform_kind = spec.writer_kinds[writer_kind]
    return writer_kind, platform_kind, rules_for(platform, platform_kind)


def _platform_section(rules: TextRules, writer_kind: str) -> str:
    low, high = rules.hashtag_range
    if writer_kind == "reply" or rules.hashtag_placement == "none" or high == 0:
        tags = "no hashtags"
    else:
        tags = f"{low}–{high} hashtags at the end at most (fewer is fine; the app adds the persona's own)"
    counting = {"x_weighted": "as X counts them (emoji and CJK count double)", "utf16": "in UTF-16 units",
                "utf8": "in UTF-8 bytes", "graphemes": "as visible characters", "chars": "characters"}[rules.counting]
    lines = [
        "THIS TEXT",
        f"- Where: {rules.label}; at most {rules.max_length} {counting}. Longer text is cut.",
        f"- Hashtags: {tags}.",
        "- Answer with the text itself only: no quotation marks around it, no preface, no notes.",
        "- The public profile discloses that this is a virtual character; never pretend otherwise.",
    ]
    if writer_kind == "thread":
        lines.append("- A thread: 3 to 7 short paragraphs separated by blank lines, one idea each, no numbering.")
    return "\n".join(lines)


def build_messages(persona: Persona, *, name: str, handle: str, request: WritingRequest, rules: TextRules,
                   avoid: Sequence[str] = ()) -> list[ChatMessage]:
    """The system prompt (persona + this platform's rules) and the user turn the offline writer also reads."""
    system = persona_system_prompt(persona, character_name=name, handle=handle) + "\n" + _platform_section(
        rules, request.kind)
    user = request.to_prompt()
    if avoid:
        shown = "\n".join(f"- {' '.join(t.split())[:200]}" for t in avoid[:3])
        user += f"\nThese earlier texts are too close; write something clearly different:\n{shown}"
    return [ChatMessage("system", system), ChatMessage("user", user)]


def clean_model_text(text: str) -> str:
    """Strip what chat models wrap around an answer: a preface, surrounding quotes, code fences."""
    out = text.strip()
    if out.startswith("```") and out.endswith("```"):
        out = out.strip("`").strip()
        out = out.split("\n", 1)[1].strip() if "\n" in out and len(out.split("\n", 1)[0]) < 12 else out
    out = _PREFACE.sub("", out, count=1).strip()
    for left, right in (('"', '"'), ("“", "”"), ("'", "'")):
        if len(out) > 2 and out.startswith(left) and out.endswith(right) and out.count(left) + out.count(right) <= 2:
            out = out[1:-1].strip()
    return out


def dedupe_hashtags(text: str) -> str:
    """Drop repeated hashtags (case-insensitive), keeping the first of each."""
    seen: set[str] = set()

    def keep(match: re.Match[str]) -> str:
        key = match.group(1).casefold()
        if key in seen:
            return ""
        seen.add(key)
        return match.group(0)

    out = _DUP_TAG.sub(keep, text)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


_STOP = frozenset("""about after again also and any are because been before being but can could did does doing
down during each few for from further had has have having her here hers him his how into its just more most
other our out over own same she should some such than that the their theirs them then there these they this
those through too under until very was were what when where which while who whom why will with would you your
share post write show tell today week something""".split())


def suggest_tags(persona: Persona, brief: str, rng: random.Random) -> list[str]:
    """Hashtag candidates: words from the brief first, then the persona's topics and interests (rotated)."""
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z0-9]{3,}", brief) if w.lower() not in _STOP]
    pool = list(persona.topics) + list(persona.interests)
    rng.shuffle(pool)
    out: list[str] = []
    for item in [*words[:2], *pool]:
        if item.casefold() not in {o.casefold() for o in out}:
            out.append(item)
    return out[:8]


def fit_for_platform(text: str, *, persona: Persona, platform: str, writer_kind: str, platform_kind: str | None,
                     brief: str, rng: random.Random) -> tuple[str, list[str], list[str]]:
    """Fit text to the platform: (final text, thread parts, hashtags). Hashtags follow the persona's habit."""
    text = dedupe_hashtags(clean_model_text(text))
    if writer_kind == "thread":
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        rules = rules_for(platform, "thread")
        numbered = len(paragraphs) > 1 and all(_THREAD_NUMBER.search(p) for p in paragraphs)
        if numbered and all(text_length(p, rules) <= rules.max_length for p in paragraphs):
            parts = paragraphs
        else:
            parts = split_thread(text, platform, "thread")
        tags = [t for p in parts for t in hashtags_in(p)]
        return "\n\n".join(parts), parts, tags
    if writer_kind in ("reply", "youtube_title"):
        out = fit_text(text, platform, platform_kind)
        return out, [], hashtags_in(out)
    rules = rules_for(platform, platform_kind)
    if rules.hashtag_placement == "none" or rules.hashtag_range[1] == 0:
        out = fit_text(text, platform, platform_kind)
        return out, [], hashtags_in(out)
    # Take the trailing hashtag block off and build it again: one block, deduplicated, in the persona's style.
    match = _TAIL_TAGS.search(text)
    body, tail = (text[: match.start()].rstrip(), hashtags_in(match.group(0))) if match else (text, [])
    inline = hashtags_in(body)
    habit = persona.hashtag_habit
    upper = max(0, min(habit.max_count, rules.hashtag_range[1]) - len(inline))
    lower = min(upper, max(habit.min_count, rules.hashtag_range[0]))
    tags = list(tail)
    if len(tail) < lower:
        tags += suggest_tags(persona, brief, rng)
    adjusted = habit.model_copy(update={"max_count": upper, "min_count": min(habit.min_count, upper)})
    shaped = persona.model_copy(update={"hashtag_habit": adjusted})
    out = apply_hashtags(body, tags, shaped, platform, platform_kind).strip()
    return out, [], hashtags_in(out)


# ---- generate ----------------------------------------------------------------------------------------------


def content_brief(persona: Persona, template: str | None, brief: str, rng: random.Random) -> tuple[str, str | None]:
    """The brief to write from (a content template filled with the brief or a persona topic) and its style."""
    brief = " ".join((brief or "").split())
    if not template:
        return brief, None
    tpl = CONTENT_TEMPLATES.get(template)
    if tpl is None:
        raise InvalidInput(f"template is one of {', '.join(CONTENT_TEMPLATES)}.", field="template")
    topic = brief or (rng.choice(persona.topics) if persona.topics else "today's work")
    return tpl.brief.format(topic=topic), tpl.style


def history(session: Session, character: Character) -> list[str]:
    """The character's earlier texts, newest first (the near-duplicate check reads these)."""
    rows = session.scalars(
        select(GeneratedText.text).where(GeneratedText.character_id == character.id)
        .order_by(GeneratedText.created_at.desc(), GeneratedText.id.desc()).limit(HISTORY_LIMIT)
    )
    return list(rows)


@dataclass
class _Best:
    """The least duplicate-like answer so far."""

    score: float
    text: str
    parts: list[str]
    tags: list[str]
    call: _Call


@dataclass
class Generation:
    """One checked writing request, ready to run: what to write, the backends to ask, the history to avoid.

    ``prepare_generation`` builds it (database reads); ``run`` asks the models (no database);
    ``save`` records the usage rows and the text (database writes). ``generate`` and
    ``stream_generate`` are the two ways through these three steps.
    """

    character_id: int
    user_id: int | None
    persona: Persona
    name: str
    handle: str
    platform: str
    writer_kind: str
    platform_kind: str | None
    rules: TextRules
    style: str
    brief: str
    request: WritingRequest
    max_attempts: int
    seed: int | None
    rng: random.Random
    index: UniquenessIndex
    writer: CharacterWriter
    prices: dict[str, PriceTable]
    calls: list[_Call] = field(default_factory=list)
    best: _Best | None = None
    saved_usage: bool = False

    async def run(self, *, stream: bool = False) -> AsyncGenerator[ChainDelta]:
        """Ask the chain, regenerating near-duplicates; with ``stream``, yield the text as it arrives.

        A delta with ``restart`` means "drop what came before": a later backend took over mid-answer,
        or the previous attempt was too close to an earlier text and is being rewritten.
        """
        avoid: list[str] = []
        shown = False  # whether any text went out; the next attempt then starts with a restart
        try:
            for attempt in range(self.max_attempts):
                messages = build_messages(self.persona, name=self.name, handle=self.handle, request=self.request,
                                          rules=self.rules, avoid=avoid)
                if self.seed is not None:
                    self.writer.offline.seed = self.seed + attempt * 7919
                options: dict[str, Any] = {"temperature": min(1.2, 0.8 + 0.1 * attempt),
                                           "max_tokens": MAX_TOKENS[self.writer_kind]}
                if stream:
                    restart = shown
                    chain_stream = self.writer.chain().stream(messages, **options)
                    async with aclosing(chain_stream):
                        async for delta in chain_stream:
                            restart = restart or delta.restart
                            if not delta.text:
                                continue
                            yield ChainDelta(delta.text, delta.backend, restart=restart)
                            restart, shown = False, True
                    assert chain_stream.result is not None
                    call = self.writer.answered(chain_stream.result)
                else:
                    call = await self.writer.call(messages, **options)
                self.calls.append(call)
                if call.chain.result.paid:
                    # keep the cap honest inside one request: count this call before the next attempt
                    table = self.prices.get(call.backend_kind) or PriceTable()
                    self.writer.spent += float(cost_of(call.chain.result, table) or 0)
                # fitting and the history comparison are CPU work: off the event loop while streaming
                good, matched = await anyio.to_thread.run_sync(self._judge, call) if stream else self._judge(call)
                if good:
                    return
                if matched:
                    avoid.insert(0, matched)
        finally:
            with anyio.CancelScope(shield=True):  # a reader who left must not leave connections open
                await self.writer.aclose()

    def _judge(self, call: _Call) -> tuple[bool, str | None]:
        """Fit the answer and check it against history, keeping the best: (good enough, earlier text it matched)."""
        raw = call.chain.text
        if self.writer_kind == "reply":
            raw = enforce_disclosure(clean_model_text(raw), comment=self.request.comment or self.brief,
                                     languages=self.persona.languages)
        text, parts, tags = fit_for_platform(
            raw, persona=self.persona, platform=self.platform, writer_kind=self.writer_kind,
            platform_kind=self.platform_kind, brief=self.brief, rng=self.rng)
        check = self.index.check(text)
        good = not check.duplicate and bool(text.strip())
        if good or self.best is None or check.score < self.best.score:
            self.best = _Best(check.score, text, parts, tags, call)
        return good, check.matched_text

    def save_usage(self, session: Session) -> tuple[float, list[str]]:
        """One TextUsage row per model call made so far (once); returns (total cost, notes)."""
        total = 0.0
        notes: list[str] = []
        if self.saved_usage:
            return total, notes
        for call in self.calls:
            # the paid spend was advanced while calling; recording must not count it twice
            usd, note = _record_usage(session, character_id=self.character_id, call=call, purpose="generate")
            total += usd
            if note:
                notes.append(note)
            notes.extend(f"{a.backend}: {a.outcome} {a.message}".strip() for a in call.chain.errors)
        self.saved_usage = True
        return total, notes

    def save(self, session: Session) -> GeneratedText:
        """Record the usage and the best text with its uniqueness verdict (``notes`` is set, not stored)."""
        if self.best is None:
            raise RuntimeError("save() before run() finished")
        best = self.best
        total_cost, call_notes = self.save_usage(session)
        notes = [*self.writer.notes, *call_notes]
        tokens_in = sum(c.chain.result.input_tokens for c in self.calls)
        tokens_out = sum(c.chain.result.output_tokens for c in self.calls)
        flagged = best.score >= DEFAULT_THRESHOLD or not best.text.strip()
        reason = ""
        if not best.text.strip():
            reason = "empty text"
        elif flagged:
            reason = f"near-duplicate of an earlier text (similarity {best.score:.2f}) after {len(self.calls)} attempts"
        row = GeneratedText(
            character_id=self.character_id, platform=self.platform, kind=self.writer_kind, style=self.style,
            brief=self.brief, text=best.text, parts=best.parts, hashtags=best.tags, backend=best.call.chain.backend,
            model=best.call.chain.result.model, tokens_in=tokens_in, tokens_out=tokens_out,
            cost_usd=round(total_cost, 8), near_dup_score=round(best.score, 4), attempts=len(self.calls),
            flagged=flagged, flag_reason=reason[:255], created_by=self.user_id,
        )
        session.add(row)
        session.flush()
        row.notes = list(dict.fromkeys(notes))  # type: ignore[attr-defined]  # shown once, not stored
        return row


def prepare_generation(
    session: Session,
    runtime: Runtime,
    *,
    character: Character,
    user: User | None = None,
    platform: str,
    kind: str | None = None,
    style: str | None = "casual",
    brief: str = "",
    template: str | None = None,
    reply_to: str | None = None,
    max_attempts: int = 3,
    seed: int | None = None,
    client: httpx.AsyncClient | None = None,
    allow_template: bool = False,
) -> Generation:
    """Check a writing request (InvalidInput names the field) and load what running it needs."""
    rng = random.Random(seed)  # noqa: S311 - variety, not security
    writer_kind, platform_kind, rules = resolve_kind(platform, kind)
    platform = rules.platform
    persona = chars.persona_of(character)
    brief, template_style = content_brief(persona, template, brief, rng)
    chosen_style = (style or template_style or "casual").strip().lower()
    if style in (None, "") and template_style:
        chosen_style = template_style
    if chosen_style not in STYLES:
        raise InvalidInput(f"style is one of {', '.join(STYLES)}.", field="style")
    if writer_kind == "reply" and not (reply_to or brief).strip():
        raise InvalidInput("Paste the comment to answer.", field="reply_to")
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise InvalidInput(f"max_attempts is from 1 to {MAX_ATTEMPTS}.", field="max_attempts")
    if len(brief) > 4000:
        raise InvalidInput("Keep the brief to 4,000 characters.", field="brief")
    request = WritingRequest(kind=writer_kind, style=chosen_style, brief=brief[:1000],  # type: ignore[arg-type]
                             platform=platform, comment=" ".join((reply_to or "").split())[:1000] or None)
    index = UniquenessIndex(history(session, character), threshold=DEFAULT_THRESHOLD)
    writer = CharacterWriter(session, runtime, character=character, persona=persona, name=character.name,
                             handle=character.handle, seed=seed, client=client, allow_template=allow_template)
    paid_kinds = {writer.kinds.get(e.backend.name, e.backend.name) for e in writer.entries if e.backend.paid}
    return Generation(
        character_id=character.id, user_id=user.id if user else None, persona=persona, name=character.name,
        handle=character.handle, platform=platform, writer_kind=writer_kind, platform_kind=platform_kind,
        rules=rules, style=chosen_style, brief=brief, request=request, max_attempts=max_attempts, seed=seed,
        rng=rng, index=index, writer=writer, prices={k: price_table_for(session, k) for k in paid_kinds},
    )


def generate(
    session: Session,
    runtime: Runtime,
    *,
    character: Character,
    user: User | None = None,
    platform: str,
    kind: str | None = None,
    style: str | None = "casual",
    brief: str = "",
    template: str | None = None,
    reply_to: str | None = None,
    max_attempts: int = 3,
    seed: int | None = None,
    client: httpx.AsyncClient | None = None,
    allow_template: bool = False,
) -> GeneratedText:
    """Write one text in the character's voice for a platform, unique against its history, and record it.

    When no model of the character's chain answers, TextModelDown (503) names each backend and its
    reason; nothing is written until the person retries or allows the template writer for this text.
    """
    generation = prepare_generation(
        session, runtime, character=character, user=user, platform=platform, kind=kind, style=style, brief=brief,
        template=template, reply_to=reply_to, max_attempts=max_attempts, seed=seed, client=client,
        allow_template=allow_template)
    # The model call may take minutes: end the read transaction so SQLite's write lock is not held meanwhile
    # (job heartbeats and every other writer would wait behind it).
    session.commit()

    async def run() -> None:
        async for _ in generation.run():
            pass

    try:
        run_async(run)
    except ChainExhausted as exc:
        if generation.calls:  # earlier attempts that did answer still cost money
            generation.save_usage(session)
        raise TextModelDown(exc.message) from exc
    return generation.save(session)


class TextModelDown(AppError):
    """No model of the character's chain answered; the person retries or allows the template writer."""

    status_code = 503
    code = "text_backend_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} Retry, or allow the template writer for this text.", field="allow_template")


def generated_payload(row: GeneratedText) -> dict[str, Any]:
    """A saved text as JSON-ready values: the text, its verdict, who wrote it and what it cost."""
    return {
        "id": row.id, "generated_text_id": row.id, "character_id": row.character_id, "platform": row.platform,
        "kind": row.kind, "style": row.style, "brief": row.brief, "text": row.text, "parts": list(row.parts or []),
        "hashtags": list(row.hashtags or []), "backend": row.backend, "model": row.model, "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out, "cost_usd": row.cost_usd, "near_dup_score": row.near_dup_score,
        "attempts": row.attempts, "flagged": row.flagged, "flag_reason": row.flag_reason,
        "created_at": row.created_at.isoformat(), "notes": list(getattr(row, "notes", [])),
    }


def _save_generation(runtime: Runtime, generation: Generation) -> dict[str, Any]:
    with runtime.db.session() as s:
        return generated_payload(generation.save(s))


def _save_usage_only(runtime: Runtime, generation: Generation) -> None:
    try:
        with runtime.db.session() as s:
            generation.save_usage(s)
    except Exception:  # the stream is already failing; the first error is the one to report
        log.exception("could not record the usage of an unfinished generation")


async def stream_generate(runtime: Runtime, *, generation: Generation) -> AsyncGenerator[dict[str, Any]]:
    """Run a prepared generation: ``delta`` events as text arrives, then one ``done`` (or ``error``) event.

    ``delta``: ``{"type", "text", "backend", "restart"}``; ``restart`` means drop the text shown so far.
    ``done``: ``{"type": "done", **generated_payload(row)}``: the fitted text, hashtags, verdict and cost.
    ``error``: ``{"type": "error", "message"}``. Database work runs in worker threads; the model calls
    made before a failure or a disconnect are still recorded, so the usage cap sees them.
    """
    saved: dict[str, Any] | None = None
    failure: Exception | None = None
    try:
        try:
            async with aclosing(generation.run(stream=True)) as deltas:
                async for delta in deltas:
                    yield {"type": "delta", "text": delta.text, "backend": delta.backend, "restart": delta.restart}
            saved = await anyio.to_thread.run_sync(_save_generation, runtime, generation)
        except Exception as exc:  # reported as an event: the response has already started
            if not isinstance(exc, AppError | BackendError):
                log.exception("streamed generation failed")
            failure = exc
    finally:
        if saved is None and generation.calls and not generation.saved_usage:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_save_usage_only, runtime, generation)
    if isinstance(failure, ChainExhausted):
        yield {"type": "error", "message": TextModelDown(failure.message).message,
               "code": TextModelDown.code, "can_use_template": True,
               "backends": [{"backend": a.backend, "outcome": a.outcome, "message": a.message}
                            for a in failure.attempts if a.outcome != "ok"]}
        return
    if failure is not None or saved is None:
        yield {"type": "error", "message": safe_message(failure) if failure else "the writer stopped early"}
        return
    yield {"type": "done", **saved}


def list_generated(session: Session, *, character: Character, limit: int = 50,
                   offset: int = 0) -> tuple[list[GeneratedText], int]:
    """A character's generated texts, newest first, and how many there are."""
    base = select(GeneratedText).where(GeneratedText.character_id == character.id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(GeneratedText.created_at.desc(), GeneratedText.id.desc())
                           .limit(limit).offset(offset))
    return list(rows), int(total)


# ---- preview ---------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One preview text."""

    platform: str
    kind: str
    label: str
    text: str
    backend: str


@dataclass
class TraitShift:
    """The same request and seed written before and after traits moved."""

    changes: list[dict[str, Any]]
    platform: str
    before: str
    after: str
    guidance_before: list[str]
    guidance_after: list[str]


@dataclass
class Preview:
    """What the preview panel shows."""

    seed: int
    samples: list[Sample]
    reply_to: str
    reply: Sample
    trait_shift: TraitShift | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        from dataclasses import asdict

        return asdict(self)


def _offline_text(persona: Persona, *, name: str, handle: str, platform: str, writer_kind: str,
                  platform_kind: str | None, brief: str, seed: int, comment: str | None = None) -> str:
    request = WritingRequest(kind=writer_kind, style="casual", brief=brief, platform=platform,  # type: ignore[arg-type]
                             comment=comment)
    rules = rules_for(platform, platform_kind)
    backend = OfflineTextBackend(persona, character_name=name, seed=seed)
    messages = build_messages(persona, name=name, handle=handle, request=request, rules=rules)
    result = run_async(lambda: backend.chat(messages))
    text, _, _ = fit_for_platform(result.text, persona=persona, platform=platform, writer_kind=writer_kind,
                                  platform_kind=platform_kind, brief=brief, rng=random.Random(seed))  # noqa: S311
    return text


def shifted(persona: Persona, trait: str, to: float | None) -> Persona:
    """The persona with one trait moved (to the far side of the scale when ``to`` is None)."""
    if trait not in TRAIT_NAMES:
        raise InvalidInput(f"shift_trait is one of {', '.join(TRAIT_NAMES)}.", field="shift_trait")
    current = float(getattr(persona.traits, trait))
    target = to if to is not None else (0.1 if current >= 0.5 else 0.9)
    traits = persona.traits.model_copy(update={trait: float(target)})
    return persona.model_copy(update={"traits": traits})


def _trait_changes(before: Persona, after: Persona) -> list[dict[str, Any]]:
    out = []
    for name in TRAIT_NAMES:
        a, b = float(getattr(before.traits, name)), float(getattr(after.traits, name))
        if abs(a - b) > 1e-9:
            out.append({"trait": name, "before_value": a, "after_value": b})
    return out


def preview(
    session: Session,
    runtime: Runtime,
    *,
    persona: Persona,
    name: str,
    handle: str,
    character: Character | None = None,
    baseline: Persona | None = None,
    platforms: Sequence[str] = ("instagram", "x"),
    seed: int | None = None,
    brief: str = "",
    shift_trait: str | None = None,
    shift_to: float | None = None,
    use_model: bool = False,
) -> Preview:
    """Sample captions for two platforms and a sample reply; with a baseline or a trait to shift, a before/after."""
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)  # noqa: S311
    brief = " ".join((brief or "").split())[:1000]
    wanted = list(dict.fromkeys(p.strip().lower() for p in platforms if p.strip()))[:2] or ["instagram", "x"]
    targets = [resolve_kind(p, None) for p in wanted]
    notes: list[str] = []
    samples: list[Sample] = []
    comment = SAMPLE_COMMENTS[seed % len(SAMPLE_COMMENTS)]
    if use_model and character is not None:
        writer = CharacterWriter(session, runtime, character=character, persona=persona, name=name, handle=handle,
                                 seed=seed)
        notes.extend(writer.notes)
        calls: list[tuple[_Call, str, str | None, str]] = []

        async def ask() -> None:
            try:
                for (writer_kind, platform_kind, rules), platform in [*zip(targets, wanted, strict=True),
                                                                      (("reply", None, rules_for(wanted[0])),
                                                                       wanted[0])]:
                    request = WritingRequest(kind=writer_kind, style="casual", brief=brief,  # type: ignore[arg-type]
                                             platform=platform, comment=comment if writer_kind == "reply" else None)
                    messages = build_messages(persona, name=name, handle=handle, request=request, rules=rules)
                    call = await writer.call(messages, temperature=0.8, max_tokens=MAX_TOKENS[writer_kind])
                    calls.append((call, platform, platform_kind, writer_kind))
            finally:
                await writer.aclose()

        try:
            run_async(ask)
        except ChainExhausted as exc:
            notes.append(f"{exc.message} The samples below are from the template writer instead.")
            use_model = False
        for call, platform, platform_kind, writer_kind in calls:
            _record_usage(session, character_id=character.id, call=call, purpose="preview", writer=None)
            notes.extend(f"{a.backend}: {a.outcome} {a.message}".strip() for a in call.chain.errors)
            if not use_model:
                continue
            answer = call.chain.text
            if writer_kind == "reply":
                answer = enforce_disclosure(clean_model_text(answer), comment=comment, languages=persona.languages)
            text, _, _ = fit_for_platform(answer, persona=persona, platform=platform,
                                          writer_kind=writer_kind, platform_kind=platform_kind, brief=brief, rng=rng)
            label = rules_for(platform, platform_kind).label if writer_kind != "reply" else f"Reply on {platform}"
            samples.append(Sample(platform, writer_kind, label, text, call.chain.backend))
    if use_model and character is not None:
        reply = samples.pop()
    else:
        for (writer_kind, platform_kind, rules), platform in zip(targets, wanted, strict=True):
            text = _offline_text(persona, name=name, handle=handle, platform=platform, writer_kind=writer_kind,
                                 platform_kind=platform_kind, brief=brief, seed=seed)
            samples.append(Sample(platform, writer_kind, rules.label, text, "offline"))
        text = _offline_text(persona, name=name, handle=handle, platform=wanted[0], writer_kind="reply",
                             platform_kind=None, brief=brief, seed=seed, comment=comment)
        reply = Sample(wanted[0], "reply", f"Reply on {rules_for(wanted[0]).label.split()[0]}", text, "offline")

    shift: TraitShift | None = None
    before_p, after_p = None, None
    if shift_trait:
        before_p, after_p = persona, shifted(persona, shift_trait, shift_to)
    elif baseline is not None and _trait_changes(baseline, persona):
        before_p, after_p = baseline, persona
    if before_p is not None and after_p is not None:
        writer_kind, platform_kind, _ = targets[0]
        kw: dict[str, Any] = {"name": name, "handle": handle, "platform": wanted[0], "writer_kind": writer_kind,
                              "platform_kind": platform_kind, "brief": brief, "seed": seed}
        changes = _trait_changes(before_p, after_p)
        shift = TraitShift(
            changes=changes, platform=wanted[0],
            before=_offline_text(before_p, **kw), after=_offline_text(after_p, **kw),
            guidance_before=[f"{c['trait']} {c['before_value']:.2f}: {trait_guidance(c['trait'], c['before_value'])}"
                             for c in changes],
            guidance_after=[f"{c['trait']} {c['after_value']:.2f}: {trait_guidance(c['trait'], c['after_value'])}"
                            for c in changes],
        )
    return Preview(seed=seed, samples=samples, reply_to=comment, reply=reply, trait_shift=shift,
                   notes=list(dict.fromkeys(notes)))


# ---- options for forms ---------------------------------------------------------------------------------


def writing_options() -> dict[str, Any]:
    """Platforms with their kinds, styles and content templates, for forms and the API."""
    platforms = []
    for platform, kinds in PLATFORM_RULES.items():
        platforms.append({
            "platform": platform,
            "kinds": [{"kind": k, "label": r.label, "max_length": r.max_length} for k, r in kinds.items()]
            + [{"kind": "reply", "label": f"Reply to a comment on {platform}", "max_length": None}],
        })
    return {
        "platforms": platforms,
        "styles": [{"style": s, "label": STYLE_LABELS.get(s, s)} for s in STYLES],
        "templates": [{"key": k, "label": t.label, "brief": t.brief, "style": t.style}
                      for k, t in CONTENT_TEMPLATES.items()],
    }


def safe_message(exc: BaseException) -> str:
    """A message about a failure that is safe to show (backend errors carry their own)."""
    if isinstance(exc, AppError | BackendError):
        return exc.message
    return "unexpected failure; see the server log"
