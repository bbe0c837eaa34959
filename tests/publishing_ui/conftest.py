"""Publishing UI fixtures: the platform fakes importable, OAuth client settings, a signed-in owner with a character."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from publishing_ui_helpers import Studio, make_character  # noqa: E402
from pydantic import SecretStr

from ainfluencer.config import Settings
from ainfluencer.db.models import User
from ainfluencer.runtime import Runtime


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings plus OAuth app credentials for every network."""
    return settings.model_copy(update={
        "x_client_id": "x-client", "facebook_app_id": "fb-app", "facebook_app_secret": SecretStr("fb-secret"),
        "google_client_id": "google-client", "google_client_secret": SecretStr("google-secret"),
    })


@pytest.fixture
def studio(runtime: Runtime, client: TestClient, make_user: Callable[..., User],
           login: Callable[..., None]) -> Iterator[Studio]:
    """A signed-in owner with one character."""
    user = make_user(owner=True)
    login(client)
    yield Studio(runtime=runtime, user=user, client=client, character_id=make_character(runtime, user))
