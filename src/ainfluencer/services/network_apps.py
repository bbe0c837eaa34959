"""Developer-app credentials of the OAuth networks (and the S3 secret for public media), set from the UI.

One precedence, shown on Settings → Networks next to every value: a value **set here** (sealed in
``stored_secrets`` by the secrets service, ``owner_kind="network_app"``, owner id 0, name = the
settings field, e.g. ``x_client_id``) beats the **environment**/config file (``AINF_X_CLIENT_ID``).
The page says when a value set here hides one from the environment, so nothing overrides silently.
Values are read from the database at every connect, so a change applies without a restart.

Networks that share one developer app (Facebook Pages and Instagram: one Meta app) share the settings
fields in their ``OAuthSpec``, so they share the stored values too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from sqlalchemy.orm import Session

from ainfluencer.config import Settings
from ainfluencer.db.models import User
from ainfluencer.errors import InvalidInput, PermissionDenied
from ainfluencer.platforms.registry import DEFAULT, PlatformRegistry
from ainfluencer.platforms.spec import OAuthSpec, PlatformSpec
from ainfluencer.runtime import Runtime
from ainfluencer.services.auth import audit

log = logging.getLogger(__name__)

OWNER_KIND = "network_app"
OWNER_ID = 0
MAX_LEN = 512
SET_HERE = "set here"
FROM_ENV = "environment"
NOT_SET = "not set"


@dataclass(frozen=True)
class Value:
    """Where one credential comes from; ``hint`` is the client id, or at most the last 4 chars of a secret."""

    setting: str  # settings field, e.g. "x_client_id"
    source: str  # SET_HERE | FROM_ENV | NOT_SET
    hint: str = ""
    env_hidden: bool = False  # set here *and* in the environment: the environment value is not used

    @property
    def env_name(self) -> str:
        """The environment variable that also sets this value."""
        return f"AINF_{self.setting.upper()}"


@dataclass
class App:
    """One developer app (client id + secret) and the networks that connect through it."""

    id_setting: str
    secret_setting: str
    guide: Any
    client_id: Value
    client_secret: Value
    networks: list[dict[str, Any]] = field(default_factory=list)
    secret_required: bool = True

    @property
    def ready(self) -> bool:
        """True when the networks of this app can start an OAuth connect."""
        return self.client_id.source != NOT_SET and (
            not self.secret_required or self.client_secret.source != NOT_SET)


def _stored(session: Session, runtime: Runtime, name: str) -> str:
    if not name:
        return ""
    value = runtime.secrets.get(session, owner_kind=OWNER_KIND, owner_id=OWNER_ID, name=name)
    return value.get_secret_value().strip() if value is not None else ""


def _env(settings: Settings, name: str) -> str:
    value = getattr(settings, name, "") if name else ""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return str(value or "").strip()


def client_credentials(session: Session, runtime: Runtime, oauth: OAuthSpec) -> tuple[str, str]:
    """(client id, client secret) of a network's app: set here first, else the environment; "" when unset."""
    id_name, secret_name = oauth.settings
    return (_stored(session, runtime, id_name) or _env(runtime.settings, id_name),
            _stored(session, runtime, secret_name) or _env(runtime.settings, secret_name))


def _value(session: Session, runtime: Runtime, name: str, *, secret: bool) -> Value:
    here, env = _stored(session, runtime, name), _env(runtime.settings, name)
    shown = here or env
    hint = ("…" + shown[-4:] if len(shown) >= 12 else "") if secret else shown
    source = SET_HERE if here else FROM_ENV if env else NOT_SET
    return Value(setting=name, source=source, hint=hint, env_hidden=bool(here and env))


def _app_specs(platforms: PlatformRegistry | None) -> dict[str, list[PlatformSpec]]:
    by_id: dict[str, list[PlatformSpec]] = {}
    for spec in sorted(platforms or DEFAULT, key=lambda s: s.name):
        if spec.oauth is not None and spec.oauth.settings[0]:
            by_id.setdefault(spec.oauth.settings[0], []).append(spec)
    return by_id


def list_apps(session: Session, runtime: Runtime, *, base_url: str) -> list[App]:
    """Every developer app the OAuth networks need, with sources, callback URLs, scopes and review notes."""
    from ainfluencer.services.oauth import redirect_uri  # oauth imports this module

    apps = []
    for id_name, specs in _app_specs(runtime.platforms).items():
        first = specs[0].oauth
        assert first is not None  # noqa: S101 - _app_specs() keeps OAuth networks only
        app = App(id_setting=id_name, secret_setting=first.settings[1], guide=first.guide,
                  client_id=_value(session, runtime, id_name, secret=False),
                  client_secret=_value(session, runtime, first.settings[1], secret=True),
                  secret_required=any(s.oauth.secret_required for s in specs if s.oauth))
        for spec in specs:
            assert spec.oauth is not None  # noqa: S101
            app.networks.append({
                "platform": spec.name, "name": spec.display_name,
                "redirect_uri": redirect_uri(runtime.settings, spec.name, base_url),
                "scopes": list(spec.oauth.scopes), "guide": spec.oauth.guide,
            })
        apps.append(app)
    return apps


