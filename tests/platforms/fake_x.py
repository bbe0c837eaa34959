"""A local stand-in for the X API v2 endpoints the adapter uses, per docs.x.com.

Covers ``GET /2/users/me``, ``POST /2/tweets``, ``DELETE /2/tweets/:id``, ``GET /2/users/:id/tweets``,
``POST /2/media/upload`` (simple, and ``INIT``/``APPEND``/``FINALIZE``), ``GET /2/media/upload``
(``STATUS``), ``POST /2/media/metadata`` and ``POST /2/oauth2/token``. Bearer tokens are checked;
duplicate text gets X's 403; text goes back HTML-escaped with a t.co link for media, as X does.
"""

from __future__ import annotations

import base64
import html
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from _servers_b import FakeServer, Request, Response, Router


@dataclass
class Upload:
    media_id: str
    media_type: str
    total: int
    category: str
    segments: dict[int, bytes] = field(default_factory=dict)
    finalized: bool = False
    status_polls_left: int = 0
    alt_text: str = ""


class FakeX:
    def __init__(self, *, user_id: str = "2244994945", username: str = "ava_virtual",
                 client_id: str = "client-123") -> None:
        self.user_id = user_id
        self.username = username
        self.client_id = client_id
        self.valid_tokens = {"good-token"}
        self.refresh_tokens = {"refresh-1"}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, Upload] = {}
        self.processing_polls = 0  # STATUS polls a video stays in_progress
        self.fail_processing = False
        self.max_image_bytes = 5 * 1024 * 1024
        self._ids = itertools.count(1790000000000000001)
        self.server = FakeServer(self._router())

    def __enter__(self) -> FakeX:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _id(self) -> str:
        return str(next(self._ids))

    def _auth(self, req: Request) -> Response | None:
        if req.bearer() not in self.valid_tokens:
            return Response(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                  "detail": "Unauthorized"})
        return None

    def _router(self) -> Router:
        r = Router()

        @r.route("GET", "/2/users/me")
        def me(req: Request) -> Response:
            return self._auth(req) or Response(200, {"data": {
                "id": self.user_id, "name": "Ava (virtual)", "username": self.username}})

        @r.route("POST", "/2/tweets")
        def create(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            body = req.json or {}
            text = body.get("text", "")
            if any(t["text_raw"] == text for t in self.tweets.values()) and text:
                return Response(403, {"detail": "You are not allowed to create a Tweet with duplicate content.",
                                      "type": "about:blank", "title": "Forbidden", "status": 403})
            if len(text) > 280:
                return Response(400, {"errors": [{"message": "Your Tweet text is too long."}],
                                      "title": "Invalid Request", "detail": "One or more parameters to your "
                                      "request was invalid.", "type": "https://api.twitter.com/2/problems/"
                                      "invalid-request"})
            media_ids = (body.get("media") or {}).get("media_ids") or []
            for mid in media_ids:
                up = self.uploads.get(str(mid))
                if up is None or (up.category != "tweet_image" and not up.finalized):
                    return Response(400, {"errors": [{"message": f"media {mid} not found"}],
                                          "title": "Invalid Request", "detail": "Invalid media id"})
            tid = self._id()
            shown = html.escape(text, quote=False) + (" https://t.co/AbCdEf" if media_ids else "")
            self.tweets[tid] = {"id": tid, "text": shown, "text_raw": text, "media_ids": list(media_ids),
                                "reply_to": (body.get("reply") or {}).get("in_reply_to_tweet_id"),
                                "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            return Response(201, {"data": {"id": tid, "text": shown, "edit_history_tweet_ids": [tid]}})

        @r.route("DELETE", r"/2/tweets/(?P<tid>\d+)")
        def delete(req: Request, tid: str) -> Response:
            if denied := self._auth(req):
                return denied
            if self.tweets.pop(tid, None) is None:
                return Response(404, {"errors": [{"message": "Not Found"}], "title": "Not Found Error",
                                      "detail": f"Could not find tweet with id: [{tid}].", "status": 404})
            return Response(200, {"data": {"deleted": True}})

        @r.route("GET", r"/2/users/(?P<uid>\d+)/tweets")
        def timeline(req: Request, uid: str) -> Response:
            if denied := self._auth(req):
                return denied
            start = req.query.get("start_time")
            every = [
                {k: t[k] for k in ("id", "text", "created_at")}
                for t in sorted(self.tweets.values(), key=lambda t: int(t["id"]), reverse=True)
                if not start or t["created_at"] >= start.replace("Z", ".000Z")
            ]
            # As X does: max_results 5..100 (default 10), next_token until the window is exhausted.
            size = max(5, min(int(req.query.get("max_results") or 10), 100))
            offset = int(req.query.get("pagination_token") or 0)
            items = every[offset : offset + size]
            meta: dict[str, Any] = {"result_count": len(items)}
            if items:
                meta.update({"newest_id": items[0]["id"], "oldest_id": items[-1]["id"]})
            if offset + size < len(every):
                meta["next_token"] = str(offset + size)
            return Response(200, {"data": items, "meta": meta} if items else {"meta": meta})

        @r.route("POST", "/2/media/upload")
        def upload(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            command = req.form.get("command")
            if command is None:  # simple upload
                _, data, _ = req.files["media"]
                if len(data) > self.max_image_bytes:
                    return Response(413, {"errors": [{"message": "File size exceeds 5242880 bytes."}],
                                          "title": "Payload Too Large"})
                mid = self._id()
                self.uploads[mid] = Upload(mid, req.form.get("media_type", ""), len(data), "tweet_image",
                                           {0: data}, True)
                return Response(200, {"data": {"id": mid, "media_key": f"3_{mid}", "size": len(data),
                                               "expires_after_secs": 86400}})
            if command == "INIT":
                mid = self._id()
                self.uploads[mid] = Upload(mid, req.form["media_type"], int(req.form["total_bytes"]),
                                           req.form.get("media_category", ""))
                return Response(200, {"data": {"id": mid, "media_key": f"7_{mid}", "expires_after_secs": 86399}})
            up = self.uploads.get(req.form.get("media_id", ""))
            if up is None:
                return Response(400, {"errors": [{"message": "Invalid media_id"}], "title": "Invalid Request"})
            if command == "APPEND":
                up.segments[int(req.form["segment_index"])] = req.files["media"][1]
                return Response(204)
            if command == "FINALIZE":
                size = sum(len(s) for s in up.segments.values())
                if size != up.total:
                    return Response(400, {"errors": [{"message": f"File size mismatch {size} != {up.total}"}],
                                          "title": "Invalid Request"})
                up.finalized = True
                up.status_polls_left = self.processing_polls
                data: dict[str, Any] = {"id": up.media_id, "media_key": f"7_{up.media_id}", "size": size,
                                        "expires_after_secs": 86400}
                if up.category == "tweet_video":
                    data["processing_info"] = {"state": "pending", "check_after_secs": 0}
                return Response(200, {"data": data})
            return Response(400, {"errors": [{"message": f"bad command {command}"}]})

        @r.route("GET", "/2/media/upload")
        def status(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            up = self.uploads[req.query["media_id"]]
            if up.status_polls_left > 0:
                up.status_polls_left -= 1
                info = {"state": "in_progress", "check_after_secs": 0, "progress_percent": 50}
            elif self.fail_processing:
                info = {"state": "failed", "error": {"code": 1, "name": "InvalidMedia",
                                                    "message": "Unsupported video codec"}}
            else:
                info = {"state": "succeeded", "progress_percent": 100}
            return Response(200, {"data": {"id": up.media_id, "processing_info": info}})

        @r.route("POST", "/2/media/metadata")
        def metadata(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            body = req.json
            self.uploads[str(body["id"])].alt_text = body["metadata"]["alt_text"]["text"]
            return Response(200, {"data": {"associated_metadata": body["metadata"]}})

        @r.route("POST", "/2/oauth2/token")
        def token(req: Request) -> Response:
            auth = req.headers.get("authorization", "")
            client = req.form.get("client_id") or (
                base64.b64decode(auth.split(" ", 1)[1]).decode().split(":")[0] if auth.startswith("Basic ") else "")
            if client != self.client_id:
                return Response(401, {"error": "unauthorized_client", "error_description": "Missing valid "
                                      "authorization header"})
            grant = req.form.get("grant_type")
            if grant == "refresh_token":
                if req.form.get("refresh_token") not in self.refresh_tokens:
                    return Response(400, {"error": "invalid_request",
                                          "error_description": "Value passed for the token was invalid."})
                self.refresh_tokens.discard(req.form["refresh_token"])  # rotation: single use
            elif grant == "authorization_code":
                if req.form.get("code") != "auth-code" or not req.form.get("code_verifier"):
                    return Response(400, {"error": "invalid_request",
                                          "error_description": "Value passed for the authorization code was "
                                          "invalid."})
            else:
                return Response(400, {"error": "unsupported_grant_type"})
            n = next(self._ids)
            access, refresh = f"access-{n}", f"refresh-{n}"
            self.valid_tokens.add(access)
            self.refresh_tokens.add(refresh)
            return Response(200, {"token_type": "bearer", "expires_in": 7200, "access_token": access,
                                  "scope": "tweet.read tweet.write users.read media.write offline.access",
                                  "refresh_token": refresh})

        return r
