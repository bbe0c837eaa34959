"""Public media links for networks that fetch media themselves (Instagram's Graph API).

Instagram does not take an upload: it fetches ``image_url``/``video_url`` from the internet. Before
such a network is called, :func:`attach_public_urls` gives every media file a URL Meta can fetch,
in this order:

1. **S3-compatible storage** (AWS S3, MinIO, Cloudflare R2 ...) when ``s3_bucket`` is set: the file
   is uploaded under a content-addressed key (``<s3_prefix><sha256>.<ext>``; a file already there is
   not uploaded again) and a presigned GET URL valid for ``s3_presign_seconds`` is handed out. The
   secret key set on Settings → Networks (sealed by the secrets service, ``owner_kind="system"``, name
   ``s3_secret_access_key``) is used first, else ``AINF_S3_SECRET_ACCESS_KEY`` (or the config file),
   else boto3's default chain.
2. **Signed short-lived links served by this app** when a public base URL is known
   (``public_media_base_url``, else ``public_url``): ``<base>/m/<token>``, where the token is the
   file's path inside the media folder and an expiry, signed with the app's secret (itsdangerous).
   ``GET``/``HEAD``/``Range`` are answered by ``api/routes/public_media.py`` without sign-in; an
   unknown, expired or tampered token is a plain 404, and only files inside the media folder are
   ever served.
3. **Nothing**: the URL stays empty and the adapter stops with its own actionable error.

:func:`describe` says which of the three applies, in words a person can act on; the compose page
shows it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from ainfluencer.config import Settings
from ainfluencer.platforms.base import (
    MediaItem,
    PlatformAdapter,
    PlatformError,
    PlatformPermanentError,
    PlatformTransientError,
)

if TYPE_CHECKING:
    from ainfluencer.runtime import Runtime

log = logging.getLogger(__name__)

Mode = Literal["s3", "signed_url", "none"]
ROUTE_PREFIX = "/m/"
TOKEN_SALT = "ainfluencer.public-media"  # noqa: S105 - a salt, not a secret
SECRET_OWNER_KIND = "system"  # noqa: S105 - an owner kind
SECRET_OWNER_ID = 0
S3_SECRET_NAME = "s3_secret_access_key"  # noqa: S105 - a name
S3_TIMEOUT_SECONDS = 30
_PERMANENT_S3_CODES = {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                       "InvalidBucketName", "AllAccessDisabled", "403", "404"}


class PublicMediaUnavailable(PlatformTransientError):
    """The storage could not take the file right now; nothing reached the network, so retrying is safe."""

    not_sent = True


@dataclass(frozen=True)
class PublicMediaStatus:
    """How media gets a public URL here: ``mode`` is ``s3``, ``signed_url`` or ``none``; ``message`` says what to do."""

    mode: Mode
    message: str
    base_url: str = ""  # signed_url: where links point
    ttl_seconds: int = 0  # how long a handed-out link works

    @property
    def ready(self) -> bool:
        """True when networks that fetch media (Instagram) can publish."""
        return self.mode != "none"


# ---- describe ----------------------------------------------------------------------------------


def public_base_url(settings: Settings) -> str:
    """The base URL signed links point at (``public_media_base_url``, else ``public_url``), no trailing slash."""
    return (settings.public_media_base_url or settings.public_url or "").strip().rstrip("/")


def s3_available() -> bool:
    """True when boto3 (the ``s3`` extra) is installed."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        return False
    return True


def _reachability_note(host: str, scheme: str) -> str:
    notes = []
    if host in ("localhost",) or host.endswith((".local", ".localhost", ".internal")):
        notes.append(f"{host} is not reachable from the internet, so Instagram cannot fetch from it")
    else:
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            ip = None
        if ip is not None and not ip.is_global:
            notes.append(f"{host} is a private address, so Instagram cannot fetch from it")
    if scheme != "https" and not notes:
        notes.append("Meta expects an https:// address")
    return ("Note: " + "; ".join(notes) + " — use a public HTTPS address (a reverse proxy or tunnel) "
            "or S3-compatible storage.") if notes else ""


