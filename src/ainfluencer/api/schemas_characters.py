"""Pydantic schemas of the characters, persona-template, writing and text-backend API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

PERSONA_DOC = (
    "A persona document (schema v1): traits (warmth, humour, formality, energy, curiosity, confidence, "
    "playfulness, each 0.0–1.0), tone_of_voice, topics, taboo_topics, do_rules, dont_rules, emoji_habit, "
    "emoji_palette, hashtag_habit {min_count, max_count, style, signature}, signature_phrases, target_audience, "
    "languages, bio, age, location, interests, style. With a template, only the keys given override it."
)


# An API key travels in an HTTP header: visible ASCII only (anything else cannot be sent at all).
API_KEY_PATTERN = r"^[\x21-\x7e]*$"

class FallbackStep(BaseModel):
    """One step of a character's text-model chain."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field(max_length=64, description="'offline' or the name of a configured text backend")
    model: str = Field(default="", max_length=120, description="model name; empty uses the backend's default")


class CharacterCreate(BaseModel):
    """A new character: start blank, or from a template (built-in slug or 'saved:<id>')."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="display name, 1–80 characters")
    handle: str | None = Field(default=None, description="2–30 of a–z 0–9 _ . (made from the name when empty)")
    bio: str = Field(default="", description="public bio; the disclosure line is added when shown")
    template: str | None = Field(default=None, description="built-in template slug or 'saved:<id>'")
    persona: dict[str, Any] | None = Field(default=None, description=PERSONA_DOC)
    disclosure_text: str | None = Field(default=None, description="reworded disclosure line (cannot be empty)")
    text_backend: str | None = Field(default=None, description="'offline' or a configured backend name")
    text_model: str = ""
    fallback_chain: list[FallbackStep] = Field(default_factory=list)
    monthly_usage_cap_usd: float | None = Field(default=None, description="stop paid calls past this spend")
    timezone: str = "UTC"


class CharacterUpdate(BaseModel):
    """A partial change; only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    handle: str | None = None
    bio: str | None = None
    persona: dict[str, Any] | None = Field(default=None, description=PERSONA_DOC + " Replaces the whole persona.")
    disclosure_enabled: bool | None = Field(
        default=None, description="false hides the disclosure line; who and when is recorded and audited"
    )
    disclosure_text: str | None = None
    text_backend: str | None = None
    text_model: str | None = None
    fallback_chain: list[FallbackStep] | None = None
    monthly_usage_cap_usd: float | None = None
    timezone: str | None = None


class CharacterStatsPublic(BaseModel):
    """Figures from real rows; null where the feature feeding them is not built yet (see not_yet_note)."""

    texts_generated: int
    texts_flagged: int
    last_text_at: datetime | None
    calls: int
    tokens_in: int
    tokens_out: int
    cost_total_usd: float
    cost_month_usd: float
    paid_cost_month_usd: float
    assets: int
    scheduled_posts: int
    published_posts: int
    not_yet_note: str


class CharacterPublic(BaseModel):
    """A character as the API shows it."""

    id: int
    owner_id: int
    name: str
    handle: str
    status: str
    status_reason: str
    bio: str
    public_bio: str
    persona: dict[str, Any]
    disclosure_enabled: bool
    disclosure_text: str
    disclosure_disabled_by: int | None
    disclosure_disabled_at: datetime | None
    text_backend: str
    text_model: str
    fallback_chain: list[FallbackStep]
    monthly_usage_cap_usd: float | None
    timezone: str
    created_at: datetime
    updated_at: datetime
    stats: CharacterStatsPublic | None = None


class CharactersPublic(BaseModel):
    """A page of characters; ``count`` is the total matching the filter, ``counts`` per status."""

    data: list[CharacterPublic]
    count: int
    limit: int
    offset: int
    counts: dict[str, int]


class CharacterDuplicate(BaseModel):
    """Optional name and handle for a copy."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    handle: str | None = None


class BulkRequest(BaseModel):
    """One action on many characters."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["pause", "resume", "archive", "delete"]
    ids: list[int] = Field(min_length=1, max_length=500)


class BulkSkipped(BaseModel):
    """A character the bulk action left alone, and why."""

    id: int
    reason: str