def _app_for(runtime: Runtime, app: str) -> tuple[str, str]:
    for id_name, specs in _app_specs(runtime.platforms).items():
        oauth = specs[0].oauth
        assert oauth is not None  # noqa: S101
        if app in (id_name, *(s.name for s in specs)):
            return oauth.settings
    raise InvalidInput(f"No network app {app!r}; pick one listed on Settings → Networks.", field="app")


def _clean(value: str | None, field_name: str) -> str:
    text = (value or "").strip()
    if len(text) > MAX_LEN:
        raise InvalidInput(f"{field_name} may be at most {MAX_LEN} characters.", field=field_name)
    if any(ch.isspace() for ch in text):
        raise InvalidInput(f"{field_name} contains spaces; paste the value alone.", field=field_name)
    return text


def save_app(
    session: Session, runtime: Runtime, *, user: User, app: str, client_id: str | None = None,
    client_secret: str | None = None, clear: bool = False, ip: str = "",
) -> tuple[str, str]:
    """Set (or with ``clear`` remove) the values set here for one app; None/"" leaves a value unchanged.

    ``app`` is a network name (``x``) or the client-id field (``x_client_id``). Owner only.
    Returns the (id, secret) settings fields that were touched.
    """
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can change network apps.")
    id_name, secret_name = _app_for(runtime, app)
    if clear:
        for name in (id_name, secret_name):
            runtime.secrets.delete(session, owner_kind=OWNER_KIND, owner_id=OWNER_ID, name=name)
        audit(session, "network_app.cleared", user_id=user.id, ip=ip, app=id_name)
        return id_name, secret_name
    new_id = _clean(client_id, "client_id")
    new_secret = _clean(client_secret, "client_secret")
    if new_id:
        runtime.secrets.put(session, owner_kind=OWNER_KIND, owner_id=OWNER_ID, name=id_name, value=new_id)
    if new_secret:
        runtime.secrets.put(session, owner_kind=OWNER_KIND, owner_id=OWNER_ID, name=secret_name, value=new_secret)
    changed = [n for n, v in ((id_name, new_id), (secret_name, new_secret)) if v]
    audit(session, "network_app.set", user_id=user.id, ip=ip, app=id_name, changed=changed)
    log.info("network app %s: %s set from the UI", id_name, ", ".join(changed) or "nothing")
    return id_name, secret_name


# ---- S3 secret for public media ---------------------------------------------------------------------------


def s3_secret_value(session: Session, runtime: Runtime) -> Value:
    """Where the S3 secret key comes from (same precedence: set here, else the environment)."""
    from ainfluencer.services import public_media

    here = runtime.secrets.get(session, owner_kind=public_media.SECRET_OWNER_KIND,
                               owner_id=public_media.SECRET_OWNER_ID, name=public_media.S3_SECRET_NAME)
    here_s = here.get_secret_value() if here is not None else ""
    env = runtime.settings.s3_secret_access_key.get_secret_value()
    shown = here_s or env
    return Value(setting="s3_secret_access_key", source=SET_HERE if here_s else FROM_ENV if env else NOT_SET,
                 hint="…" + shown[-4:] if len(shown) >= 12 else "", env_hidden=bool(here_s and env))


def save_s3_secret(session: Session, runtime: Runtime, *, user: User, value: str | None, clear: bool = False,
                   ip: str = "") -> None:
    """Seal (or remove) the S3 secret key used for public media. Owner only."""
    from ainfluencer.services import public_media

    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can change the S3 secret.")
    kind, owner, name = public_media.SECRET_OWNER_KIND, public_media.SECRET_OWNER_ID, public_media.S3_SECRET_NAME
    if clear:
        runtime.secrets.delete(session, owner_kind=kind, owner_id=owner, name=name)
    else:
        text = _clean(value, "s3_secret_access_key")
        if not text:
            raise InvalidInput("Enter the S3 secret access key.", field="s3_secret_access_key")
        runtime.secrets.put(session, owner_kind=kind, owner_id=owner, name=name, value=text)
    audit(session, "network_app.s3_secret", user_id=user.id, ip=ip, cleared=clear)
