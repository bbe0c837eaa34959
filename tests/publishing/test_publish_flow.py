"""The publish state machine against FakeNet: success, retries, uncertainty, reconciliation, limits, auth."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fake_network import Reply
from publishing_helpers import (
    World,
    account_row,
    connect,
    drain,
    jobs_of,
    make_character,
    pub_row,
    publish,
    time_travel,
)
from sqlalchemy import update

from ainfluencer.db.models import JobStatus, User, utcnow
from ainfluencer.db.models_publishing import AccountStatus, Publication, PublicationStatus, RateBucket
from ainfluencer.errors import InvalidInput
from ainfluencer.jobs import runner
from ainfluencer.runtime import Runtime
from ainfluencer.services import accounts, publishing

S = PublicationStatus


def statuses(world: World, pub_id: int) -> list[str]:
    with world.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None
        return [e.to_status for e in publishing.events_of(s, pub)]


def test_publish_now_goes_out_once_with_its_marker(world: World) -> None:
    pub_id = publish(world, "First light over the harbour")
    assert pub_row(world.runtime, pub_id).status == S.due
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.published and pub.attempts == 1
    assert pub.platform_post_id.startswith("p") and pub.url.startswith("https://fakenet.test/")
    assert pub.idempotency_key == f"ainf:{pub_id}:1"
    assert world.net.markers() == {pub.idempotency_key: 1}
    assert statuses(world, pub_id) == ["due", "sending", "published"]
    job = jobs_of(world.runtime, "publish")[0]
    assert job.idempotency_key == f"publish:{pub_id}:1" and job.status == JobStatus.succeeded


def test_scheduled_publication_waits_for_its_time(world: World) -> None:
    at = utcnow() + timedelta(hours=3)
    pub_id = publish(world, scheduled_at=at)
    assert pub_row(world.runtime, pub_id).status == S.planned
    job = jobs_of(world.runtime, "publish")[0]
    assert abs((job.run_at - at).total_seconds()) < 1
    assert runner.run_one(world.runtime, worker="w") is None  # not due yet
    assert drain(world.runtime) == 1
    assert pub_row(world.runtime, pub_id).status == S.published


def test_rate_limited_429_waits_for_retry_after_without_sending(world: World) -> None:
    world.net.fault("POST", "/v1/posts", Reply(429, {"error": "slow down"}, {"Retry-After": "120"}))
    pub_id = publish(world)
    drain(world.runtime, travel=False)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.retry_wait and pub.next_attempt_at is not None
    wait = (pub.next_attempt_at - utcnow()).total_seconds()
    assert 110 < wait <= 121 * 1.25
    assert "rate limit" in pub.last_error.lower()
    assert account_row(world.runtime, world.account_id).rate_limited_until is not None
    queued = [j for j in jobs_of(world.runtime, "publish") if j.status == JobStatus.queued]
    assert len(queued) == 1 and queued[0].run_at == pub.next_attempt_at
    assert world.net.markers() == {}
    # While the network's own limit lasts, a new claim waits again without calling it.
    sent = len(world.net.requests)
    time_travel(world.runtime)
    drain(world.runtime, travel=False)
    assert pub_row(world.runtime, pub_id).status == S.retry_wait and len(world.net.requests) == sent
    with world.runtime.db.session() as s:
        s.execute(update(accounts.SocialAccount).values(rate_limited_until=utcnow() - timedelta(seconds=1)))
    drain(world.runtime)
    assert pub_row(world.runtime, pub_id).status == S.published
    assert statuses(world, pub_id) == ["due", "sending", "retry_wait", "retry_wait", "sending", "published"]
    assert len(world.net.markers()) == 1


@pytest.mark.parametrize("fault", ["drop_after", "drop_before", "503"])
def test_uncertain_outcome_is_reconciled_never_blindly_resent(world: World, fault: str) -> None:
    effect = Reply(503, {"error": "upstream timeout"}) if fault == "503" else fault
    world.net.fault("POST", "/v1/posts", effect)
    pub_id = publish(world)
    drain(world.runtime, kinds=("publish",))
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.unknown and "checking" in pub.last_error
    assert not publishing.needs_person(pub)
    assert [j.status for j in jobs_of(world.runtime, "publish.reconcile")] == [JobStatus.queued]
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.published
    assert world.net.markers() == {pub.idempotency_key: 1}
    trail = statuses(world, pub_id)
    if fault == "drop_after":  # the post was there: found, not re-sent
        assert trail == ["due", "sending", "unknown", "published"]
    else:  # certainly absent: sent again with the same marker
        assert trail == ["due", "sending", "unknown", "retry_wait", "sending", "published"]


def test_connection_refused_is_a_plain_retry(world: World, runtime: Runtime, make_user) -> None:  # type: ignore[no-untyped-def]
    with runtime.db.session() as s:
        account = s.get(accounts.SocialAccount, world.account_id)
        assert account is not None
        account.extra = {"base_url": "http://127.0.0.1:9"}  # discard port: nothing listens
    pub_id = publish(world)
    drain(world.runtime, travel=False)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.retry_wait and pub.next_attempt_at is not None
    assert pub.next_attempt_at > utcnow() + timedelta(seconds=20)  # backoff
    assert "cannot be reached" in pub.last_error


def test_auth_error_fails_and_asks_for_reconnect(world: World) -> None:
    world.net.expire_token()
    pub_id = publish(world)
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.failed and "Reconnect the account" in pub.last_error
    assert pub.platform_message == "invalid_token"
    account = account_row(world.runtime, world.account_id)
    assert account.status == AccountStatus.needs_reconnect
    assert world.net.markers() == {}
    # Until it is reconnected, later publications are refused when made, naming the account field.
    sent = len(world.net.requests)
    with pytest.raises(InvalidInput, match="needs reconnecting") as refused:
        publish(world, "later")
    assert refused.value.field == "targets.0.account_id"
    drain(world.runtime)
    assert len(world.net.requests) == sent


def test_paused_character_does_not_publish(world: World) -> None:
    from ainfluencer.db.models import Character, CharacterStatus

    pub_id = publish(world, scheduled_at=utcnow() + timedelta(minutes=5))
    with world.runtime.db.session() as s:
        character = s.get(Character, world.character_id)
        assert character is not None
        character.status = CharacterStatus.paused
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.failed and "paused" in pub.last_error and world.net.requests[-1].path == "/v1/me"


def test_auth_error_refreshes_once_and_stores_new_tokens(world: World, runtime: Runtime, make_user) -> None:  # type: ignore[no-untyped-def]
    other = make_character(runtime, world.user, name="Iris", handle="iris")
    world.net.account = {"id": "fn-2002", "handle": "@iris", "name": "Iris"}
    account_id = connect(runtime, world.user, other, world.net, refresh=True)
    world.net.expire_token()
    pub_id = publish(world, account_id=account_id)
    drain(runtime)
    assert pub_row(runtime, pub_id).status == S.published
    with runtime.db.session() as s:
        account = s.get(accounts.SocialAccount, account_id)
        assert account is not None
        creds = accounts.load_credentials(s, runtime.secrets, account)
    assert creds.access_token is not None and creds.access_token.get_secret_value().startswith("fakenet-token-")
    assert creds.access_token.get_secret_value() in world.net.tokens
    assert creds.refresh_token is not None and creds.refresh_token.get_secret_value() in world.net.refresh_tokens
    assert account_row(runtime, account_id).token_expires_at is not None


def test_permanent_refusal_keeps_the_platform_message(world: World) -> None:
    world.net.max_text = 10  # the network is stricter than its documented limit
    pub_id = publish(world, "This text is longer than ten characters")
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.failed
    assert pub.platform_message == "text is longer than 10 characters"
    assert "FakeNet refused the post" in pub.last_error
    assert publishing.needs_person(pub)


def test_one_click_retry_uses_a_new_marker_generation(world: World) -> None:
    world.net.fault("POST", "/v1/posts", Reply(400, {"error": "temporarily rejected"}))
    pub_id = publish(world)
    drain(world.runtime)
    assert pub_row(world.runtime, pub_id).status == S.failed
    with world.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        user = s.get(User, world.user.id)
        assert pub is not None and user is not None
        publishing.retry(s, user=user, pub=pub)
        assert pub.status == S.due and pub.generation == 2
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.published and pub.idempotency_key == f"ainf:{pub_id}:2"
    assert world.net.markers() == {f"ainf:{pub_id}:2": 1}


def test_network_that_cannot_look_up_posts_leaves_unknown_for_a_person(world: World, runtime: Runtime) -> None:
    other = make_character(runtime, world.user, name="Blind", handle="blind")
    world.net.account = {"id": "fn-3003", "handle": "@blind", "name": "Blind"}
    account_id = connect(runtime, world.user, other, world.net, platform="fakenet_blind")
    world.net.fault("POST", "/v1/posts", "drop_after")
    pub_id = publish(world, account_id=account_id)
    drain(runtime)
    pub = pub_row(runtime, pub_id)
    assert pub.status == S.unknown and pub.awaiting_person and publishing.needs_person(pub)
    assert "cannot tell" in pub.last_error and "Mark published" in pub.last_error
    assert publishing.allowed_actions(pub) == ["retry", "mark_published", "cancel"]
    assert len(world.net.markers()) == 1  # sent once, never again on its own
    with runtime.db.session() as s:
        row = s.get(Publication, pub_id)
        user = s.get(User, world.user.id)
        assert row is not None and user is not None
        publishing.mark_published(s, user=user, pub=row, url="https://fakenet.test/blind/p1")
    pub = pub_row(runtime, pub_id)
    assert pub.status == S.published and pub.url == "https://fakenet.test/blind/p1"


def test_worker_death_in_sending_becomes_unknown_then_reconciled(world: World) -> None:
    pub_id = publish(world)
    claimed = publishing.claim(world.runtime, pub_id, 1, worker="doomed")
    assert isinstance(claimed, publishing.Claimed)
    assert pub_row(world.runtime, pub_id).status == S.sending
    # The worker dies here; the reaper re-queues the job and its re-run must not send.
    result = publishing.run_publish(world.runtime, pub_id, 1, worker="second")
    assert result["status"] == "unknown"
    assert world.net.requests == [r for r in world.net.requests if r.path != "/v1/posts" or r.method != "POST"]
    drain(world.runtime)
    pub = pub_row(world.runtime, pub_id)
    assert pub.status == S.published and world.net.markers() == {pub.idempotency_key: 1}


def test_late_result_of_a_lost_worker_still_settles(world: World) -> None:
    pub_id = publish(world)
    claimed = publishing.claim(world.runtime, pub_id, 1, worker="slow")
    assert isinstance(claimed, publishing.Claimed)
    publishing.run_publish(world.runtime, pub_id, 1, worker="second")  # -> unknown, reconcile queued
    outcome = publishing._call_network(world.runtime, claimed)  # the slow worker's request completes
    assert publishing.settle(world.runtime, claimed, outcome)["status"] == "published"
    drain(world.runtime)  # the reconcile job finds nothing to do
    assert pub_row(world.runtime, pub_id).status == S.published
    assert len(world.net.markers()) == 1


def test_recover_stuck_moves_orphaned_sending_rows(world: World) -> None:
    pub_id = publish(world)
    assert isinstance(publishing.claim(world.runtime, pub_id, 1), publishing.Claimed)
    with world.runtime.db.session() as s:  # the job row vanished with its worker's attempts
        s.execute(update(publishing.Job).values(status=JobStatus.failed))
    assert publishing.recover_stuck(world.runtime, older_than=timedelta(0)) == 1
    assert pub_row(world.runtime, pub_id).status == S.unknown
    drain(world.runtime)
    assert pub_row(world.runtime, pub_id).status == S.published


def test_async_processing_is_polled_until_published(runtime: Runtime, make_user) -> None:  # type: ignore[no-untyped-def]
    from fake_network import FakeNet

    with FakeNet(processing_polls=2) as net:
        user = make_user(owner=True)
        account_id = connect(runtime, user, make_character(runtime, user), net)
        world = World(runtime=runtime, user=user, character_id=0, account_id=account_id, net=net)
        pub_id = publish(world)
        drain(runtime, kinds=("publish",))
        pub = pub_row(runtime, pub_id)
        assert pub.status == S.sending and pub.platform_post_id == "p1"
        drain(runtime)
        pub = pub_row(runtime, pub_id)
        assert pub.status == S.published and len(jobs_of(runtime, "publish.check")) == 2
        assert statuses(world, pub_id) == ["due", "sending", "sending", "published"]


def test_token_bucket_spends_and_survives_a_restart(runtime: Runtime, make_user, net) -> None:  # type: ignore[no-untyped-def]
    user = make_user(owner=True)
    account_id = connect(runtime, user, make_character(runtime, user), net, platform="fakenet_limited")
    world = World(runtime=runtime, user=user, character_id=0, account_id=account_id, net=net)
    with runtime.db.session() as s:
        scopes = {b.scope: b.capacity for b in s.query(RateBucket).filter_by(account_id=account_id)}
    assert scopes == {"post/3600s": 2.0}  # deletes are not spent by publishing
    ids = [publish(world, f"post {i}") for i in range(3)]
    drain(runtime, travel=False)
    states = [pub_row(runtime, i).status for i in ids]
    assert states.count(S.published) == 2 and states.count(S.retry_wait) == 1
    waiting = next(pub_row(runtime, i) for i in ids if pub_row(runtime, i).status == S.retry_wait)
    assert waiting.next_attempt_at is not None
    assert 1700 < (waiting.next_attempt_at - utcnow()).total_seconds() <= 1800  # one token back in 30 min
    assert "limit post/3600s" in waiting.last_error
    posts_before = len(net.requests)

    fresh = Runtime.build(runtime.settings.model_copy(update={"extra_platforms": ["fakenet"]}))  # a restart
    try:
        with fresh.db.session() as s:
            account = s.get(accounts.SocialAccount, account_id)
            assert account is not None
            budget = accounts.rate_budget(s, account)
        assert budget[0]["scope"] == "post/3600s" and budget[0]["available"] < 0.1
        time_travel(fresh)
        drain(fresh, travel=False)
        assert pub_row(fresh, waiting.id).status == S.retry_wait and len(net.requests) == posts_before
    finally:
        fresh.close()
