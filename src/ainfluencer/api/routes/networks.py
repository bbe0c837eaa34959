"""Developer-app credentials of the OAuth networks and the S3 secret (owner only; secrets are write-only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.errors import PermissionDenied
from ainfluencer.services import network_apps

router = APIRouter(prefix="/network-apps", tags=["network apps"])


class CredentialSource(BaseModel):
    """Where one value comes from: ``set here``, ``environment`` or ``not set``; never the secret itself."""

    source: str
    hint: str = Field("", description="the client id; for a secret at most its last 4 characters")
    env_name: str
    env_hidden: bool = Field(False, description="also set in the environment, where it is not used")


class NetworkAppPublic(BaseModel):
    """One developer app and the networks that connect through it."""

    app: str = Field(description="key for PUT: the first network's name")
    networks: list[str]
    ready: bool
    client_id: CredentialSource
    client_secret: CredentialSource
    redirect_uris: dict[str, str]
    scopes: dict[str, list[str]]


class NetworkAppsPublic(BaseModel):
    """Every developer app, plus the S3 secret's source."""

    data: list[NetworkAppPublic]
    s3_secret_access_key: CredentialSource


class NetworkAppUpdate(BaseModel):
    """New values (empty or missing: keep); ``clear`` removes the values set here."""

    client_id: str | None = Field(None, max_length=512)
    client_secret: str | None = Field(None, max_length=512)
    clear: bool = False


class S3SecretUpdate(BaseModel):
    """The S3 secret access key for public media; ``clear`` removes the one set here."""

    secret_access_key: str | None = Field(None, max_length=512)
    clear: bool = False


def _source(v: network_apps.Value) -> CredentialSource:
    return CredentialSource(source=v.source, hint=v.hint, env_name=v.env_name, env_hidden=v.env_hidden)


def _owner(principal: object) -> None:
    if not principal.user.is_owner:  # type: ignore[attr-defined]
        raise PermissionDenied("Only the owner of this installation can see and change network apps.")


@router.get("", response_model=NetworkAppsPublic)
def read_network_apps(request: Request, principal: Reader, session: SessionDep, runtime: RuntimeDep
                      ) -> NetworkAppsPublic:
    """Each app's sources, callback URLs and scopes (owner only; secrets are never returned)."""
    _owner(principal)
    base = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    apps = network_apps.list_apps(session, runtime, base_url=base)
    return NetworkAppsPublic(
        data=[NetworkAppPublic(
            app=a.networks[0]["platform"], networks=[n["platform"] for n in a.networks], ready=a.ready,
            client_id=_source(a.client_id), client_secret=_source(a.client_secret),
            redirect_uris={n["platform"]: n["redirect_uri"] for n in a.networks},
            scopes={n["platform"]: n["scopes"] for n in a.networks}) for a in apps],
        s3_secret_access_key=_source(network_apps.s3_secret_value(session, runtime)))


@router.put("/s3-secret", response_model=NetworkAppsPublic)
def update_s3_secret(body: S3SecretUpdate, request: Request, principal: Writer, session: SessionDep,
                     runtime: RuntimeDep) -> NetworkAppsPublic:
    """Seal (or remove) the S3 secret access key used for Instagram public media (owner only)."""
    _owner(principal)
    network_apps.save_s3_secret(session, runtime, user=principal.user, value=body.secret_access_key,
                                clear=body.clear, ip=client_ip(request))
    session.commit()
    return read_network_apps(request, principal, session, runtime)


@router.put("/{app}", response_model=NetworkAppsPublic)
def update_network_app(app: str, body: NetworkAppUpdate, request: Request, principal: Writer, session: SessionDep,
                       runtime: RuntimeDep) -> NetworkAppsPublic:
    """Set or clear one app's client id / secret (``app``: a network name such as ``x``); applies without a restart."""
    _owner(principal)
    network_apps.save_app(session, runtime, user=principal.user, app=app, client_id=body.client_id,
                          client_secret=body.client_secret, clear=body.clear, ip=client_ip(request))
    session.commit()
    return read_network_apps(request, principal, session, runtime)
