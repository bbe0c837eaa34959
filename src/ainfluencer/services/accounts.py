"""Connected social accounts: live check before saving, duplicates refused, tokens sealed, health.

An account is one platform identity of one character. Its tokens are stored through the secrets
service (``owner_kind="social_account"``); only non-secret ids (chat id, page id, instance URL ...)
live on the row. Every adapter call may refresh credentials in place, so callers hand the adapter
back to :func:`persist_credentials` after each call.

The live check runs *outside* any open transaction: on SQLite the first statement of a
transaction takes the write lock (``BEGIN IMMEDIATE``), and a slow network must not hold it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ainfluencer.db.models import Character, CharacterStatus, User, utcnow
from ainfluencer.db.models_publishing import AccountStatus, RateBucket, SocialAccount
from ainfluencer.errors import AppError, Conflict, InvalidInput, NotFound
from ainfluencer.platforms.base import (
    Capabilities,
    Credentials,
    PlatformAdapter,
    PlatformAuthError,
    PlatformError,
    PlatformTransientError,
    RateLimit,
)
from ainfluencer.platforms.registry import DEFAULT, PlatformRegistry
from ainfluencer.platforms.spec import PlatformSpec
from ainfluencer.runtime import Runtime
from ainfluencer.services.auth import audit
from ainfluencer.services.secrets import SecretsService

log = logging.getLogger(__name__)

SECRET_OWNER = "social_account"  # noqa: S105 - an owner kind, not a secret
SECRET_EXTRA_PREFIX = "secret_extra:"  # noqa: S105
# Limits that publishing does not spend (deleting posts, signing in).
UNSPENT_SCOPES = frozenset({"delete", "session"})
REFRESH_AHEAD = timedelta(minutes=5)


class PlatformUnavailable(AppError):
    """The network could not be reached or answered with a temporary error."""

    status_code = 502
    code = "platform_unavailable"


# ---- small helpers -----------------------------------------------------------------------------


def platforms_of(session: Session) -> PlatformRegistry:
    """The platform registry of the Runtime that opened ``session`` (the built-in one for a bare session)."""
    runtime = session.info.get("runtime")
    return runtime.platforms if runtime is not None else DEFAULT


def known_spec(platform: str, platforms: PlatformRegistry | None = None) -> PlatformSpec:
    """The spec of a platform name, or InvalidInput naming the known ones."""
    registry = platforms or DEFAULT
    try:
        return registry.spec(platform)
    except KeyError:
        raise InvalidInput(
            f"Unknown platform {platform!r}; choose one of: {', '.join(registry.names())}.", field="platform"
        ) from None


def known_platform(platform: str, platforms: PlatformRegistry | None = None) -> type[PlatformAdapter]:
    """The adapter class of a platform name, or InvalidInput naming the known ones."""
    known_spec(platform, platforms)
    return (platforms or DEFAULT).adapter_class(platform)


def build_adapter(runtime: Runtime, platform: str, credentials: Credentials) -> PlatformAdapter:
    """An adapter for ``platform`` holding ``credentials``, with the runtime's transport for it."""
    known_spec(platform, runtime.platforms)
    return runtime.platforms.adapter(platform, credentials)


