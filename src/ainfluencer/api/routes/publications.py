"""Publications: compose for one or many accounts, read state and history, reschedule, retry, cancel."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_publishing import (
    MediaIn,
    PublicationCreate,
    PublicationDetail,
    PublicationEventPublic,
    PublicationMarkPublished,
    PublicationPublic,
    PublicationReschedule,
    PublicationsPublic,
)
from ainfluencer.db.models import User
from ainfluencer.db.models_media import ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus, SocialAccount
from ainfluencer.errors import InvalidInput, NotFound
from ainfluencer.services import accounts, vault
from ainfluencer.services import publishing as svc

router = APIRouter(prefix="/publications", tags=["publications"])


def publication_public(session: Session, pub: Publication) -> PublicationPublic:
    """Schema for one publication."""
    account = session.get(SocialAccount, pub.account_id)
    return PublicationPublic(
        id=pub.id, group_key=pub.group_key, character_id=pub.character_id, account_id=pub.account_id,
        platform=account.platform if account else "", account_handle=account.handle if account else "",
        status=pub.status.value, needs_person=svc.needs_person(pub), actions=svc.allowed_actions(pub),
        text=pub.text, title=pub.title, media=pub.media or [], options=pub.options or {},
        ai_generated=pub.ai_generated, scheduled_at=pub.scheduled_at, idempotency_key=pub.idempotency_key,
        generation=pub.generation, attempts=pub.attempts, next_attempt_at=pub.next_attempt_at,
        platform_post_id=pub.platform_post_id, url=pub.url, last_error=pub.last_error,
        platform_message=pub.platform_message, sending_started_at=pub.sending_started_at,
        published_at=pub.published_at, created_by=pub.created_by, created_at=pub.created_at,
        updated_at=pub.updated_at,
    )


def publication_detail(session: Session, pub: Publication) -> PublicationDetail:
    """One publication with its event history."""
    base = publication_public(session, pub)
    events = [PublicationEventPublic.model_validate(e) for e in svc.events_of(session, pub)]
    return PublicationDetail(**base.model_dump(), events=events)


def _media(session: Session, user: User, items: list[MediaIn] | None, *, where: str,
           character_ids: set[int]) -> list[svc.MediaSpec] | None:
    """Vault assets the caller may see, as media specs; the file path comes from the asset, never the client."""
    if items is None:
        return None
    specs = []
    for j, item in enumerate(items):
        field = f"{where}.{j}.asset_id"
        try:
            asset = vault.get_asset(session, item.asset_id, user=user)
        except NotFound:
            raise InvalidInput(f"No asset with id {item.asset_id}.", field=field) from None
        if asset.review_state != ReviewState.approved:
            raise InvalidInput(f"Asset {asset.id} is {asset.review_state.value.replace('_', ' ')}; only approved "
                               "assets are published. Approve it in the vault first.", field=field)
        if asset.character_id is not None and character_ids - {asset.character_id}:
            raise InvalidInput(f"Asset {asset.id} belongs to another character.", field=field)
        specs.append(svc.MediaSpec(path=asset.path, kind=item.kind, mime_type=asset.mime or None,
                                   alt_text=item.alt_text, asset_id=asset.id, duration_seconds=asset.duration_s,
                                   width=asset.width, height=asset.height))
    return specs


def _characters_of(session: Session, user: User, account_ids: list[int]) -> set[int]:
    """Characters of the accounts the caller may see (unknown ones are refused later, by the service)."""
    found = set()
    for account_id in account_ids:
        try:
            found.add(accounts.get_account(session, account_id, user=user).character_id)
        except NotFound:
            continue
    return found


@router.post("", response_model=PublicationsPublic, status_code=status.HTTP_201_CREATED)
def create_publications(body: PublicationCreate, request: Request, principal: Writer, session: SessionDep,
                        runtime: RuntimeDep) -> PublicationsPublic:
    """Validate against every network's limits, then queue one publication per account (all or nothing).

    Media are vault assets named by ``asset_id`` (see ``GET /api/v1/assets``); file paths are not accepted.
    """
    user = principal.user
    shared_accounts = [t.account_id for t in body.targets if t.media is None]
    shared = _media(session, user, body.media, where="media",
                    character_ids=_characters_of(session, user, shared_accounts)) or []
    spec = svc.PostSpec(
        targets=[svc.TargetSpec(account_id=t.account_id, text=t.text, title=t.title,
                                media=_media(session, user, t.media, where=f"targets.{i}.media",
                                             character_ids=_characters_of(session, user, [t.account_id])),
                                options=t.options, first_comment=t.first_comment, tags=t.tags)
                 for i, t in enumerate(body.targets)],
        text=body.text, title=body.title, media=shared, options=body.options,
        first_comment=body.first_comment, tags=body.tags, ai_generated=body.ai_generated,
        scheduled_at=body.scheduled_at, character_id=body.character_id,
    )
    rows = svc.create_publications(session, runtime=runtime, user=principal.user, spec=spec, ip=client_ip(request))
    return PublicationsPublic(data=[publication_public(session, p) for p in rows], count=len(rows))


@router.get("", response_model=PublicationsPublic)
def read_publications(
    principal: Reader,
    session: SessionDep,
    status_: list[PublicationStatus] = Query(default=[], alias="status"),
    character_id: int | None = Query(None),
    account_id: int | None = Query(None),
    platform: str | None = Query(None, max_length=32),
    group_key: str | None = Query(None, max_length=36),
    scheduled_from: datetime | None = Query(None, alias="from"),
    scheduled_to: datetime | None = Query(None, alias="to"),
    order: str = Query("desc", pattern="^(asc|desc)$"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> PublicationsPublic:
    """Publications you can see, filtered by status (repeatable), character, account, platform or time."""
    rows, total = svc.list_publications(
        session, user=principal.user, statuses=status_, character_id=character_id, account_id=account_id,
        platform=platform, group_key=group_key, scheduled_from=scheduled_from, scheduled_to=scheduled_to,
        newest_first=order == "desc", limit=limit, offset=offset,
    )
    return PublicationsPublic(data=[publication_public(session, p) for p in rows], count=total)


@router.get("/{publication_id}", response_model=PublicationDetail)
def read_publication(publication_id: int, principal: Reader, session: SessionDep) -> PublicationDetail:
    """One publication's state and history."""
    return publication_detail(session, svc.get_publication(session, publication_id, user=principal.user))