class BulkResultPublic(BaseModel):
    """What a bulk action did."""

    action: str
    done: list[int]
    skipped: list[BulkSkipped]


class CharacterImport(BaseModel):
    """Create a character from an exported persona file's text."""

    model_config = ConfigDict(extra="forbid")

    name: str
    handle: str | None = None
    persona_json: str = Field(description="the text of a persona file exported by AInfluencer")


class PersonaImport(BaseModel):
    """Replace a character's persona with an exported persona file's text."""

    model_config = ConfigDict(extra="forbid")

    persona_json: str


class PromptExport(BaseModel):
    """The persona as a system prompt for other AI tools."""

    prompt: str


class PreviewRequest(BaseModel):
    """Preview a persona's voice; ``persona`` overrides the saved one (unsaved edits)."""

    model_config = ConfigDict(extra="forbid")

    persona: dict[str, Any] | None = Field(default=None, description=PERSONA_DOC)
    platforms: list[str] = Field(default_factory=lambda: ["instagram", "x"], min_length=1, max_length=4)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    brief: str = Field(default="", max_length=1000)
    shift_trait: str | None = Field(default=None, description="a trait to move for the before/after comparison")
    shift_to: float | None = Field(default=None, ge=0.0, le=1.0)
    use_model: bool = Field(default=False, description="write with the character's model chain (may cost money)")


class SampleText(BaseModel):
    """One preview text."""

    platform: str
    kind: str
    label: str
    text: str
    backend: str


class TraitChange(BaseModel):
    """One trait that moved."""

    trait: str
    before_value: float
    after_value: float


class TraitShiftPublic(BaseModel):
    """The same request and seed written before and after traits moved, with the prompt guidance that changed."""

    changes: list[TraitChange]
    platform: str
    before: str
    after: str
    guidance_before: list[str]
    guidance_after: list[str]


class PreviewPublic(BaseModel):
    """Sample captions for two platforms, a sample reply, and a trait-shift comparison."""

    seed: int
    samples: list[SampleText]
    reply_to: str
    reply: SampleText
    trait_shift: TraitShiftPublic | None
    notes: list[str] = Field(default_factory=list, description="backends skipped or failed on the way")


class GenerateRequest(BaseModel):
    """Write one text for a character."""

    model_config = ConfigDict(extra="forbid")

    platform: str = Field(description="x, instagram, facebook, telegram, youtube, mastodon or bluesky")
    kind: str | None = Field(default=None, description="caption, post, thread, title, description, text, reply")
    style: str | None = Field(
        default=None,
        description="casual, professional, promotional, storytelling or question (default: the template's, or casual)",
    )
    brief: str = Field(default="", max_length=4000)
    template: str | None = Field(
        default=None, description="a content template key (see GET /characters/writing-options)"
    )
    reply_to: str | None = Field(default=None, max_length=4000, description="the comment being answered (kind reply)")
    max_attempts: int = Field(
        default=3, ge=1, le=6, description="regenerations allowed before a near-duplicate is flagged"
    )
    allow_template: bool = Field(
        default=False,
        description="let the offline template writer write this text when no model of the character's chain "
        "answers; without it such a request fails with 503 `text_backend_unavailable` naming each backend",
    )


