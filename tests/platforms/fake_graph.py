"""A local stand-in for the Graph API endpoints Facebook Pages and Instagram publishing use.

Tokens map to identities (a user, a Page, an Instagram professional account). Errors use Graph's
envelope ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` with HTTP 400,
as Graph does, so the adapters must decide by ``code``. Containers move IN_PROGRESS -> FINISHED ->
PUBLISHED; ``media_publish`` on a container twice is an error, and every call is logged.

With ``fetch_media = True`` the fake does what Meta does with ``image_url``/``video_url``: it
fetches the file (images with one GET; videos with a HEAD and then ``Range`` GETs, as Meta's
fetcher does) and refuses the container with Graph's "media could not be fetched" error (code
9004, subcode 2207052) when the URL does not answer with a photo or video. Only 127.0.0.1 URLs
are fetched; anything else is refused the same way.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from _servers_b import FakeServer, Request, Response, Router

V = "v21.0"


def graph_error(code: int, message: str, *, subcode: int | None = None, status: int = 400,
                kind: str = "OAuthException", transient: bool = False,
                headers: dict[str, str] | None = None) -> Response:
    err: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEfGh123"}
    if subcode is not None:
        err["error_subcode"] = subcode
    if transient:
        err["is_transient"] = True
    return Response(status, {"error": err}, headers or {})


def buc_header(minutes: int, business: str = "1234567890") -> dict[str, str]:
    return {"X-Business-Use-Case-Usage": json.dumps({business: [{
        "type": "pages", "call_count": 100, "total_cputime": 35, "total_time": 40,
        "estimated_time_to_regain_access": minutes}]})}


@dataclass
class Container:
    id: str
    fields: dict[str, str]
    polls_left: int
    status_code: str = "IN_PROGRESS"
    media_id: str = ""


@dataclass
class VideoSession:
    video_id: str
    size: int
    data: bytearray = field(default_factory=bytearray)


class FakeGraph:
    def __init__(self) -> None:
        self.user_id = "10150000000000001"
        self.page_id = "110000000000001"
        self.other_page_id = "110000000000002"
        self.ig_user_id = "17841400000000001"
        self.tokens: dict[str, tuple[str, str]] = {
            "user-token": ("user", self.user_id),
            "page-token": ("page", self.page_id),
            "other-page-token": ("page", self.other_page_id),
            "ig-token": ("ig", self.ig_user_id),
        }
        self.pages = [
            {"id": self.page_id, "name": "Ava Virtual", "access_token": "page-token", "username": "ava.virtual",
             "tasks": ["CREATE_CONTENT", "MANAGE"]},
            {"id": self.other_page_id, "name": "Other Page", "access_token": "other-page-token", "tasks": ["ANALYZE"]},
        ]
        self.accounts_page_size = 100
        self.posts: dict[str, dict[str, Any]] = {}
        self.photos: dict[str, dict[str, Any]] = {}
        self.comments: list[dict[str, str]] = []
        self.video_sessions: dict[str, VideoSession] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.video_polls = 1
        self.chunk = 1000
        self.max_photo_bytes = 10 * 1024 * 1024
        self.containers: dict[str, Container] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.container_polls = {"image": 0, "video": 2}
        self.container_error = ""
        self.quota_used = 3
        self.fetch_media = False
        self.fetch_chunk = 64 * 1024
        self.fetched: list[dict[str, Any]] = []  # url, bytes, content_type, ranged, requests
        self._ids = itertools.count(1)
        self.server = FakeServer(self._router())

    def __enter__(self) -> FakeGraph:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids):015d}"

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")

    def _who(self, req: Request) -> tuple[str, str] | None:
        return self.tokens.get(req.param("access_token"))

    @staticmethod
    def expired() -> Response:
        return graph_error(190, "Error validating access token: Session has expired on Tuesday, 01-Jul-25 "
                                "10:00:00 PDT.", subcode=463)

    def fetch(self, url: str, *, ranged: bool) -> dict[str, Any] | None:
        """Fetch media like Meta's crawler; None when the URL gives no photo/video."""
        if urlsplit(url).hostname != "127.0.0.1":
            return None
        try:
            return self._fetch(url, ranged=ranged)
        except httpx.HTTPError:
            return None

    def _fetch(self, url: str, *, ranged: bool) -> dict[str, Any] | None:
        requests = 0
        with httpx.Client(timeout=10) as client:
            if ranged:
                head = client.head(url)
                requests += 1
                if head.status_code != 200 or "content-length" not in head.headers:
                    return None
                total, data = int(head.headers["content-length"]), b""
                ctype = head.headers.get("content-type", "")
                while len(data) < total:
                    end = min(len(data) + self.fetch_chunk, total) - 1
                    part = client.get(url, headers={"Range": f"bytes={len(data)}-{end}"})
                    requests += 1
                    if part.status_code != 206:
                        return None
                    data += part.content
            else:
                got = client.get(url)
                requests += 1
                if got.status_code != 200:
                    return None
                data, ctype = got.content, got.headers.get("content-type", "")
                if int(got.headers.get("content-length", -1)) != len(data):
                    return None
        if not ctype.startswith(("image/", "video/")):
            return None
        entry = {"url": url, "bytes": data, "content_type": ctype, "ranged": ranged, "requests": requests}
        self.fetched.append(entry)
        return entry

    def publish_calls(self) -> list[Request]:
        return self.server.requests("POST", rf"/{V}/\d+/media_publish")

    def _router(self) -> Router:
        r = Router()

        def guard(req: Request, *kinds: str) -> tuple[str, str] | Response:
            who = self._who(req)
            if who is None:
                return self.expired()
            if kinds and who[0] not in kinds:
                return graph_error(200, "(#200) The user hasn't authorized the application to perform this action",
                                   kind="OAuthException")
            return who

        @r.route("GET", f"/{V}/me")
        def me(req: Request) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            kind, ident = who
            if kind == "ig":
                return Response(200, {"id": "app-scoped-1", "user_id": ident, "username": "ava.virtual",
                                      "name": "Ava", "account_type": "BUSINESS"})
            if kind == "page":
                page = next(p for p in self.pages if p["id"] == ident)
                return Response(200, {"id": ident, "name": page["name"]})
            return Response(200, {"id": ident, "name": "Studio Owner"})

        @r.route("GET", f"/{V}/me/accounts")
        def accounts(req: Request) -> Response:
            who = guard(req, "user")
            if isinstance(who, Response):
                return who
            start = int(req.query.get("after") or 0)
            size = min(int(req.query.get("limit") or 25), self.accounts_page_size)
            chunk = self.pages[start : start + size]
            body: dict[str, Any] = {"data": chunk, "paging": {"cursors": {"before": str(start),
                                                                          "after": str(start + size)}}}
            if start + size < len(self.pages):
                body["paging"]["next"] = f"{self.url}/{V}/me/accounts?after={start + size}"
            return Response(200, body)

        @r.route("POST", rf"/{V}/(?P<page>\d+)/feed")
        def feed(req: Request, page: str) -> Response:
            who = guard(req, "page")
            if isinstance(who, Response):
                return who
            attached = [json.loads(v)["media_fbid"] for k, v in sorted(req.form.items())
                        if k.startswith("attached_media[")]
            if not req.form.get("message") and not attached and not req.form.get("link"):
                return graph_error(100, "(#100) The parameter message or link or attached_media is required",
                                   kind="OAuthException")
            if any(p["message"] == req.form.get("message") and p["message"] for p in self.posts.values()):
                return graph_error(506, "(#506) Duplicate status message", kind="OAuthException")
            pid = f"{page}_{self._id()}"
            self.posts[pid] = {"id": pid, "message": req.form.get("message", ""), "link": req.form.get("link"),
                               "attached": attached, "created_time": self._now()}
            return Response(200, {"id": pid})

        @r.route("POST", rf"/{V}/(?P<page>\d+)/photos")
        def photos(req: Request, page: str) -> Response:
            who = guard(req, "page")
            if isinstance(who, Response):
                return who
            _, data, ctype = req.files["source"]
            if len(data) > self.max_photo_bytes:
                return Response(413, b"<html>Request Entity Too Large</html>")
            photo = self._id()
            published = req.form.get("published", "true") == "true"
            self.photos[photo] = {"id": photo, "bytes": data, "type": ctype, "caption": req.form.get("caption", ""),
                                  "alt": req.form.get("alt_text_custom", ""), "published": published}
            if not published:
                return Response(200, {"id": photo})
            pid = f"{page}_{self._id()}"
            self.posts[pid] = {"id": pid, "message": req.form.get("caption", ""), "attached": [photo],
                               "created_time": self._now()}
            return Response(200, {"id": photo, "post_id": pid})

        @r.route("POST", rf"/{V}/(?P<page>\d+)/videos")
        def videos(req: Request, page: str) -> Response:
            who = guard(req, "page")
            if isinstance(who, Response):
                return who
            phase = req.form.get("upload_phase")
            if phase == "start":
                size = int(req.form["file_size"])
                vid = self._id()
                sid = self._id("s")
                self.video_sessions[sid] = VideoSession(vid, size)
                return Response(200, {"video_id": vid, "upload_session_id": sid, "start_offset": "0",
                                      "end_offset": str(min(self.chunk, size))})
            session = self.video_sessions.get(req.form.get("upload_session_id", ""))
            if session is None:
                return graph_error(100, "(#100) Invalid upload session id", kind="OAuthException")
            if phase == "transfer":
                if int(req.form["start_offset"]) != len(session.data):
                    return graph_error(6001, "There was a problem uploading your video file.", subcode=1363037,
                                       kind="OAuthException")
                session.data.extend(req.files["video_file_chunk"][1])
                start = len(session.data)
                return Response(200, {"start_offset": str(start), "end_offset": str(min(start + self.chunk,
                                                                                        session.size))})
            if phase == "finish":
                if len(session.data) != session.size:
                    return graph_error(6001, "incomplete upload", subcode=1363019, kind="OAuthException")
                self.videos[session.video_id] = {"id": session.video_id, "description": req.form.get("description", ""),
                                                 "title": req.form.get("title", ""), "bytes": bytes(session.data),
                                                 "polls": self.video_polls, "created_time": self._now()}
                return Response(200, {"success": True})
            return graph_error(100, f"(#100) bad upload_phase {phase}", kind="OAuthException")

        @r.route("GET", rf"/{V}/(?P<page>\d+)/posts")
        def posts(req: Request, page: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            since = int(req.query.get("since") or 0)
            every = [{"id": p["id"], "message": p["message"], "created_time": p["created_time"],
                      "permalink_url": f"https://www.facebook.com/{p['id']}"}
                     for p in reversed(list(self.posts.values()))
                     if datetime.strptime(p["created_time"], "%Y-%m-%dT%H:%M:%S%z").timestamp() >= since]
            # Cursor paging as Graph does it: ``limit`` (default 25, max 100), ``after``, ``paging.next``.
            size = max(1, min(int(req.query.get("limit") or 25), 100))
            start = int(req.query.get("after") or 0)
            body: dict[str, Any] = {"data": every[start : start + size]}
            if every:
                body["paging"] = {"cursors": {"before": str(start), "after": str(start + size)}}
                if start + size < len(every):
                    body["paging"]["next"] = f"{self.url}/{V}/{page}/posts?after={start + size}&limit={size}"
            return Response(200, body)

        @r.route("GET", rf"/{V}/(?P<page>\d+)/videos")
        def list_videos(req: Request, page: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            return Response(200, {"data": [{"id": v["id"], "description": v["description"],
                                            "created_time": v["created_time"]} for v in self.videos.values()]})

        @r.route("POST", rf"/{V}/(?P<obj>[\d_]+)/comments")
        def comment(req: Request, obj: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            self.comments.append({"on": obj, "message": req.form.get("message", "")})
            return Response(200, {"id": f"{obj}_{self._id()}"})

        # ------------------------------------------------------------ Instagram

        @r.route("POST", rf"/{V}/(?P<ig>\d+)/media")
        def create_container(req: Request, ig: str) -> Response:
            who = guard(req, "user", "page", "ig")
            if isinstance(who, Response):
                return who
            fields = {k: v for k, v in req.form.items() if k != "access_token"}
            if not (fields.get("image_url") or fields.get("video_url") or fields.get("children")):
                return graph_error(100, "(#100) The parameter image_url is required.", kind="OAuthException")
            if fields.get("media_type") == "CAROUSEL":
                for child in fields["children"].split(","):
                    c = self.containers.get(child)
                    if c is None or c.status_code != "FINISHED":
                        return graph_error(9007, "Media ID is not available", subcode=2207027, kind="OAuthException")
            if self.fetch_media:
                for key in ("image_url", "video_url"):
                    if fields.get(key) and self.fetch(fields[key], ranged=key == "video_url") is None:
                        return graph_error(9004, "The media could not be fetched from this uri: "
                                                 f"{fields[key]}", subcode=2207052, kind="OAuthException")
            cid = self._id()
            polls = self.container_polls["video" if fields.get("video_url") else "image"]
            self.containers[cid] = Container(cid, fields, polls, "IN_PROGRESS" if polls else "FINISHED")
            if fields.get("media_type") == "CAROUSEL":
                self.containers[cid].status_code = "FINISHED"
            return Response(200, {"id": cid})

        @r.route("POST", rf"/{V}/(?P<ig>\d+)/media_publish")
        def media_publish(req: Request, ig: str) -> Response:
            who = guard(req, "user", "page", "ig")
            if isinstance(who, Response):
                return who
            c = self.containers.get(req.form.get("creation_id", ""))
            if c is None:
                return graph_error(100, "(#100) Invalid creation_id", kind="OAuthException")
            if c.status_code == "PUBLISHED":
                return graph_error(9007, "The media has already been published", subcode=2207006,
                                   kind="OAuthException")
            if c.status_code != "FINISHED":
                return graph_error(9007, "Media ID is not available", subcode=2207027, kind="OAuthException")
            mid = self._id()
            c.status_code, c.media_id = "PUBLISHED", mid
            self.media[mid] = {"id": mid, "caption": c.fields.get("caption", ""), "timestamp": self._now(),
                               "permalink": f"https://www.instagram.com/p/{mid}/",
                               "media_type": c.fields.get("media_type", "IMAGE"), "container": c.id}
            return Response(200, {"id": mid})

        @r.route("GET", rf"/{V}/(?P<ig>\d+)/media")
        def list_media(req: Request, ig: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            items = [{k: m[k] for k in ("id", "caption", "timestamp", "permalink", "media_type")}
                     for m in reversed(list(self.media.values()))]
            return Response(200, {"data": items})

        @r.route("GET", rf"/{V}/(?P<ig>\d+)/content_publishing_limit")
        def limit(req: Request, ig: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            return Response(200, {"data": [{"quota_usage": self.quota_used,
                                            "config": {"quota_total": 100, "quota_duration": 86400}}]})

        # ------------------------------------------------------------ generic nodes

        @r.route("GET", rf"/{V}/(?P<node>\d+)")
        def node(req: Request, node: str) -> Response:
            who = guard(req)
            if isinstance(who, Response):
                return who
            fields = req.query.get("fields", "")
            if node in (self.page_id, self.other_page_id):
                page = next(p for p in self.pages if p["id"] == node)
                out: dict[str, Any] = {"id": node, "name": page["name"], "link": f"https://www.facebook.com/{node}"}
                if page.get("username"):
                    out["username"] = page["username"]
                if "instagram_business_account" in fields and node == self.page_id:
                    out["instagram_business_account"] = {"id": self.ig_user_id, "username": "ava.virtual",
                                                         "name": "Ava"}
                return Response(200, out)
            if node in self.containers:
                c = self.containers[node]
                if c.status_code == "IN_PROGRESS":
                    if c.polls_left <= 0:
                        c.status_code = self.container_error or "FINISHED"
                    c.polls_left -= 1
                body = {"id": node, "status_code": c.status_code}
                if c.status_code == "ERROR":
                    body["status"] = "Error: 2207026 unsupported video format"
                return Response(200, body)
            if node in self.media:
                m = self.media[node]
                return Response(200, {k: m[k] for k in ("id", "permalink", "timestamp")})
            if node in self.videos:
                v = self.videos[node]
                state = "ready" if v["polls"] <= 0 else "processing"
                v["polls"] -= 1
                return Response(200, {"id": node, "permalink_url": f"/{self.page_id}/videos/{node}/",
                                      "status": {"video_status": state,
                                                 "uploading_phase": {"status": "complete"},
                                                 "processing_phase": {"status": "complete" if state == "ready"
                                                                      else "in_progress"}}})
            return graph_error(100, f"(#100) Unsupported get request. Object with ID '{node}' does not exist",
                               subcode=33, kind="GraphMethodException")

        @r.route("DELETE", rf"/{V}/(?P<node>[\d_]+)")
        def delete(req: Request, node: str) -> Response:
            who = guard(req, "page")
            if isinstance(who, Response):
                return who
            if self.posts.pop(node, None) is None and self.videos.pop(node, None) is None:
                return graph_error(100, f"(#100) Object with ID '{node}' does not exist", subcode=33,
                                   kind="GraphMethodException")
            return Response(200, {"success": True})

        return r
