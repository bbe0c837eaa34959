"""Accounts: users, passwords, sign-in with rate limits, sessions, API tokens, e-mail links, audit."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ainfluencer.config import Settings
from ainfluencer.db.models import (
    ApiToken,
    AppSetting,
    AuditLog,
    LoginAttempt,
    OneTimeToken,
    Role,
    User,
    WebSession,
    utcnow,
)
from ainfluencer.errors import AuthRequired, Conflict, InvalidInput, NotFound, PermissionDenied, RateLimited

_hasher = PasswordHasher()
# Verifying against this keeps sign-in time the same whether or not the account exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))

TOKEN_PREFIX = "ainf_"  # noqa: S105 - a public prefix, not a secret
SCOPES = ("read", "write")
PASSWORD_MIN = 8
PASSWORD_MAX = 256
VERIFY_TTL = timedelta(hours=48)
RESET_TTL = timedelta(hours=1)
BAD_CREDENTIALS = "Email or password is incorrect."


def sha256(value: str) -> str:
    """Hex SHA-256 of a string (how tokens are stored)."""
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_email(email: str, *, field: str = "email") -> str:
    """Validate and normalise an e-mail address (syntax only, no DNS)."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput(f"That e-mail address is not valid: {exc}", field=field) from exc


def check_password_rules(password: str, *, field: str = "password") -> None:
    """Refuse passwords that are too short or too long."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"Use at least {PASSWORD_MIN} characters for the password.", field=field)
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"Use at most {PASSWORD_MAX} characters for the password.", field=field)


def hash_password(password: str) -> str:
    """Argon2id hash."""
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Constant-effort check; upgrades old hash parameters in place."""
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None:
        return False
    if ok and _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    return ok


def audit(session: Session, action: str, *, user_id: int | None = None, ip: str = "", **detail: Any) -> None:
    """Record an audit event in the caller's transaction."""
    session.add(AuditLog(action=action, user_id=user_id, ip=ip, detail=detail))


# ---- users ------------------------------------------------------------------------------


def user_count(session: Session) -> int:
    """How many accounts exist."""
    return session.scalar(select(func.count()).select_from(User)) or 0


def signups_allowed(session: Session, settings: Settings) -> tuple[bool, str]:
    """Whether a new account may be created, and what decided it."""
    if user_count(session) == 0:
        return True, "first account"
    if settings.allow_signups is not None:
        return settings.allow_signups, "locked by configuration"
    row = session.get(AppSetting, "allow_signups")
    return bool(row and row.value.get("enabled")), "owner setting"


