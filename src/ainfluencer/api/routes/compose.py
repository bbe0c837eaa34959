"""Compose: the live per-network preview (no side effects) and OAuth connect for API clients."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer
from ainfluencer.api.schemas_compose import (
    ComposeDraftIn,
    ComposeMediaPublic,
    ComposePreviewPublic,
    ComposeTargetPublic,
    OAuthStartIn,
    OAuthStartPublic,
)
from ainfluencer.services import compose as svc
from ainfluencer.services import oauth

router = APIRouter(prefix="/compose", tags=["compose"])


def draft_of(body: ComposeDraftIn) -> svc.Draft:
    """The request body as a service draft."""
    return svc.Draft(
        account_ids=list(body.account_ids), text=body.text, title=body.title, first_comment=body.first_comment,
        asset_ids=list(body.asset_ids), alt_texts=dict(body.alt_texts),
        variants={p: svc.Variant(text=v.text, title=v.title, first_comment=v.first_comment,
                                 asset_ids=list(v.asset_ids) if v.asset_ids is not None else None,
                                 alt_texts=dict(v.alt_texts)) for p, v in body.variants.items()},
        publish_now=body.publish_now, local_time=body.local_time, timezone=body.timezone,
        character_id=body.character_id, require_alt_text=body.require_alt_text, ai_generated=body.ai_generated,
    )


def preview_public(result: svc.Preview) -> ComposePreviewPublic:
    """Schema for a preview."""
    return ComposePreviewPublic(
        ok=result.ok, problems=result.problems, scheduled_at=result.scheduled_at,
        targets=[ComposeTargetPublic(
            account_id=t.account_id, platform=t.platform, platform_name=t.platform_name, handle=t.handle,
            text=t.text, title=t.title, first_comment=t.first_comment, length=t.length, limit=t.limit,
            counting=t.counting, over=t.over, title_length=t.title_length, title_limit=t.title_limit,
            media=[ComposeMediaPublic(**m.__dict__) for m in t.media], problems=t.problems, notes=t.notes, ok=t.ok,
        ) for t in result.targets],
    )


@router.post("/preview", response_model=ComposePreviewPublic)
def create_preview(body: ComposeDraftIn, principal: Reader, session: SessionDep,
                   runtime: RuntimeDep) -> ComposePreviewPublic:
    """Render and validate a post for every picked account (nothing is saved or queued).

    Text is counted the way each network counts it (X weighted length, Bluesky graphemes, Telegram
    UTF-16 units, YouTube description bytes); every problem of every target is listed at once.
    ``POST /api/v1/publications`` queues the post (all or nothing).
    """
    result = svc.preview(session, runtime=runtime, user=principal.user, draft=draft_of(body))
    session.rollback()
    return preview_public(result)


@router.post("/oauth/{platform}/start", response_model=OAuthStartPublic)
def create_oauth_start(platform: str, body: OAuthStartIn, request: Request, principal: Writer,
                       session: SessionDep, runtime: RuntimeDep) -> OAuthStartPublic:
    """Start an OAuth connect (x, facebook, instagram, youtube, mastodon): open ``authorize_url`` in a browser.

    The network sends the browser back to ``redirect_uri`` (``/accounts/oauth/{platform}/callback``),
    which needs the same person signed in to the web app; the state works once, for 10 minutes.
    """
    started = oauth.start(session, runtime=runtime, user=principal.user, platform=platform,
                          character_id=body.character_id, base_url=str(request.base_url).rstrip("/"),
                          instance_url=body.instance_url, account_id=body.account_id)
    return OAuthStartPublic(authorize_url=started.url, state=started.state, expires_at=started.expires_at,
                            redirect_uri=started.redirect_uri)
