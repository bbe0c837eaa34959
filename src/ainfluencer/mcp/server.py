"""The MCP server's tools, resources and prompts; each tool calls the same service as its REST route.

Every tool goes through :class:`~ainfluencer.mcp.calls.Gate` (token, scope, per-token rate limit,
audit, errors). What an assistant creates becomes a post **in review** — or approved, only when the
owner granted the token auto-approval — so nothing reaches a network without a person's approval.
Inbox and analytics tools come with those features (they do not exist in this version).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from importlib import resources as pkg_resources
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ainfluencer import __version__
from ainfluencer.api.routes import calendar as calendar_routes
from ainfluencer.api.routes.accounts import account_public
from ainfluencer.api.routes.assets import asset_public
from ainfluencer.api.routes.characters import character_public
from ainfluencer.api.routes.jobs import job_public
from ainfluencer.api.routes.publications import publication_public
from ainfluencer.api.schemas import JobPublic
from ainfluencer.api.schemas_calendar import CalendarPublic
from ainfluencer.api.schemas_characters import CharacterPublic, CharactersPublic, GeneratedTextCreated
from ainfluencer.api.schemas_media import AssetsPublic
from ainfluencer.api.schemas_publishing import AccountsPublic, PublicationsPublic
from ainfluencer.db.models import CharacterStatus, GeneratedText
from ainfluencer.db.models_media import AssetKind, ReviewState
from ainfluencer.db.models_publishing import PublicationStatus
from ainfluencer.errors import InvalidInput
from ainfluencer.mcp.calls import Caller, Gate
from ainfluencer.posts import service as posts
from ainfluencer.posts.api import post_detail, post_public
from ainfluencer.posts.models import PostStatus
from ainfluencer.posts.schemas import PostDetail, PostsPublic
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing, studio, studio_av, vault, writing
from ainfluencer.services import characters as characters_svc
from ainfluencer.writing import platform_rules

NAME = "ainfluencer"
INSTRUCTIONS = (
    "AInfluencer runs openly virtual influencer characters. Work for a character with these tools: read its "
    "persona (resource ainfluencer://characters/{id}/persona), write in its voice for a network, generate "
    "media (jobs: poll get_job), search the vault, and create draft posts from texts and vault asset ids. "
    "Every draft you create waits in Review until a person approves it (unless the owner granted this token "
    "auto-approval); only approved posts can be scheduled. Characters are openly AI: never claim to be human, "
    "never remove the AI disclosure. Errors carry code, message and field — fix the field and call again."
)
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CREATE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
PUBLISH = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)

CharacterId = Annotated[int, Field(description="a character id from list_characters")]
Limit = Annotated[int, Field(ge=1, le=200, description="page size")]
Offset = Annotated[int, Field(ge=0, description="rows to skip")]


class WrittenText(GeneratedTextCreated):
    """A text written in the character's voice, with how the network counts it."""

    length: int = Field(description="length as the network counts it")
    max_length: int = Field(description="the network's limit for this kind of text")
    fits_platform_rules: bool = Field(description="within the limit (the writer fits it; true unless flagged)")


class DraftPost(BaseModel):
    """A post an assistant created, and what happens to it next."""

    post: PostDetail
    next_step: str


class PostsQueue(PostsPublic):
    """Posts waiting for a person's review."""


def _guide() -> str:
    return (pkg_resources.files("ainfluencer.mcp") / "guide.md").read_text(encoding="utf-8")


def _owned_character(session: Session, caller: Caller, character_id: int | None) -> None:
    if character_id is not None:
        accounts.get_character(session, character_id, user=caller.user)