@router.patch("/{publication_id}", response_model=PublicationDetail)
def update_publication(publication_id: int, body: PublicationReschedule, principal: Writer,
                       session: SessionDep) -> PublicationDetail:
    """Reschedule a planned or waiting publication."""
    pub = svc.get_publication(session, publication_id, user=principal.user)
    svc.reschedule(session, user=principal.user, pub=pub, scheduled_at=body.scheduled_at)
    return publication_detail(session, pub)


@router.post("/{publication_id}/retry", response_model=PublicationDetail)
def retry_publication(publication_id: int, principal: Writer, session: SessionDep) -> PublicationDetail:
    """Send a failed or unknown publication again now (new marker, fresh attempts)."""
    pub = svc.get_publication(session, publication_id, user=principal.user)
    svc.retry(session, user=principal.user, pub=pub)
    return publication_detail(session, pub)


@router.post("/{publication_id}/cancel", response_model=PublicationDetail)
def cancel_publication(publication_id: int, principal: Writer, session: SessionDep) -> PublicationDetail:
    """Cancel a publication that is not being sent or already published."""
    pub = svc.get_publication(session, publication_id, user=principal.user)
    svc.cancel(session, user=principal.user, pub=pub)
    return publication_detail(session, pub)


@router.post("/{publication_id}/mark-published", response_model=PublicationDetail)
def mark_published(publication_id: int, body: PublicationMarkPublished, principal: Writer,
                   session: SessionDep) -> PublicationDetail:
    """Confirm an unknown publication is on the network (after looking)."""
    pub = svc.get_publication(session, publication_id, user=principal.user)
    svc.mark_published(session, user=principal.user, pub=pub, url=body.url, platform_post_id=body.platform_post_id)
    return publication_detail(session, pub)
