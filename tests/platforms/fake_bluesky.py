"""A local AT Protocol PDS subset (XRPC over HTTP) for the atproto SDK to talk to.

Implements ``com.atproto.server.createSession``/``refreshSession``, ``app.bsky.actor.getProfile``,
``com.atproto.repo.uploadBlob``/``createRecord``/``listRecords``/``deleteRecord`` with the
documented error shapes (``{"error": "ExpiredToken", "message": ...}``) and rate-limit headers.
Tokens are JWT-shaped (unsigned) so the SDK can read their ``exp`` and ``scope``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from _servers_a import FakeServer, Received, Reply

HANDLE = "nova.test"
DID = "did:plc:novatestaccount0000001"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
ACCOUNT_PASSWORD = "the-real-account-password"
POST = "app.bsky.feed.post"
_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def xrpc_error(status: int, error: str, message: str = "", headers: dict[str, str] | None = None) -> Reply:
    """An XRPC error answer."""
    return Reply(status, {"error": error, "message": message or error}, headers or {})


def rate_limited(seconds: int = 42) -> Reply:
    """A 429 with the ratelimit-* headers a Bluesky PDS sends."""
    return xrpc_error(
        429,
        "RateLimitExceeded",
        "Rate Limit Exceeded",
        {
            "ratelimit-limit": "30",
            "ratelimit-remaining": "0",
            "ratelimit-reset": str(int(time.time()) + seconds),
            "ratelimit-policy": "30;w=300",
        },
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(payload: dict[str, Any]) -> str:
    """An unsigned JWT-shaped token (the SDK only decodes it)."""
    header = {"typ": "at+jwt", "alg": "HS256"}
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(b"fake-signature")])


def cid(data: bytes, codec: int) -> str:
    """A CIDv1 (sha2-256) in base32, as a PDS returns for blobs (raw) and records (dag-cbor)."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