def capabilities_dict(caps: Capabilities) -> dict[str, Any]:
    """Capabilities as plain JSON-able data (sets become sorted lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(caps):
        value = getattr(caps, f.name)
        if isinstance(value, frozenset | set):
            value = sorted(str(v) for v in value)
        elif f.name == "rate_limits":
            value = [dataclasses.asdict(rl) for rl in value]
        out[f.name] = value
    return out


def visible_characters(user: User) -> ColumnElement[bool]:
    """SQL condition: characters this user may see (the owner sees all)."""
    if user.is_owner:
        return Character.id.is_not(None)
    return Character.user_id == user.id


def get_character(session: Session, character_id: int, *, user: User) -> Character:
    """One character the user may see, or NotFound."""
    character = session.get(Character, character_id)
    if character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No character with id {character_id}.", field="character_id")
    return character


def get_account(session: Session, account_id: int, *, user: User) -> SocialAccount:
    """One account the user may see (through its character), or NotFound."""
    account = session.get(SocialAccount, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.")
    character = session.get(Character, account.character_id)
    if character is None or (not user.is_owner and character.user_id != user.id):
        raise NotFound(f"No account with id {account_id}.")
    return account


def list_accounts(
    session: Session,
    *,
    user: User,
    character_id: int | None = None,
    platform: str | None = None,
    status: AccountStatus | None = None,
    include_disconnected: bool = True,
) -> list[SocialAccount]:
    """Accounts the user may see, by character then platform."""
    q = select(SocialAccount).join(Character, Character.id == SocialAccount.character_id).where(
        visible_characters(user)
    )
    if character_id is not None:
        q = q.where(SocialAccount.character_id == character_id)
    if platform:
        q = q.where(SocialAccount.platform == platform)
    if status is not None:
        q = q.where(SocialAccount.status == status)
    elif not include_disconnected:
        q = q.where(SocialAccount.status != AccountStatus.disconnected)
    return list(session.scalars(q.order_by(SocialAccount.character_id, SocialAccount.platform, SocialAccount.id)))


def list_accounts_checked(session: Session, *, runtime: Runtime, user: User, **filters: Any) -> list[SocialAccount]:
    """:func:`list_accounts`, with accounts whose credentials cannot be decrypted marked as such first."""
    flag_unreadable_credentials(session, runtime.secrets)
    return list_accounts(session, user=user, **filters)


# ---- credentials -------------------------------------------------------------------------------


def credentials_from_input(
    *,
    access_token: str | SecretStr | None = None,
    refresh_token: str | SecretStr | None = None,
    expires_at: datetime | None = None,
    extra: dict[str, Any] | None = None,
    secret_extra: dict[str, str | SecretStr] | None = None,
) -> Credentials:
    """Credentials from what a person typed (values wrapped as secrets)."""

    def secret(value: str | SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        return SecretStr(raw.strip()) if raw.strip() else None

    return Credentials(
        access_token=secret(access_token),
        refresh_token=secret(refresh_token),
        expires_at=expires_at,
        extra={str(k): str(v) for k, v in (extra or {}).items() if v is not None},
        secret_extra={str(k): s for k, v in (secret_extra or {}).items() if (s := secret(v)) is not None},
    )


def fingerprint(credentials: Credentials) -> tuple[Any, ...]:
    """A comparable snapshot of credentials, to notice in-place refreshes."""

    def raw(value: SecretStr | None) -> str:
        return value.get_secret_value() if value is not None else ""

    return (
        raw(credentials.access_token),
        raw(credentials.refresh_token),
        credentials.expires_at.isoformat() if credentials.expires_at else "",
        tuple(sorted(credentials.extra.items())),
        tuple(sorted((k, raw(v)) for k, v in credentials.secret_extra.items())),
    )


def load_credentials(session: Session, secrets: SecretsService, account: SocialAccount) -> Credentials:
    """The account's stored credentials (secret values decrypted into SecretStr)."""
    from ainfluencer.db.models import StoredSecret

    names = session.scalars(
        select(StoredSecret.name).where(StoredSecret.owner_kind == SECRET_OWNER, StoredSecret.owner_id == account.id)
    ).all()

    def get(name: str) -> SecretStr | None:
        return secrets.get(session, owner_kind=SECRET_OWNER, owner_id=account.id, name=name)

    secret_extra: dict[str, SecretStr] = {}
    for name in names:
        if name.startswith(SECRET_EXTRA_PREFIX):
            value = get(name)
            if value is not None:
                secret_extra[name[len(SECRET_EXTRA_PREFIX):]] = value
    return Credentials(
        access_token=get("access_token") if "access_token" in names else None,
        refresh_token=get("refresh_token") if "refresh_token" in names else None,
        expires_at=account.token_expires_at,
        extra={str(k): str(v) for k, v in (account.extra or {}).items()},
        secret_extra=secret_extra,
    )


def save_credentials(
    session: Session, secrets: SecretsService, account: SocialAccount, credentials: Credentials
) -> None:
    """Store credentials: secrets sealed, non-secret ids and expiry on the row; stale secrets removed."""
    from ainfluencer.db.models import StoredSecret

    wanted: dict[str, SecretStr] = {}
    if credentials.access_token is not None:
        wanted["access_token"] = credentials.access_token
    if credentials.refresh_token is not None:
        wanted["refresh_token"] = credentials.refresh_token
    for key, value in credentials.secret_extra.items():
        wanted[SECRET_EXTRA_PREFIX + key] = value
    existing = set(
        session.scalars(
            select(StoredSecret.name).where(
                StoredSecret.owner_kind == SECRET_OWNER, StoredSecret.owner_id == account.id
            )
        ).all()
    )
    for name, value in wanted.items():
        secrets.put(session, owner_kind=SECRET_OWNER, owner_id=account.id, name=name, value=value)
    for name in existing - set(wanted):
        secrets.delete(session, owner_kind=SECRET_OWNER, owner_id=account.id, name=name)
    account.extra = dict(credentials.extra)
    account.token_expires_at = credentials.expires_at


