"""ComfyUI backend against a local server speaking ComfyUI's HTTP and websocket API."""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from ainfluencer.backends.image.base import GeneratedImage, ImageRequest, png_size
from ainfluencer.backends.image.comfyui import (
    REQUIRED_ROLES,
    WORKFLOWS,
    ComfyUIBackend,
    fill_workflow,
    load_workflow,
    nodes_by_title,
)
from ainfluencer.backends.image.errors import (
    BackendPermanentError,
    BackendTransientError,
    MissingNodes,
    ModelMissing,
)
from backends.image.fake_comfyui import ComfyState, comfy_app, seed_colour, solid_png
from backends.text.servers import LocalServer

pytestmark = [pytest.mark.nodb, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LocalServer, ComfyState]]:
    state = ComfyState()
    srv = LocalServer(comfy_app(state)).start()
    try:
        yield srv, state
    finally:
        srv.stop()


@pytest.fixture
def comfy(server: tuple[LocalServer, ComfyState]) -> tuple[str, ComfyState]:
    srv, state = server
    state.reset()
    return srv.url, state


@pytest.fixture
def face(tmp_path: Path) -> Path:
    path = tmp_path / "canonical face.png"
    path.write_bytes(solid_png(32, 32, (200, 150, 120)))
    return path


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def __call__(self, fraction: float, message: str) -> None:
        self.events.append((fraction, message))

    @property
    def values(self) -> list[float]:
        return [v for v, _ in self.events]


def node(workflow: dict, title: str) -> dict:
    return workflow[nodes_by_title(workflow, title)[0]]


def assert_png(img: GeneratedImage, width: int, height: int, seed: int) -> None:
    assert png_size(img.png_bytes) == (width, height) == (img.width, img.height)
    with Image.open(io.BytesIO(img.png_bytes)) as pil:
        assert pil.format == "PNG"
        assert pil.size == (width, height)
        assert pil.convert("RGB").getpixel((0, 0)) == seed_colour(seed)
    assert img.seed == seed
    assert img.backend == "comfyui"


