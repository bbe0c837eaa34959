"""Web pages: rendering, auth flows, settings, tokens, CSRF, escaping and the live job feed (SSE)."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from ainfluencer.config import Settings
from ainfluencer.db import migrate
from ainfluencer.db.models import ApiToken, Job, JobStatus, OutboxMessage, User
from ainfluencer.runtime import Runtime
from ainfluencer.services import auth

PASSWORD = "correct horse battery"
SHELL_PAGES = ["/dashboard", "/review", "/posts", "/settings/operations", "/characters", "/studio", "/vault",
               "/calendar", "/inbox", "/analytics",
               "/academy", "/settings"]
COMING_SOON = ["/inbox", "/analytics"]
PUBLIC_PAGES = ["/", "/signup", "/login", "/forgot-password"]


def csrf(client: TestClient) -> str:
    """The client's CSRF cookie, fetching a page first when it has none."""
    if "ainf_csrf" not in client.cookies:
        client.get("/login")
    return client.cookies["ainf_csrf"]


def post_form(client: TestClient, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
    """POST a form the way the browser does: with the CSRF field."""
    return client.post(url, data={**(data or {}), "csrf_token": csrf(client)}, **kwargs)


def last_mail(runtime: Runtime, to: str) -> OutboxMessage:
    with runtime.db.session() as s:
        msg = s.scalars(
            select(OutboxMessage).where(OutboxMessage.to_addr == to).order_by(OutboxMessage.id.desc())
        ).first()
        assert msg is not None, f"no mail to {to}"
        return msg


def mail_count(runtime: Runtime, to: str) -> int:
    with runtime.db.session() as s:
        return len(list(s.scalars(select(OutboxMessage.id).where(OutboxMessage.to_addr == to))))


def link_in(body: str, path: str) -> str:
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=\S+", body)
    assert match, body
    return match.group(0)


def assert_csp_clean(html: str) -> None:
    """No inline scripts, inline styles or external resources (CSP allows only 'self')."""
    assert "<style" not in html
    assert not re.search(r"\sstyle\s*=", html)
    for tag in re.findall(r"<script[^>]*>", html):
        assert 'src="/static/' in tag, tag
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html.replace('rel="canonical" href="http://testserver/"', "")
                         .replace('content="http://testserver/"', ""))


# ---- public pages ------------------------------------------------------------------------


def test_landing_page_has_title_meta_and_calls_to_action(client):
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert re.search(r"<title>[^<]*AInfluencer[^<]*</title>", html)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta name="description" content="' in html
    for prop in ("og:title", "og:description", "og:type", "og:url", "og:site_name"):
        assert f'property="{prop}"' in html
    for words in ("openly virtual", "official API", "AI disclosure", "approve", "Bring your own model",
                  "Self-hosted", "make run", "make test", "/docs", "docs/architecture.md"):
        assert words in html, words
    assert 'href="/signup"' in html and "Go to dashboard" not in html
    assert r.cookies.get("ainf_csrf")  # every rendered page hands out the CSRF cookie


def test_landing_shows_dashboard_link_when_signed_in(client, make_user, login):
    make_user()
    login(client)
    assert "Go to dashboard" in client.get("/").text


@pytest.mark.parametrize("path", PUBLIC_PAGES + ["/reset-password?token=x", "/verify-email?token=x", "/nowhere"])
def test_public_pages_render_without_inline_code(client, path):
    r = client.get(path)
    assert r.status_code in (200, 400, 404)
    assert_csp_clean(r.text)