def delete_credentials(session: Session, secrets: SecretsService, account: SocialAccount) -> int:
    """Remove every stored secret of the account; returns how many were removed."""
    from ainfluencer.db.models import StoredSecret

    names = session.scalars(
        select(StoredSecret.name).where(StoredSecret.owner_kind == SECRET_OWNER, StoredSecret.owner_id == account.id)
    ).all()
    for name in names:
        secrets.delete(session, owner_kind=SECRET_OWNER, owner_id=account.id, name=name)
    return len(names)


def persist_credentials(runtime: Runtime, account_id: int, before: tuple[Any, ...], adapter: PlatformAdapter) -> bool:
    """Save the adapter's credentials in their own transaction when a call changed them."""
    if fingerprint(adapter.credentials) == before:
        return False
    with runtime.db.session() as s:
        account = s.get(SocialAccount, account_id)
        if account is None:
            return False
        save_credentials(s, runtime.secrets, account, adapter.credentials)
    log.info("account %s: refreshed credentials stored", account_id)
    return True


def needs_refresh(credentials: Credentials, *, now: datetime | None = None) -> bool:
    """True when the token expires within a few minutes and a refresh token is stored."""
    if credentials.expires_at is None or credentials.refresh_token is None:
        return False
    return credentials.expires_at <= (now or utcnow()) + REFRESH_AHEAD


# ---- rate-limit buckets -------------------------------------------------------------------------


def bucket_scope(limit: RateLimit) -> str:
    """The bucket key of a documented limit, e.g. ``post/900s``."""
    return f"{limit.scope}/{limit.per_seconds}s"[:64]


def publishing_limits(caps: Capabilities) -> list[RateLimit]:
    """The documented limits a publish spends from (deletes and sign-ins are not spent)."""
    return [rl for rl in caps.rate_limits if rl.scope not in UNSPENT_SCOPES and rl.requests > 0 and rl.per_seconds > 0]


def ensure_buckets(session: Session, account: SocialAccount, caps: Capabilities) -> dict[str, RateBucket]:
    """The account's buckets by scope, creating full ones for limits not yet seen."""
    rows = {b.scope: b for b in session.scalars(select(RateBucket).where(RateBucket.account_id == account.id))}
    for limit in publishing_limits(caps):
        scope = bucket_scope(limit)
        if scope in rows:
            continue
        bucket = RateBucket(
            account_id=account.id, scope=scope, capacity=float(limit.requests),
            refill_per_s=limit.requests / limit.per_seconds, tokens=float(limit.requests), updated_at=utcnow(),
        )
        try:
            with session.begin_nested():
                session.add(bucket)
                session.flush()
        except IntegrityError:  # another worker created it first
            bucket = session.scalars(
                select(RateBucket).where(RateBucket.account_id == account.id, RateBucket.scope == scope)
            ).one()
        rows[scope] = bucket
    return rows


def _level(bucket: RateBucket, now: datetime) -> float:
    elapsed = max(0.0, (now - bucket.updated_at).total_seconds())
    return min(bucket.capacity, bucket.tokens + elapsed * bucket.refill_per_s)


