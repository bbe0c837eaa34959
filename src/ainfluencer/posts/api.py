"""/api/v1/posts: drafts, review steps, scheduling, comments and bulk actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.db.models_publishing import Publication
from ainfluencer.posts import service as svc
from ainfluencer.posts.models import Post, PostStatus
from ainfluencer.posts.schemas import (
    Action,
    PostAction,
    PostBulk,
    PostBulkResult,
    PostCommentCreate,
    PostCommentPublic,
    PostCreate,
    PostDetail,
    PostEventPublic,
    PostPublic,
    PostsPublic,
    PostUpdate,
    VariantIn,
)

router = APIRouter(prefix="/posts", tags=["posts"])


def post_public(session: Session, post: Post) -> PostPublic:
    """Schema for one post."""
    pub_ids = list(session.scalars(select(Publication.id).where(Publication.group_key == post.group_key)
                                   .order_by(Publication.id))) if post.group_key else []
    return PostPublic(
        id=post.id, character_id=post.character_id, status=post.status.value, actions=svc.allowed_actions(post),
        text=post.text, title=post.title, first_comment=post.first_comment, variants=post.variants or {},
        asset_ids=list(post.asset_ids or []), alt_texts=dict(post.alt_texts or {}),
        account_ids=list(post.account_ids or []), scheduled_at=post.scheduled_at, timezone=post.timezone,
        require_alt_text=post.require_alt_text, source=post.source, generated_text_id=post.generated_text_id,
        automation_run_id=post.automation_run_id, publication_ids=pub_ids, created_by=post.created_by,
        created_at=post.created_at, updated_at=post.updated_at,
    )


def post_detail(session: Session, post: Post) -> PostDetail:
    """One post with its history and comments."""
    return PostDetail(
        **post_public(session, post).model_dump(),
        events=[PostEventPublic.model_validate(e) for e in svc.events_of(session, post)],
        comments=[PostCommentPublic.model_validate(c) for c in svc.comments_of(session, post)],
    )


def _variants(raw: dict[str, VariantIn] | None) -> dict[str, dict[str, Any]] | None:
    if raw is None:
        return None
    return {k: v.model_dump(exclude_none=True) for k, v in raw.items()}


@router.post("", response_model=PostDetail, status_code=status.HTTP_201_CREATED)
def create_post(body: PostCreate, request: Request, principal: Writer, session: SessionDep) -> PostDetail:
    """Create a draft (or, with ``submit: true``, a post waiting for review). Media are vault asset ids."""
    data = svc.PostInput(
        text=body.text, title=body.title, first_comment=body.first_comment, variants=_variants(body.variants),
        asset_ids=body.asset_ids, alt_texts=body.alt_texts, account_ids=body.account_ids,
        scheduled_at=body.scheduled_at, timezone=body.timezone or None, require_alt_text=body.require_alt_text,
    )
    post = svc.create_post(session, user=principal.user, character_id=body.character_id, data=data,
                           submit=body.submit, ip=client_ip(request))
    return post_detail(session, post)


@router.get("", response_model=PostsPublic)
def read_posts(
    principal: Reader,
    session: SessionDep,
    status_: list[PostStatus] = Query(default=[], alias="status"),
    character_id: int | None = Query(None),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> PostsPublic:
    """Posts you can see, filtered by status (repeatable) and character, most recently changed first."""
    rows, total = svc.list_posts(session, user=principal.user, statuses=status_, character_id=character_id,
                                 limit=limit, offset=offset)
    svc.sync_published(session, rows)
    return PostsPublic(data=[post_public(session, p) for p in rows], count=total)


@router.post("/bulk", response_model=PostBulkResult)
def create_posts_bulk(body: PostBulk, request: Request, principal: Writer, session: SessionDep,
                      runtime: RuntimeDep) -> PostBulkResult:
    """Apply one action to many posts; each is done or refused on its own, with the reason."""
    result = svc.bulk(session, runtime=runtime, user=principal.user, ids=body.ids, action=body.action,
                      note=body.note, ip=client_ip(request))
    return PostBulkResult(done=result.done, refused=result.refused)


@router.get("/{post_id}", response_model=PostDetail)
def read_post(post_id: int, principal: Reader, session: SessionDep) -> PostDetail:
    """One post with its history (who did what, when) and comments."""
    post = svc.get_post(session, post_id, user=principal.user)
    svc.sync_published(session, [post])
    return post_detail(session, post)


@router.patch("/{post_id}", response_model=PostDetail)
def update_post(post_id: int, body: PostUpdate, request: Request, principal: Writer, session: SessionDep,
                runtime: RuntimeDep) -> PostDetail:
    """Edit a post that is not scheduled yet.

    An approved post goes back to review when ``AINF_POSTS_REVIEW_AFTER_EDIT`` is on (the default).
    """
    post = svc.get_post(session, post_id, user=principal.user)
    data = svc.PostInput(
        text=body.text, title=body.title, first_comment=body.first_comment, variants=_variants(body.variants),
        asset_ids=body.asset_ids, alt_texts=body.alt_texts, account_ids=body.account_ids,
        scheduled_at=body.scheduled_at, clear_scheduled_at=body.clear_scheduled_at, timezone=body.timezone,
        require_alt_text=body.require_alt_text,
    )
    svc.update_post(session, user=principal.user, post=post, data=data,
                    review_after_edit=runtime.settings.posts_review_after_edit, ip=client_ip(request))
    return post_detail(session, post)


@router.post("/{post_id}/comments", response_model=PostCommentPublic, status_code=status.HTTP_201_CREATED)
def create_post_comment(post_id: int, body: PostCommentCreate, principal: Writer,
                        session: SessionDep) -> PostCommentPublic:
    """Comment on a post."""
    post = svc.get_post(session, post_id, user=principal.user)
    return PostCommentPublic.model_validate(svc.add_comment(session, user=principal.user, post=post, body=body.body))


@router.post("/{post_id}/{action}", response_model=PostDetail)
def create_post_action(post_id: int, action: Action, request: Request, principal: Writer, session: SessionDep,
                       runtime: RuntimeDep, body: PostAction | None = None) -> PostDetail:
    """A review step (submit, approve, request_changes, reject, reopen) or ``schedule``.

    ``schedule`` creates the publications of an approved post through the publishing service (all accounts or none).
    """
    post = svc.get_post(session, post_id, user=principal.user)
    note = body.note if body else ""
    if action == "schedule":
        svc.schedule_post(session, runtime=runtime, user=principal.user, post=post, ip=client_ip(request))
    else:
        svc.transition(session, user=principal.user, post=post, action=action, note=note, ip=client_ip(request))
    return post_detail(session, post)