def test_unknown_page_is_a_friendly_404(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404
    assert "Page not found" in r.text and "/no-such-page" in r.text


# ---- the signed-in shell -----------------------------------------------------------------


@pytest.mark.parametrize("path", SHELL_PAGES + ["/settings/outbox", "/jobs/1", "/dashboard/jobs"])
def test_shell_pages_redirect_to_login_when_signed_out(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/login?")
    assert parse_qs(urlsplit(location).query)["next"] == [path]


def test_htmx_fragment_asks_for_a_redirect_when_signed_out(client):
    r = client.get("/dashboard/jobs", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401
    assert r.headers["hx-redirect"].startswith("/login?next=")


@pytest.mark.parametrize("path", SHELL_PAGES)
def test_shell_pages_render_with_navigation(client, make_user, login, path):
    make_user()
    login(client)
    r = client.get(path)
    assert r.status_code == 200
    html = r.text
    for label in ("Dashboard", "Characters", "Studio", "Vault", "Calendar", "Inbox", "Analytics", "Academy",
                  "Settings", "Sign out"):
        assert label in html
    assert 'aria-current="page"' in html
    assert_csp_clean(html)


@pytest.mark.parametrize("path", COMING_SOON)
def test_coming_soon_pages_are_honest(client, make_user, login, path):
    make_user()
    login(client)
    html = client.get(path).text
    assert "coming soon" in html and "nothing on this page works yet" in html
    # No buttons that pretend to work: the only forms are the sign-out forms.
    assert html.count("<button") == html.count('action="/logout"') == html.count("<form")


def test_operations_shows_status_counts_and_jobs(client, make_user, login):
    make_user()
    login(client)
    html = client.get("/settings/operations").text
    for words in ("System status", "Database", "Worker", "Scheduler", "not running", "Run self-test job",
                  "No jobs yet", 'sse-connect="/events"', 'sse-swap="jobs"', 'hx-ext="sse"',
                  "htmx-ext-sse-2.2.4.min.js", '"includeIndicatorStyles": false'):
        assert words in html, words
    assert re.search(r"""hx-headers='\{"X-CSRF-Token": "[\w-]+"\}'""", html)


def test_selftest_button_queues_a_job_and_fragments_show_it(client, runtime, make_user, login):
    make_user()
    login(client)
    # Plain form post (no JavaScript): back to Settings → Operations.
    r = post_form(client, "/dashboard/selftest", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings/operations"
    # htmx post: the jobs panel comes back.
    r = client.post("/dashboard/selftest", headers={"HX-Request": "true", "X-CSRF-Token": csrf(client)})
    assert r.status_code == 200
    assert "<html" not in r.text and "selftest" in r.text and "<progress" in r.text
    with runtime.db.session() as s:
        jobs = list(s.scalars(select(Job).order_by(Job.id)))
    assert [j.kind for j in jobs] == ["selftest", "selftest"]
    assert jobs[0].payload == {"steps": 10, "step_seconds": 0.5}
    fragment = client.get("/dashboard/jobs").text
    assert f'id="job-{jobs[1].id}"' in fragment and 'data-status="queued"' in fragment
    assert ">2</span><span class=\"stat-label\">queued" in fragment


def test_job_detail_cancel_and_retry(client, runtime, make_user, login):
    make_user()
    login(client)
    post_form(client, "/dashboard/selftest")
    with runtime.db.session() as s:
        job_id = s.scalars(select(Job.id)).one()
    html = client.get(f"/jobs/{job_id}").text
    assert "Cancel job" in html and 'hx-trigger="every 1s"' in html
    r = post_form(client, f"/jobs/{job_id}/cancel", follow_redirects=False)
    assert r.status_code == 303
    html = client.get(f"/jobs/{job_id}").text
    assert "Retry job" in html and 'hx-trigger="every 1s"' not in html
    post_form(client, f"/jobs/{job_id}/retry")
    with runtime.db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.queued
    assert client.get("/jobs/999").status_code == 404


# ---- sign-up, verification, sign-in -------------------------------------------------------


def test_signup_verify_and_sign_in(client, runtime):
    r = client.get("/signup")
    assert "becomes the <strong>owner</strong>" in r.text
    r = post_form(client, "/signup", {"email": "Ada@Example.com", "password": PASSWORD, "display_name": "Ada"})
    assert r.status_code == 200
    assert "Check your inbox" in r.text and "ada@example.com" in r.text
    assert "No mail server is configured" in r.text  # embedded mode points at the console/outbox
    mail = last_mail(runtime, "ada@example.com")
    link = link_in(mail.body, "/verify-email")
    assert link.startswith("http://testserver/verify-email?token=")

    # Not verified yet: a clear 403 with a way to get a new link.
    r = post_form(client, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 403
    assert "verify your e-mail" in r.text and 'action="/verify-email/resend"' in r.text

    r = client.get(link)
    assert r.status_code == 200 and "E-mail confirmed" in r.text
    r = client.get(link)  # single use
    assert r.status_code == 400
    assert "already used" in r.text and 'action="/verify-email/resend"' in r.text

    r = post_form(client, "/login", {"email": "ada@example.com", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "ainf_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=1209600" in cookie and "Secure" not in cookie
    assert client.get("/dashboard").status_code == 200
    with runtime.db.session() as s:
        user = s.scalars(select(User)).one()
        assert user.is_owner and user.email_verified_at is not None


def test_signup_errors_are_shown_next_to_the_field(client, make_user):
    r = post_form(client, "/signup", {"email": "not-an-email", "password": PASSWORD, "display_name": "Bo"})
    assert r.status_code == 422
    assert 'id="email-error"' in r.text and 'aria-invalid="true"' in r.text
    assert 'value="not-an-email"' in r.text and 'value="Bo"' in r.text
    r = post_form(client, "/signup", {"email": "bo@example.com", "password": "short7!", "display_name": "Bo"})
    assert r.status_code == 422
    assert 'id="password-error"' in r.text and "at least 8 characters" in r.text
    assert "short7!" not in r.text  # the password is never echoed
    assert 'value="bo@example.com"' in r.text
    make_user("taken@example.com")
    # Sign-ups are closed once an owner exists (the owner's default).
    r = post_form(client, "/signup", {"email": "x@example.com", "password": PASSWORD})
    assert r.status_code == 403 and "closed sign-ups" in r.text


def test_signups_toggle_by_owner_and_lock_by_configuration(client, runtime, make_user, login):
    make_user()
    make_user("member@example.com", owner=False)
    assert "Sign-ups are closed" in client.get("/signup").text
    login(client)
    html = client.get("/settings").text
    assert "Open sign-ups" in html
    r = post_form(client, "/settings/signups", {"enabled": "1"}, follow_redirects=False)
    assert r.status_code == 303
    assert "Close sign-ups" in client.get("/settings").text

    other = TestClient(client.app)
    assert "Create your account" in other.get("/signup").text
    r = post_form(other, "/signup", {"email": "new@example.com", "password": PASSWORD})
    assert r.status_code == 200
    with runtime.db.session() as s:
        new = s.scalars(select(User).where(User.email == "new@example.com")).one()
        assert not new.is_owner

    # Members cannot change it.
    member = TestClient(client.app)
    r = post_form(member, "/login", {"email": "member@example.com", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    assert "Open sign-ups" not in member.get("/settings").text
    r = post_form(member, "/settings/signups", {"enabled": "0"})
    assert r.status_code == 403


def test_signups_locked_by_configuration(settings, runtime, make_user, login):
    from ainfluencer.app import create_app

    locked = Runtime.build(Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                                    allow_signups=False))
    try:
        with TestClient(create_app(locked)) as c:
            make_user()
            login(c)
            html = c.get("/settings").text
            assert "Locked by configuration" in html and "Open sign-ups" not in html
    finally:
        locked.close()


def test_resend_verification_answers_the_same_and_rate_limits(client, runtime, make_user):
    post_form(client, "/signup", {"email": "ada@example.com", "password": PASSWORD})
    assert mail_count(runtime, "ada@example.com") == 1
    known = post_form(client, "/verify-email/resend", {"email": "ada@example.com"})
    unknown = post_form(client, "/verify-email/resend", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(known.cookies.get("ainf_csrf") or "", "") == unknown.text.replace(
        unknown.cookies.get("ainf_csrf") or "", "")
    # A link went out seconds ago, so no second message yet (no mail-bombing).
    assert mail_count(runtime, "ada@example.com") == 1


def test_sign_in_failures_are_clear(client, make_user):
    make_user()
    r = post_form(client, "/login", {"email": "owner@example.com", "password": "wrong password"})
    assert r.status_code == 401
    assert "Email or password is incorrect." in r.text
    assert 'value="owner@example.com"' in r.text and "wrong password" not in r.text
    for _ in range(5):
        r = post_form(client, "/login", {"email": "owner@example.com", "password": "wrong password"})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert "Too many sign-in attempts" in r.text


@pytest.mark.parametrize(
    ("next_value", "expected"),
    [("/settings", "/settings"), ("/jobs/1?x=1", "/jobs/1?x=1"), ("//evil.example", "/dashboard"),
     ("https://evil.example/", "/dashboard"), ("/\\evil.example", "/dashboard"), ("", "/dashboard")],
)
def test_sign_in_returns_only_to_local_pages(client, make_user, next_value, expected):
    make_user()
    r = post_form(client, "/login", {"email": "owner@example.com", "password": PASSWORD, "next": next_value},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == expected


def test_sign_out_ends_the_session(client, runtime, make_user, login):
    make_user()
    login(client)
    r = post_form(client, "/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert 'ainf_session=""' in r.headers["set-cookie"] or "Max-Age=0" in r.headers["set-cookie"]
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_password_reset_flow(client, runtime, make_user, login):
    make_user()
    known = post_form(client, "/forgot-password", {"email": "owner@example.com"})
    unknown = post_form(client, "/forgot-password", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert "If an account with that address exists" in known.text
    assert "If an account with that address exists" in unknown.text
    assert mail_count(runtime, "nobody@example.com") == 0
    link = link_in(last_mail(runtime, "owner@example.com").body, "/reset-password")
    token = parse_qs(urlsplit(link).query)["token"][0]

    html = client.get(link).text
    assert f'name="token" value="{token}"' in html
    r = post_form(client, "/reset-password", {"token": token, "password": "new password 1",
                                              "password_confirm": "new password 2"})
    assert r.status_code == 422 and "not the same" in r.text
    r = post_form(client, "/reset-password", {"token": token, "password": "short", "password_confirm": "short"})
    assert r.status_code == 422 and "at least 8 characters" in r.text
    r = post_form(client, "/reset-password", {"token": token, "password": "new password 1",
                                              "password_confirm": "new password 1"})
    assert r.status_code == 200 and "Password changed" in r.text
    r = post_form(client, "/reset-password", {"token": token, "password": "new password 3",
                                              "password_confirm": "new password 3"})
    assert r.status_code == 400 and "already used" in r.text and 'href="/forgot-password"' in r.text
    login(client, "owner@example.com", "new password 1")


# ---- settings ------------------------------------------------------------------------------


def test_settings_shows_where_each_value_came_from(settings, runtime, make_user, login, monkeypatch):
    from ainfluencer.app import create_app

    monkeypatch.setenv("AINF_SESSION_DAYS", "7")
    fresh = Settings(data_dir=settings.data_dir, database_url=settings.database_url)
    assert fresh.session_days == 7
    rt = Runtime.build(fresh)
    if not settings.database_url:
        migrate.upgrade(rt.db)
    try:
        with TestClient(create_app(rt)) as c:
            make_user()
            login(c)
            html = c.get("/settings").text
    finally:
        rt.close()
    row = re.search(r'<tr id="setting-session_days">(.*?)</tr>', html, re.S)
    assert row and ">7<" in row.group(1) and "badge-src-environment" in row.group(1)
    assert "AINF_SESSION_DAYS" in row.group(1) and "how long a sign-in lasts" in row.group(1)
    port = re.search(r'<tr id="setting-port">(.*?)</tr>', html, re.S)
    assert port and "badge-src-default" in port.group(1)
    secret = re.search(r'<tr id="setting-secret_key">(.*?)</tr>', html, re.S)
    assert secret and rt.secret not in html and "(not set)" in secret.group(1)


def test_token_created_through_the_form_is_shown_once(client, runtime, make_user, login):
    make_user()
    login(client)
    r = post_form(client, "/settings/tokens", {"name": "deploy bot", "scopes": ["read", "write"],
                                                "expires_days": "30"})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    match = re.search(r'id="new-token-value"[^>]*value="(ainf_[\w-]+)"', r.text)
    assert match, r.text
    raw = match.group(1)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
    assert me.status_code == 200 and me.json()["email"] == "owner@example.com"
    assert sorted(me.json()["scopes"]) == ["read", "write"]

    html = client.get("/settings").text
    assert raw not in html  # never shown again
    assert raw[:11] in html and "deploy bot" in html
    with runtime.db.session() as s:
        token = s.scalars(select(ApiToken)).one()
        assert token.expires_at is not None


def test_token_form_errors_keep_the_values(client, make_user, login):
    make_user()
    login(client)
    r = post_form(client, "/settings/tokens", {"name": "", "scopes": ["read"]})
    assert r.status_code == 422 and 'id="name-error"' in r.text
    r = post_form(client, "/settings/tokens", {"name": "bot", "expires_days": "soon", "scopes": ["read"]})
    assert r.status_code == 422 and 'id="expires_days-error"' in r.text and 'value="bot"' in r.text
    r = post_form(client, "/settings/tokens", {"name": "bot"})
    assert r.status_code == 422 and 'id="scopes-error"' in r.text
    assert 'id="new-token-value"' not in r.text


def test_revoke_token(client, runtime, make_user, make_token, login):
    user = make_user()
    raw = make_token(user, name="old")
    login(client)
    with runtime.db.session() as s:
        token_id = s.scalars(select(ApiToken.id)).one()
    r = post_form(client, f"/settings/tokens/{token_id}/revoke", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/settings#tokens"
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert "revoked" in client.get("/settings").text
    # Someone else's token is not found.
    other = make_user("m@example.com", owner=False)
    other_raw = make_token(other)
    with runtime.db.session() as s:
        other_id = s.scalars(select(ApiToken.id).where(ApiToken.user_id == other.id)).one()
    assert post_form(client, f"/settings/tokens/{other_id}/revoke").status_code == 404
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other_raw}"}).status_code == 200


def test_audit_log_owner_sees_all_member_sees_own(client, make_user, login):
    make_user()
    make_user("member@example.com", owner=False)
    login(client, "member@example.com", PASSWORD)
    html = client.get("/settings").text
    assert "your events" in html and "owner@example.com" not in html.split('id="audit"')[1]
    client.cookies.clear()
    login(client)
    html = client.get("/settings").text
    audit = html.split('id="audit"')[1]
    assert "everyone&#39;s events" in audit or "everyone's events" in audit
    assert "member@example.com" in audit and "auth.signed_in" in audit


def test_outbox_is_owner_only_and_links_work(client, runtime, make_user, login):
    make_user()
    make_user("member@example.com", owner=False)
    post_form(client, "/forgot-password", {"email": "member@example.com"})
    client.cookies.clear()
    login(client, "member@example.com", PASSWORD)
    r = client.get("/settings/outbox")
    assert r.status_code == 403 and "Only the owner" in r.text
    assert 'href="/settings/outbox"' not in client.get("/settings").text
    client.cookies.clear()
    login(client)
    r = client.get("/settings/outbox")
    assert r.status_code == 200
    assert "Reset your AInfluencer password" in r.text and "member@example.com" in r.text
    assert re.search(r'<a href="http://testserver/reset-password\?token=[^"]+" rel="noreferrer">', r.text)


# ---- escaping and CSRF ---------------------------------------------------------------------


def test_user_text_is_escaped(client, make_user, login):
    make_user(display_name="<script>alert(1)</script>")
    login(client)
    for path in ("/dashboard", "/settings"):
        html = client.get(path).text
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    r = post_form(client, "/settings/tokens", {"name": '<script>alert("t")</script>', "scopes": ["read"]})
    assert r.status_code == 200
    assert '<script>alert("t")</script>' not in r.text
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in r.text


@pytest.mark.parametrize("path", ["/login", "/signup", "/logout", "/forgot-password", "/dashboard/selftest",
                                  "/settings/tokens"])
def test_form_post_without_csrf_token_is_refused(client, make_user, login, path):
    make_user()
    login(client)
    r = client.post(path, data={"email": "owner@example.com", "password": PASSWORD, "name": "x"})
    assert r.status_code == 403
    assert "This form expired or was sent from another site" in r.text
    r = client.post(path, data={"csrf_token": "forged", "name": "x"})
    assert r.status_code == 403


def test_csrf_cookie_flags(client):
    cookie = client.get("/login").headers["set-cookie"]
    assert "ainf_csrf=" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


# ---- server-sent events ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app on a real uvicorn server in a thread (streaming needs a real connection)."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _read_event(stream: Iterator[str], name: str, timeout: float = 10.0) -> list[str]:
    """Data lines of the next ``name`` event from an SSE line iterator."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    in_event = False
    for line in stream:
        assert time.monotonic() < deadline, "no event in time"
        if line == f"event: {name}":
            in_event = True
            continue
        if in_event:
            if line == "":
                return lines
            lines.append(line)
    raise AssertionError("stream ended")


def test_events_stream_pushes_the_jobs_panel(live_server, runtime, make_user):
    user = make_user()
    with runtime.db.session() as s:
        cookie = auth.create_web_session(s, runtime.settings, user=s.get(User, user.id), ip="127.0.0.1",
                                         user_agent="test")
    timeout = httpx.Timeout(10.0)
    with httpx.Client(base_url=live_server, timeout=timeout) as http:
        assert http.get("/events").status_code == 401
        http.cookies.set("ainf_session", cookie)
        with http.stream("GET", "/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            stream = r.iter_lines()
            first = _read_event(stream, "jobs")
            assert first and all(line.startswith("data: ") for line in first)
            assert "No jobs yet" in "\n".join(first)
            # A new job is pushed without asking.
            with runtime.db.session() as s:
                from ainfluencer.jobs.queue import enqueue

                enqueue(s, "selftest", {"steps": 1, "step_seconds": 0}, user_id=user.id)
            second = "\n".join(_read_event(stream, "jobs"))
            assert "selftest" in second and 'data-status="queued"' in second
