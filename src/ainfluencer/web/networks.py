"""Settings → Networks: the developer apps of the OAuth networks and the S3 secret, entered by the owner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ainfluencer.api.deps import SessionDep, client_ip, get_runtime
from ainfluencer.csrf import csrf_protect
from ainfluencer.db.models import User
from ainfluencer.errors import AppError, PermissionDenied
from ainfluencer.services import compose, network_apps
from ainfluencer.web.forms import Form, form_text
from ainfluencer.web.routes import CurrentUser, redirect, render

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_protect)])

NOTICES = {"saved": "Saved. It applies to the next connect; no restart needed.", "cleared": "Removed.",
           "s3": "S3 secret saved.", "s3-cleared": "S3 secret removed."}


def _owner(user: User) -> None:
    if not user.is_owner:
        raise PermissionDenied("Only the owner of this installation can see and change network apps.")


def _base_url(request: Request) -> str:
    return (get_runtime(request).settings.public_url or str(request.base_url)).rstrip("/")


def _page(request: Request, session: Session, user: User, *, errors: dict[str, str] | None = None,
          error_app: str = "", status_code: int = 200) -> HTMLResponse:
    runtime = get_runtime(request)
    settings = runtime.settings
    apps = network_apps.list_apps(session, runtime, base_url=_base_url(request))
    # An error shows on the card of the app it concerns (Instagram's is the Meta app card), else on top.
    card = next((a.networks[0]["platform"] for a in apps if error_app in [n["platform"] for n in a.networks]),
                error_app if error_app == "s3" else "")
    ctx: dict[str, Any] = {
        "active": "settings", "apps": apps, "page_errors": (errors or {}) if errors and not card else {},
        "s3": network_apps.s3_secret_value(session, runtime), "s3_bucket": settings.s3_bucket,
        "public_media": compose.public_media_status(settings), "base_url": _base_url(request),
        "public_url_set": bool(settings.public_url), "errors": errors or {}, "error_app": card,
        "notice": NOTICES.get(request.query_params.get("done", ""), ""),
    }
    return render(request, "settings/networks.html", ctx, user=user, status_code=status_code,
                  headers={"Cache-Control": "no-store"})


@router.get("/settings/networks", response_class=HTMLResponse)
def read_networks(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """Developer-app credentials per OAuth network, with the setup guide; the S3 secret (owner only)."""
    _owner(user)
    return _page(request, session, user)


@router.post("/settings/networks/{app}", response_class=HTMLResponse)
def update_network_app(app: str, request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Save (or clear) the client id / secret of one app; empty fields keep what is stored."""
    _owner(user)
    clear = form_text(form, "intent") == "clear"
    try:
        network_apps.save_app(session, get_runtime(request), user=user, app=app,
                              client_id=form_text(form, "client_id"), client_secret=form_text(form, "client_secret"),
                              clear=clear, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _page(request, session, user, errors={exc.field or "_form": exc.message}, error_app=app,
                     status_code=exc.status_code)
    session.commit()
    return redirect(f"/settings/networks?done={'cleared' if clear else 'saved'}#app-{app}")


@router.post("/settings/networks-s3", response_class=HTMLResponse)
def update_s3_secret(request: Request, session: SessionDep, user: CurrentUser, form: Form) -> Response:
    """Seal (or clear) the S3 secret key used to hand Instagram public media links."""
    _owner(user)
    clear = form_text(form, "intent") == "clear"
    try:
        network_apps.save_s3_secret(session, get_runtime(request), user=user,
                                    value=form_text(form, "s3_secret_access_key"), clear=clear, ip=client_ip(request))
    except AppError as exc:
        session.rollback()
        return _page(request, session, user, errors={exc.field or "_form": exc.message}, error_app="s3",
                     status_code=exc.status_code)
    session.commit()
    return redirect(f"/settings/networks?done={'s3-cleared' if clear else 's3'}#public-media")
