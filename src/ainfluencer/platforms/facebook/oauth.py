"""Facebook Login: Graph endpoints and what follows the code exchange (long-lived token, Page choice).

Shared by Instagram, whose accounts are reached through the Pages a Facebook login manages.
"""

from __future__ import annotations

from typing import Any

from ainfluencer.platforms.spec import Endpoint

GRAPH_VERSION = "v21.0"
MAX_PAGES = 10  # pages of /me/accounts followed


def graph_endpoints() -> tuple[Endpoint, Endpoint]:
    """The Login dialog and the token endpoint (overridable: ``facebook_dialog``, ``graph``)."""
    return (Endpoint("facebook_dialog", "https://www.facebook.com", f"/{GRAPH_VERSION}/dialog/oauth"),
            Endpoint("graph", "https://graph.facebook.com", f"/{GRAPH_VERSION}/oauth/access_token"))


def error_mapper(network: str) -> Any:
    """Graph's error body mapped to the three adapter error kinds."""
    from ainfluencer.platforms.facebook.adapter import graph_error

    return lambda status, body, headers: graph_error(status, body, headers, network=network)


def long_lived_token(flow: Any, token: dict[str, Any]) -> dict[str, Any]:
    """Short-lived user token → long-lived user token (about 60 days; ``fb_exchange_token``)."""
    long = flow.graph("GET", "oauth/access_token", params={
        "grant_type": "fb_exchange_token", "client_id": flow.client_id, "client_secret": flow.client_secret,
        "fb_exchange_token": token["access_token"]})
    return long if long.get("access_token") else token


def pages(flow: Any, access_token: str) -> list[dict[str, Any]]:
    """The Pages this login manages, with their linked Instagram accounts where the list expands them."""
    fields = "id,name,username,instagram_business_account{id,username}"
    path: str | None = "me/accounts"
    params: dict[str, Any] | None = {"fields": fields, "limit": 100, "access_token": access_token}
    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        if not path:
            break
        body = flow.graph("GET", path, params=params)
        out.extend(p for p in body.get("data") or [] if isinstance(p, dict) and p.get("id"))
        nxt = (body.get("paging") or {}).get("next")
        path, params = (str(nxt), {"access_token": access_token}) if nxt else (None, None)
    return out


def finish_grant(flow: Any, token: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Trade for a long-lived token, then offer the Pages (a login that manages none is refused)."""
    token = long_lived_token(flow, token)
    choices = [flow.Choice(id=str(p["id"]), name=str(p.get("name") or p["id"]),
                           detail=f"@{p['username']}" if p.get("username") else "")
               for p in pages(flow, str(token["access_token"]))]
    if not choices:
        flow.deny("This Facebook login manages no Pages. Create a Page (or ask its admin for access), then connect "
                  "again and tick the Page on Facebook's screen.")
    return token, choices