def build_server(runtime: Runtime, *, fixed_token: str | None = None) -> MCPServer:
    """The MCP server for ``runtime``; ``fixed_token`` is the stdio transport's token (HTTP sends one per request)."""
    gate = Gate(runtime, fixed_token=fixed_token)
    mcp = MCPServer(NAME, title="AInfluencer", version=__version__, instructions=INSTRUCTIONS,
                    website_url=runtime.settings.public_url or None)

    # ---- characters and accounts ------------------------------------------------------------------------

    @mcp.tool(annotations=READ)
    def list_characters(
        ctx: Context,
        q: Annotated[str | None, Field(max_length=100, description="search in name and handle")] = None,
        status: Annotated[CharacterStatus | None, Field(description="only characters in this state")] = None,
        limit: Limit = 50, offset: Offset = 0,
    ) -> Annotated[CallToolResult, CharactersPublic]:
        """Characters you can see, with their personas (traits, tone, topics, do/don't lists) and disclosure line."""
        def body(session: Session, caller: Caller) -> CharactersPublic:
            page = characters_svc.list_characters(session, user=caller.user, status=status, q=q, limit=limit,
                                                  offset=offset, with_counts=True)
            return CharactersPublic(data=[character_public(c) for c in page.items], count=page.total,
                                    limit=page.limit, offset=page.offset, counts=page.counts)
        return gate.run(ctx, "list_characters", body)

    @mcp.tool(annotations=READ)
    def get_character(ctx: Context, character_id: CharacterId) -> Annotated[CallToolResult, CharacterPublic]:
        """One character with its persona, public bio (with the AI disclosure) and statistics."""
        def body(session: Session, caller: Caller) -> CharacterPublic:
            character = characters_svc.get_character(session, character_id, user=caller.user)
            return character_public(character, characters_svc.character_stats(session, character))
        return gate.run(ctx, "get_character", body, refs={"character_id": character_id})

    @mcp.tool(annotations=READ)
    def list_accounts(
        ctx: Context, character_id: Annotated[int | None, Field(description="only this character's")] = None,
    ) -> Annotated[CallToolResult, AccountsPublic]:
        """Connected social accounts (the ids a draft post targets), with each network's limits and rate budget."""
        def body(session: Session, caller: Caller) -> AccountsPublic:
            _owned_character(session, caller, character_id)
            rows = accounts.list_accounts(session, user=caller.user, character_id=character_id)
            return AccountsPublic(data=[account_public(session, a) for a in rows], count=len(rows))
        return gate.run(ctx, "list_accounts", body, refs={"character_id": character_id})

    # ---- writing -----------------------------------------------------------------------------------------

    @mcp.tool(annotations=CREATE)
    def write_text(
        ctx: Context, character_id: CharacterId,
        platform: Annotated[str, Field(description="the network: x, instagram, facebook, telegram, youtube, "
                                                    "mastodon or bluesky")],
        brief: Annotated[str, Field(max_length=4000, description="what the text is about")] = "",
        kind: Annotated[str | None, Field(description="caption, post, thread, title, description, text or reply "
                                                      "(default: the network's main kind)")] = None,
        style: Annotated[str | None, Field(description="casual, professional, promotional, storytelling or "
                                                       "question")] = None,
        template: Annotated[str | None, Field(description="a content template key (resource "
                                                          "ainfluencer://docs/writing-options)")] = None,
        reply_to: Annotated[str | None, Field(max_length=4000, description="the comment answered (kind reply)")]
        = None,
    ) -> Annotated[CallToolResult, WrittenText]:
        """Write a text in the character's voice for one network (fitted to its limits, unique).

        It is saved (generated_text_id) but not posted: pass it to create_draft_post.
        """
        def body(session: Session, caller: Caller) -> WrittenText:
            character = characters_svc.get_character(session, character_id, user=caller.user)
            row = writing.generate(session, runtime, character=character, user=caller.user, platform=platform,
                                   kind=kind, style=style, brief=brief, template=template, reply_to=reply_to)
            _, platform_kind, rules = writing.resolve_kind(platform, kind)
            parts = list(row.parts or []) or [row.text]
            length = max(platform_rules.text_length(p, rules) for p in parts)
            out = GeneratedTextCreated.model_validate(row).model_copy(update={"notes": getattr(row, "notes", [])})
            return WrittenText(**out.model_dump(), length=length, max_length=rules.max_length,
                               fits_platform_rules=length <= rules.max_length)
        return gate.run(ctx, "write_text", body, write=True, refs={"character_id": character_id, "platform": platform})

    # ---- media generation (jobs) -------------------------------------------------------------------------

    @mcp.tool(annotations=CREATE)
    def generate_image(
        ctx: Context, character_id: CharacterId,
        brief: Annotated[str, Field(max_length=1000, description="what the picture shows")] = "",
        style: Annotated[str, Field(max_length=32, description="a style category, e.g. casual")] = "casual",
        count: Annotated[int, Field(ge=1, le=16)] = 1,
        width: Annotated[int, Field(ge=64, le=4096, description="a multiple of 8")] = 1024,
        height: Annotated[int, Field(ge=64, le=4096, description="a multiple of 8")] = 1024,
        seed: Annotated[int | None, Field(ge=0)] = None,
        appearance_id: Annotated[int | None, Field(description="one of the character's appearances")] = None,
    ) -> Annotated[CallToolResult, JobPublic]:
        """Queue images of the character (its canonical face keeps it consistent).

        Returns the job: poll get_job; its result lists the new vault asset ids.
        """
        def body(session: Session, caller: Caller) -> JobPublic:
            req = studio.GenerationRequest(character_id=character_id, brief=brief, style=style, count=count,
                                           width=width, height=height, seed=seed, appearance_id=appearance_id)
            return job_public(studio.request_generation(session, user=caller.user, req=req))
        return gate.run(ctx, "generate_image", body, write=True, refs={"character_id": character_id})

    @mcp.tool(annotations=CREATE)
    def generate_voice_clip(
        ctx: Context, character_id: CharacterId,
        text: Annotated[str, Field(min_length=1, max_length=5000, description="what the character says")],
    ) -> Annotated[CallToolResult, JobPublic]:
        """Queue a voice clip in the character's voice.

        Returns the job: poll get_job; its result names the audio asset (asset_id).
        """
        def body(session: Session, caller: Caller) -> JobPublic:
            return job_public(studio_av.request_voice_clip(session, user=caller.user, runtime=runtime,
                                                           character_id=character_id, text=text))
        return gate.run(ctx, "generate_voice_clip", body, write=True, refs={"character_id": character_id})

    @mcp.tool(annotations=CREATE)
    def generate_video(
        ctx: Context, character_id: CharacterId,
        script: Annotated[str, Field(min_length=1, max_length=20_000,
                                     description="narration; paragraphs become scenes, one image each")],
        preset: Annotated[str, Field(max_length=32, description="shorts, reels, tiktok-like vertical or a "
                                                                "landscape preset (see the docs resource)")]
        = "shorts",
        image_ids: Annotated[list[int], Field(max_length=60, description="the character's image asset ids in "
                                                                         "order; empty: latest approved")] = [],  # noqa: B006
        captions: bool = True,
        title: Annotated[str, Field(max_length=200)] = "",
    ) -> Annotated[CallToolResult, JobPublic]:
        """Queue a narrated video over the character's images.

        Returns the job: poll get_job (progress per stage); its result names the video asset (asset_id).
        """
        def body(session: Session, caller: Caller) -> JobPublic:
            req = studio_av.VideoRequest(character_id=character_id, script=script, preset=preset,
                                         image_ids=list(image_ids), captions=captions, title=title)
            return job_public(studio_av.request_video(session, user=caller.user, runtime=runtime, req=req))
        return gate.run(ctx, "generate_video", body, write=True, refs={"character_id": character_id})

    @mcp.tool(annotations=READ)
    def get_job(ctx: Context, job_id: Annotated[int, Field(description="from a generate_* tool")]
                ) -> Annotated[CallToolResult, JobPublic]:
        """A job's state and progress (0-100, with a message); when it succeeded, its result names the assets."""
        def body(session: Session, caller: Caller) -> JobPublic:
            from ainfluencer.jobs import queue

            job = queue.get_job(session, job_id, user=caller.user)
            return job_public(job)
        return gate.run(ctx, "get_job", body, refs={"job_id": job_id})

    # ---- vault -------------------------------------------------------------------------------------------

    @mcp.tool(annotations=READ)
    def search_vault(
        ctx: Context,
        q: Annotated[str | None, Field(max_length=200, description="words in prompts, captions, names, tags")]
        = None,
        character_id: Annotated[int | None, Field(description="only this character's assets")] = None,
        kind: AssetKind | None = None,
        review_state: Annotated[list[ReviewState], Field(description="e.g. [\"approved\"] for usable media")] = [],  # noqa: B006
        tag: Annotated[str | None, Field(max_length=64)] = None,
        limit: Limit = 24, offset: Offset = 0,
    ) -> Annotated[CallToolResult, AssetsPublic]:
        """Search the vault: images, audio and videos with prompt, scores, provenance and review state.

        Use the ids as a draft post's asset_ids.
        """
        def body(session: Session, caller: Caller) -> AssetsPublic:
            _owned_character(session, caller, character_id)
            filters = vault.AssetFilter(character_id=character_id, kind=kind, review_state=list(review_state),
                                        tag=tag, q=q)
            page = vault.list_assets(session, user=caller.user, filters=filters, limit=limit, offset=offset)
            return AssetsPublic(data=[asset_public(a) for a in page.items], count=page.total)
        return gate.run(ctx, "search_vault", body, refs={"character_id": character_id})

    # ---- posts: draft, review queue, schedule ------------------------------------------------------------

    @mcp.tool(annotations=CREATE)
    def create_draft_post(
        ctx: Context, character_id: CharacterId,
        text: Annotated[str, Field(max_length=70_000, description="the shared text (networks may override it in "
                                                                  "variants)")] = "",
        account_ids: Annotated[list[int], Field(description="target accounts of this character (list_accounts)")]
        = [],  # noqa: B006
        asset_ids: Annotated[list[int], Field(description="vault asset ids (search_vault), never file paths")]
        = [],  # noqa: B006
        alt_texts: Annotated[dict[int, str], Field(description="alt text by asset id")] = {},  # noqa: B006
        title: Annotated[str, Field(max_length=200, description="for networks with titles (YouTube)")] = "",
        first_comment: Annotated[str, Field(max_length=5000)] = "",
        variants: Annotated[dict[str, dict[str, Any]], Field(
            description="per network name: {text, title, first_comment, asset_ids, alt_texts} overrides")] = {},  # noqa: B006
        scheduled_at: Annotated[datetime | None, Field(description="desired time with UTC offset; empty: as soon "
                                                                   "as it is scheduled")] = None,
        generated_text_id: Annotated[int | None, Field(description="the write_text result this uses")] = None,
    ) -> Annotated[CallToolResult, DraftPost]:
        """Create a post for the character from text, vault media and target accounts; it lands in Review.

        It waits for a person's approval (only a token the owner granted auto-approval skips that); only
        then can schedule_post send it to the calendar.
        """
        def body(session: Session, caller: Caller) -> DraftPost:
            if generated_text_id is not None:
                row = session.get(GeneratedText, generated_text_id)
                if row is None or row.character_id != character_id:
                    raise InvalidInput(f"No written text with id {generated_text_id} for character {character_id}.",
                                       field="generated_text_id")
            data = posts.PostInput(text=text, title=title, first_comment=first_comment, variants=variants,
                                   asset_ids=list(asset_ids), alt_texts=dict(alt_texts),
                                   account_ids=list(account_ids), scheduled_at=scheduled_at)
            post = posts.create_post(session, user=caller.user, character_id=character_id, data=data, submit=True,
                                     source="assistant", generated_text_id=generated_text_id, actor=caller.actor)
            if caller.token.auto_approve:
                posts.transition(session, user=caller.user, post=post, action="approve",
                                 note=f"Auto-approved: the owner granted token “{caller.token.name}” auto-approval.")
                step = "Approved automatically (this token has auto-approval); schedule it with schedule_post."
            else:
                step = ("Waiting in Review: a person must approve it before schedule_post can send it to the "
                        "calendar. Check with get_post or list_review_queue.")
            return DraftPost(post=post_detail(session, post), next_step=step)
        return gate.run(ctx, "create_draft_post", body, write=True, refs={"character_id": character_id})

    @mcp.tool(annotations=READ)
    def list_review_queue(
        ctx: Context, character_id: Annotated[int | None, Field(description="only this character's")] = None,
        limit: Limit = 50, offset: Offset = 0,
    ) -> Annotated[CallToolResult, PostsQueue]:
        """Posts waiting for a person's review, most recently changed first."""
        def body(session: Session, caller: Caller) -> PostsQueue:
            _owned_character(session, caller, character_id)
            rows, total = posts.list_posts(session, user=caller.user, statuses=[PostStatus.in_review],
                                           character_id=character_id, limit=limit, offset=offset)
            return PostsQueue(data=[post_public(session, p) for p in rows], count=total)
        return gate.run(ctx, "list_review_queue", body, refs={"character_id": character_id})

    @mcp.tool(annotations=READ)
    def get_post(ctx: Context, post_id: int) -> Annotated[CallToolResult, PostDetail]:
        """One post with its state, history (who moved it, when, why), review comments and publication ids."""
        def body(session: Session, caller: Caller) -> PostDetail:
            post = posts.get_post(session, post_id, user=caller.user)
            posts.sync_published(session, [post])
            return post_detail(session, post)
        return gate.run(ctx, "get_post", body, refs={"post_id": post_id})

    @mcp.tool(annotations=PUBLISH)
    def schedule_post(ctx: Context, post_id: Annotated[int, Field(description="an approved post")]
                      ) -> Annotated[CallToolResult, PostDetail]:
        """Schedule an APPROVED post: one publication per target account at the post's time (all or none).

        A post still in review is refused (code conflict, field action) until a person approves it.
        """
        def body(session: Session, caller: Caller) -> PostDetail:
            post = posts.get_post(session, post_id, user=caller.user)
            posts.schedule_post(session, runtime=runtime, user=caller.user, post=post)
            return post_detail(session, post)
        return gate.run(ctx, "schedule_post", body, write=True, refs={"post_id": post_id})

    # ---- calendar and publications -----------------------------------------------------------------------

    @mcp.tool(annotations=READ)
    def read_calendar(
        ctx: Context,
        view: Literal["month", "week", "day"] = "week",
        day: Annotated[date | None, Field(description="any day in the week/month (default today)")] = None,
        character_id: Annotated[int | None, Field(description="only this character's")] = None,
        timezone: Annotated[str | None, Field(max_length=64, description="IANA zone (default: the character's "
                                                                         "or yours)")] = None,
    ) -> Annotated[CallToolResult, CalendarPublic]:
        """Publications of a month, week or day by local day, with their states and scheduling conflicts."""
        def body(session: Session, caller: Caller) -> CalendarPublic:
            from ainfluencer.api.deps import Principal

            return calendar_routes.read_calendar(
                principal=Principal(caller.user, caller.token), session=session, view=view, day=day, tz=timezone,
                character_id=character_id, account_id=None, platform=None, status_=[])
        return gate.run(ctx, "read_calendar", body, refs={"character_id": character_id})

    @mcp.tool(annotations=READ)
    def list_publications(
        ctx: Context,
        status: Annotated[list[PublicationStatus], Field(description="only these states")] = [],  # noqa: B006
        character_id: Annotated[int | None, Field(description="only this character's")] = None,
        scheduled_from: datetime | None = None, scheduled_to: datetime | None = None,
        limit: Limit = 50, offset: Offset = 0,
    ) -> Annotated[CallToolResult, PublicationsPublic]:
        """Publications (one post to one account) with their states, newest first.

        States: planned, due, sending, published, retry_wait, failed, unknown, cancelled.
        """
        def body(session: Session, caller: Caller) -> PublicationsPublic:
            _owned_character(session, caller, character_id)
            rows, total = publishing.list_publications(
                session, user=caller.user, statuses=list(status), character_id=character_id,
                scheduled_from=scheduled_from, scheduled_to=scheduled_to, limit=limit, offset=offset)
            return PublicationsPublic(data=[publication_public(session, p) for p in rows], count=total)
        return gate.run(ctx, "list_publications", body, refs={"character_id": character_id})

    # ---- resources ---------------------------------------------------------------------------------------

    @mcp.resource("ainfluencer://docs/guide", name="guide", title="How to work with AInfluencer",
                  mime_type="text/markdown")
    def guide() -> str:
        """The workflow (write → media → draft → review → schedule), post and publication states, the rules."""
        return _guide()

    @mcp.resource("ainfluencer://docs/writing-options", name="writing-options", mime_type="application/json",
                  title="Networks, kinds of text, limits, styles and templates")
    def writing_options() -> str:
        """Every network's text kinds with their limits and counting, writing styles and content templates."""
        return json.dumps(writing.writing_options(), default=str)

    @mcp.resource("ainfluencer://characters/{character_id}/persona", name="persona", mime_type="application/json",
                  title="A character's persona and system prompt")
    def persona(character_id: int, ctx: Context) -> str:
        """The character's persona (traits, tone, topics, do/don't lists), public bio and a system prompt."""
        def body(session: Session, caller: Caller) -> dict[str, Any]:
            character = characters_svc.get_character(session, character_id, user=caller.user)
            return {"character_id": character.id, "name": character.name, "handle": character.handle,
                    "public_bio": characters_svc.public_bio(character), "persona": character.persona,
                    "disclosure_enabled": character.disclosure_enabled,
                    "system_prompt": characters_svc.export_prompt(character)}
        return json.dumps(read_resource(gate, ctx, "persona", body), default=str)

    # ---- prompts -----------------------------------------------------------------------------------------

    @mcp.prompt(title="Plan next week for a character")
    def plan_next_week(character_id: int, posts_per_day: int = 1) -> str:
        """Plan and draft next week's posts for one character; the drafts wait in Review."""
        return (
            f"Plan next week for character {character_id}.\n"
            f"1. Read resource ainfluencer://characters/{character_id}/persona and stay in that voice.\n"
            f"2. read_calendar (view week, the next week, character_id {character_id}) to see what is already "
            "planned, and list_accounts to pick target accounts.\n"
            f"3. For about {posts_per_day} post(s) a day on free days: write_text for each account's network "
            "(platform), search_vault for approved media (review_state [\"approved\"]) or generate_image and "
            "poll get_job.\n"
            "4. create_draft_post for each, with scheduled_at at a good local time and the generated_text_id.\n"
            "5. Summarise the drafts: they wait in Review until a person approves them. Never claim the "
            "character is human and keep its AI disclosure."
        )

    @mcp.prompt(title="Write and submit one post")
    def draft_one_post(character_id: int, network: str, topic: str) -> str:
        """Write one post in the character's voice on a topic, with media, and submit it for review."""
        return (
            f"Write one {network} post for character {character_id} about: {topic}.\n"
            f"Use write_text (platform {network}), pick approved media with search_vault, then create_draft_post "
            "with the character's account on that network (list_accounts) and the generated_text_id. "
            "Report the post id and that it waits in Review."
        )

    @mcp.prompt(title="What is waiting for review and what is scheduled")
    def status_report(character_id: int | None = None) -> str:
        """Summarise the review queue, the coming week's calendar and failed publications."""
        who = f"character {character_id}" if character_id is not None else "all characters"
        return (
            f"For {who}: list_review_queue, read_calendar (view week) and list_publications with status "
            "[\"failed\", \"unknown\"]. Summarise what waits for a person, what goes out this week, and what "
            "needs attention, with ids."
        )

    return mcp


def read_resource(gate: Gate, ctx: Context, name: str, body: Any) -> Any:
    """Run a resource read through the gate; refusals become resource errors carrying the error JSON."""
    result = gate.run(ctx, f"resource:{name}", lambda s, c: _Wrapped(value=body(s, c)))
    if result.is_error:
        err = (result.structured_content or {}).get("error", {})
        if err.get("code") == "not_found":
            raise ResourceNotFoundError(json.dumps({"error": err}))
        raise ResourceError(json.dumps({"error": err}))
    return (result.structured_content or {}).get("value")


class _Wrapped(BaseModel):
    value: Any