def describe(settings: Settings) -> PublicMediaStatus:
    """Which way media gets a public URL (``s3``, ``signed_url`` or ``none``) with a message a person can act on."""
    base = public_base_url(settings)
    s3_note = ""
    if settings.s3_bucket:
        if s3_available():
            where = settings.s3_endpoint_url or "AWS S3"
            return PublicMediaStatus(
                mode="s3", ttl_seconds=settings.s3_presign_seconds,
                message=(f"Instagram media is uploaded to bucket “{settings.s3_bucket}” on {where} and shared "
                         f"through presigned links that expire after {_minutes(settings.s3_presign_seconds)}."),
            )
        s3_note = (f"S3 bucket “{settings.s3_bucket}” is configured but boto3 is not installed: run "
                   "`pip install 'ainfluencer[s3]'` to use it. ")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return PublicMediaStatus(
                mode="none",
                message=(f"{s3_note}The public media base URL {base!r} is not a full http(s) address; set "
                         "AINF_PUBLIC_MEDIA_BASE_URL to e.g. https://studio.example.com. Until then Instagram "
                         "posts stop before anything is sent."),
            )
        note = _reachability_note(parts.hostname, parts.scheme)
        return PublicMediaStatus(
            mode="signed_url", base_url=base, ttl_seconds=settings.public_media_ttl_seconds,
            message=(f"{s3_note}Instagram fetches media from signed links under {base}{ROUTE_PREFIX} that expire "
                     f"after {_minutes(settings.public_media_ttl_seconds)}. {note}").strip(),
        )
    return PublicMediaStatus(
        mode="none",
        message=(f"{s3_note}Instagram fetches media from a public URL and none is configured. Set "
                 "AINF_PUBLIC_MEDIA_BASE_URL (or AINF_PUBLIC_URL) to this server's public HTTPS address, or "
                 "configure S3-compatible storage (AINF_S3_BUCKET, AINF_S3_ENDPOINT_URL, AINF_S3_ACCESS_KEY_ID, "
                 "AINF_S3_SECRET_ACCESS_KEY). Until then Instagram posts stop before anything is sent."),
    )


def _minutes(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    return f"{max(1, seconds // 60)} minutes"


# ---- signed links --------------------------------------------------------------------------------


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=TOKEN_SALT)


def sign_token(*, secret: str, relative_path: str, ttl_seconds: int, now: float | None = None) -> str:
    """A token naming one file inside the media folder until ``now + ttl_seconds``."""
    expires = int((time.time() if now is None else now) + ttl_seconds)
    return str(_serializer(secret).dumps({"p": relative_path, "e": expires}))


def read_token(*, secret: str, token: str, now: float | None = None) -> str | None:
    """The relative path a valid, unexpired token names; None for anything else (no reason given)."""
    try:
        data: Any = _serializer(secret).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("p"), str) or not isinstance(data.get("e"), int):
        return None
    if data["e"] <= (time.time() if now is None else now):
        return None
    return str(data["p"])


def resolve_token(*, settings: Settings, secret: str, token: str, now: float | None = None) -> Path | None:
    """The file a token names, only when it is valid, unexpired and a regular file inside the media folder."""
    relative = read_token(secret=secret, token=token, now=now)
    if not relative:
        return None
    root = settings.media_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root or not path.is_file():
        return None
    return path


