"""Accounts: connect platform identities to characters (live check first), health, reconnect, disconnect."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_publishing import (
    AccountConnect,
    AccountPublic,
    AccountReconnect,
    AccountsPublic,
    ChatDiscovery,
    ChatsPublic,
    CredentialsIn,
    PlatformPublic,
    PlatformsPublic,
    RateBudgetPublic,
)
from ainfluencer.db.models_publishing import AccountStatus, SocialAccount
from ainfluencer.platforms.base import Credentials
from ainfluencer.platforms.registry import platform_names
from ainfluencer.services import accounts as svc

router = APIRouter(prefix="/accounts", tags=["accounts"])


def account_public(session: Session, account: SocialAccount) -> AccountPublic:
    """Schema for one account, with capabilities and the current rate-limit budget."""
    try:
        cls = svc.known_platform(account.platform, svc.platforms_of(session))
        name, caps = cls.display_name, svc.capabilities_dict(cls.capabilities)
    except Exception:  # an adapter removed from this version: still show the row
        name, caps = account.platform, {}
    return AccountPublic(
        id=account.id, character_id=account.character_id, platform=account.platform, platform_name=name,
        platform_account_id=account.platform_account_id, handle=account.handle, display_name=account.display_name,
        profile_url=account.profile_url, status=account.status.value, is_bot_flagged=account.is_bot_flagged,
        token_expires_at=account.token_expires_at, last_checked_at=account.last_checked_at,
        last_error=account.last_error, rate_limited_until=account.rate_limited_until, extra=account.extra or {},
        capabilities=caps, rate_budget=[RateBudgetPublic(**b) for b in svc.rate_budget(session, account)],
        created_at=account.created_at,
    )


def _credentials(body: CredentialsIn) -> Credentials:
    return svc.credentials_from_input(
        access_token=body.access_token, refresh_token=body.refresh_token, expires_at=body.expires_at,
        extra=body.extra, secret_extra=dict(body.secret_extra),
    )


@router.get("", response_model=AccountsPublic)
def read_accounts(
    principal: Reader,
    session: SessionDep,
    runtime: RuntimeDep,
    character_id: int | None = Query(None),
    platform: str | None = Query(None, max_length=32),
    status_: AccountStatus | None = Query(None, alias="status"),
) -> AccountsPublic:
    """Accounts of the characters you can see.

    Credentials this installation cannot decrypt show as ``needs_reconnect``, the reason in ``last_error``.
    """
    rows = svc.list_accounts_checked(session, runtime=runtime, user=principal.user, character_id=character_id,
                                     platform=platform, status=status_)
    return AccountsPublic(data=[account_public(session, a) for a in rows], count=len(rows))


@router.get("/platforms", response_model=PlatformsPublic)
def read_platforms(principal: Reader) -> PlatformsPublic:
    """Networks this install publishes to, with their limits as data."""
    data = []
    for name in platform_names():
        cls = svc.known_platform(name)
        data.append(PlatformPublic(name=name, display_name=cls.display_name,
                                   capabilities=svc.capabilities_dict(cls.capabilities)))
    return PlatformsPublic(data=data)


@router.post("/discover-chats", response_model=ChatsPublic)
def discover_chats(body: ChatDiscovery, principal: Writer, runtime: RuntimeDep) -> ChatsPublic:
    """Chats a bot token has seen (pick the channel instead of typing its id), on ``api_url`` when given."""
    allow = runtime.settings.webhook_allow_private_targets or principal.user.is_owner
    server = svc.check_server_url(body.api_url, allow_private=allow)
    return ChatsPublic(data=svc.discover_chats(runtime, body.platform, body.token.get_secret_value(),
                                                server_url=server))


@router.post("", response_model=AccountPublic, status_code=status.HTTP_201_CREATED)
def create_account(body: AccountConnect, request: Request, principal: Writer, session: SessionDep,
                   runtime: RuntimeDep) -> AccountPublic:
    """Connect an account: the credentials are checked live before anything is saved."""
    account = svc.connect_account(session, runtime=runtime, user=principal.user, character_id=body.character_id,
                                  platform=body.platform, credentials=_credentials(body.credentials),
                                  ip=client_ip(request))
    return account_public(session, account)


@router.get("/{account_id}", response_model=AccountPublic)
def read_account(account_id: int, principal: Reader, session: SessionDep) -> AccountPublic:
    """One account, with health, token expiry and rate-limit budget."""
    return account_public(session, svc.get_account(session, account_id, user=principal.user))


@router.post("/{account_id}/check", response_model=AccountPublic)
def check_account(account_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep) -> AccountPublic:
    """Run a live health check now."""
    account = svc.get_account(session, account_id, user=principal.user)
    return account_public(session, svc.check_health(session, runtime=runtime, account=account))


@router.post("/{account_id}/reconnect", response_model=AccountPublic)
def reconnect_account(account_id: int, body: AccountReconnect, request: Request, principal: Writer,
                      session: SessionDep, runtime: RuntimeDep) -> AccountPublic:
    """Replace the credentials (they must belong to the same platform account)."""
    account = svc.get_account(session, account_id, user=principal.user)
    account = svc.reconnect_account(session, runtime=runtime, user=principal.user, account=account,
                                    credentials=_credentials(body.credentials), ip=client_ip(request))
    return account_public(session, account)


@router.post("/{account_id}/disconnect", response_model=AccountPublic)
def disconnect_account(account_id: int, request: Request, principal: Writer, session: SessionDep,
                       runtime: RuntimeDep) -> AccountPublic:
    """Delete the stored tokens and mark the account disconnected (its history stays)."""
    account = svc.get_account(session, account_id, user=principal.user)
    account = svc.disconnect_account(session, runtime=runtime, user=principal.user, account=account,
                                     ip=client_ip(request))
    return account_public(session, account)
