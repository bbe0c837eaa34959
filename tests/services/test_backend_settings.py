"""Owner-configured backend options: checked the same way for image and voice backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ainfluencer.db.models import AppSetting, User
from ainfluencer.errors import InvalidInput, PermissionDenied
from ainfluencer.runtime import Runtime
from ainfluencer.services import studio, studio_av
from ainfluencer.services.backend_settings import clean_options

LIMITS = {"base_url": 40, "model": 5}


def test_clean_options_trims_drops_empty_and_ignores_unknown_keys() -> None:
    got = clean_options("x", {"base_url": "  http://127.0.0.1:1/ ", "model": "", "other": "ignored"}, LIMITS)
    assert got == {"base_url": "http://127.0.0.1:1/"}


@pytest.mark.parametrize(("options", "field", "words"), [
    ({"base_url": "ftp://127.0.0.1"}, "x.base_url", "must start with http:// or https://"),
    ({"model": "toolong"}, "x.model", "at most 5 characters"),
])
def test_clean_options_refuses_with_the_field_named(options: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        clean_options("x", options, LIMITS)
    assert err.value.field == field and words in str(err.value)


def test_image_and_voice_configs_store_options_and_sealed_keys(runtime: Runtime,
                                                               make_user: Callable[..., User]) -> None:
    owner, member = make_user(owner=True), make_user("member@example.com", owner=False)
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        studio.save_backend_config(s, user=user, runtime=runtime, order=["automatic1111"],
                                   backends={"automatic1111": {"base_url": "http://127.0.0.1:7860"}},
                                   api_keys={"openai_images": "sk-image"})
        studio_av.save_voice_backends(s, user=user, runtime=runtime,
                                      options={"elevenlabs": {"base_url": "http://127.0.0.1:9/"}},
                                      api_keys={"elevenlabs": "el-key"})
    with runtime.db.session() as s:
        image_row = s.get(AppSetting, studio.BACKENDS_SETTING)
        voice_row = s.get(AppSetting, studio_av.VOICE_BACKENDS_SETTING)
        assert image_row is not None and image_row.updated_by == owner.id
        assert image_row.value["backends"]["automatic1111"] == {"base_url": "http://127.0.0.1:7860"}
        assert voice_row is not None and voice_row.value["elevenlabs"] == {"base_url": "http://127.0.0.1:9/"}
        image_key = runtime.secrets.get(s, owner_kind=studio.SECRET_KIND, owner_id=0, name="openai_images")
        voice_key = runtime.secrets.get(s, owner_kind=studio_av.VOICE_SECRET_KIND, owner_id=0, name="elevenlabs")
        assert image_key is not None and image_key.get_secret_value() == "sk-image"
        assert voice_key is not None and voice_key.get_secret_value() == "el-key"
    with runtime.db.session() as s:
        user = s.get(User, owner.id)
        assert user is not None
        with pytest.raises(InvalidInput):
            studio_av.save_voice_backends(s, user=user, runtime=runtime, options={"elevenlabs": {"base_url": "x"}})
        other = s.get(User, member.id)
        assert other is not None
        with pytest.raises(PermissionDenied):
            studio.save_backend_config(s, user=other, runtime=runtime, order=[], backends={})