class FakeBluesky(FakeServer):
    """One account on one PDS; ``access_ttl`` sets the access token lifetime in seconds."""

    def __init__(self, *, access_ttl: int = 7200, blob_limit: int = 50_000_000) -> None:
        super().__init__(self.handle)
        self.access_ttl = access_ttl
        self.blob_limit = blob_limit
        self.app_passwords = {APP_PASSWORD}
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.blobs: dict[str, bytes] = {}
        self.records: dict[str, dict[str, Any]] = {}  # rkey -> value
        self._serial = itertools.count(1)
        self._last_tid = 0

    # -- test controls --------------------------------------------------------------------------
    def expire_access_tokens(self) -> None:
        """The PDS stops accepting every issued access token (answers ExpiredToken)."""
        self.access.clear()

    def revoke_refresh_tokens(self) -> None:
        """Refresh tokens stop working too."""
        self.refresh.clear()

    def calls(self, nsid: str) -> list[Received]:
        """Logged calls of one XRPC method."""
        return self.requests(rf"^/xrpc/{nsid}$")

    def tid(self) -> str:
        """A fresh, increasing record key (timestamp identifier)."""
        value = max(int(time.time() * 1_000_000), self._last_tid + 1)
        self._last_tid = value
        n = (value << 10) | 7
        return "".join(_TID_CHARS[(n >> (5 * i)) & 31] for i in reversed(range(13)))

    def add_post(self, text: str, created_at: datetime) -> str:
        """Put another post record into the repo (for reconciliation tests)."""
        rkey = self.tid()
        self.records[rkey] = {"$type": POST, "text": text, "createdAt": created_at.isoformat().replace("+00:00", "Z")}
        return rkey

    # -- sessions -----------------------------------------------------------------------------------
    def _session(self, scope: str) -> dict[str, Any]:
        now = int(time.time())
        n = next(self._serial)
        access = jwt(
            {"scope": scope, "sub": DID, "aud": "did:web:pds.test", "iat": now, "exp": now + self.access_ttl, "n": n}
        )
        refresh = jwt(
            {
                "scope": "com.atproto.refresh",
                "sub": DID,
                "aud": "did:web:pds.test",
                "iat": now,
                "exp": now + 90 * 86400,
                "jti": f"r{n}",
            }
        )
        self.access.add(access)
        self.refresh.add(refresh)
        return {"did": DID, "handle": HANDLE, "accessJwt": access, "refreshJwt": refresh, "active": True}

    def _bearer(self, req: Received) -> str:
        auth = req.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""

    def _authorized(self, req: Received) -> Reply | None:
        token = self._bearer(req)
        if not token:
            return xrpc_error(401, "AuthenticationRequired", "Authentication Required")
        if token not in self.access:
            return xrpc_error(400, "ExpiredToken", "Token has expired")
        return None

    # -- dispatch -----------------------------------------------------------------------------------
    def handle(self, req: Received) -> Reply:
        nsid = req.path.removeprefix("/xrpc/")
        if nsid == "com.atproto.server.createSession":
            body = req.json or {}
            if body.get("identifier") not in (HANDLE, DID):
                return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
            if body.get("password") in self.app_passwords:
                return Reply(200, self._session("com.atproto.appPass"))
            if body.get("password") == ACCOUNT_PASSWORD:
                return Reply(200, self._session("com.atproto.access"))
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        if nsid == "com.atproto.server.refreshSession":
            token = self._bearer(req)
            if token not in self.refresh:
                return xrpc_error(400, "ExpiredToken", "Token has been revoked")
            self.refresh.discard(token)  # refresh tokens are single-use
            return Reply(200, self._session("com.atproto.appPass"))
        if denied := self._authorized(req):
            return denied
        handler = {
            "app.bsky.actor.getProfile": self._get_profile,
            "com.atproto.repo.uploadBlob": self._upload_blob,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.listRecords": self._list_records,
            "com.atproto.repo.deleteRecord": self._delete_record,
        }.get(nsid)
        if handler is None:
            return xrpc_error(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")
        return handler(req)

    def _get_profile(self, req: Received) -> Reply:
        if req.q("actor") not in (HANDLE, DID):
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        return Reply(
            200,
            {
                "did": DID,
                "handle": HANDLE,
                "displayName": "Nova",
                "description": "Virtual character · AI-generated content",
            },
        )

    def _upload_blob(self, req: Received) -> Reply:
        if len(req.body) > self.blob_limit:
            return xrpc_error(400, "BlobTooLarge", f"This file is too large. It is {len(req.body)} bytes")
        ref = cid(req.body, 0x55)
        self.blobs[ref] = req.body
        mime = req.headers.get("content-type", "application/octet-stream")
        return Reply(200, {"blob": {"$type": "blob", "ref": {"$link": ref}, "mimeType": mime, "size": len(req.body)}})

    def _create_record(self, req: Received) -> Reply:
        body = req.json or {}
        if body.get("repo") not in (DID, HANDLE) or body.get("collection") != POST:
            return xrpc_error(400, "InvalidRequest", "Invalid repo or collection")
        record = body.get("record") or {}
        if record.get("$type") != POST or not isinstance(record.get("text"), str) or "createdAt" not in record:
            return xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/text must be a string")
        images = ((record.get("embed") or {}).get("images")) or []
        if len(images) > 4:
            return xrpc_error(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: embed/images must not have more than 4 elements",
            )
        for image in images:
            blob = image.get("image") or {}
            link = (blob.get("ref") or {}).get("$link")
            if link not in self.blobs:
                return xrpc_error(400, "InvalidRequest", f"Could not find blob: {link}")
            if blob.get("size", 0) > 1_000_000:
                return xrpc_error(400, "BlobTooLarge", "This file is too large. It is 1.2MB. Maximum size is 976.56KB")
        rkey = body.get("rkey") or self.tid()
        if rkey in self.records:
            return xrpc_error(400, "InvalidRequest", "Record already exists")
        self.records[rkey] = record
        return Reply(
            200,
            {
                "uri": f"at://{DID}/{POST}/{rkey}",
                "cid": cid(json.dumps(record, sort_keys=True).encode(), 0x71),
                "validationStatus": "valid",
            },
        )

    def _list_records(self, req: Received) -> Reply:
        if req.q("repo") not in (DID, HANDLE) or req.q("collection") != POST:
            return xrpc_error(400, "InvalidRequest", "Could not find repo")
        limit = min(int(req.q("limit") or 50), 100)
        cursor = req.q("cursor")
        keys = sorted(self.records, reverse=req.q("reverse") != "true")
        if cursor:
            keys = [k for k in keys if (k < cursor if req.q("reverse") != "true" else k > cursor)]
        page = keys[:limit]
        records = [
            {
                "uri": f"at://{DID}/{POST}/{k}",
                "cid": cid(json.dumps(self.records[k], sort_keys=True).encode(), 0x71),
                "value": self.records[k],
            }
            for k in page
        ]
        body: dict[str, Any] = {"records": records}
        if len(keys) > limit:
            body["cursor"] = page[-1]
        return Reply(200, body)

    def _delete_record(self, req: Received) -> Reply:
        body = req.json or {}
        if body.get("repo") not in (DID, HANDLE) or body.get("collection") != POST:
            return xrpc_error(400, "InvalidRequest", "Invalid repo or collection")
        self.records.pop(str(body.get("rkey")), None)  # deleting a missing record succeeds
        return Reply(200, {})


def now_iso() -> str:
    """The current time as a PDS writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
