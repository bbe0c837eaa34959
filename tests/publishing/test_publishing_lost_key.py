"""A backup restored without its encryption key: every place that meets the credentials says so."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from publishing_helpers import World, drain, pub_row, publish

from ainfluencer.db.models_publishing import AccountStatus, PublicationStatus, SocialAccount
from ainfluencer.services.secrets import UNREADABLE_MESSAGE, KeyRing


def _lose_the_key(world: World) -> None:
    # The restored database's rows were sealed by the old key; this installation has another one.
    raw = base64.b64decode(base64.b64encode(os.urandom(32)))
    world.runtime.keyring = KeyRing(active="knew", keys={"knew": raw})


def _account(world: World) -> SocialAccount:
    with world.runtime.db.session() as s:
        account = s.get(SocialAccount, world.account_id)
        assert account is not None
        return account


def test_claimed_publication_fails_with_the_reason_and_the_account_needs_reconnect(world: World) -> None:
    pub_id = publish(world)
    _lose_the_key(world)
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == PublicationStatus.failed
    assert UNREADABLE_MESSAGE in pub.last_error
    account = _account(world)
    assert (account.status, account.last_error) == (AccountStatus.needs_reconnect, UNREADABLE_MESSAGE)


def test_start_readyz_accounts_page_and_check(world: World, app: object, caplog: pytest.LogCaptureFixture,
                                             login: Callable[..., None]) -> None:
    _lose_the_key(world)
    caplog.set_level(logging.WARNING)
    with TestClient(app, base_url="http://testserver") as client:  # type: ignore[arg-type]
        assert UNREADABLE_MESSAGE in caplog.text  # logged at start
        assert _account(world).status == AccountStatus.needs_reconnect
        ready = client.get("/readyz").json()["checks"]["credentials"]
        assert ready["ok"] is False and ready["accounts"] == [world.account_id]
        assert ready["message"] == UNREADABLE_MESSAGE
        login(client)
        page = client.get("/accounts")
        assert page.status_code == 200 and UNREADABLE_MESSAGE.replace("'", "&#39;") in page.text
        # The account check answers the reason instead of a generic 500.
        r = client.post(f"/api/v1/accounts/{world.account_id}/check",
                        headers={"X-CSRF-Token": client.cookies["ainf_csrf"]})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "needs_reconnect" and r.json()["last_error"] == UNREADABLE_MESSAGE

