"""OpenAI Images backend against a local server speaking ``/v1/images/generations``, and the fallback chain."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from ainfluencer.backends.image.base import GeneratedImage, ImageBackend, ImageRequest, Progress, png_size
from ainfluencer.backends.image.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    ContentRejected,
)
from ainfluencer.backends.image.openai_images import OpenAIImagesBackend, closest_size
from ainfluencer.backends.image.registry import (
    IMAGE_BACKENDS,
    ImageFallbackChain,
    capabilities,
    create_image_backend,
    image_backend_status,
)
from ainfluencer.errors import InvalidInput
from ainfluencer.jobs.errors import PermanentJobError, TransientJobError
from backends.image.fake_openai_images import API_KEY, POLICY_MESSAGE, OpenAIState, openai_images_app
from backends.text.servers import LocalServer

pytestmark = [pytest.mark.nodb, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, OpenAIState]]:
    state = OpenAIState()
    srv = LocalServer(openai_images_app(state)).start()
    try:
        yield srv, state
    finally:
        srv.stop()


@pytest.fixture
def api(server: tuple[LocalServer, OpenAIState]) -> tuple[str, OpenAIState]:
    srv, state = server
    state.reset()
    return f"{srv.url}/v1", state


def make(url: str, **kw: object) -> OpenAIImagesBackend:
    return OpenAIImagesBackend(base_url=url, api_key=API_KEY, **kw)  # type: ignore[arg-type]


async def test_gpt_image_success(api: tuple[str, OpenAIState], caplog: pytest.LogCaptureFixture) -> None:
    url, state = api
    caplog.set_level(logging.DEBUG)
    events: list[tuple[float, str]] = []
    req = ImageRequest(prompt="Mia on a rooftop", negative_prompt="text, watermark", width=1080, height=1350, batch=2)
    async with make(url) as b:
        images = await b.generate(req, progress=lambda f, m: events.append((f, m)))
    [call] = state.requests
    body = call["json"]
    assert body["model"] == "gpt-image-1"
    assert body["size"] == "1024x1536"  # portrait request -> the portrait size
    assert body["n"] == 2 and body["output_format"] == "png" and "response_format" not in body
    assert body["prompt"].startswith("Mia on a rooftop") and "Avoid: text, watermark" in body["prompt"]
    assert call["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert len(images) == 2
    for img in images:
        assert png_size(img.png_bytes) == (1024, 1536) == (img.width, img.height)
        assert img.seed is None and img.backend == "openai_images" and img.model == "gpt-image-1"
        assert img.meta["requested_size"] == "1080x1350" and img.meta["negative_prompt_folded"]
        # (50 text tokens * $5 + 2112 image tokens * $40) / 1M, split over two images
        assert img.cost_usd == Decimal("0.042365")
    assert [f for f, _ in events] == sorted(f for f, _ in events) and events[-1][0] == 1.0
    assert API_KEY not in caplog.text


async def test_dalle3_loops_one_image_per_call_and_fetches_urls(api: tuple[str, OpenAIState]) -> None:
    url, state = api
    state.reset("url")
    async with make(url, model="dall-e-3", quality="hd") as b:
        images = await b.generate(ImageRequest(prompt="x", width=1920, height=1080, batch=2))
    assert [r["json"]["n"] for r in state.requests] == [1, 1]
    assert all(r["json"]["response_format"] == "b64_json" and r["json"]["size"] == "1792x1024" for r in state.requests)
    assert all(r["json"]["quality"] == "hd" for r in state.requests)
    assert [img.meta["revised_prompt"] for img in images] == ["a revised prompt"] * 2
    assert images[0].cost_usd == Decimal("0.12")


@pytest.mark.parametrize(
    ("behaviour", "expected", "text"),
    [
        ("401", BackendAuthError, "Incorrect API key"),
        ("429", BackendTransientError, "Rate limit"),
        ("quota", BackendPermanentError, "no quota left"),
        ("500", BackendTransientError, "server had an error"),
        ("policy", ContentRejected, "rejected as a result of our safety system"),
        ("moderation", ContentRejected, "rejected by the safety system"),
        ("malformed", BackendProtocolError, "without data"),
    ],
)
async def test_errors_are_mapped(
    api: tuple[str, OpenAIState], behaviour: str, expected: type[BackendError], text: str
) -> None:
    url, state = api
    state.reset(behaviour)
    async with make(url) as b:
        with pytest.raises(expected, match=text) as info:
            await b.generate(ImageRequest(prompt="x"))
    assert type(info.value) is expected
    if behaviour == "429":
        assert isinstance(info.value, BackendTransientError) and info.value.retry_after == 7.0
        job = info.value.as_job_error()
        assert isinstance(job, TransientJobError) and job.retry_after == 7.0
    if behaviour == "policy":
        assert POLICY_MESSAGE[:60] in info.value.message
        assert isinstance(info.value.as_job_error(), PermanentJobError)


async def test_key_is_required_for_openai_and_reported(api: tuple[str, OpenAIState]) -> None:
    url, _ = api
    async with OpenAIImagesBackend() as b:  # api.openai.com without a key: no request is sent
        assert await b.available() == (False, "OpenAI Images needs an API key: add one in Settings")
        with pytest.raises(BackendUnavailable, match="needs an API key"):
            await b.generate(ImageRequest(prompt="x"))
    async with make(url) as b:
        ok, message = await b.available()
        assert ok, message
        assert await b.list_models() == ["dall-e-2", "dall-e-3", "gpt-image-1"]
        assert API_KEY not in repr(b)
    async with OpenAIImagesBackend(base_url=url, api_key="sk-wrong-key") as b:
        ok, message = await b.available()
        assert not ok and "refused the API key" in message


def test_sizes_and_estimates() -> None:
    assert closest_size("gpt-image-1", 1024, 1024) == (1024, 1024)
    assert closest_size("gpt-image-1", 1920, 1080) == (1536, 1024)
    assert closest_size("dall-e-3", 1080, 1920) == (1024, 1792)
    assert closest_size("dall-e-2", 300, 300) == (256, 256)
    b = OpenAIImagesBackend(api_key="k", quality="low")
    assert b.estimate_cost(ImageRequest(prompt="x", batch=3)) == Decimal("0.033")
    assert OpenAIImagesBackend(api_key="k", model="dall-e-3").estimate_cost(ImageRequest(prompt="x")) == Decimal("0.04")


# --- registry and fallback chain ------------------------------------------------------------------------


class Scripted(ImageBackend):
    """An in-memory backend whose outcomes are scripted per call (for the chain's decisions only)."""

    label = "Scripted"

    def __init__(self, name: str, outcomes: list[BackendError | None], **caps: object) -> None:
        self.name = name  # type: ignore[misc]
        self.outcomes = outcomes
        self.calls = 0
        for key, value in caps.items():
            setattr(self, key, value)

    async def _generate(self, req: ImageRequest, progress: Progress) -> list[GeneratedImage]:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if outcome is not None:
            raise outcome
        return [GeneratedImage(b"png", req.seed, req.width, req.height, "m", self.name)]

    async def available(self) -> tuple[bool, str]:
        return True, ""

    async def list_models(self) -> list[str]:
        return []


async def test_chain_retries_transient_then_falls_back() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    first = Scripted("a", [BackendTransientError("busy", retry_after=3.0)])
    second = Scripted("b", [None])
    chain = ImageFallbackChain([first, second], max_retries=1, sleep=sleep)
    result = await chain.generate(ImageRequest(prompt="x", seed=1))
    assert result.backend == "b" and result.fell_back and first.calls == 2
    assert waits and waits[0] >= 3.0
    assert [a.outcome for a in result.attempts] == ["transient", "transient", "ok"]


async def test_chain_skips_paid_and_incapable_and_stops_on_content_rejection(tmp_path: Path) -> None:
    face = tmp_path / "f.png"
    face.write_bytes(b"x")
    paid = Scripted("paid", [None], paid=True)
    no_face = Scripted("noface", [None])
    chain = ImageFallbackChain([paid, no_face], allow_paid=lambda: False)
    with pytest.raises(BackendUnavailable) as info:
        await chain.generate(ImageRequest(prompt="x", face_reference=face))
    assert [a.outcome for a in info.value.attempts] == ["skipped_paid", "skipped_capability"]  # type: ignore[attr-defined]
    assert paid.calls == no_face.calls == 0

    refusing = Scripted("refusing", [ContentRejected("safety system said no")])
    lenient = Scripted("lenient", [None])
    with pytest.raises(ContentRejected):
        await ImageFallbackChain([refusing, lenient]).generate(ImageRequest(prompt="x"))
    assert lenient.calls == 0  # a refused prompt is not sent on to another backend


async def test_chain_exhausted_error_kind() -> None:
    async def sleep(s: float) -> None:
        return None

    chain = ImageFallbackChain(
        [Scripted("a", [BackendTransientError("busy")]), Scripted("b", [BackendAuthError("bad key")])],
        max_retries=0,
        sleep=sleep,
    )
    with pytest.raises(BackendTransientError, match="a: transient - busy; b: auth - bad key"):
        await chain.generate(ImageRequest(prompt="x"))


async def test_registry(api: tuple[str, OpenAIState], tmp_path: Path) -> None:
    url, _ = api
    assert set(IMAGE_BACKENDS) == {"comfyui", "automatic1111", "diffusers", "openai_images"}
    with pytest.raises(InvalidInput):
        create_image_backend("midjourney")
    caps = capabilities(IMAGE_BACKENDS["comfyui"])
    assert caps["supports_face_reference"] and not caps["paid"]
    assert capabilities(IMAGE_BACKENDS["openai_images"])["paid"]
    backends = [
        create_image_backend("openai_images", base_url=url, api_key=API_KEY),
        create_image_backend("comfyui", base_url="http://127.0.0.1:9", timeout=1),
        create_image_backend("diffusers", model=str(tmp_path / "nothing-here")),
    ]
    statuses = await image_backend_status(backends)
    assert [(s.name, s.available) for s in statuses] == [
        ("openai_images", True),
        ("comfyui", False),
        ("diffusers", False),
    ]
    for b in backends:
        await b.aclose()
