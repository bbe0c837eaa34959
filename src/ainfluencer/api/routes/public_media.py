"""Signed public media links (``/m/{token}``): what Instagram's servers fetch; no sign-in, no CSRF."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ainfluencer.api.deps import RuntimeDep
from ainfluencer.api.schemas import ErrorResponse
from ainfluencer.errors import NotFound
from ainfluencer.services import public_media

router = APIRouter(tags=["public media"])


@router.api_route(
    "/m/{token}",
    methods=["GET"],
    response_class=FileResponse,
    summary="Fetch a media file through a signed, short-lived link",
    responses={
        200: {"description": "The file, with its content type and length; `Range` requests get 206."},
        404: {"model": ErrorResponse, "description": "Unknown, expired or altered link (no reason given)."},
    },
)
def read_public_media(token: str, runtime: RuntimeDep) -> FileResponse:
    """Stream the file a signed link names (HEAD and byte ranges supported); anything else is a plain 404.

    Links are made by the publishing step for networks that fetch media themselves (Instagram)
    and expire after ``public_media_ttl_seconds``. Only files inside the media folder are served.
    """
    path = public_media.resolve_token(settings=runtime.settings, secret=runtime.secret, token=token)
    if path is None:
        raise NotFound("This media link is not valid or has expired.")
    return FileResponse(
        path,
        media_type=public_media.media_type_of(path),
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex, nofollow"},
    )


# HEAD (Meta checks size and type before fetching) answers like GET; kept out of the schema so the
# OpenAPI document has one operation per path and method id.
router.add_api_route("/m/{token}", read_public_media, methods=["HEAD"], include_in_schema=False)