@pytest.mark.parametrize("variant", ["both", "executing_null", "success_only", "cached"])
async def test_txt2img_completes_on_either_signal(comfy: tuple[str, ComfyState], variant: str) -> None:
    url, state = comfy
    state.reset(variant)
    progress = Recorder()
    req = ImageRequest(
        prompt="portrait of Mia, golden hour",
        negative_prompt="blurry",
        width=512,
        height=768,
        seed=1234,
        steps=20,
        guidance=5.5,
    )
    async with ComfyUIBackend(base_url=url) as backend:
        images = await backend.generate(req, progress=progress)

    assert len(images) == 1
    assert_png(images[0], 512, 768, 1234)
    assert images[0].model == "sd_xl_base_1.0.safetensors"
    assert images[0].meta["workflow"] == "txt2img_sdxl"
    assert images[0].meta["steps"] == 20 and images[0].meta["cfg"] == 5.5

    [queued] = state.prompts
    wf = queued["workflow"]
    assert queued["client_id"] in state.ws_clients  # the websocket was open before /prompt
    assert node(wf, "ainf.positive")["inputs"]["text"] == "portrait of Mia, golden hour"
    assert node(wf, "ainf.negative")["inputs"]["text"] == "blurry"
    assert node(wf, "ainf.sampler")["inputs"]["seed"] == 1234
    assert node(wf, "ainf.sampler")["inputs"]["steps"] == 20
    assert node(wf, "ainf.latent")["inputs"] == {"width": 512, "height": 768, "batch_size": 1}
    assert node(wf, "ainf.checkpoint")["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    assert f"/history/{queued['prompt_id']}" in state.paths("/history/")
    assert state.paths("/view")

    values = progress.values
    assert values == sorted(values), "progress must never go backwards"
    assert values[0] == 0.0 and values[-1] == 1.0
    assert len(set(values)) >= 4
    if variant != "cached":
        assert any("step 4/4" in m for _, m in progress.events)
    if variant == "success_only":  # the history entry came after the signal: it was asked for again
        assert len(state.paths("/history/")) >= 2


async def test_face_reference_is_uploaded_and_wired_through_ipadapter(
    comfy: tuple[str, ComfyState], face: Path
) -> None:
    url, state = comfy
    face_bytes = solid_png(32, 32, (200, 150, 120))  # what the fixture wrote
    req = ImageRequest(
        prompt="Mia at the beach", width=1024, height=1024, seed=7, face_reference=face, face_weight=0.65
    )
    async with ComfyUIBackend(base_url=url) as backend:
        [image] = await backend.generate(req)

    digest = hashlib.sha256(face_bytes).hexdigest()[:20]
    uploaded_name = f"ainfluencer/face-{digest}.png"
    assert state.uploads == {uploaded_name: face_bytes}
    assert state.upload_forms == [{"overwrite": "true", "type": "input", "subfolder": "ainfluencer"}]

    wf = state.prompts[0]["workflow"]
    load = node(wf, "ainf.face_image")
    assert load["class_type"] == "LoadImage"
    assert load["inputs"]["image"] == uploaded_name
    adapter_id = nodes_by_title(wf, "ainf.face_adapter")[0]
    adapter = wf[adapter_id]
    assert adapter["class_type"] == "IPAdapterAdvanced"
    assert adapter["inputs"]["weight"] == 0.65
    assert adapter["inputs"]["image"] == [nodes_by_title(wf, "ainf.face_image")[0], 0]
    loader = wf[adapter["inputs"]["model"][0]]
    assert loader["class_type"] == "IPAdapterUnifiedLoader"
    assert node(wf, "ainf.sampler")["inputs"]["model"] == [adapter_id, 0]
    assert image.meta["face_method"] == "ipadapter" and image.meta["face_image"] == uploaded_name
    assert_png(image, 1024, 1024, 7)


async def test_face_reference_through_instantid(comfy: tuple[str, ComfyState], face: Path) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url, face_method="instantid") as backend:
        [image] = await backend.generate(
            ImageRequest(prompt="Mia", width=1016, height=1016, seed=3, face_reference=face)
        )
    wf = state.prompts[0]["workflow"]
    apply_id = nodes_by_title(wf, "ainf.face_adapter")[0]
    apply = wf[apply_id]
    assert apply["class_type"] == "ApplyInstantID"
    assert wf[apply["inputs"]["image"][0]]["inputs"]["image"] == next(iter(state.uploads))
    assert {wf[apply["inputs"][k][0]]["class_type"] for k in ("instantid", "insightface", "control_net")} == {
        "InstantIDModelLoader",
        "InstantIDFaceAnalysis",
        "ControlNetLoader",
    }
    sampler = node(wf, "ainf.sampler")["inputs"]
    assert (
        sampler["model"] == [apply_id, 0]
        and sampler["positive"] == [apply_id, 1]
        and sampler["negative"] == [apply_id, 2]
    )
    assert image.meta["workflow"] == "txt2img_instantid"


@pytest.mark.parametrize(
    ("method", "flag", "pack"),
    [("ipadapter", "ipadapter", "ComfyUI_IPAdapter_plus"), ("instantid", "instantid", "ComfyUI_InstantID")],
)
async def test_missing_face_nodes_are_unavailable_with_the_fix(
    comfy: tuple[str, ComfyState], face: Path, method: str, flag: str, pack: str
) -> None:
    url, state = comfy
    setattr(state, flag, False)
    async with ComfyUIBackend(base_url=url, face_method=method) as backend:  # type: ignore[arg-type]
        with pytest.raises(MissingNodes) as info:
            await backend.generate(ImageRequest(prompt="Mia", width=512, height=512, face_reference=face))
        ok, fix = await backend.face_support()
        plain_ok, _ = await backend.available()
    assert info.value.kind == "unavailable"
    assert f"install {pack}" in info.value.message
    assert not ok and pack in fix
    assert plain_ok  # text-to-image still works without the extension
    assert state.prompts == [] and state.uploads == {}


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        ("RuntimeError", "Reference Image: No face detected.", BackendPermanentError),
        ("torch.OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", BackendTransientError),
    ],
)
async def test_execution_error_is_mapped(
    comfy: tuple[str, ComfyState], error_type: str, message: str, expected: type[Exception]
) -> None:
    url, state = comfy
    state.reset("error")
    state.error_type, state.error_message = error_type, message
    async with ComfyUIBackend(base_url=url) as backend:
        with pytest.raises(expected) as info:
            await backend.generate(ImageRequest(prompt="x", width=512, height=512, seed=1))
    assert type(info.value) is expected
    assert message.split(".")[0] in str(info.value)
    assert "KSampler" in str(info.value)


