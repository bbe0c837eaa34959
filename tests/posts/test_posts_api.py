"""/api/v1/posts over HTTP: create, edit, review steps, comments, bulk, schedule; 4xx name the field;
another user's post ids are 404."""

from __future__ import annotations

from publishing_helpers import World, drain

from ainfluencer.db.models import User


def _auth(make_token, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(user)}"}


def test_the_whole_flow_over_the_api(client, world: World, make_token) -> None:
    h = _auth(make_token, world.user)
    r = client.post("/api/v1/posts", headers=h, json={
        "character_id": world.character_id, "text": "Morning light 🌅", "account_ids": [world.account_id],
        "variants": {"fakenet": {"text": "Morning light on FakeNet 🌅"}}})
    assert r.status_code == 201, r.text
    post = r.json()
    assert post["status"] == "draft" and post["actions"] == ["submit"]
    pid = post["id"]

    r = client.post(f"/api/v1/posts/{pid}/approve", headers=h)
    assert r.status_code == 409 and r.json()["error"]["field"] == "action"
    assert client.post(f"/api/v1/posts/{pid}/submit", headers=h).json()["status"] == "in_review"
    r = client.post(f"/api/v1/posts/{pid}/request_changes", headers=h, json={"note": ""})
    assert r.status_code == 422 and r.json()["error"]["field"] == "note"
    r = client.post(f"/api/v1/posts/{pid}/request_changes", headers=h, json={"note": "Add a question"})
    assert r.json()["status"] == "changes_requested"
    r = client.patch(f"/api/v1/posts/{pid}", headers=h, json={"text": "Morning light — coffee or tea? 🌅"})
    assert r.status_code == 200 and r.json()["status"] == "changes_requested"
    client.post(f"/api/v1/posts/{pid}/submit", headers=h)
    assert client.post(f"/api/v1/posts/{pid}/approve", headers=h).json()["status"] == "approved"
    # An edit after approval sends it back to review (the default setting).
    r = client.patch(f"/api/v1/posts/{pid}", headers=h, json={"text": "Morning light — coffee or tea?"})
    assert r.json()["status"] == "in_review"
    r = client.post("/api/v1/posts/bulk", headers=h, json={"ids": [pid], "action": "approve"})
    assert r.json() == {"done": [pid], "refused": {}}
    r = client.post(f"/api/v1/posts/{pid}/comments", headers=h, json={"body": "Looks good"})
    assert r.status_code == 201
    r = client.post(f"/api/v1/posts/{pid}/schedule", headers=h)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["status"] == "scheduled" and len(detail["publication_ids"]) == 1
    assert [c["body"] for c in detail["comments"]] == ["Add a question", "Looks good"]
    drain(world.runtime)
    r = client.get(f"/api/v1/posts/{pid}", headers=h)
    assert r.json()["status"] == "published"
    assert [e["action"] for e in r.json()["events"]][-1] == "published"
    pub = client.get(f"/api/v1/publications/{detail['publication_ids'][0]}", headers=h).json()
    assert pub["text"] == "Morning light on FakeNet 🌅"
    assert client.get("/api/v1/posts?status=published", headers=h).json()["count"] == 1


def test_bad_input_is_a_4xx_naming_the_field(client, world: World, make_token) -> None:
    h = _auth(make_token, world.user)
    for body, field in [
        ({"character_id": world.character_id, "account_ids": [999]}, "account_ids"),
        ({"character_id": world.character_id, "asset_ids": [999]}, "asset_ids"),
        ({"character_id": world.character_id, "variants": {"nope": {"text": "x"}}}, "variants.nope"),
        ({"character_id": world.character_id, "timezone": "Nowhere/Land"}, "timezone"),
    ]:
        r = client.post("/api/v1/posts", headers=h, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["field"] == field
    r = client.post("/api/v1/posts", headers=h, json={"character_id": world.character_id, "colour": "red"})
    assert r.status_code == 422
    r = client.post("/api/v1/posts/1/launch", headers=h)
    assert r.status_code == 422


def test_another_users_post_is_404_everywhere(client, world: World, other, make_token) -> None:
    member, member_character = other
    owner_h = _auth(make_token, world.user)
    member_h = _auth(make_token, member)
    pid = client.post("/api/v1/posts", headers=owner_h, json={
        "character_id": world.character_id, "text": "owner's"}).json()["id"]
    for method, path, body in [
        ("GET", f"/api/v1/posts/{pid}", None),
        ("PATCH", f"/api/v1/posts/{pid}", {"text": "mine now"}),
        ("POST", f"/api/v1/posts/{pid}/submit", None),
        ("POST", f"/api/v1/posts/{pid}/schedule", None),
        ("POST", f"/api/v1/posts/{pid}/comments", {"body": "hi"}),
    ]:
        r = client.request(method, path, headers=member_h, json=body)
        assert r.status_code == 404, (path, r.text)
    r = client.post("/api/v1/posts", headers=member_h, json={"character_id": world.character_id})
    assert r.status_code == 404
    r = client.post("/api/v1/posts/bulk", headers=member_h, json={"ids": [pid], "action": "submit"})
    assert r.json()["done"] == [] and pid in {int(k) for k in r.json()["refused"]}
    assert client.get("/api/v1/posts", headers=member_h).json()["count"] == 0
    assert client.get(f"/api/v1/posts/{pid}", headers=owner_h).json()["text"] == "owner's"
