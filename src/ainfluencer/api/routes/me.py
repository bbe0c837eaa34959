"""The caller's own account."""

from __future__ import annotations

from fastapi import APIRouter

from ainfluencer.api.deps import Reader
from ainfluencer.api.schemas import MePublic

router = APIRouter(prefix="/me", tags=["me"])


@router.get("", response_model=MePublic)
def read_me(principal: Reader) -> MePublic:
    """The user behind the token (or browser session), with the token's scopes."""
    user, token = principal.user, principal.token
    return MePublic(
        id=user.id, email=user.email, display_name=user.display_name, role=user.role.value,
        email_verified=user.email_verified_at is not None, timezone=user.timezone, created_at=user.created_at,
        scopes=token.scope_list if token else ["read", "write"], token_name=token.name if token else None,
    )