def set_signups_allowed(session: Session, settings: Settings, *, enabled: bool, by: User, ip: str = "") -> None:
    """Owner toggles open sign-ups (refused when the configuration locks it)."""
    if not by.is_owner:
        raise PermissionDenied("Only the owner can change who may sign up.")
    if settings.allow_signups is not None:
        raise Conflict("Sign-ups are locked by AINF_ALLOW_SIGNUPS or the config file; change it there.")
    row = session.get(AppSetting, "allow_signups")
    if row is None:
        row = AppSetting(key="allow_signups", value={})
        session.add(row)
    row.value = {"enabled": enabled}
    row.updated_by = by.id
    audit(session, "settings.changed", user_id=by.id, ip=ip, key="allow_signups", value=enabled)


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str = "",
    owner: bool | None = None,
    verified: bool = False,
) -> User:
    """Create an account. The first account becomes the owner unless ``owner`` says otherwise."""
    email = normalize_email(email)
    check_password_rules(password)
    display_name = display_name.strip()
    if len(display_name) > 120:
        raise InvalidInput("Use at most 120 characters for the display name.", field="display_name")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this e-mail address already exists.", field="email")
    is_first = user_count(session) == 0
    role = Role.owner if (owner if owner is not None else is_first) else Role.member
    user = User(
        email=email,
        display_name=display_name or email.split("@")[0],
        password_hash=hash_password(password),
        role=role,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(user)
    session.flush()
    audit(session, "user.created", user_id=user.id, role=role.value)
    return user


def get_user_by_email(session: Session, email: str) -> User | None:
    """Find an account by e-mail (normalised), or None."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        return None
    return session.scalar(select(User).where(User.email == email))


def change_password(session: Session, *, user: User, new_password: str, ip: str = "") -> None:
    """Set a new password and sign out every browser of that user."""
    check_password_rules(new_password)
    user.password_hash = hash_password(new_password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    audit(session, "user.password_changed", user_id=user.id, ip=ip)


# ---- sign-in with rate limits ----------------------------------------------------------


def _recent_failures(session: Session, settings: Settings, **where: str) -> tuple[int, Any]:
    since = utcnow() - timedelta(minutes=settings.login_window_minutes)
    col = LoginAttempt.email if "email" in where else LoginAttempt.ip
    value = where.get("email") or where.get("ip")
    row = session.execute(
        select(func.count(), func.min(LoginAttempt.at)).where(
            col == value, LoginAttempt.at >= since, LoginAttempt.success.is_(False)
        )
    ).one()
    return int(row[0]), row[1]


def _lockout(settings: Settings, oldest: Any) -> RateLimited:
    unlock = oldest + timedelta(minutes=settings.login_window_minutes)
    seconds = max(1, int((unlock - utcnow()).total_seconds()))
    minutes = max(1, (seconds + 59) // 60)
    return RateLimited(
        f"Too many sign-in attempts. Wait {minutes} minute{'s' if minutes != 1 else ''} and try again, "
        "or reset your password.",
        retry_after=seconds,
    )


def authenticate(session: Session, settings: Settings, *, email: str, password: str, ip: str) -> User:
    """Check credentials under per-account and per-IP limits. Messages never reveal if an account exists."""
    key = email.strip().lower()[:320]
    count, oldest = _recent_failures(session, settings, ip=ip)
    if count >= settings.login_max_failures_ip:
        raise _lockout(settings, oldest)
    count, oldest = _recent_failures(session, settings, email=key)
    if count >= settings.login_max_failures_account:
        raise _lockout(settings, oldest)
    user = get_user_by_email(session, email)
    # End the read transaction before the deliberately slow hash check: on SQLite a transaction
    # holds the write lock, and argon2 must not serialise every other request behind it.
    session.commit()
    ok = verify_password(user, password) and user is not None and user.is_active
    session.add(LoginAttempt(email=key, ip=ip, success=ok))
    if not ok or user is None:
        audit(session, "auth.sign_in_failed", user_id=user.id if user else None, ip=ip)
        # The request fails, but the attempt must count: commit it before raising.
        session.commit()
        raise AuthRequired(BAD_CREDENTIALS, code="bad_credentials")
    if settings.require_email_verification and user.email_verified_at is None:
        raise PermissionDenied(
            "Please verify your e-mail address first. We can send the link again.", code="email_unverified"
        )
    user.last_login_at = utcnow()
    audit(session, "auth.signed_in", user_id=user.id, ip=ip)
    return user


# ---- browser sessions ----------------------------------------------------------------


def create_web_session(session: Session, settings: Settings, *, user: User, ip: str, user_agent: str) -> str:
    """Start a browser session; returns the raw cookie value."""
    raw = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            user_id=user.id,
            token_hash=sha256(raw),
            expires_at=utcnow() + timedelta(days=settings.session_days),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    return raw


def user_for_session(session: Session, raw: str) -> User | None:
    """The signed-in user for a cookie value, or None when expired/unknown."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == sha256(raw)))
    if row is None or row.expires_at < utcnow() or not row.user.is_active:
        return None
    return row.user


def end_web_session(session: Session, raw: str, *, ip: str = "") -> None:
    """Sign a browser out."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == sha256(raw)))
    if row is not None:
        audit(session, "auth.signed_out", user_id=row.user_id, ip=ip)
        session.delete(row)


# ---- API tokens ----------------------------------------------------------------------


def parse_scopes(scopes: str | list[str]) -> list[str]:
    """Normalise scopes; write implies read."""
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    items = [s.strip().lower() for s in items if s.strip()]
    if not items:
        raise InvalidInput("Choose at least one scope: read or write.", field="scopes")
    unknown = [s for s in items if s not in SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scope {unknown[0]!r}; use read or write.", field="scopes")
    if "write" in items and "read" not in items:
        items.append("read")
    return sorted(set(items))


@dataclass
class NewToken:
    """A token just created: the raw value is shown once and never stored."""

    token: ApiToken
    raw: str

    def __repr__(self) -> str:
        return f"NewToken({self.token!r})"


def create_api_token(
    session: Session, *, user: User, name: str, scopes: str | list[str], expires_days: int | None = None, ip: str = ""
) -> NewToken:
    """Create a personal API token."""
    name = name.strip()
    if not name:
        raise InvalidInput("Give the token a name so you can recognise it later.", field="name")
    if len(name) > 100:
        raise InvalidInput("Use at most 100 characters for the token name.", field="name")
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise InvalidInput("Expiry must be between 1 and 3650 days.", field="expires_days")
    scope_list = parse_scopes(scopes)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        token_hash=sha256(raw),
        scopes=",".join(scope_list),
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(token)
    session.flush()
    audit(session, "token.created", user_id=user.id, ip=ip, token_id=token.id, name=name, scopes=scope_list)
    return NewToken(token=token, raw=raw)


def resolve_api_token(session: Session, raw: str) -> ApiToken:
    """The live token for a bearer value, or AuthRequired."""
    if not raw.startswith(TOKEN_PREFIX):
        raise AuthRequired("That is not an AInfluencer API token (they start with 'ainf_').", code="bad_token")
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256(raw)))
    now = utcnow()
    if token is None or token.revoked_at is not None:
        raise AuthRequired("This API token is unknown or was revoked.", code="bad_token")
    if token.expires_at is not None and token.expires_at < now:
        raise AuthRequired("This API token has expired; create a new one in Settings.", code="token_expired")
    if not token.user.is_active:
        raise AuthRequired("The account behind this token is disabled.", code="bad_token")
    # Avoid a write per request: last-used is precise to the minute.
    if token.last_used_at is None or (now - token.last_used_at) > timedelta(minutes=1):
        token.last_used_at = now
    return token


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """A user's tokens, newest first (revoked ones included)."""
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc()))
    )


