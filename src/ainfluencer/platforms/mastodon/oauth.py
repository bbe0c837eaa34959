"""Mastodon OAuth hooks: the app is registered on the person's instance, then Mastodon.py runs the flow."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import SecretStr

from ainfluencer.platforms.base import Credentials

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def register_client(run: Run, instance_url: str, redirect: str, *, website: str | None) -> tuple[str, str]:
    """Register our app on the instance (``POST /api/v1/apps``): (client id, client secret)."""
    from ainfluencer.platforms.mastodon.adapter import register_app

    app = run(register_app(instance_url, redirect, website=website))
    return app.client_id, app.client_secret.get_secret_value()


def authorization_url(run: Run, instance_url: str, client_id: str, client_secret: str, redirect: str,
                      state: str) -> str:
    """The instance's consent page (read from its OAuth server metadata)."""
    from ainfluencer.platforms.mastodon.adapter import MastodonApp, auth_url

    app = MastodonApp(instance_url=instance_url, client_id=client_id, client_secret=SecretStr(client_secret))
    url: str = run(auth_url(app, redirect, state=state))
    return url


def exchange_code(run: Run, instance_url: str, client_id: str, client_secret: str, code: str,
                  redirect: str) -> Credentials:
    """Trade the code for a (non-expiring) access token."""
    from ainfluencer.platforms.mastodon.adapter import MastodonApp
    from ainfluencer.platforms.mastodon.adapter import exchange_code as exchange

    app = MastodonApp(instance_url=instance_url, client_id=client_id, client_secret=SecretStr(client_secret))
    creds: Credentials = run(exchange(app, code, redirect))
    return creds
