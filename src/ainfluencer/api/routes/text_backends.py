"""Text backends: configured model servers (keys are write-only), connection tests and the price table."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from sqlalchemy.orm import Session

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.routes.jobs import job_public
from ainfluencer.api.schemas import JobPublic
from ainfluencer.api.schemas_characters import (
    ConnectionTestPublic,
    ConnectionTestValues,
    ModelPull,
    PriceRowPublic,
    PriceTablePublic,
    PriceTableUpdate,
    TextBackendCreate,
    TextBackendPublic,
    TextBackendsPublic,
    TextBackendUpdate,
)
from ainfluencer.db.models import TextBackendConfig
from ainfluencer.errors import PermissionDenied
from ainfluencer.runtime import Runtime
from ainfluencer.services import writing

router = APIRouter(prefix="/text-backends", tags=["text backends"])


def backend_public(session: Session, runtime: Runtime, row: TextBackendConfig) -> TextBackendPublic:
    """Schema for one backend; only whether a key is stored, never the key."""
    return TextBackendPublic(
        id=row.id, name=row.name, kind=row.kind, base_url=row.base_url, default_model=row.default_model,
        paid=row.paid, enabled=row.enabled, timeout_s=row.timeout_s,
        has_api_key=writing.has_api_key(session, runtime, row), last_test_at=row.last_test_at,
        last_test_ok=row.last_test_ok, last_test_message=row.last_test_message, created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _prices(session: Session) -> PriceTablePublic:
    rows = [PriceRowPublic(backend_kind=r.backend_kind, model=r.model, input_per_mtok_usd=r.input_per_mtok_usd,
                           output_per_mtok_usd=r.output_per_mtok_usd, source=r.source)
            for r in writing.price_rows(session)]
    return PriceTablePublic(data=rows, count=len(rows))


@router.get("", response_model=TextBackendsPublic)
def read_text_backends(principal: Reader, session: SessionDep, runtime: RuntimeDep) -> TextBackendsPublic:
    """Configured backends (the offline writer is always there and not listed)."""
    rows = writing.list_backend_configs(session)
    return TextBackendsPublic(data=[backend_public(session, runtime, r) for r in rows], count=len(rows))


@router.post("", response_model=TextBackendPublic, status_code=status.HTTP_201_CREATED)
def create_text_backend(
    body: TextBackendCreate, principal: Writer, session: SessionDep, runtime: RuntimeDep, request: Request
) -> TextBackendPublic:
    """Add an Ollama, OpenAI-compatible, OpenAI, OpenRouter or Anthropic backend (owner only)."""
    row = writing.create_backend_config(
        session, runtime, user=principal.user, name=body.name, kind=body.kind, base_url=body.base_url,
        default_model=body.default_model, api_key=body.api_key, paid=body.paid, enabled=body.enabled,
        timeout_s=body.timeout_s, ip=client_ip(request),
    )
    return backend_public(session, runtime, row)


@router.post("/test", response_model=ConnectionTestPublic)
def create_connection_test(body: ConnectionTestValues, principal: Writer) -> ConnectionTestPublic:
    """Test connection settings before saving them (nothing is stored)."""
    if not principal.user.is_owner:
        raise PermissionDenied("Only the owner of this installation can test text backends.")
    report = writing.test_backend_values(kind=body.kind, base_url=body.base_url, api_key=body.api_key)
    return ConnectionTestPublic(ok=report.ok, message=report.message, models=report.models)


@router.get("/prices", response_model=PriceTablePublic)
def read_prices(principal: Reader, session: SessionDep) -> PriceTablePublic:
    """US dollars per million tokens per model; 'default' rows are built-in list prices."""
    return _prices(session)


@router.put("/prices", response_model=PriceTablePublic)
def update_prices(body: PriceTableUpdate, principal: Writer, session: SessionDep, request: Request) -> PriceTablePublic:
    """Replace the edited price rows (owner only); models left out go back to their defaults."""
    writing.set_price_table(session, user=principal.user, rows=[r.model_dump() for r in body.data],
                            ip=client_ip(request))
    return _prices(session)


@router.get("/{backend_id}", response_model=TextBackendPublic)
def read_text_backend(
    backend_id: int, principal: Reader, session: SessionDep, runtime: RuntimeDep
) -> TextBackendPublic:
    """One configured backend."""
    return backend_public(session, runtime, writing.get_backend_config(session, backend_id))


@router.patch("/{backend_id}", response_model=TextBackendPublic)
def update_text_backend(
    backend_id: int, body: TextBackendUpdate, principal: Writer, session: SessionDep, runtime: RuntimeDep,
    request: Request,
) -> TextBackendPublic:
    """Change a backend (owner only); ``api_key: ""`` removes the stored key."""
    row = writing.get_backend_config(session, backend_id)
    writing.update_backend_config(session, runtime, user=principal.user, config=row,
                                  changes=body.model_dump(exclude_unset=True), ip=client_ip(request))
    return backend_public(session, runtime, row)


@router.delete("/{backend_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_text_backend(
    backend_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep, request: Request
) -> Response:
    """Remove a backend and its key; characters using it fall back to the next step of their chain."""
    row = writing.get_backend_config(session, backend_id)
    writing.delete_backend_config(session, runtime, user=principal.user, config=row, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{backend_id}/pull", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED)
def create_model_pull(backend_id: int, body: ModelPull, principal: Writer, session: SessionDep) -> JobPublic:
    """Download a model onto an Ollama server as a job; follow its progress at /api/v1/jobs/{id}."""
    row = writing.get_backend_config(session, backend_id)
    return job_public(writing.enqueue_pull(session, user=principal.user, config=row, model=body.model))


@router.post("/{backend_id}/test", response_model=ConnectionTestPublic)
def create_backend_test(
    backend_id: int, principal: Writer, session: SessionDep, runtime: RuntimeDep
) -> ConnectionTestPublic:
    """Check that the backend answers and its key works; the outcome is kept for the Settings page (owner only)."""
    row = writing.get_backend_config(session, backend_id)
    if not principal.user.is_owner:
        raise PermissionDenied("Only the owner of this installation can test text backends.")
    report = writing.test_backend_config(session, runtime, config=row)
    return ConnectionTestPublic(ok=report.ok, message=report.message, models=report.models)
