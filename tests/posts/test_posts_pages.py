"""Post pages through real forms: Compose saves a draft and sends it to review, the Review page acts on it (one
and in bulk), comments, "Use in a post" from a written text, the dashboard board, and no inline code anywhere."""

from __future__ import annotations

import re

from publishing_helpers import World
from sqlalchemy import select

from ainfluencer.db.models import GeneratedText, User
from ainfluencer.posts import service as svc
from ainfluencer.posts.models import Post, PostStatus


def _csrf(client) -> str:
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def _clean(html: str) -> None:
    assert "<style" not in html and not re.search(r"\sstyle\s*=", html) and not re.search(r"\son[a-z]+\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag


def _post(client, url: str, data: dict | None = None, **kw):
    return client.post(url, data={**(data or {}), "csrf_token": _csrf(client)}, **kw)


def test_compose_to_review_to_approved(client, world: World, login) -> None:
    login(client)
    html = client.get(f"/compose?character={world.character_id}").text
    _clean(html)
    assert "Write with Nova" in html and "Send to review" in html and "Save draft" in html
    r = _post(client, "/posts/save", {"_submitted": "1", "character_id": str(world.character_id),
                                      "account_ids": str(world.account_id), "text": "First light, first coffee ☕",
                                      "when": "now", "intent": "draft"}, follow_redirects=False)
    assert r.status_code == 303 and "/posts/" in r.headers["location"]
    pid = int(re.search(r"/posts/(\d+)", r.headers["location"]).group(1))  # type: ignore[union-attr]
    html = client.get(r.headers["location"]).text
    _clean(html)
    assert "Draft saved." in html and 'id="post-status">Draft' in html

    # Edit in Compose, then send to review.
    html = client.get(f"/compose?post={pid}").text
    assert f'name="post_id" value="{pid}"' in html and "First light, first coffee" in html
    _post(client, "/posts/save", {"_submitted": "1", "character_id": str(world.character_id), "post_id": str(pid),
                                  "account_ids": str(world.account_id), "text": "First light ☕ — tea or coffee?",
                                  "when": "now", "intent": "review"})
    html = client.get("/review").text
    _clean(html)
    assert f'id="post-{pid}"' in html and "tea or coffee?" in html and "pv-card" in html

    r = _post(client, f"/posts/{pid}/do/request_changes", {"note": "", "next": "/review"}, follow_redirects=False)
    assert "error=" in r.headers["location"]
    _post(client, f"/posts/{pid}/comments", {"body": "Lovely, but add the harbour photo"})
    r = _post(client, "/posts/bulk", {"ids": [str(pid)], "action": "approve", "next": "/review"},
              follow_redirects=False)
    assert r.headers["location"].startswith("/review?notice=")
    with world.runtime.db.session() as s:
        post = s.get(Post, pid)
        assert post is not None and post.status == PostStatus.approved
        assert [c.body for c in svc.comments_of(s, post)] == ["Lovely, but add the harbour photo"]
    html = client.get(f"/posts/{pid}").text
    assert "Lovely, but add the harbour photo" in html and "Schedule" in html and "Approve" in html
    html = client.get("/dashboard").text
    _clean(html)
    assert 'sse-swap="dashboard"' in html and "Nova" in html and "Results" in html and "Messages" in html


def test_use_in_a_post_and_other_users(client, world: World, other, login, make_user) -> None:
    with world.runtime.db.session() as s:
        row = GeneratedText(character_id=world.character_id, platform="fakenet", kind="tweet", style="casual",
                            text="Written by the persona writer", backend="offline")
        s.add(row)
        s.flush()
        gid = row.id
    login(client)
    r = _post(client, f"/posts/from-text/{gid}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/compose?post=")
    with world.runtime.db.session() as s:
        post = s.scalars(select(Post)).one()
        assert (post.text, post.source, post.account_ids) == ("Written by the persona writer", "writing",
                                                              [world.account_id])
        pid = post.id
    # Another (non-owner) user sees none of it.
    member, _ = other
    client.cookies.clear()
    login(client, "member@example.com")
    assert client.get(f"/posts/{pid}").status_code == 404
    assert client.get(f"/compose?post={pid}").status_code == 422
    assert _post(client, f"/posts/from-text/{gid}").status_code == 404
    assert f'id="post-{pid}"' not in client.get("/review").text
    with world.runtime.db.session() as s:
        assert s.get(User, member.id) is not None
