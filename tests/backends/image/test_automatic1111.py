"""Automatic1111/Forge backend against a local server speaking ``/sdapi/v1``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from ainfluencer.backends.image.automatic1111 import Automatic1111Backend
from ainfluencer.backends.image.base import ImageRequest, png_size
from ainfluencer.backends.image.errors import (
    BackendAuthError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    ModelMissing,
)
from backends.image.fake_a1111 import MODELS, A1111State, a1111_app
from backends.image.fake_comfyui import seed_colour, solid_png
from backends.text.servers import LocalServer

pytestmark = [pytest.mark.nodb, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, A1111State]]:
    state = A1111State()
    srv = LocalServer(a1111_app(state)).start()
    try:
        yield srv, state
    finally:
        srv.stop()


@pytest.fixture
def a1111(server: tuple[LocalServer, A1111State]) -> tuple[str, A1111State]:
    srv, state = server
    state.reset()
    return srv.url, state


def backend(url: str, **kw: object) -> Automatic1111Backend:
    return Automatic1111Backend(base_url=url, poll_interval=0.05, **kw)  # type: ignore[arg-type]


async def test_txt2img_with_progress_seeds_and_model_switch(a1111: tuple[str, A1111State]) -> None:
    url, state = a1111
    events: list[tuple[float, str]] = []
    req = ImageRequest(
        prompt="Mia in a cafe",
        negative_prompt="lowres",
        width=512,
        height=640,
        seed=77,
        steps=20,
        guidance=6.0,
        model="realisticVision_v60",
        batch=2,
    )
    async with backend(url) as b:
        images = await b.generate(req, progress=lambda f, m: events.append((f, m)))

    assert state.option_posts == [{"sd_model_checkpoint": MODELS[1]["title"]}]
    [call] = state.requests
    assert call["path"] == "/sdapi/v1/txt2img"
    body = call["json"]
    assert body["prompt"] == "Mia in a cafe" and body["negative_prompt"] == "lowres"
    assert (body["seed"], body["steps"], body["cfg_scale"], body["batch_size"]) == (77, 20, 6.0, 2)
    assert (body["width"], body["height"]) == (512, 640)
    assert body["save_images"] is False and "override_settings" not in body

    assert [img.seed for img in images] == [77, 78]
    for img in images:
        assert png_size(img.png_bytes) == (512, 640)
        with Image.open(io.BytesIO(img.png_bytes)) as pil:
            assert pil.convert("RGB").getpixel((3, 3)) == seed_colour(img.seed or 0)
        assert img.model == "realisticVision_v60 [15012c538f]"
        assert img.backend == "automatic1111"
        assert "Seed: " in img.meta["infotext"]

    values = [f for f, _ in events]
    assert values == sorted(values) and values[-1] == 1.0
    assert state.progress_polls >= 3
    assert any(m.startswith("generating step") for _, m in events), events


async def test_loaded_model_is_not_switched_again(a1111: tuple[str, A1111State]) -> None:
    url, state = a1111
    state.gen_seconds = 0.05
    async with backend(url, model="v1-5-pruned-emaonly.safetensors") as b:
        await b.generate(ImageRequest(prompt="x", width=64, height=64, seed=1))
        await b.generate(ImageRequest(prompt="x", width=64, height=64, seed=1, model="6ce0161689"))
        with pytest.raises(ModelMissing):
            await b.generate(ImageRequest(prompt="x", width=64, height=64, model="nope"))
    assert state.option_posts == []
    assert len(state.requests) == 2


async def test_img2img_sends_the_init_image(a1111: tuple[str, A1111State], tmp_path: Path) -> None:
    url, state = a1111
    state.gen_seconds = 0.05
    init = tmp_path / "init.png"
    init.write_bytes(solid_png(16, 16, (9, 9, 9)))
    async with backend(url) as b:
        [img] = await b.generate(ImageRequest(prompt="x", width=128, height=128, seed=3, init_image=init, strength=0.4))
    body = state.requests[0]["json"]
    assert state.requests[0]["path"] == "/sdapi/v1/img2img"
    assert base64.b64decode(body["init_images"][0]) == init.read_bytes()
    assert body["denoising_strength"] == 0.4
    assert img.meta["strength"] == 0.4 and img.meta["endpoint"] == "img2img"


async def test_extra_extension_images_are_dropped(a1111: tuple[str, A1111State]) -> None:
    url, state = a1111
    state.reset("extra")
    state.gen_seconds = 0.05
    async with backend(url) as b:
        images = await b.generate(ImageRequest(prompt="x", width=64, height=64, seed=5))
    assert len(images) == 1 and images[0].seed == 5


async def test_jpeg_output_is_converted_to_png(a1111: tuple[str, A1111State]) -> None:
    url, state = a1111
    state.reset("jpeg")
    state.gen_seconds = 0.05
    async with backend(url) as b:
        [img] = await b.generate(ImageRequest(prompt="x", width=96, height=64, seed=5))
    assert png_size(img.png_bytes) == (96, 64)
    with Image.open(io.BytesIO(img.png_bytes)) as pil:
        assert pil.format == "PNG"


@pytest.mark.parametrize(
    ("behaviour", "expected", "text"),
    [
        ("401", BackendAuthError, "Incorrect username"),
        ("422", BackendPermanentError, "not a valid integer"),
        ("500", BackendTransientError, "OutOfMemoryError"),
        ("malformed", BackendProtocolError, "expected JSON"),
    ],
)
async def test_errors_are_mapped(
    a1111: tuple[str, A1111State], behaviour: str, expected: type[Exception], text: str
) -> None:
    url, state = a1111
    state.reset(behaviour)
    async with backend(url) as b:
        with pytest.raises(expected, match=text) as info:
            await b.generate(ImageRequest(prompt="x", width=64, height=64))
    assert type(info.value) is expected


async def test_api_auth(a1111: tuple[str, A1111State]) -> None:
    url, state = a1111
    state.auth = "mia:secret-pass"
    state.gen_seconds = 0.05
    async with backend(url) as b:
        ok, message = await b.available()
        assert not ok and "--api-auth" in message
    async with backend(url, api_auth="mia:secret-pass") as b:
        assert await b.available() == (True, f"Automatic1111/Forge at {url}; 2 checkpoints")
        assert await b.list_models() == [m["title"] for m in MODELS]
        [img] = await b.generate(ImageRequest(prompt="x", width=64, height=64, seed=1))
        assert img.seed == 1
        assert "secret-pass" not in repr(b)


async def test_face_reference_is_refused(a1111: tuple[str, A1111State], tmp_path: Path) -> None:
    url, state = a1111
    face = tmp_path / "face.png"
    face.write_bytes(solid_png(8, 8, (1, 1, 1)))
    async with backend(url) as b:
        with pytest.raises(BackendPermanentError, match="face reference"):
            await b.generate(ImageRequest(prompt="x", face_reference=face))
    assert state.requests == []


async def test_web_ui_without_api_flag_is_unavailable() -> None:
    async def page(request: object) -> Response:
        return Response("Not Found", status_code=404)

    srv = LocalServer(Starlette(routes=[Route("/{path:path}", page)])).start()
    try:
        async with backend(srv.url) as b:
            ok, message = await b.available()
            assert not ok and "--api" in message
            with pytest.raises(BackendUnavailable, match="--api"):
                await b.generate(ImageRequest(prompt="x", width=64, height=64))
    finally:
        srv.stop()