def rate_budget(session: Session, account: SocialAccount, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each bucket's available tokens now (read-only; for display)."""
    now = now or utcnow()
    rows = session.scalars(select(RateBucket).where(RateBucket.account_id == account.id).order_by(RateBucket.scope))
    out = []
    for b in rows:
        level = _level(b, now)
        full_in = (b.capacity - level) / b.refill_per_s if b.refill_per_s > 0 else 0.0
        out.append({
            "scope": b.scope, "capacity": b.capacity, "available": round(level, 3),
            "refill_per_s": b.refill_per_s, "full_in_s": round(full_in, 1),
        })
    return out


def take_tokens(
    session: Session, account: SocialAccount, caps: Capabilities, *, media_count: int, now: datetime | None = None
) -> tuple[float, str]:
    """Spend one publish from every bucket, or nothing: returns (seconds to wait, scope) when one is short.

    Token bucket per limit: ``level = min(capacity, tokens + elapsed * requests / per_seconds)``;
    a publish costs 1 (a ``media`` limit costs one per attached file). Rows are locked on
    PostgreSQL; SQLite serialises writers already.
    """
    now = now or utcnow()
    if not publishing_limits(caps):
        return 0.0, ""
    ensure_buckets(session, account, caps)
    # Lock, and re-read: rows loaded before the lock was granted may be stale.
    locked = {
        b.scope: b for b in session.scalars(
            select(RateBucket).where(RateBucket.account_id == account.id).with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    costs: dict[str, float] = {}
    for limit in publishing_limits(caps):
        scope = bucket_scope(limit)
        cost = float(media_count) if limit.scope == "media" else 1.0
        if cost > 0 and scope in locked:
            costs[scope] = min(cost, locked[scope].capacity)
    wait, short = 0.0, ""
    for scope, cost in costs.items():
        level = _level(locked[scope], now)
        if level + 1e-9 < cost:
            need = (cost - level) / locked[scope].refill_per_s
            if need > wait:
                wait, short = need, scope
    if wait > 0:
        return wait, short
    for scope, cost in costs.items():
        bucket = locked[scope]
        bucket.tokens = _level(bucket, now) - cost
        bucket.updated_at = now
    return 0.0, ""


# ---- connect, check, reconnect, disconnect -------------------------------------------------------


def _live_check(runtime: Runtime, adapter: PlatformAdapter) -> Any:
    """Run ``adapter.connect()`` and turn platform errors into errors a person can act on."""
    try:
        return runtime.run(adapter.connect())
    except PlatformAuthError as exc:
        raise InvalidInput(
            f"{adapter.display_name} refused these credentials: {exc.message}"
            + (f" ({exc.platform_message})" if exc.platform_message else ""),
            field="credentials", code="credentials_rejected",
        ) from exc
    except PlatformTransientError as exc:
        raise PlatformUnavailable(
            f"{adapter.display_name} could not be reached to check the account: {exc.message} Try again shortly."
        ) from exc
    except PlatformError as exc:
        raise InvalidInput(
            f"{adapter.display_name} refused the connection: {exc.message}"
            + (f" ({exc.platform_message})" if exc.platform_message else ""),
            field="credentials",
        ) from exc


def _owner_phrase(session: Session, account: SocialAccount, user: User) -> str:
    character = session.get(Character, account.character_id)
    if character is None:
        return "another character"
    if user.is_owner or character.user_id == user.id:
        return f"character “{character.name}” (@{character.handle})"
    return "a character of another user"


def connect_account(
    session: Session,
    *,
    runtime: Runtime,
    user: User,
    character_id: int,
    platform: str,
    credentials: Credentials,
    ip: str = "",
) -> SocialAccount:
    """Live-check credentials, refuse duplicates by the platform's account id, then store the account."""
    character = get_character(session, character_id, user=user)
    if character.status == CharacterStatus.archived:
        raise Conflict(f"Character “{character.name}” is archived; restore it before connecting accounts.")
    cls = known_platform(platform, runtime.platforms)
    credentials = _checked_server_url(cls, credentials, runtime=runtime, user=user)
    character_name = character.name
    session.commit()  # release the (SQLite) write lock before the network call
    adapter = build_adapter(runtime, platform, credentials)
    info = _live_check(runtime, adapter)
    creds = info.credentials or adapter.credentials
    existing = session.scalar(
        select(SocialAccount).where(
            SocialAccount.platform == platform, SocialAccount.platform_account_id == info.platform_account_id
        )
    )
    if existing is not None:
        if existing.character_id == character_id and existing.status == AccountStatus.disconnected:
            return _store(session, runtime, existing, info, creds, user=user, ip=ip, action="account.reconnect")
        where = _owner_phrase(session, existing, user)
        state = " (disconnected; reconnect it there)" if existing.status == AccountStatus.disconnected else ""
        raise Conflict(
            f"This {cls.display_name} account ({info.handle or info.platform_account_id}) is already connected "
            f"to {where}{state}. One platform account belongs to one character.",
            code="duplicate_account", field="credentials",
        )
    account = SocialAccount(
        character_id=character_id, platform=platform, platform_account_id=info.platform_account_id,
        created_by=user.id,
    )
    try:
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"This {cls.display_name} account was connected by someone else a moment ago.",
            code="duplicate_account", field="credentials",
        ) from None
    stored = _store(session, runtime, account, info, creds, user=user, ip=ip, action="account.connect")
    log.info("connected %s account %s for character %r", platform, info.handle, character_name)
    return stored


def _store(
    session: Session, runtime: Runtime, account: SocialAccount, info: Any, creds: Credentials, *, user: User,
    ip: str, action: str,
) -> SocialAccount:
    account.handle = info.handle or ""
    account.display_name = info.display_name or ""
    account.profile_url = info.profile_url or ""
    account.is_bot_flagged = info.is_bot_flagged
    account.status = AccountStatus.healthy
    account.last_checked_at = utcnow()
    account.last_error = ""
    account.rate_limited_until = None
    save_credentials(session, runtime.secrets, account, creds)
    ensure_buckets(session, account, known_platform(account.platform, runtime.platforms).capabilities)
    audit(session, action, user_id=user.id, ip=ip, account_id=account.id, platform=account.platform,
          handle=account.handle, character_id=account.character_id)
    session.flush()
    return account


def reconnect_account(
    session: Session, *, runtime: Runtime, user: User, account: SocialAccount, credentials: Credentials, ip: str = ""
) -> SocialAccount:
    """Replace an account's credentials after a live check that finds the same platform account."""
    cls = known_platform(account.platform, runtime.platforms)
    credentials = _checked_server_url(cls, credentials, runtime=runtime, user=user)
    account_id, expected = account.id, account.platform_account_id
    session.commit()
    adapter = build_adapter(runtime, account.platform, credentials)
    info = _live_check(runtime, adapter)
    if info.platform_account_id != expected:
        raise Conflict(
            f"These credentials belong to {info.handle or info.platform_account_id}, not to this account "
            f"({account.handle}). Connect that one as a new account instead.", field="credentials",
        )
    account = session.get(SocialAccount, account_id) or account
    return _store(session, runtime, account, info, info.credentials or adapter.credentials, user=user, ip=ip,
                  action="account.reconnect")


def check_health(session: Session, *, runtime: Runtime, account: SocialAccount) -> SocialAccount:
    """Live-check a stored account; updates status, last check and last error (refreshing tokens if due)."""
    if account.status == AccountStatus.disconnected:
        raise Conflict("This account is disconnected; reconnect it with new credentials.")
    account_id = account.id
    if flag_unreadable_credentials(session, runtime.secrets, [account]):
        account.last_checked_at = utcnow()
        session.flush()
        return account
    creds = load_credentials(session, runtime.secrets, account)
    session.commit()
    adapter = build_adapter(runtime, account.platform, creds)
    before = fingerprint(creds)
    status, error, info = AccountStatus.healthy, "", None
    try:
        if needs_refresh(creds):
            runtime.run(adapter.refresh())
        info = runtime.run(adapter.connect())
    except PlatformAuthError as exc:
        status, error = AccountStatus.needs_reconnect, _say(exc)
    except PlatformError as exc:
        status, error = AccountStatus.error, _say(exc)
    persist_credentials(runtime, account_id, before, adapter)
    account = session.get(SocialAccount, account_id) or account
    session.refresh(account)
    account.status, account.last_error, account.last_checked_at = status, error, utcnow()
    if info is not None:
        account.handle = info.handle or account.handle
        account.display_name = info.display_name or account.display_name
        account.is_bot_flagged = info.is_bot_flagged
        if info.credentials is not None and fingerprint(info.credentials) != fingerprint(adapter.credentials):
            save_credentials(session, runtime.secrets, account, info.credentials)
    session.flush()
    return account


def _say(exc: PlatformError) -> str:
    return exc.message + (f" — {exc.platform_message}" if exc.platform_message else "")


def disconnect_account(
    session: Session, *, runtime: Runtime, user: User, account: SocialAccount, ip: str = ""
) -> SocialAccount:
    """Forget the account's tokens and mark it disconnected (history and publications stay)."""
    removed = delete_credentials(session, runtime.secrets, account)
    account.status = AccountStatus.disconnected
    account.last_error = "Disconnected by a person; tokens deleted."
    account.token_expires_at = None
    audit(session, "account.disconnect", user_id=user.id, ip=ip, account_id=account.id,
          platform=account.platform, handle=account.handle, secrets_removed=removed)
    session.flush()
    return account


def mark_needs_reconnect(session: Session, account_id: int, message: str) -> None:
    """Record that the network refused the account's token."""
    account = session.get(SocialAccount, account_id)
    if account is not None and account.status != AccountStatus.disconnected:
        account.status = AccountStatus.needs_reconnect
        account.last_error = message
        account.last_checked_at = utcnow()


def discover_chats(runtime: Runtime, platform: str, token: str, *, server_url: str = "") -> list[dict[str, Any]]:
    """Chats a bot token has seen (Telegram's "pick the chat from the bot's updates"), passed through.

    ``server_url`` is the account's own Bot API server (checked by the caller with
    :func:`check_server_url`); empty means the network's public one.
    """
    spec = known_spec(platform, runtime.platforms)
    cls = runtime.platforms.adapter_class(platform)
    fn = spec.helper("discover_chats")
    if fn is None:
        raise InvalidInput(f"{cls.display_name} has no chat discovery; enter the account details.", field="platform")
    if not token.strip():
        raise InvalidInput("Enter the bot token.", field="token")
    try:
        transport = runtime.platforms.transport(platform)
        if server_url:
            transport["server_url"] = server_url
        chats: Sequence[Any] = runtime.run(fn(token.strip(), **transport))
    except PlatformAuthError as exc:
        raise InvalidInput(f"{cls.display_name} refused the token: {exc.message}", field="token") from exc
    except PlatformTransientError as exc:
        raise PlatformUnavailable(f"{cls.display_name} could not be reached: {exc.message}") from exc
    except PlatformError as exc:
        raise InvalidInput(f"{cls.display_name}: {exc.message}", field="token") from exc
    return [dataclasses.asdict(c) if dataclasses.is_dataclass(c) and not isinstance(c, type) else dict(c)
            for c in chats]


def check_server_url(value: str, *, allow_private: bool, field: str = "api_url") -> str:
    """A per-account API server URL (e.g. a self-hosted Telegram Bot API server), normalised, or 422.

    The server is reached with the account's token, so it gets the same destination rule as
    webhooks: public addresses, unless private targets are allowed (the install's
    ``webhook_allow_private_targets`` setting, or the owner, who runs the machine, connecting).
    """
    from ainfluencer.net_guard import DestinationRefused, check_url

    value = (value or "").strip()
    if not value:
        return ""
    try:
        checked = check_url(value, allow_private=allow_private)
    except DestinationRefused as exc:
        raise InvalidInput(f"Bot API server: {exc}", field=field) from None
    return checked.rstrip("/")


def _checked_server_url(cls: type[PlatformAdapter], credentials: Credentials, *, runtime: Runtime,
                        user: User) -> Credentials:
    key = cls.server_url_key
    if not key or not credentials.extra.get(key):
        return credentials
    allow = runtime.settings.webhook_allow_private_targets or user.is_owner
    url = check_server_url(credentials.extra[key], allow_private=allow, field=f"credentials.extra.{key}")
    return dataclasses.replace(credentials, extra={**credentials.extra, key: url})


def credentials_readable(session: Session, secrets: SecretsService, account: SocialAccount) -> bool:
    """False when some stored credential of the account cannot be opened with this key ring."""
    return not secrets.unreadable(session, owner_kind=SECRET_OWNER, owner_id=account.id)


def flag_unreadable_credentials(session: Session, secrets: SecretsService,
                                accounts: Sequence[SocialAccount] | None = None) -> list[SocialAccount]:
    """Mark accounts whose credentials cannot be decrypted as needing a reconnect, with the reason.

    After a restore without the original encryption key nothing else would notice until a post
    failed; this runs at start, on the accounts list and when a publication is claimed.
    """
    from ainfluencer.services.secrets import UNREADABLE_MESSAGE

    owners = {row.owner_id for row in secrets.unreadable(session, owner_kind=SECRET_OWNER)}
    if not owners:
        return []
    candidates = accounts if accounts is not None else list(
        session.scalars(select(SocialAccount).where(SocialAccount.id.in_(owners))))
    flagged = []
    for account in candidates:
        if account.id in owners and account.status != AccountStatus.disconnected:
            if account.status != AccountStatus.needs_reconnect or account.last_error != UNREADABLE_MESSAGE:
                account.status, account.last_error = AccountStatus.needs_reconnect, UNREADABLE_MESSAGE
            flagged.append(account)
    session.flush()
    return flagged


def usable_for_publishing(account: SocialAccount) -> str:
    """Why an account cannot publish now ("" when it can)."""
    if account.status == AccountStatus.disconnected:
        return "The account is disconnected; reconnect it, then retry."
    if account.status == AccountStatus.needs_reconnect:
        # Refused up front: a post accepted now would only fail at its time.
        return (f"The account needs reconnecting ({account.last_error or 'its token was refused'}); "
                "reconnect it, then retry.")
    return ""
