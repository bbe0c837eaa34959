"""A local stand-in for the YouTube Data API v3 and Google's token endpoint.

Speaks the resumable upload protocol as documented (``uploadType=resumable`` start -> ``Location``;
``PUT`` chunks with ``Content-Range``; ``308 Resume Incomplete`` + ``Range``; ``bytes */size`` status
queries), ``videos.list/delete``, ``channels.list``, ``playlistItems.list``, ``thumbnails.set`` and
``POST /token`` (refresh grant). Errors use Google's JSON error envelope.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from _servers_b import Drop, FakeServer, Request, Response, Router


def google_error(status: int, reason: str, message: str, domain: str = "youtube.video") -> Response:
    return Response(status, {"error": {"code": status, "message": message,
                                       "errors": [{"message": message, "domain": domain, "reason": reason}]}})


@dataclass
class Session:
    upload_id: str
    metadata: dict[str, Any]
    total: int
    mime: str
    received: bytearray = field(default_factory=bytearray)
    video_id: str = ""


class FakeYouTube:
    def __init__(self) -> None:
        self.channel_id = "UCvirtualAva000000000000"
        self.uploads_playlist = "UUvirtualAva000000000000"
        self.valid_tokens = {"good-token"}
        self.refresh_token = "refresh-1"
        self.client_id = "yt-client.apps.googleusercontent.com"
        self.client_secret = "yt-secret"
        self.sessions: dict[str, Session] = {}
        self.videos: dict[str, dict[str, Any]] = {}
        self.thumbnails: dict[str, bytes] = {}
        self.polls_until_processed = 1
        self.reject_next_upload = ""
        self.max_bytes = 256 * 1024**3
        self._ids = itertools.count(1)
        self.server = FakeServer(self._router())

    def __enter__(self) -> FakeYouTube:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _auth(self, req: Request) -> Response | None:
        if req.bearer() not in self.valid_tokens:
            return Response(401, {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                            "message": "Request had invalid authentication credentials.",
                                            "errors": [{"message": "Invalid Credentials", "domain": "global",
                                                        "reason": "authError", "location": "Authorization"}]}},
                            {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        return None

    def drop_after(self, keep_bytes: int, *, times: int = 2) -> None:
        """Next ``times`` chunk PUTs: keep only ``keep_bytes`` of the first, then drop the connection.

        Two by default because httplib2 re-sends once by itself when a connection dies.
        """

        keep = [keep_bytes]

        def reply(req: Request) -> Drop:
            session = self._session(req)
            m = re.match(r"bytes (\d+)-(\d+)/(\d+)", req.headers.get("content-range", ""))
            if session is not None and m and int(m.group(1)) == len(session.received):
                session.received.extend(req.body[:keep[0]])
                keep[0] = 0
            return Drop()

        self.server.fault("PUT", "/upload/youtube/v3/videos", reply, times=times,
                          when=lambda r: not r.headers.get("content-range", "").startswith("bytes */"))

    def _session(self, req: Request) -> Session | None:
        return self.sessions.get(req.query.get("upload_id", ""))

    def _finish(self, s: Session) -> dict[str, Any]:
        vid = f"vid{next(self._ids):08d}"
        s.video_id = vid
        snippet = dict(s.metadata.get("snippet") or {})
        snippet.update({"channelId": self.channel_id, "publishedAt": datetime.now(UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ")})
        status = {"uploadStatus": "uploaded", "privacyStatus": "public", "license": "youtube", "embeddable": True,
                  "publicStatsViewable": True, **(s.metadata.get("status") or {})}
        if self.reject_next_upload:
            status.update({"uploadStatus": "rejected", "rejectionReason": self.reject_next_upload})
            self.reject_next_upload = ""
        video = {"kind": "youtube#video", "id": vid, "snippet": snippet, "status": status,
                 "processingDetails": {"processingStatus": "processing"}, "_polls": self.polls_until_processed,
                 "_bytes": bytes(s.received)}
        self.videos[vid] = video
        return self._public(video, "snippet,status")

    @staticmethod
    def _public(video: dict[str, Any], part: str) -> dict[str, Any]:
        out = {"kind": "youtube#video", "id": video["id"]}
        for p in part.split(","):
            if p in video:
                out[p] = video[p]
        return out

    def _router(self) -> Router:
        r = Router()

        @r.route("POST", "/upload/youtube/v3/videos")
        def start(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            if req.query.get("uploadType") != "resumable":
                return google_error(400, "badRequest", "only resumable uploads in this fake", "global")
            meta = req.json or {}
            title = (meta.get("snippet") or {}).get("title", "")
            if not title or len(title) > 100:
                return google_error(400, "invalidTitle", "The request metadata specifies an invalid video title.")
            total = int(req.headers.get("x-upload-content-length", "0"))
            if total > self.max_bytes:
                return google_error(413, "uploadTooLarge", "The file is too large.", "global")
            upload_id = f"up{next(self._ids)}"
            self.sessions[upload_id] = Session(upload_id, meta, total, req.headers.get("x-upload-content-type", ""))
            location = f"{self.url}/upload/youtube/v3/videos?uploadType=resumable&upload_id={upload_id}"
            return Response(200, b"", {"Location": location, "X-GUploader-UploadID": upload_id})

        @r.route("PUT", "/upload/youtube/v3/videos")
        def put(req: Request) -> Response:
            s = self._session(req)
            if s is None:
                return google_error(404, "notFound", "upload session not found", "global")
            crange = req.headers.get("content-range", "")
            if crange.startswith("bytes */"):
                if s.video_id:
                    return Response(200, self._public(self.videos[s.video_id], "snippet,status"))
                headers = {"Range": f"bytes=0-{len(s.received) - 1}"} if s.received else {}
                return Response(308, b"", headers)
            m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", crange)
            if not m:
                return google_error(400, "badContent", f"bad Content-Range {crange!r}", "global")
            first, last = int(m.group(1)), int(m.group(2))
            if first > len(s.received) or last - first + 1 != len(req.body):
                return google_error(400, "badContent", f"unexpected range {crange} (have {len(s.received)})",
                                    "global")
            s.received.extend(req.body[len(s.received) - first:])  # bytes already held are ignored
            if len(s.received) >= s.total:
                return Response(200, self._finish(s))
            return Response(308, b"", {"Range": f"bytes=0-{len(s.received) - 1}"})

        @r.route("GET", "/youtube/v3/videos")
        def list_videos(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            part = req.query.get("part", "snippet")
            items = []
            for vid in req.query.get("id", "").split(","):
                video = self.videos.get(vid)
                if video is None:
                    continue
                if "processingDetails" in part and video["status"]["uploadStatus"] == "uploaded":
                    if video["_polls"] <= 0:
                        video["status"]["uploadStatus"] = "processed"
                        video["processingDetails"] = {"processingStatus": "succeeded"}
                    video["_polls"] -= 1
                items.append(self._public(video, part))
            return Response(200, {"kind": "youtube#videoListResponse", "items": items,
                                  "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

        @r.route("DELETE", "/youtube/v3/videos")
        def delete(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            if self.videos.pop(req.query.get("id", ""), None) is None:
                return google_error(404, "videoNotFound", "The video that you are trying to delete cannot be "
                                    "found.")
            return Response(204, b"")

        @r.route("GET", "/youtube/v3/channels")
        def channels(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            return Response(200, {"kind": "youtube#channelListResponse", "items": [{
                "kind": "youtube#channel", "id": self.channel_id,
                "snippet": {"title": "Ava (virtual)", "customUrl": "@ava_virtual",
                            "description": "Virtual character · AI-generated content"},
                "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": self.uploads_playlist}}}]})

        @r.route("GET", "/youtube/v3/playlistItems")
        def playlist_items(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            if req.query.get("playlistId") != self.uploads_playlist:
                return google_error(404, "playlistNotFound", "playlist not found")
            items = [{"kind": "youtube#playlistItem", "id": f"pi-{v['id']}",
                      "snippet": {"publishedAt": v["snippet"]["publishedAt"], "title": v["snippet"]["title"],
                                  "resourceId": {"kind": "youtube#video", "videoId": v["id"]}},
                      "contentDetails": {"videoId": v["id"], "videoPublishedAt": v["snippet"]["publishedAt"]}}
                     for v in reversed(list(self.videos.values()))]
            return Response(200, {"kind": "youtube#playlistItemListResponse", "items": items,
                                  "pageInfo": {"totalResults": len(items), "resultsPerPage": 50}})

        @r.route("POST", "/upload/youtube/v3/thumbnails/set")
        def thumbnail(req: Request) -> Response:
            if denied := self._auth(req):
                return denied
            vid = req.query.get("videoId", "")
            if vid not in self.videos:
                return google_error(404, "videoNotFound", "video not found")
            self.thumbnails[vid] = req.body
            return Response(200, {"kind": "youtube#thumbnailSetResponse",
                                  "items": [{"default": {"url": f"https://i.ytimg.com/vi/{vid}/default.jpg"}}]})

        @r.route("POST", "/token")
        def token(req: Request) -> Response:
            if (req.form.get("grant_type") != "refresh_token" or req.form.get("refresh_token") != self.refresh_token
                    or req.form.get("client_id") != self.client_id
                    or req.form.get("client_secret") != self.client_secret):
                return Response(400, {"error": "invalid_grant", "error_description": "Token has been expired or "
                                      "revoked."})
            access = f"ya29.fresh-{next(self._ids)}"
            self.valid_tokens.add(access)
            return Response(200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer",
                                  "scope": "https://www.googleapis.com/auth/youtube.upload"})

        return r
