"""The Academy's routers in one: the REST API under /api/v1/academy and the pages under /academy."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ainfluencer.academy import api, pages
from ainfluencer.api.schemas import ErrorResponse
from ainfluencer.csrf import csrf_protect

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}

router = APIRouter()
router.include_router(api.router, prefix="/api/v1", responses=_ERRORS, dependencies=[Depends(csrf_protect)])
router.include_router(pages.router)
