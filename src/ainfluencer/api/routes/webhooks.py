"""Webhooks: signed notifications of publication outcomes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from ainfluencer.api.deps import Reader, RuntimeDep, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_publishing import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveriesPublic,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhooksPublic,
    WebhookUpdate,
)
from ainfluencer.services import publishing as svc

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.get("", response_model=WebhooksPublic)
def read_webhooks(principal: Reader, session: SessionDep) -> WebhooksPublic:
    """Your webhooks."""
    return WebhooksPublic(data=[WebhookPublic.model_validate(h) for h in svc.list_webhooks(session,
                                                                                           user=principal.user)])


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
def create_webhook(body: WebhookCreate, request: Request, principal: Writer, session: SessionDep,
                   runtime: RuntimeDep) -> WebhookCreated:
    """Register a webhook; the response holds its signing secret once.

    The URL must reach a public address: loopback, private, link-local and cloud-metadata
    destinations are refused (422 on ``url``) unless the server sets
    ``AINF_WEBHOOK_ALLOW_PRIVATE_TARGETS``; the address is checked again at every delivery.
    """
    hook, secret = svc.create_webhook(session, runtime=runtime, user=principal.user, url=body.url,
                                      events=body.events, description=body.description, active=body.active,
                                      ip=client_ip(request))
    return WebhookCreated(**WebhookPublic.model_validate(hook).model_dump(), secret=secret)


@router.get("/{webhook_id}", response_model=WebhookPublic)
def read_webhook(webhook_id: int, principal: Reader, session: SessionDep) -> WebhookPublic:
    """One webhook."""
    return WebhookPublic.model_validate(svc.get_webhook(session, webhook_id, user=principal.user))


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def update_webhook(webhook_id: int, body: WebhookUpdate, principal: Writer, session: SessionDep,
                   runtime: RuntimeDep) -> WebhookPublic:
    """Change URL, events, description or active flag (the URL is checked as at creation)."""
    hook = svc.get_webhook(session, webhook_id, user=principal.user)
    svc.update_webhook(session, hook=hook, url=body.url, events=body.events, description=body.description,
                       active=body.active, allow_private=runtime.settings.webhook_allow_private_targets)
    return WebhookPublic.model_validate(hook)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: int, request: Request, principal: Writer, session: SessionDep,
                   runtime: RuntimeDep) -> Response:
    """Remove a webhook and its secret."""
    hook = svc.get_webhook(session, webhook_id, user=principal.user)
    svc.delete_webhook(session, runtime=runtime, user=principal.user, hook=hook, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=WebhookDeliveriesPublic)
def read_deliveries(webhook_id: int, principal: Reader, session: SessionDep) -> WebhookDeliveriesPublic:
    """The latest deliveries and their outcome."""
    hook = svc.get_webhook(session, webhook_id, user=principal.user)
    return WebhookDeliveriesPublic(data=[WebhookDeliveryPublic.model_validate(d)
                                         for d in svc.deliveries_of(session, hook)])


@router.post("/{webhook_id}/ping", response_model=WebhookDeliveryPublic, status_code=status.HTTP_202_ACCEPTED)
def ping_webhook(webhook_id: int, principal: Writer, session: SessionDep) -> WebhookDeliveryPublic:
    """Queue a signed test delivery."""
    hook = svc.get_webhook(session, webhook_id, user=principal.user)
    return WebhookDeliveryPublic.model_validate(svc.ping_webhook(session, hook=hook))
