"""Instagram through Facebook Login: only Pages with a linked professional Instagram account are offered."""

from __future__ import annotations

from typing import Any

from ainfluencer.platforms.facebook.oauth import error_mapper, long_lived_token, pages

MAX_IG_LOOKUPS = 25  # Pages asked for their linked Instagram account when the list does not say

__all__ = ["error_mapper", "finish_grant"]


def finish_grant(flow: Any, token: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Long-lived user token, then the Pages with an ``instagram_business_account``."""
    token = long_lived_token(flow, token)
    access = str(token["access_token"])
    choices = []
    for page in pages(flow, access)[:MAX_IG_LOOKUPS]:
        linked = page.get("instagram_business_account")
        if linked is None:  # the list did not expand the field: ask the Page itself
            node = flow.graph("GET", str(page["id"]), params={
                "fields": "instagram_business_account{id,username}", "access_token": access})
            linked = node.get("instagram_business_account")
        if isinstance(linked, dict) and linked.get("id"):
            choices.append(flow.Choice(id=str(page["id"]), name=str(page.get("name") or page["id"]),
                                       detail=f"@{linked.get('username')}" if linked.get("username") else ""))
    if not choices:
        flow.deny("None of the Pages this login manages has a linked Instagram professional account. Switch the "
                  "Instagram account to Business or Creator and link it to a Page (Page settings → Linked "
                  "accounts), then connect again.")
    return token, choices
