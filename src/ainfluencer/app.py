"""Build the FastAPI app and wire routers; logic lives in services."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from ainfluencer import __version__
from ainfluencer.academy.routes import router as academy_router
from ainfluencer.api.errors import install_error_handlers
from ainfluencer.api.routes import (  # issue 4: assets, studio; issue 5: accounts, publications, webhooks
    accounts,
    assets,
    automation,
    calendar,
    characters,
    compose,
    jobs,
    me,
    networks,
    ops,
    persona_templates,
    public_media,
    publications,
    studio,
    studio_av,
    text_backends,
    tokens,
    webhooks,
)
from ainfluencer.api.schemas import ErrorResponse
from ainfluencer.csrf import csrf_protect
from ainfluencer.input_guard import InputGuard, check_int_params
from ainfluencer.mcp import http as mcp_http
from ainfluencer.middleware import BodySizeLimit, Metrics, SecurityHeaders
from ainfluencer.posts import api as posts_api
from ainfluencer.runtime import Runtime, instance_name

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent / "web"
SWAGGER_VERSION = "5.35.0"
ALL_ROLES = frozenset({"web", "worker", "scheduler"})

API_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 409, 413, 422, 429)
}


def build_api_router() -> APIRouter:
    """The /api/v1 router; CSRF applies to cookie-authenticated unsafe calls."""
    api = APIRouter(prefix="/api/v1", responses=API_ERRORS, dependencies=[Depends(csrf_protect)])
    for module in (me, tokens, jobs, characters, persona_templates, text_backends, accounts, publications, webhooks,
                   assets, studio, studio_av, calendar, automation, compose, networks):
        api.include_router(module.router)
    api.include_router(posts_api.router)
    return api


class BackgroundRoles:
    """Starts and stops the in-process worker and scheduler for `ainfluencer up`."""

    def __init__(self, runtime: Runtime, roles: Iterable[str]) -> None:
        self.runtime, self.roles = runtime, set(roles)
        self.executor: object | None = None
        self.dispatcher: object | None = None
        self.scheduler_stop = threading.Event()
        self.scheduler_thread: threading.Thread | None = None

    def start(self) -> None:
        """Start what this process should run besides the web server."""
        from ainfluencer.jobs import queue

        settings = self.runtime.settings
        if settings.effective_executor == "celery":
            from ainfluencer.jobs.celery_app import CeleryDispatcher, make_celery

            dispatcher = CeleryDispatcher(make_celery(settings), self.runtime.db)
            queue.add_dispatcher(dispatcher)
            self.dispatcher = dispatcher
        elif "worker" in self.roles:
            from ainfluencer.jobs.embedded import EmbeddedExecutor

            executor = EmbeddedExecutor(self.runtime, instance_name("worker"), settings.worker_concurrency)
            executor.start()
            self.executor = executor
        if "scheduler" in self.roles:
            from ainfluencer.jobs.scheduler import Scheduler

            scheduler = Scheduler(self.runtime, instance_name("scheduler"))
            self.scheduler_thread = threading.Thread(
                target=scheduler.run_forever, args=(self.scheduler_stop,), name="scheduler", daemon=True
            )
            self.scheduler_thread.start()

    def stop(self) -> None:
        """Stop background roles, letting running jobs finish briefly."""
        from ainfluencer.jobs import queue

        self.scheduler_stop.set()
        if self.scheduler_thread is not None:
            self.scheduler_thread.join(timeout=10)
        if self.executor is not None:
            self.executor.stop(timeout=10)  # type: ignore[attr-defined]
        if self.dispatcher is not None:
            queue.remove_dispatcher(self.dispatcher)  # type: ignore[arg-type]


def warn_unreadable_credentials(runtime: Runtime) -> None:
    """At start: say which stored credentials this key ring cannot decrypt, and mark their accounts."""
    from ainfluencer.services import accounts
    from ainfluencer.services.secrets import UNREADABLE_MESSAGE

    try:
        with runtime.db.session() as s:
            rows = runtime.secrets.unreadable(s)
            flagged = accounts.flag_unreadable_credentials(s, runtime.secrets) if rows else []
            names = [f"{a.platform} {a.handle or a.id}" for a in flagged]
    except Exception:  # a database not migrated yet: the first request says so
        log.debug("credential check at start skipped", exc_info=True)
        return
    if rows:
        log.warning("%d stored credential(s) cannot be decrypted (accounts: %s): %s. Restore the original "
                    "key file or AINF_ENCRYPTION_KEY, or reconnect them.", len(rows), ", ".join(names) or "none",
                    UNREADABLE_MESSAGE)


def create_app(runtime: Runtime, *, roles: Iterable[str] = ("web",)) -> FastAPI:
    """The ASGI app. ``roles`` adds the in-process worker and/or scheduler."""
    from fastapi.templating import Jinja2Templates

    from ainfluencer.jobs.registry import register_features
    from ainfluencer.web.routes import build_web_router, template_globals

    register_features()  # every feature's job handlers, listed in jobs/registry.py FEATURES
    background = BackgroundRoles(runtime, roles)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_unreadable_credentials(runtime)
        from ainfluencer.services.vault import ensure_signing

        ensure_signing(runtime.settings)  # C2PA works out of the box: the local CA is made on first start
        background.start()
        try:
            yield
        finally:
            background.stop()

    app = FastAPI(
        title="AInfluencer API",
        version=__version__,
        description=(
            "REST API of AInfluencer, a self-hosted studio for openly virtual influencer characters. "
            "Authenticate with a personal API token from Settings → API tokens: "
            "`Authorization: Bearer ainf_...`. Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
        ),
        lifespan=lifespan,
        dependencies=[Depends(check_int_params)],
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.background = background
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    templates.env.globals.update(template_globals(runtime))
    app.state.templates = templates

    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.include_router(ops.router)
    app.include_router(public_media.router)  # /m/{token}: signed media links, outside /api/v1 and CSRF
    app.include_router(build_api_router())
    app.include_router(academy_router)  # /api/v1/academy and /academy pages
    mcp_http.install(app, runtime)  # /mcp: the MCP server for AI assistants (bearer tokens)
    app.include_router(build_web_router())

    @app.get("/docs", include_in_schema=False)
    def read_docs() -> HTMLResponse:
        """Swagger UI served from our own static files (no CDN)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="AInfluencer API",
            swagger_js_url=f"/static/vendor/swagger-ui-bundle-{SWAGGER_VERSION}.js",
            swagger_css_url=f"/static/vendor/swagger-ui-{SWAGGER_VERSION}.css",
            swagger_favicon_url="/static/vendor/favicon-32x32.png",
        )

    # Outermost first: metrics see everything, the size limit guards the app, the input guard reads
    # only bodies the size limit let through.
    app.add_middleware(InputGuard)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes,
                       upload_max_bytes=runtime.settings.max_upload_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(Metrics)
    return app