async def test_interrupted_prompt_is_transient(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    state.reset("interrupted")
    async with ComfyUIBackend(base_url=url) as backend:
        with pytest.raises(BackendTransientError, match="interrupted"):
            await backend.generate(ImageRequest(prompt="x", width=512, height=512))


async def test_dropped_websocket_falls_back_to_polling_history(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    state.reset("ws_drop")
    progress = Recorder()
    async with ComfyUIBackend(base_url=url, poll_interval=0.05) as backend:
        [image] = await backend.generate(ImageRequest(prompt="x", width=256, height=256, seed=99), progress=progress)
    assert_png(image, 256, 256, 99)
    assert len(state.paths("/history/")) >= 2  # polled until the entry appeared
    assert progress.values == sorted(progress.values)


async def test_works_without_websocket(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url, use_websocket=False, poll_interval=0.05) as backend:
        [image] = await backend.generate(ImageRequest(prompt="x", width=128, height=192, seed=5))
    assert_png(image, 128, 192, 5)
    assert state.ws_clients == []


async def test_batch_queues_one_prompt_per_seed(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    progress = Recorder()
    async with ComfyUIBackend(base_url=url) as backend:
        images = await backend.generate(
            ImageRequest(prompt="x", width=256, height=256, seed=10, batch=3), progress=progress
        )
    assert [img.seed for img in images] == [10, 11, 12]
    assert [node(p["workflow"], "ainf.sampler")["inputs"]["seed"] for p in state.prompts] == [10, 11, 12]
    assert len({img.png_bytes for img in images}) == 3
    for img in images:
        assert_png(img, 256, 256, img.seed or 0)
    assert progress.values == sorted(progress.values) and progress.values[-1] == 1.0


async def test_random_seed_is_reported(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url) as backend:
        [image] = await backend.generate(ImageRequest(prompt="x", width=64, height=64))
    assert image.seed is not None
    assert node(state.prompts[0]["workflow"], "ainf.sampler")["inputs"]["seed"] == image.seed


async def test_model_is_matched_by_name_or_reported_missing(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    state.new_combo_format = True  # newer ComfyUI describes combo inputs as ["COMBO", {"options": [...]}]
    async with ComfyUIBackend(base_url=url) as backend:
        [image] = await backend.generate(ImageRequest(prompt="x", width=64, height=64, model="juggernautXL_v9"))
        assert image.model == "SDXL/juggernautXL_v9.safetensors"
        with pytest.raises(ModelMissing, match="not-there"):
            await backend.generate(ImageRequest(prompt="x", width=64, height=64, model="not-there.safetensors"))
    assert len(state.prompts) == 1


async def test_img2img_uploads_the_init_image_and_sets_denoise(comfy: tuple[str, ComfyState], face: Path) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url) as backend:
        [image] = await backend.generate(
            ImageRequest(prompt="x", width=320, height=240, seed=2, init_image=face, strength=0.35)
        )
    wf = state.prompts[0]["workflow"]
    assert node(wf, "ainf.init_image")["inputs"]["image"] in state.uploads
    assert node(wf, "ainf.sampler")["inputs"]["denoise"] == 0.35
    assert node(wf, "ainf.init_scale")["inputs"]["width"] == 320
    assert image.meta["strength"] == 0.35
    assert_png(image, 320, 240, 2)


async def test_timeout_withdraws_the_prompt(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    state.reset("hang")
    async with ComfyUIBackend(base_url=url, generation_timeout=0.5) as backend:
        with pytest.raises(BackendTransientError, match="did not finish"):
            await backend.generate(ImageRequest(prompt="x", width=64, height=64))
    pid = state.prompts[0]["prompt_id"]
    assert state.queue_posts == [{"delete": [pid]}]
    assert state.interrupts == [{"prompt_id": pid}]


async def test_available_and_list_models(comfy: tuple[str, ComfyState]) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url) as backend:
        ok, message = await backend.available()
        assert ok and "2 checkpoints" in message
        assert await backend.list_models() == state.checkpoints
        state.models_endpoint = False  # older ComfyUI: choices come from /object_info
        assert await backend.list_models() == state.checkpoints
        state.checkpoints = []
        ok, message = await backend.available()
        assert not ok and "models/checkpoints" in message
    state.checkpoints = ["sd_xl_base_1.0.safetensors", "SDXL/juggernautXL_v9.safetensors"]


async def test_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    async with ComfyUIBackend(base_url=f"http://127.0.0.1:{port}", timeout=2) as backend:
        ok, message = await backend.available()
        assert not ok and "does not answer" in message
        with pytest.raises(BackendTransientError, match="cannot connect"):
            await backend.generate(ImageRequest(prompt="x", width=64, height=64))


async def test_invalid_requests_are_refused_before_any_call(comfy: tuple[str, ComfyState], face: Path) -> None:
    url, state = comfy
    async with ComfyUIBackend(base_url=url) as backend:
        for req in (
            ImageRequest(prompt=" "),
            ImageRequest(prompt="x", width=4096),
            ImageRequest(prompt="x", batch=0),
            ImageRequest(prompt="x", seed=-1),
            ImageRequest(prompt="x", face_reference=face, init_image=face),
            ImageRequest(prompt="x", face_reference=face.with_name("missing.png")),
        ):
            with pytest.raises(BackendPermanentError):
                await backend.generate(req)
    assert state.prompts == []


def test_shipped_templates_have_their_placeholders() -> None:
    for kind, name in WORKFLOWS.items():
        wf = load_workflow(name)
        for role in REQUIRED_ROLES[kind]:
            assert nodes_by_title(wf, role), f"{name} lacks {role}"
        assert any(n["class_type"] == "SaveImage" for n in wf.values())
        # every link points at a node that exists
        for n in wf.values():
            for value in n["inputs"].values():
                if isinstance(value, list):
                    assert value[0] in wf, f"{name}: dangling link {value}"


def test_fill_workflow_sets_values_but_never_links(tmp_path: Path) -> None:
    template = load_workflow("txt2img_sdxl")
    filled = fill_workflow(
        template,
        {"ainf.sampler": {"seed": 5, "model": "not-a-link", "noise_seed": 9}, "ainf.positive": {"text": "hi"}},
        required=REQUIRED_ROLES["txt2img"],
    )
    sampler = node(filled, "ainf.sampler")["inputs"]
    assert sampler["seed"] == 5 and isinstance(sampler["model"], list) and "noise_seed" not in sampler
    assert node(template, "ainf.positive")["inputs"]["text"] == ""  # the template is not changed
    with pytest.raises(BackendPermanentError, match="ainf.face_image"):
        fill_workflow(template, {}, required=["ainf.face_image"])
    # a user's own workflow in workflows_dir replaces the shipped one of the same name
    own = dict(template)
    own["9"] = {**own["9"], "inputs": {**own["9"]["inputs"], "filename_prefix": "mine"}}
    (tmp_path / "txt2img_sdxl.json").write_text(__import__("json").dumps(own))
    assert node(load_workflow("txt2img_sdxl", directory=tmp_path), "ainf.save")["inputs"]["filename_prefix"] == "mine"
