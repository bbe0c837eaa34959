"""Accounts service: passwords, rate limits, link tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from ainfluencer.db.models import OneTimeToken, Role, User, utcnow
from ainfluencer.errors import AuthRequired, Conflict, InvalidInput, PermissionDenied, RateLimited
from ainfluencer.services import auth


def test_first_user_is_owner_and_passwords_are_argon2(runtime, make_user):
    owner = make_user("first@example.com")
    member = make_user("second@example.com")
    assert owner.role == Role.owner and member.role == Role.member
    assert owner.password_hash.startswith("$argon2id$")
    assert "correct horse" not in owner.password_hash


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("not-an-email", "long enough pw", "email"), ("a@example.com", "short", "password"),
     ("a@example.com", "x" * 300, "password")],
)
def test_create_user_validation(runtime, email, password, field):
    with runtime.db.session() as s, pytest.raises(InvalidInput) as info:
        auth.create_user(s, email=email, password=password)
    assert info.value.field == field


def test_duplicate_email_is_conflict_case_insensitive(runtime, make_user):
    make_user("Zoe@Example.com")
    with runtime.db.session() as s, pytest.raises(Conflict):
        auth.create_user(s, email="zoe@example.com", password="another password")


def test_unverified_user_cannot_sign_in(runtime, make_user):
    make_user("u@example.com", verified=False)
    with runtime.db.session() as s, pytest.raises(PermissionDenied) as info:
        auth.authenticate(s, runtime.settings, email="u@example.com", password="correct horse battery", ip="1.1.1.1")
    assert info.value.code == "email_unverified"


def test_account_lockout_does_not_reveal_existence(runtime, make_user):
    make_user("real@example.com")
    messages = {}
    for email in ("real@example.com", "ghost@example.com"):
        for i in range(runtime.settings.login_max_failures_account):
            with runtime.db.session() as s, pytest.raises(AuthRequired) as info:
                auth.authenticate(s, runtime.settings, email=email, password="wrong password", ip=f"10.0.0.{i}")
            assert info.value.message == auth.BAD_CREDENTIALS
        with runtime.db.session() as s, pytest.raises(RateLimited) as locked:
            # Even the right password is refused while locked.
            auth.authenticate(s, runtime.settings, email=email, password="correct horse battery", ip="10.0.1.1")
        messages[email] = locked.value.message.replace("15 minutes", "N").replace("14 minutes", "N")
        assert locked.value.retry_after > 0
    assert messages["real@example.com"] == messages["ghost@example.com"]


def test_ip_rate_limit(runtime, make_user):
    make_user("real@example.com")
    for i in range(runtime.settings.login_max_failures_ip):
        with runtime.db.session() as s, pytest.raises(AuthRequired):
            auth.authenticate(s, runtime.settings, email=f"x{i}@example.com", password="nope nope", ip="9.9.9.9")
    with runtime.db.session() as s, pytest.raises(RateLimited):
        auth.authenticate(s, runtime.settings, email="real@example.com", password="correct horse battery",
                          ip="9.9.9.9")
    with runtime.db.session() as s:  # another address is not affected
        assert auth.authenticate(s, runtime.settings, email="real@example.com", password="correct horse battery",
                                 ip="8.8.8.8").email == "real@example.com"


def test_reset_token_single_use_and_expiry(runtime, make_user):
    user = make_user("r@example.com")
    with runtime.db.session() as s:
        token = auth.issue_link_token(s, secret=runtime.secret, user=s.get(User, user.id), purpose="reset")
    with runtime.db.session() as s, pytest.raises(InvalidInput):
        auth.reset_password(s, secret=runtime.secret, token=token, new_password="short")
    with runtime.db.session() as s:  # a too-short password did not use the link up
        auth.reset_password(s, secret=runtime.secret, token=token, new_password="a brand new password")
    with runtime.db.session() as s, pytest.raises(InvalidInput) as used:
        auth.reset_password(s, secret=runtime.secret, token=token, new_password="another new password")
    assert used.value.code == "link_used"
    with runtime.db.session() as s:
        token2 = auth.issue_link_token(s, secret=runtime.secret, user=s.get(User, user.id), purpose="reset")
        s.execute(update(OneTimeToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    with runtime.db.session() as s, pytest.raises(InvalidInput) as expired:
        auth.reset_password(s, secret=runtime.secret, token=token2, new_password="another new password")
    assert expired.value.code == "link_expired"
    with runtime.db.session() as s, pytest.raises(InvalidInput) as forged:
        auth.reset_password(s, secret=runtime.secret, token=token2[:-3] + "abc", new_password="xxxxxxxxxxxx")
    assert forged.value.code == "link_invalid"
    # A verify token cannot be used as a reset token.
    with runtime.db.session() as s:
        vtoken = auth.issue_link_token(s, secret=runtime.secret, user=s.get(User, user.id), purpose="verify")
    with runtime.db.session() as s, pytest.raises(InvalidInput):
        auth.reset_password(s, secret=runtime.secret, token=vtoken, new_password="another new password")


def test_newer_link_replaces_older(runtime, make_user):
    user = make_user("v@example.com", verified=False)
    with runtime.db.session() as s:
        old = auth.issue_link_token(s, secret=runtime.secret, user=s.get(User, user.id), purpose="verify")
        new = auth.issue_link_token(s, secret=runtime.secret, user=s.get(User, user.id), purpose="verify")
    with runtime.db.session() as s, pytest.raises(InvalidInput):
        auth.verify_email(s, secret=runtime.secret, token=old)
    with runtime.db.session() as s:
        assert auth.verify_email(s, secret=runtime.secret, token=new).email_verified_at is not None
        assert len(s.scalars(select(OneTimeToken)).all()) == 2


def test_expired_api_token(runtime, make_user):
    user = make_user()
    with runtime.db.session() as s:
        new = auth.create_api_token(s, user=s.get(User, user.id), name="t", scopes="read", expires_days=1)
        new.token.expires_at = utcnow() - timedelta(minutes=1)
    with runtime.db.session() as s, pytest.raises(AuthRequired) as info:
        auth.resolve_api_token(s, new.raw)
    assert info.value.code == "token_expired"
    assert new.raw not in repr(new)


def test_signups_closed_after_first_user_unless_owner_allows(runtime, make_user):
    with runtime.db.session() as s:
        assert auth.signups_allowed(s, runtime.settings) == (True, "first account")
    owner = make_user()
    with runtime.db.session() as s:
        assert auth.signups_allowed(s, runtime.settings)[0] is False
        auth.set_signups_allowed(s, runtime.settings, enabled=True, by=s.get(User, owner.id))
    with runtime.db.session() as s:
        assert auth.signups_allowed(s, runtime.settings) == (True, "owner setting")
    locked = runtime.settings.model_copy(update={"allow_signups": False})
    with runtime.db.session() as s:
        assert auth.signups_allowed(s, locked) == (False, "locked by configuration")
        with pytest.raises(Conflict):
            auth.set_signups_allowed(s, locked, enabled=True, by=s.get(User, owner.id))