class GeneratedTextPublic(BaseModel):
    """A text written for a character, with where it came from and what it cost."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    character_id: int
    platform: str
    kind: str
    style: str
    brief: str
    text: str
    parts: list[str]
    hashtags: list[str]
    backend: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    near_dup_score: float
    attempts: int
    flagged: bool
    flag_reason: str
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kind_label(self) -> str:
        """The kind as the network calls it ("post" on Bluesky, not the writer's "tweet")."""
        from ainfluencer.services.writing import kind_label

        return kind_label(self.platform, self.kind)


class GeneratedTextCreated(GeneratedTextPublic):
    """A text just written, with what happened on the way (skipped or failed backends, missing prices)."""

    notes: list[str] = Field(default_factory=list)


class GeneratedTextsPublic(BaseModel):
    """A page of generated texts, newest first."""

    data: list[GeneratedTextPublic]
    count: int


class ModelUsage(BaseModel):
    """Calls, tokens and cost of one backend/model."""

    backend: str
    model: str
    paid: bool
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float


class UsagePublic(BaseModel):
    """A character's spend: month to date (its own time zone) against its cap, and totals per model."""

    character_id: int
    month_start: datetime
    cost_month_usd: float
    paid_cost_month_usd: float
    monthly_usage_cap_usd: float | None
    cap_reached: bool
    cost_total_usd: float
    by_model: list[ModelUsage]


class TemplatePublic(BaseModel):
    """A persona template: built-in (key is its slug) or saved (key 'saved:<id>')."""

    key: str
    name: str
    description: str
    builtin: bool
    template_id: int | None
    persona: dict[str, Any]


class TemplatesPublic(BaseModel):
    """Every template on offer."""

    data: list[TemplatePublic]
    count: int


class TemplateCreate(BaseModel):
    """Save a character's persona as a template."""

    model_config = ConfigDict(extra="forbid")

    character_id: int
    name: str
    description: str = ""


BackendKind = Literal["ollama", "openai_compat", "openai", "openrouter", "anthropic"]


class TextBackendCreate(BaseModel):
    """A text model server; ``api_key`` is stored encrypted and never shown again."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="a short name characters refer to, e.g. 'local-ollama'")
    kind: BackendKind
    base_url: str = Field(default="", description="empty uses the kind's default URL")
    default_model: str = ""
    api_key: str | None = Field(default=None, max_length=1000, pattern=API_KEY_PATTERN, description="write-only")
    paid: bool | None = Field(default=None, description="calls cost money (default: from the kind and URL)")
    enabled: bool = True
    timeout_s: float = Field(default=60.0, gt=0, le=600)


class TextBackendUpdate(BaseModel):
    """A partial change; send ``api_key: ""`` to remove the stored key."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    base_url: str | None = None
    default_model: str | None = None
    api_key: str | None = Field(default=None, max_length=1000, pattern=API_KEY_PATTERN,
                                description="write-only; empty string removes the key")
    paid: bool | None = None
    enabled: bool | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=600)


class TextBackendPublic(BaseModel):
    """A configured text backend (the key itself is never returned)."""

    id: int
    name: str
    kind: str
    base_url: str
    default_model: str
    paid: bool
    enabled: bool
    timeout_s: float
    has_api_key: bool
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str
    created_at: datetime
    updated_at: datetime


class TextBackendsPublic(BaseModel):
    """Configured text backends (the offline writer is always available and not listed)."""

    data: list[TextBackendPublic]
    count: int


class ConnectionTestValues(BaseModel):
    """Connection settings to test before saving them."""

    model_config = ConfigDict(extra="forbid")

    kind: BackendKind
    base_url: str = ""
    api_key: str | None = Field(default=None, max_length=1000, pattern=API_KEY_PATTERN)


class ModelPull(BaseModel):
    """A model to download onto an Ollama server."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120, description="e.g. llama3.2 or qwen2.5:7b")


class WritingOptionsPublic(BaseModel):
    """Platforms and their kinds, styles and content templates."""

    platforms: list[dict[str, Any]]
    styles: list[dict[str, Any]]
    templates: list[dict[str, Any]]


class ConnectionTestPublic(BaseModel):
    """The result of "Test connection"."""

    ok: bool
    message: str
    models: list[str]


class PriceRow(BaseModel):
    """US dollars per million tokens of one model."""

    model_config = ConfigDict(extra="forbid")

    backend_kind: str = Field(max_length=32)
    model: str = Field(min_length=1, max_length=120)
    input_per_mtok_usd: float = Field(ge=0, le=10_000)
    output_per_mtok_usd: float = Field(ge=0, le=10_000)


class PriceRowPublic(PriceRow):
    """A price row and where it comes from: 'default' (built-in list price) or 'edited'."""

    source: str


class PriceTablePublic(BaseModel):
    """The editable price table (built-in defaults appear until edited)."""

    data: list[PriceRowPublic]
    count: int


class PriceTableUpdate(BaseModel):
    """The whole price table; rows not sent are removed (built-in defaults then apply to them)."""

    model_config = ConfigDict(extra="forbid")

    data: list[PriceRow] = Field(max_length=500)
