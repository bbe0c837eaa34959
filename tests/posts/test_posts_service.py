"""The post state machine through the service: every allowed and refused move, edits after approval,
comments, scheduling into publications (FakeNet) and the step to published."""

from __future__ import annotations

from datetime import timedelta

import pytest
from publishing_helpers import World, drain
from sqlalchemy import select

from ainfluencer.db.models import User, utcnow
from ainfluencer.db.models_publishing import Publication, PublicationStatus
from ainfluencer.errors import Conflict, InvalidInput, NotFound
from ainfluencer.posts import service as svc
from ainfluencer.posts.models import Post, PostStatus

S = PostStatus
ALL = list(PostStatus)


def _user(s, world: World) -> User:
    u = s.get(User, world.user.id)
    assert u is not None
    return u


def _new(world: World, *, status: PostStatus = S.draft, text: str = "Hello from Nova") -> int:
    with world.runtime.db.session() as s:
        post = svc.create_post(s, user=_user(s, world), character_id=world.character_id,
                               data=svc.PostInput(text=text, account_ids=[world.account_id]))
        post.status = status  # set directly: the table below checks each move from each state
        return post.id


@pytest.mark.parametrize("action", [a for a in svc.TRANSITIONS if a != "schedule"])
@pytest.mark.parametrize("start", ALL)
def test_every_move_from_every_state(world: World, action: str, start: PostStatus) -> None:
    post_id = _new(world, status=start)
    sources, target = svc.TRANSITIONS[action]
    with world.runtime.db.session() as s:
        post = svc.get_post(s, post_id, user=_user(s, world))
        if start in sources:
            svc.transition(s, user=_user(s, world), post=post, action=action, note="needs a warmer tone")
            assert post.status == target
            last = svc.events_of(s, post)[-1]
            assert (last.action, last.from_status, last.to_status, last.actor_id) == (
                action, start.value, target.value, world.user.id)
        else:
            with pytest.raises(Conflict):
                svc.transition(s, user=_user(s, world), post=post, action=action, note="x")
            assert post.status == start


def test_request_changes_needs_a_note_and_keeps_it_as_a_comment(world: World) -> None:
    post_id = _new(world, status=S.in_review)
    with world.runtime.db.session() as s:
        post = svc.get_post(s, post_id, user=_user(s, world))
        with pytest.raises(InvalidInput) as exc:
            svc.transition(s, user=_user(s, world), post=post, action="request_changes", note="  ")
        assert exc.value.field == "note"
        svc.transition(s, user=_user(s, world), post=post, action="request_changes", note="Shorter, please")
        svc.add_comment(s, user=_user(s, world), post=post, body="And add the beach photo")
        assert [c.body for c in svc.comments_of(s, post)] == ["Shorter, please", "And add the beach photo"]
        with pytest.raises(InvalidInput):
            svc.add_comment(s, user=_user(s, world), post=post, body="   ")


@pytest.mark.parametrize("back_to_review", [True, False])
def test_edit_after_approval(world: World, back_to_review: bool) -> None:
    post_id = _new(world, status=S.approved)
    with world.runtime.db.session() as s:
        post = svc.get_post(s, post_id, user=_user(s, world))
        svc.update_post(s, user=_user(s, world), post=post, data=svc.PostInput(text="Hello again"),
                        review_after_edit=back_to_review)
        assert post.status == (S.in_review if back_to_review else S.approved)
        assert post.text == "Hello again"
        # An edit that changes nothing is not an edit.
        before = len(svc.events_of(s, post))
        svc.update_post(s, user=_user(s, world), post=post, data=svc.PostInput(text="Hello again"))
        assert len(svc.events_of(s, post)) == before


@pytest.mark.parametrize("status", [S.scheduled, S.published, S.rejected])
def test_no_edits_once_scheduled_published_or_rejected(world: World, status: PostStatus) -> None:
    post_id = _new(world, status=status)
    with world.runtime.db.session() as s:
        post = svc.get_post(s, post_id, user=_user(s, world))
        with pytest.raises(Conflict):
            svc.update_post(s, user=_user(s, world), post=post, data=svc.PostInput(text="late change"))


