"""Personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from ainfluencer.api.deps import Reader, SessionDep, Writer, client_ip
from ainfluencer.api.schemas import TokenCreate, TokenCreated, TokenPublic, TokensPublic, TokenUpdate
from ainfluencer.db.models import ApiToken
from ainfluencer.services import auth

router = APIRouter(prefix="/tokens", tags=["tokens"])


def _public(token: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=token.id, name=token.name, prefix=token.prefix, scopes=token.scope_list, created_at=token.created_at,
        last_used_at=token.last_used_at, expires_at=token.expires_at, revoked_at=token.revoked_at,
        auto_approve=token.auto_approve,
    )


@router.get("", response_model=TokensPublic)
def read_tokens(principal: Reader, session: SessionDep) -> TokensPublic:
    """Your tokens (the secret part is never shown again)."""
    tokens = auth.list_api_tokens(session, user=principal.user)
    return TokensPublic(data=[_public(t) for t in tokens], count=len(tokens))


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, principal: Writer, session: SessionDep, request: Request) -> TokenCreated:
    """Create a token; the response holds the only copy of its secret."""
    new = auth.create_api_token(
        session, user=principal.user, name=body.name, scopes=list(body.scopes), expires_days=body.expires_days,
        ip=client_ip(request),
    )
    return TokenCreated(**_public(new.token).model_dump(), token=new.raw)


@router.patch("/{token_id}", response_model=TokenPublic)
def update_token(token_id: int, body: TokenUpdate, principal: Writer, session: SessionDep,
                 request: Request) -> TokenPublic:
    """Grant or withdraw auto-approval of what an assistant creates through MCP with this token.

    With it, such posts land approved instead of waiting in review. Only the owner may, signed in to the
    web app: a token cannot grant itself this.
    """
    return _public(auth.set_token_auto_approve(session, by=principal.user, token_id=token_id,
                                               enabled=body.auto_approve, with_token=principal.token is not None,
                                               ip=client_ip(request)))


@router.delete("/{token_id}", response_model=TokenPublic)
def delete_token(token_id: int, principal: Writer, session: SessionDep, request: Request) -> TokenPublic:
    """Revoke a token at once."""
    return _public(auth.revoke_api_token(session, user=principal.user, token_id=token_id, ip=client_ip(request)))
