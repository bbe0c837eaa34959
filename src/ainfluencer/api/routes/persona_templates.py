"""Persona templates: the built-in ones and those saved from characters."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from ainfluencer.api.deps import Reader, SessionDep, Writer, client_ip
from ainfluencer.api.schemas_characters import TemplateCreate, TemplatePublic, TemplatesPublic
from ainfluencer.services import characters as svc

router = APIRouter(prefix="/persona-templates", tags=["persona templates"])


def template_public(choice: svc.TemplateChoice) -> TemplatePublic:
    """Schema for one template."""
    return TemplatePublic(key=choice.key, name=choice.name, description=choice.description, builtin=choice.builtin,
                          template_id=choice.template_id, persona=choice.persona.model_dump(mode="json"))


@router.get("", response_model=TemplatesPublic)
def read_persona_templates(principal: Reader, session: SessionDep) -> TemplatesPublic:
    """Built-in templates (key = slug) and saved ones (key = 'saved:<id>'); pass a key as ``template``."""
    choices = svc.list_templates(session)
    return TemplatesPublic(data=[template_public(c) for c in choices], count=len(choices))


@router.post("", response_model=TemplatePublic, status_code=status.HTTP_201_CREATED)
def create_persona_template(
    body: TemplateCreate, principal: Writer, session: SessionDep, request: Request
) -> TemplatePublic:
    """Save a character's persona as a new template."""
    character = svc.get_character(session, body.character_id, user=principal.user)
    row = svc.save_as_template(session, user=principal.user, character=character, name=body.name,
                               description=body.description, ip=client_ip(request))
    choice = next(c for c in svc.list_templates(session) if c.template_id == row.id)
    return template_public(choice)


@router.delete("/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_persona_template(template_id: int, principal: Writer, session: SessionDep, request: Request) -> Response:
    """Delete a saved template (built-in ones cannot be deleted)."""
    svc.delete_template(session, user=principal.user, template_id=template_id, ip=client_ip(request))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