def test_bad_input_names_the_field(world: World, other) -> None:
    other_user, other_character = other
    with world.runtime.db.session() as s:
        u = _user(s, world)
        cases = [
            (svc.PostInput(account_ids=[9999]), "account_ids"),
            (svc.PostInput(asset_ids=[9999]), "asset_ids"),
            (svc.PostInput(variants={"myspace": {"text": "hi"}}), "variants.myspace"),
            (svc.PostInput(variants={"fakenet": {"colour": "red"}}), "variants.fakenet"),
            (svc.PostInput(timezone="Mars/Olympus"), "timezone"),
            (svc.PostInput(text="x" * (svc.MAX_TEXT + 1)), "text"),
        ]
        for data, field in cases:
            with pytest.raises(InvalidInput) as exc:
                svc.create_post(s, user=u, character_id=world.character_id, data=data)
            assert exc.value.field == field
            s.rollback()
        with pytest.raises(NotFound):
            svc.create_post(s, user=_user(s, world), character_id=4242, data=svc.PostInput())


def test_another_users_posts_are_not_found(world: World, other) -> None:
    other_user, other_character = other
    with world.runtime.db.session() as s:
        mine = svc.create_post(s, user=s.get(User, other_user.id), character_id=other_character,
                               data=svc.PostInput(text="Ivy's draft")).id
    owners_post = _new(world)
    with world.runtime.db.session() as s:
        member = s.get(User, other_user.id)
        with pytest.raises(NotFound):
            svc.get_post(s, owners_post, user=member)
        assert svc.get_post(s, mine, user=member).text == "Ivy's draft"
        rows, total = svc.list_posts(s, user=member)
        assert [p.id for p in rows] == [mine] and total == 1
        # The member cannot aim at the owner's account either.
        with pytest.raises(InvalidInput):
            svc.create_post(s, user=member, character_id=other_character,
                            data=svc.PostInput(account_ids=[world.account_id]))


def test_schedule_creates_publications_and_publishing_marks_it_published(world: World) -> None:
    post_id = _new(world, status=S.draft, text="Sunrise swim, virtual as ever 🌊")
    with world.runtime.db.session() as s:
        u = _user(s, world)
        post = svc.get_post(s, post_id, user=u)
        with pytest.raises(Conflict):
            svc.schedule_post(s, runtime=world.runtime, user=u, post=post)
        svc.transition(s, user=u, post=post, action="submit")
        svc.transition(s, user=u, post=post, action="approve")
        pubs = svc.schedule_post(s, runtime=world.runtime, user=u, post=post)
        assert post.status == S.scheduled and len(pubs) == 1 and post.group_key == pubs[0].group_key
        with pytest.raises(Conflict):
            svc.schedule_post(s, runtime=world.runtime, user=u, post=post)
    drain(world.runtime)
    assert list(world.net.markers().values()) == [1]
    with world.runtime.db.session() as s:
        pub = s.scalars(select(Publication)).one()
        assert pub.status == PublicationStatus.published
        assert svc.sync_all_published(s) == 1
        post = s.get(Post, post_id)
        assert post is not None and post.status == S.published
        actions = [(e.action, e.actor) for e in svc.events_of(s, post)]
        assert actions == [("create", f"user:{world.user.id}"), ("submit", f"user:{world.user.id}"),
                           ("approve", f"user:{world.user.id}"), ("schedule", f"user:{world.user.id}"),
                           ("published", "system")]


def test_schedule_refuses_a_post_with_problems_and_stays_approved(world: World) -> None:
    post_id = _new(world, status=S.approved, text="x" * 300)  # FakeNet allows 280
    with world.runtime.db.session() as s:
        u = _user(s, world)
        post = svc.get_post(s, post_id, user=u)
        post.scheduled_at = utcnow() + timedelta(days=1)
        with pytest.raises(InvalidInput):
            svc.schedule_post(s, runtime=world.runtime, user=u, post=post)
        assert post.status == S.approved
        assert s.scalars(select(Publication)).first() is None


def test_bulk_approves_what_it_can(world: World) -> None:
    ready = _new(world, status=S.in_review)
    draft = _new(world, status=S.draft)
    with world.runtime.db.session() as s:
        result = svc.bulk(s, runtime=world.runtime, user=_user(s, world), ids=[ready, draft, 777],
                          action="approve")
        assert result.done == [ready]
        assert set(result.refused) == {draft, 777}
        assert s.get(Post, ready).status == S.approved
        assert s.get(Post, draft).status == S.draft
