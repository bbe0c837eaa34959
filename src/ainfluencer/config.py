"""Configuration: one precedence, visible sources.

Precedence, highest first: environment (``AINF_*``) > config file (TOML) > built-in default.
Nothing stored in the database overrides either; settings the owner may change in the UI
(such as open sign-ups) are *defaults* that the environment or the file can lock.

The config file is ``$AINF_CONFIG_FILE`` when set, otherwise ``<data_dir>/config.toml`` when it
exists. The data directory defaults to ``./data`` relative to the working directory, so a fresh
clone keeps everything it makes inside the checkout.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "AINF_"
INSECURE_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development"}


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to change."""


def _config_file_path() -> Path | None:
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if explicit:
        return Path(explicit)
    data_dir = Path(os.environ.get(f"{ENV_PREFIX}DATA_DIR", "data"))
    candidate = data_dir / "config.toml"
    return candidate if candidate.exists() else None


def read_config_file() -> dict[str, Any]:
    """Return the parsed config file (empty when there is none)."""
    path = _config_file_path()
    if path is None:
        return {}
    if not path.exists():
        raise ConfigError(f"config file {path} (from AINF_CONFIG_FILE) does not exist")
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    # Accept both a flat file and an [ainfluencer] table.
    return dict(data.get("ainfluencer", data))


class _TomlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return read_config_file()