def revoke_api_token(session: Session, *, user: User, token_id: int, ip: str = "") -> ApiToken:
    """Revoke one of the user's tokens."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such API token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit(session, "token.revoked", user_id=user.id, ip=ip, token_id=token.id, name=token.name)
    return token


def set_token_auto_approve(session: Session, *, by: User, token_id: int, enabled: bool, with_token: bool,
                           ip: str = "") -> ApiToken:
    """Grant or withdraw auto-approval of what an assistant creates with one of the owner's tokens.

    Only the owner may, and only signed in: a token must never be able to grant itself (or a sibling)
    the right to skip review.
    """
    # Another user's token answers exactly like a missing one, before any role check can tell them apart.
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != by.id:
        raise NotFound("No such API token.")
    if not by.is_owner:
        raise PermissionDenied("Only the owner can let a token's drafts skip review.", field="auto_approve")
    if with_token:
        raise PermissionDenied("Auto-approval is granted by the owner signed in to the web app, not with an API "
                               "token.", field="auto_approve", code="session_required")
    if enabled and token.revoked_at is not None:
        raise Conflict("This token is revoked.", field="auto_approve")
    if token.auto_approve != enabled:
        token.auto_approve = enabled
        audit(session, "token.auto_approve_granted" if enabled else "token.auto_approve_withdrawn", user_id=by.id,
              ip=ip, token_id=token.id, name=token.name)
    return token


# ---- e-mail links: signed, expiring, single-use ----------------------------------------


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"ainfluencer.{purpose}")


def issue_link_token(session: Session, *, secret: str, user: User, purpose: str) -> str:
    """Create a single-use token for ``purpose`` ('verify' or 'reset'); older unused ones die."""
    ttl = VERIFY_TTL if purpose == "verify" else RESET_TTL
    now = utcnow()
    for old in session.scalars(
        select(OneTimeToken).where(
            OneTimeToken.user_id == user.id, OneTimeToken.purpose == purpose, OneTimeToken.used_at.is_(None)
        )
    ):
        old.used_at = now
    nonce = secrets.token_urlsafe(24)
    row = OneTimeToken(user_id=user.id, purpose=purpose, nonce_hash=sha256(nonce), expires_at=now + ttl)
    session.add(row)
    session.flush()
    return _serializer(secret, purpose).dumps({"id": row.id, "n": nonce})


def consume_link_token(session: Session, *, secret: str, token: str, purpose: str) -> User:
    """Check and use up a link token; raises InvalidInput with a clear reason."""
    ttl = VERIFY_TTL if purpose == "verify" else RESET_TTL
    what = "verification" if purpose == "verify" else "password reset"
    try:
        data = _serializer(secret, purpose).loads(token, max_age=int(ttl.total_seconds()))
    except SignatureExpired as exc:
        raise InvalidInput(f"This {what} link has expired. Ask for a new one.", code="link_expired") from exc
    except BadSignature as exc:
        raise InvalidInput(f"This {what} link is not valid. Ask for a new one.", code="link_invalid") from exc
    row = session.get(OneTimeToken, int(data.get("id", 0))) if isinstance(data, dict) else None
    if row is None or row.purpose != purpose or not secrets.compare_digest(row.nonce_hash, sha256(str(data["n"]))):
        raise InvalidInput(f"This {what} link is not valid. Ask for a new one.", code="link_invalid")
    if row.used_at is not None:
        raise InvalidInput(f"This {what} link was already used or replaced by a newer one.", code="link_used")
    if row.expires_at < utcnow():
        raise InvalidInput(f"This {what} link has expired. Ask for a new one.", code="link_expired")
    row.used_at = utcnow()
    user = session.get(User, row.user_id)
    assert user is not None
    return user


def verify_email(session: Session, *, secret: str, token: str, ip: str = "") -> User:
    """Mark the e-mail of the token's user verified."""
    user = consume_link_token(session, secret=secret, token=token, purpose="verify")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        audit(session, "user.email_verified", user_id=user.id, ip=ip)
    return user


def reset_password(session: Session, *, secret: str, token: str, new_password: str, ip: str = "") -> User:
    """Set a new password from a reset link (the link is used up only when the password is valid)."""
    check_password_rules(new_password)
    user = consume_link_token(session, secret=secret, token=token, purpose="reset")
    change_password(session, user=user, new_password=new_password, ip=ip)
    # Proving control of the mailbox also verifies it.
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    return user
