"""Publication pages: list with filters, detail with the events timeline and one-click actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio, add_account, assert_csp_clean
from sqlalchemy import select, update

from ainfluencer.db.models import User
from ainfluencer.db.models_publishing import Publication, PublicationEvent, PublicationStatus
from ainfluencer.services import compose

YEAR = datetime.now(UTC).year + 1


def queue(studio: Studio, account_ids: list[int], text: str = "Hello from Nova") -> list[int]:
    with studio.runtime.db.session() as s:
        user = s.get(User, studio.user.id)
        assert user is not None
        draft = compose.Draft(account_ids=account_ids, text=text, publish_now=False,
                              local_time=f"{YEAR}-05-04T10:00", timezone="UTC", character_id=studio.character_id)
        return [p.id for p in compose.schedule(s, runtime=studio.runtime, user=user, draft=draft)]


def set_state(studio: Studio, pub_id: int, **values: Any) -> None:
    with studio.runtime.db.session() as s:
        s.execute(update(Publication).where(Publication.id == pub_id).values(**values))


def status_of(studio: Studio, pub_id: int) -> PublicationStatus:
    with studio.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None
        return pub.status


def error_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    return unquote_plus(parse_qs(urlsplit(response.headers["location"]).query).get("error", [""])[0])


def test_list_filters_by_status_character_and_account(studio: Studio) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    bsky = add_account(studio.runtime, studio.character_id, "bluesky", "nova.bsky.social")
    x_pub, bsky_pub = queue(studio, [x, bsky])
    set_state(studio, bsky_pub, status=PublicationStatus.failed, last_error="Bluesky refused the post.")
    page = studio.client.get("/publications")
    assert page.status_code == 200 and f'id="pub-{x_pub}"' in page.text and f'id="pub-{bsky_pub}"' in page.text
    assert_csp_clean(page.text)
    assert "needs you" in page.text.split(f'id="pub-{bsky_pub}"', 1)[1].split("</tr>", 1)[0]
    failed = studio.client.get("/publications?status=failed").text
    assert f'id="pub-{bsky_pub}"' in failed and f'id="pub-{x_pub}"' not in failed
    only_x = studio.client.get(f"/publications?account={x}").text
    assert f'id="pub-{x_pub}"' in only_x and f'id="pub-{bsky_pub}"' not in only_x
    mine = studio.client.get(f"/publications?character={studio.character_id}").text
    assert f'id="pub-{x_pub}"' in mine
    assert "No publications match" in studio.client.get("/publications?character=99999").text
    assert "Unknown status" in studio.client.get("/publications?status=bogus").text


def test_detail_shows_timeline_and_cancel_and_reschedule_work(studio: Studio) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    [pub_id] = queue(studio, [x])
    page = studio.client.get(f"/publications/{pub_id}")
    assert page.status_code == 200
    assert_csp_clean(page.text)
    assert "Hello from Nova" in page.text and "created" in page.text
    assert f'action="/publications/{pub_id}/reschedule"' in page.text
    assert f'action="/publications/{pub_id}/cancel"' in page.text
    assert f'action="/publications/{pub_id}/retry"' not in page.text  # not offered while planned

    # An action the state does not allow is refused with a reason, not a 500.
    assert "not possible" in error_of(studio.post(f"/publications/{pub_id}/retry"))

    r = studio.post(f"/publications/{pub_id}/reschedule", {"scheduled_local": f"{YEAR}-12-24T18:30",
                                                           "timezone": "America/New_York"})
    assert "done=reschedule" in r.headers["location"], r.headers
    with studio.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None and pub.scheduled_at == datetime(YEAR, 12, 24, 23, 30, tzinfo=UTC)
    past = studio.post(f"/publications/{pub_id}/reschedule", {"scheduled_local": "2001-01-01T10:00",
                                                              "timezone": "UTC"})
    assert "in the past" in error_of(past)

    assert "done=cancel" in studio.post(f"/publications/{pub_id}/cancel").headers["location"]
    assert status_of(studio, pub_id) == PublicationStatus.cancelled
    page = studio.client.get(f"/publications/{pub_id}")
    assert "Cancelled" in page.text and "rescheduled" in page.text


def test_failed_publication_shows_the_platform_message_and_retries_in_one_click(studio: Studio) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    [pub_id] = queue(studio, [x])
    set_state(studio, pub_id, status=PublicationStatus.failed, last_error="X rejected the request.",
              platform_message="Your Tweet text is too long.")
    page = studio.client.get(f"/publications/{pub_id}")
    assert "X said:" in page.text and "Your Tweet text is too long." in page.text
    assert f'action="/publications/{pub_id}/retry"' in page.text
    r = studio.post(f"/publications/{pub_id}/retry")
    assert "done=retry" in r.headers["location"]
    with studio.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None and pub.status == PublicationStatus.due and pub.generation == 2
        assert pub.platform_message == ""
        messages = [e.detail.get("message") for e in s.scalars(
            select(PublicationEvent).where(PublicationEvent.publication_id == pub_id))]
    assert "retry requested by a person" in messages


def test_unknown_publication_can_be_marked_published_by_a_person(studio: Studio) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    [pub_id] = queue(studio, [x])
    set_state(studio, pub_id, status=PublicationStatus.unknown, awaiting_person=True,
              last_error="The connection dropped after the post was sent.")
    page = studio.client.get(f"/publications/{pub_id}")
    assert "Outcome uncertain" in page.text and "data-confirm" in page.text
    assert f'action="/publications/{pub_id}/mark-published"' in page.text
    bad = studio.post(f"/publications/{pub_id}/mark-published", {"url": "ftp://nope"})
    assert "https://" in error_of(bad)
    r = studio.post(f"/publications/{pub_id}/mark-published", {"url": "https://x.com/nova_x/status/1"})
    assert "done=mark_published" in r.headers["location"]
    with studio.runtime.db.session() as s:
        pub = s.get(Publication, pub_id)
        assert pub is not None and pub.status == PublicationStatus.published
        assert pub.url == "https://x.com/nova_x/status/1"


def test_other_peoples_publications_are_not_found(studio: Studio, app: Any, make_user: Callable[..., User],
                                                 login: Callable[..., None]) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    [pub_id] = queue(studio, [x])
    make_user("other@example.com", owner=False)
    with TestClient(app, base_url="http://testserver") as other:
        login(other, "other@example.com")
        assert other.get(f"/publications/{pub_id}").status_code == 404
        assert f'id="pub-{pub_id}"' not in other.get("/publications").text
