"""Compose: per-network preview (counting and validation), vault media, all-or-nothing scheduling, time zones."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio, add_account, add_asset, assert_csp_clean
from sqlalchemy import select

from ainfluencer.db.models import User
from ainfluencer.db.models_media import AssetKind, ReviewState
from ainfluencer.db.models_publishing import Publication, PublicationStatus

FAMILY = "👨\u200d👩\u200d👧"  # one grapheme, one emoji sequence
YEAR = datetime.now(UTC).year + 1  # always ahead, never more than two years
# The last Sunday of March: central Europe springs forward at 02:00 (02:30 does not exist).
SPRING_FORWARD = max(d for d in range(25, 32) if datetime(YEAR, 3, d).weekday() == 6)


@pytest.fixture
def api(studio: Studio, make_token: Callable[..., str]) -> TestClient:
    client = TestClient(studio.client.app, base_url="http://testserver")
    client.headers["Authorization"] = f"Bearer {make_token(studio.user)}"
    return client


def preview(api: TestClient, **body: Any) -> dict[str, Any]:
    r = api.post("/api/v1/compose/preview", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def by_platform(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["platform"]: t for t in result["targets"]}


def test_text_is_counted_the_way_each_network_counts_it(studio: Studio, api: TestClient) -> None:
    ids = [add_account(studio.runtime, studio.character_id, p, f"nova-{p}")
           for p in ("x", "bluesky", "mastodon", "telegram")]
    result = preview(api, account_ids=ids, text=FAMILY * 160, character_id=studio.character_id)
    t = by_platform(result)
    assert (t["x"]["length"], t["x"]["limit"]) == (320, 280) and t["x"]["over"] and "weighted" in t["x"]["counting"]
    assert (t["bluesky"]["length"], t["bluesky"]["limit"]) == (160, 300) and not t["bluesky"]["over"]
    assert t["mastodon"]["length"] == 160 and not t["mastodon"]["over"]
    assert t["telegram"]["length"] == 160 * 8 and "UTF-16" in t["telegram"]["counting"]  # 3 emoji + 2 ZWJ
    assert not t["x"]["ok"] and any("320" in p and "280" in p for p in t["x"]["problems"])
    assert result["ok"] is False

    # Bluesky over 300 graphemes, X fixed by its own variant.
    result = preview(api, account_ids=ids, text="あ" * 301, variants={"x": {"text": "Short for X"}})
    t = by_platform(result)
    assert t["x"]["ok"] and t["x"]["text"] == "Short for X"
    assert (t["bluesky"]["length"], t["bluesky"]["over"]) == (301, True) and not t["bluesky"]["ok"]
    assert t["mastodon"]["ok"] and t["mastodon"]["length"] == 301
    # A URL counts 23 on X and Mastodon, whatever its length.
    url_text = "See https://example.com/" + "a" * 200
    t = by_platform(preview(api, account_ids=ids, text=url_text))
    assert t["x"]["length"] == 4 + 23 and t["mastodon"]["length"] == 4 + 23 and t["x"]["ok"]


def test_media_problems_are_all_reported(studio: Studio, api: TestClient) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    bsky = add_account(studio.runtime, studio.character_id, "bluesky", "nova.bsky.social")
    images = [add_asset(studio.runtime, studio.user, studio.character_id, f"img{i}.jpg") for i in range(5)]
    video = add_asset(studio.runtime, studio.user, studio.character_id, "clip.mp4", kind=AssetKind.video,
                      mime="video/mp4", duration=12.0)
    audio = add_asset(studio.runtime, studio.user, studio.character_id, "voice.mp3", kind=AssetKind.audio,
                      mime="audio/mpeg")
    draft = add_asset(studio.runtime, studio.user, studio.character_id, "draft.jpg", state=ReviewState.draft)

    # Five images: X allows four; Bluesky four too. Alt text missing where the network shows it.
    t = by_platform(preview(api, account_ids=[x, bsky], text="Five", asset_ids=images))
    assert any("5 files; X allows 4" in p or "5 images" in p or "allows 4" in p for p in t["x"]["problems"])
    assert any("Add alt text" in p for p in t["x"]["problems"]) and any("Add alt text" in p
                                                                        for p in t["bluesky"]["problems"])
    assert len(t["x"]["media"]) == 5 and t["x"]["media"][0]["url"].startswith("/api/v1/assets/")

    # Four images with alt text: fine. Without requiring alt text: fine too.
    alts = {str(i): f"Nova at the beach, photo {i}" for i in images[:4]}
    ok = preview(api, account_ids=[x, bsky], text="Four", asset_ids=images[:4], alt_texts=alts)
    assert ok["ok"], ok
    assert preview(api, account_ids=[x, bsky], text="Four", asset_ids=images[:4], require_alt_text=False)["ok"]

    # A video: X takes it, Bluesky (images only here) does not; audio goes nowhere; drafts are refused.
    t = by_platform(preview(api, account_ids=[x, bsky], text="Clip", asset_ids=[video]))
    assert t["x"]["ok"], t["x"]
    assert any("video" in p for p in t["bluesky"]["problems"])
    result = preview(api, account_ids=[x], text="Voice", asset_ids=[audio])
    assert any("audio" in p for p in by_platform(result)["x"]["problems"])
    result = preview(api, account_ids=[x], text="Not yet", asset_ids=[draft])
    assert any("only approved assets are published" in p for p in result["problems"]) and not result["ok"]
    # A per-network media choice: Bluesky gets the first image only.
    t = by_platform(preview(api, account_ids=[x, bsky], text="Mix", asset_ids=[video],
                            variants={"bluesky": {"asset_ids": [images[0]], "alt_texts": {str(images[0]): "Nova"}}}))
    assert t["bluesky"]["ok"] and [m["asset_id"] for m in t["bluesky"]["media"]] == [images[0]]
    assert [m["asset_id"] for m in t["x"]["media"]] == [video]


def test_youtube_needs_a_video_and_a_short_title(studio: Studio, api: TestClient) -> None:
    yt = add_account(studio.runtime, studio.character_id, "youtube", "@nova")
    video = add_asset(studio.runtime, studio.user, studio.character_id, "clip.mp4", kind=AssetKind.video,
                      mime="video/mp4", duration=30.0)
    t = by_platform(preview(api, account_ids=[yt], text="Description", title="T" * 101))["youtube"]
    assert t["title_length"] == 101 and t["title_limit"] == 100
    assert any("title" in p.lower() for p in t["problems"]) and any("YouTube" in p for p in t["problems"])
    t = by_platform(preview(api, account_ids=[yt], text="Description", title="Surf day", asset_ids=[video]))["youtube"]
    assert t["ok"], t
    assert "bytes" in t["counting"]


def test_instagram_says_when_media_cannot_be_fetched(studio: Studio, api: TestClient) -> None:
    ig = add_account(studio.runtime, studio.character_id, "instagram", "nova.ig")
    image = add_asset(studio.runtime, studio.user, studio.character_id, "feed.jpg")
    body = {"account_ids": [ig], "text": "Hello", "asset_ids": [image], "alt_texts": {str(image): "Nova"}}
    t = by_platform(preview(api, **body))["instagram"]
    assert any("cannot fetch media until a public base URL or S3" in p for p in t["problems"])
    assert t["notes"] and "AINF_PUBLIC_MEDIA_BASE_URL" in t["notes"][0]
    page = studio.client.get(f"/compose?character={studio.character_id}")
    assert "Instagram cannot fetch media until a public base URL or S3 storage is configured" in page.text

    studio.runtime.settings.public_url = "https://studio.example.com"
    t = by_platform(preview(api, **body))["instagram"]
    assert t["ok"], t
    assert "signed links under https://studio.example.com" in t["notes"][0]
    # Queued without a link: the link is made (and expires) only when the post is sent.
    r = studio.post("/compose", {"_submitted": "1", "character_id": str(studio.character_id),
                                 "account_ids": [str(ig)], "text": "Hello", "asset_ids": [str(image)],
                                 f"alt_{image}": "Nova", "when": "now", "require_alt_text": "1"})
    assert r.status_code == 303, r.text[:300]
    with studio.runtime.db.session() as s:
        [pub] = s.scalars(select(Publication)).all()
    assert pub.media[0]["public_url"] == "" and pub.media[0]["alt_text"] == "Nova"
    assert pub.media[0]["asset_id"] == image and pub.status == PublicationStatus.due


def test_schedule_time_is_checked_in_the_chosen_zone(studio: Studio, api: TestClient) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    base = {"account_ids": [x], "text": "Hello", "publish_now": False}
    gap = preview(api, **base, local_time=f"{YEAR}-03-{SPRING_FORWARD}T02:30", timezone="Europe/Berlin")
    assert any("does not exist in Europe/Berlin" in p for p in gap["problems"])
    assert any("in the past" in p for p in preview(api, **base, local_time="2020-01-01T10:00")["problems"])
    assert any("Unknown time zone" in p for p in preview(api, **base, local_time=f"{YEAR}-01-01T10:00",
                                                         timezone="Mars/Olympus")["problems"])
    summer = preview(api, **base, local_time=f"{YEAR}-07-01T14:00", timezone="Europe/Berlin")
    assert summer["ok"] and summer["scheduled_at"].startswith(f"{YEAR}-07-01T12:00"), summer


def test_nothing_is_queued_while_any_target_has_a_problem(studio: Studio) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    bsky = add_account(studio.runtime, studio.character_id, "bluesky", "nova.bsky.social")
    form: dict[str, Any] = {"_submitted": "1", "character_id": str(studio.character_id),
                            "account_ids": [str(x), str(bsky)], "text": "あ" * 200, "when": "at",
                            "scheduled_local": f"{YEAR}-07-01T14:00", "timezone": "Europe/Berlin",
                            "require_alt_text": "1"}
    r = studio.post("/compose", form)
    assert r.status_code == 422, r.text[:500]
    assert "Nothing was scheduled" in r.text and "X nova_x" in r.text and "400" in r.text
    assert 'name="text"' in r.text and "あ" * 200 in r.text  # what was typed stays
    assert_csp_clean(r.text)
    with studio.runtime.db.session() as s:
        assert s.scalars(select(Publication)).all() == []

    form["v_x_text"] = "Short for X"
    r = studio.post("/compose", form)
    assert r.status_code == 303 and "done=scheduled" in r.headers["location"] and "n=2" in r.headers["location"]
    with studio.runtime.db.session() as s:
        pubs = {p.account_id: p for p in s.scalars(select(Publication))}
    assert set(pubs) == {x, bsky}
    assert pubs[x].text == "Short for X" and pubs[bsky].text == "あ" * 200
    assert pubs[x].scheduled_at == datetime(YEAR, 7, 1, 12, 0, tzinfo=UTC)
    assert {p.status for p in pubs.values()} == {PublicationStatus.planned}
    assert pubs[x].group_key == pubs[bsky].group_key


def test_compose_page_and_live_preview_fragment(studio: Studio, make_user: Callable[..., User]) -> None:
    x = add_account(studio.runtime, studio.character_id, "x", "nova_x")
    image = add_asset(studio.runtime, studio.user, studio.character_id, "look.jpg")
    add_asset(studio.runtime, studio.user, studio.character_id, "pending.jpg", state=ReviewState.in_review)
    page = studio.client.get(f"/compose?character={studio.character_id}")
    assert page.status_code == 200
    assert_csp_clean(page.text)
    assert 'hx-post="/compose/preview"' in page.text and "delay:" in page.text
    assert f'value="{image}"' in page.text and "pending.jpg" not in page.text  # approved assets only
    assert 'src="/static/publishing.js' in page.text
    fragment = studio.client.post("/compose/preview", headers={"HX-Request": "true", "X-CSRF-Token": studio.csrf()},
                                  data={"_submitted": "1", "character_id": str(studio.character_id),
                                        "account_ids": [str(x)], "text": "x" * 290, "when": "now"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert re.search(r"290 / 280", fragment.text) and "is-over" in fragment.text
    assert_csp_clean(fragment.text)
    with studio.runtime.db.session() as s:
        assert s.scalars(select(Publication)).all() == []  # previews never queue anything
    assert studio.client.get("/compose").status_code == 200
    assert studio.client.get("/compose?character=abc").status_code == 422