def media_type_of(path: Path) -> str:
    """The Content-Type a served file gets."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def signed_url(*, settings: Settings, secret: str, path: Path, now: float | None = None) -> str:
    """A signed link to a file inside the media folder (needs a public base URL)."""
    base = public_base_url(settings)
    if not base:
        raise ValueError("no public base URL is configured")
    relative = _relative_to_media(settings, path)
    if relative is None:
        raise ValueError(f"{path} is not inside the media folder")
    token = sign_token(secret=secret, relative_path=relative, ttl_seconds=settings.public_media_ttl_seconds, now=now)
    return f"{base}{ROUTE_PREFIX}{token}"


def _relative_to_media(settings: Settings, path: Path) -> str | None:
    root = settings.media_dir.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    return resolved.relative_to(root).as_posix()


# ---- S3-compatible storage -----------------------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    """A file placed in the bucket and the presigned link to it."""

    key: str
    url: str
    uploaded: bool  # False when the same content was already there


def s3_secret(runtime: Runtime) -> str:
    """The S3 secret key: the one set on Settings → Networks (secrets service) first, else settings, else empty."""
    with runtime.db.session() as s:
        stored = runtime.secrets.get(s, owner_kind=SECRET_OWNER_KIND, owner_id=SECRET_OWNER_ID, name=S3_SECRET_NAME)
    if stored is not None and stored.get_secret_value():
        return stored.get_secret_value()
    return runtime.settings.s3_secret_access_key.get_secret_value()


def store_s3_secret(runtime: Runtime, value: str) -> None:
    """Keep the S3 secret key encrypted in the database (used before the environment's value)."""
    with runtime.db.session() as s:
        runtime.secrets.put(s, owner_kind=SECRET_OWNER_KIND, owner_id=SECRET_OWNER_ID, name=S3_SECRET_NAME,
                            value=value)


def s3_client(settings: Settings, secret_access_key: str = "") -> Any:
    """A boto3 S3 client for the configured endpoint (explicit timeouts, SigV4, path-style off AWS)."""
    import boto3
    from botocore.config import Config

    config = Config(signature_version="s3v4", connect_timeout=S3_TIMEOUT_SECONDS, read_timeout=S3_TIMEOUT_SECONDS,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"})
    kwargs: dict[str, Any] = {"config": config}
    if settings.s3_endpoint_url:
        kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_region:
        kwargs["region_name"] = settings.s3_region
    if settings.s3_access_key_id:
        kwargs["aws_access_key_id"] = settings.s3_access_key_id
        kwargs["aws_secret_access_key"] = secret_access_key
    return boto3.client("s3", **kwargs)


def s3_key_for(settings: Settings, path: Path) -> str:
    """The content-addressed key of a file: ``<prefix><sha256>.<ext>``."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return f"{settings.s3_prefix}{digest.hexdigest()}{path.suffix.lower()}"


def upload_and_presign(*, settings: Settings, path: Path, client: Any) -> S3Object:
    """Put the file in the bucket unless the same content is there, and presign a GET for it."""
    from botocore.exceptions import BotoCoreError, ClientError

    key = s3_key_for(settings, path)
    bucket = settings.s3_bucket
    try:
        uploaded = False
        try:
            client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchKey", "NotFound"):
                raise
            with path.open("rb") as body:  # one PUT: Instagram media stays far below S3's 5 GB single-PUT limit
                client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=media_type_of(path))
            uploaded = True
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                            ExpiresIn=settings.s3_presign_seconds)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, text = str(error.get("Code", "")), str(error.get("Message", "") or exc)
        if code in _PERMANENT_S3_CODES:
            raise PlatformPermanentError(
                f"The S3 storage refused the media upload ({code}: {text}); check AINF_S3_BUCKET and the "
                "access keys, then retry.", platform_message=text) from None
        raise PublicMediaUnavailable(f"The S3 storage could not take the media right now ({code}).",
                                     platform_message=text) from None
    except (BotoCoreError, OSError) as exc:
        raise PublicMediaUnavailable(f"The S3 storage could not be reached ({type(exc).__name__}).",
                                     platform_message=str(exc)) from None
    return S3Object(key=key, url=str(url), uploaded=uploaded)


def delete_uploaded(*, settings: Settings, keys: list[str], client: Any) -> int:
    """Remove uploaded objects (cleanup after publishing); returns how many were asked to go."""
    wanted = [k for k in keys if k.startswith(settings.s3_prefix)]
    for start in range(0, len(wanted), 1000):
        client.delete_objects(Bucket=settings.s3_bucket,
                              Delete={"Objects": [{"Key": k} for k in wanted[start : start + 1000]], "Quiet": True})
    return len(wanted)


# ---- publishing hook -----------------------------------------------------------------------------


def attach_public_urls(runtime: Runtime, adapter: PlatformAdapter, items: list[MediaItem]) -> None:
    """Fill ``public_url`` on media for networks that fetch it (S3, else a signed link, else left empty).

    Raises :class:`PublicMediaUnavailable` (retry; nothing was sent) or ``PlatformPermanentError``
    (the storage refused: fix the configuration) when S3 is configured and the upload fails.
    """
    if not type(adapter).capabilities.needs_public_media_url:
        return
    todo = [item for item in items if not item.public_url]
    if not todo:
        return
    settings = runtime.settings
    status = describe(settings)
    if status.mode == "s3":
        try:
            client = s3_client(settings, s3_secret(runtime))
            for item in todo:
                if item.path.is_file():
                    item.public_url = upload_and_presign(settings=settings, path=item.path, client=client).url
        except PlatformError:
            raise
        except Exception as exc:  # a storage client failure must not strand the publication: nothing was sent
            log.exception("public media: S3 upload failed")
            raise PublicMediaUnavailable(f"The S3 upload failed ({type(exc).__name__}).",
                                         platform_message=str(exc)[:300]) from None
    elif status.mode == "signed_url":
        for item in todo:
            if _relative_to_media(settings, item.path) is not None:
                item.public_url = signed_url(settings=settings, secret=runtime.secret, path=item.path)