class Settings(BaseSettings):
    """Every knob the app reads. Field descriptions are shown on the Settings page."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", env_ignore_empty=True)

    env: Literal["development", "production"] = Field(
        "development", description="production refuses auto-generated or default secrets"
    )
    data_dir: Path = Field(Path("data"), description="where the database, media, keys and backups live")
    host: str = Field("127.0.0.1", description="address the web server binds")
    port: int = Field(8000, ge=1, le=65535, description="port the web server binds")
    public_url: str = Field("", description="external base URL used in e-mailed links (default: from request)")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in the data dir")
    redis_url: str = Field("", description="Redis URL; set it to run jobs on Celery instead of in-process")
    executor: Literal["auto", "embedded", "celery"] = Field(
        "auto", description="job executor: auto picks celery when redis_url is set"
    )
    secret_key: SecretStr = Field(SecretStr(""), description="signs sessions and e-mail links")
    encryption_key: SecretStr = Field(
        SecretStr(""), description="base64 AES-256 key for stored credentials (else a key file)"
    )
    allow_signups: bool | None = Field(
        None, description="lock open sign-ups on/off; unset lets the owner choose in Settings"
    )
    require_email_verification: bool = Field(True, description="accounts must verify e-mail before sign-in")
    session_days: int = Field(14, ge=1, le=365, description="how long a sign-in lasts")
    smtp_host: str = Field("", description="SMTP server; empty means mail goes to the log and the outbox")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    smtp_username: str = Field("", description="SMTP user")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password")
    smtp_security: Literal["starttls", "ssl", "none"] = Field("starttls", description="SMTP transport security")
    smtp_from: str = Field("AInfluencer <noreply@localhost>", description="From: address of mail")
    login_max_failures_account: int = Field(5, ge=1, description="failed sign-ins per account per window")
    login_max_failures_ip: int = Field(20, ge=1, description="failed sign-ins per IP address per window")
    login_window_minutes: int = Field(15, ge=1, description="rate-limit window and lockout length")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest request body accepted")
    max_upload_bytes: int = Field(
        200 * 1024 * 1024, ge=1024, description="largest media upload accepted (vault and reference photos)"
    )
    worker_concurrency: int = Field(4, ge=1, le=64, description="jobs run at once by one worker")
    job_lease_seconds: int = Field(60, ge=5, description="a running job's lease; renewed by heartbeat")
    scheduler_interval_seconds: float = Field(5.0, gt=0, description="scheduler tick")
    backup_cron: str = Field("0 3 * * *", description="when the backup job runs (cron, server time zone)")
    backup_keep: int = Field(14, ge=1, description="backups kept before the oldest is deleted")
    log_level: str = Field("INFO", description="logging level")
    log_format: Literal["text", "json"] = Field("text", description="log line format")
    trust_proxy_headers: bool = Field(False, description="honour X-Forwarded-* (behind a reverse proxy)")
    webhook_allow_private_targets: bool = Field(
        False, description="let webhooks reach loopback, private and link-local addresses (receivers on your LAN)"
    )
    x_client_id: str = Field("", description="X OAuth 2.0 client id (developer.x.com app; PKCE connect)")
    x_client_secret: SecretStr = Field(SecretStr(""), description="X OAuth 2.0 client secret (confidential apps)")
    facebook_app_id: str = Field("", description="Meta app id for Facebook Login (Facebook Pages and Instagram)")
    facebook_app_secret: SecretStr = Field(SecretStr(""), description="Meta app secret for Facebook Login")
    google_client_id: str = Field("", description="Google OAuth client id (web application) for YouTube")
    google_client_secret: SecretStr = Field(SecretStr(""), description="Google OAuth client secret for YouTube")
    oauth_endpoints: dict[str, str] = Field(default_factory=dict, description="OAuth endpoint overrides")
    extra_platforms: list[str] = Field(
        default_factory=list, description="importable platform packages (each exposing PLATFORM or PLATFORMS) "
                                          "registered next to the built-in networks")
    public_media_base_url: str = Field("", description="HTTPS base of signed media links (default: public_url)")
    public_media_ttl_seconds: int = Field(3600, ge=60, le=604800, description="signed media link lifetime")
    s3_endpoint_url: str = Field("", description="S3-compatible endpoint (empty: AWS)")
    s3_bucket: str = Field("", description="S3 bucket for public media (set: used first)")
    s3_region: str = Field("", description="S3 region (R2: auto)")
    s3_access_key_id: str = Field("", description="S3 access key id (empty: boto3 default chain)")
    s3_secret_access_key: SecretStr = Field(SecretStr(""), description="S3 secret key (else stored secret)")
    s3_prefix: str = Field("ainfluencer/media/", description="S3 key prefix for public media")
    s3_presign_seconds: int = Field(3600, ge=60, le=604800, description="presigned S3 link lifetime")
    posts_review_after_edit: bool = Field(
        True, description="an approved post that is edited goes back to review before it can be scheduled"
    )
    mcp_calls_per_minute: int = Field(60, ge=1, le=100_000, description="MCP tool calls one API token may make "
                                      "per minute (a token bucket; bursts up to mcp_burst)")
    mcp_burst: int = Field(30, ge=1, le=100_000, description="MCP tool calls one API token may make at once")

    @field_validator("backup_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats the config file, which beats defaults."""
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # ---- derived paths -------------------------------------------------
    @property
    def resolved_data_dir(self) -> Path:
        """The data directory as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def media_dir(self) -> Path:
        """Where generated and uploaded media files live."""
        return self.resolved_data_dir / "media"

    @property
    def backup_dir(self) -> Path:
        """Where backup archives are written."""
        return self.resolved_data_dir / "backups"

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.resolved_data_dir / 'ainfluencer.db'}"

    @property
    def effective_executor(self) -> Literal["embedded", "celery"]:
        """Which job executor runs: explicit choice, else celery when Redis is configured."""
        if self.executor == "auto":
            return "celery" if self.redis_url else "embedded"
        return self.executor

    @property
    def smtp_enabled(self) -> bool:
        """True when mail leaves over SMTP rather than only to the log/outbox."""
        return bool(self.smtp_host)


SECRET_FIELDS = {name for name, f in Settings.model_fields.items() if f.annotation is SecretStr}


def describe_sources(settings: Settings) -> list[dict[str, Any]]:
    """List every setting with its effective value and where it came from."""
    file_values = read_config_file()
    rows = []
    for name, field in Settings.model_fields.items():
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if os.environ.get(env_name):
            source = "environment"
        elif name in file_values:
            source = "file"
        else:
            source = "default"
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = "•••••• (set)" if value.get_secret_value() else "(not set)"
        elif value is None:
            shown = "(not set)"
        else:
            shown = str(value)
        rows.append(
            {"name": name, "env": env_name, "value": shown, "source": source,
             "description": field.description or ""}
        )
    return rows


def ensure_data_dir(settings: Settings) -> Path:
    """Create the data directory tree with private permissions."""
    root = settings.resolved_data_dir
    for path in (root, settings.media_dir, settings.backup_dir):
        path.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    return root


def _read_or_create_key_file(path: Path, make: Any) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value: str = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def signing_secret(settings: Settings) -> str:
    """The secret that signs sessions and e-mail links (env/file, else a 0600 key file)."""
    explicit = settings.secret_key.get_secret_value()
    if explicit:
        return explicit
    return _read_or_create_key_file(
        settings.resolved_data_dir / "secret_key", lambda: secrets.token_urlsafe(48)
    )


def check_production(settings: Settings) -> None:
    """Refuse to run in production with default, missing or auto-generated secrets."""
    if settings.env != "production":
        return
    problems = []
    if settings.secret_key.get_secret_value().strip().lower() in INSECURE_SECRETS:
        problems.append("AINF_SECRET_KEY must be set to a long random value (e.g. `openssl rand -base64 48`)")
    elif len(settings.secret_key.get_secret_value()) < 32:
        problems.append("AINF_SECRET_KEY must be at least 32 characters")
    if not settings.encryption_key.get_secret_value():
        problems.append(
            "AINF_ENCRYPTION_KEY must be set (run `ainfluencer secrets generate-key`) so every replica "
            "decrypts the same credentials"
        )
    if problems:
        raise ConfigError("refusing to start in production mode:\n  - " + "\n  - ".join(problems))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache)."""
    return Settings()
