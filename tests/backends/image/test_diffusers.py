"""In-process diffusers backend: a tiny random-weight pipeline saved to disk and loaded through the real path.

No model hub is reachable here: the test builds a Stable Diffusion pipeline from tiny configs (and a
tokenizer from a vocabulary it writes), ``save_pretrained``s it to a temp folder, and the backend
loads that folder with ``AutoPipelineForText2Image.from_pretrained(..., local_files_only=True)``.
"""

from __future__ import annotations

import io
import json
import string
from pathlib import Path

import pytest

from ainfluencer.backends.image import diffusers_local
from ainfluencer.backends.image.base import ImageRequest, png_size
from ainfluencer.backends.image.diffusers_local import (
    DiffusersBackend,
    cached_pipelines,
    choose_files,
    clear_pipeline_cache,
    pull_model,
)
from ainfluencer.backends.image.errors import BackendPermanentError, BackendUnavailable

pytestmark = [
    pytest.mark.nodb,
    pytest.mark.anyio,
    pytest.mark.slow,  # importing torch + the first CPU forward pass take 10-20 s on two cores
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument:UserWarning"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def build_tiny_pipeline(folder: Path) -> Path:
    """A Stable Diffusion pipeline with random weights a few hundred KB in size, saved as diffusers does."""
    torch = pytest.importorskip("torch", reason="the diffusers extra (torch) is not installed")
    diffusers = pytest.importorskip("diffusers", reason="the diffusers extra is not installed")
    transformers = pytest.importorskip("transformers", reason="the diffusers extra (transformers) is not installed")

    tok_dir = folder / "tokenizer-src"
    tok_dir.mkdir(parents=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in string.ascii_lowercase + string.digits + ",.":
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(f"{ch}</w>", len(vocab))
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(
        str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=16
    )

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=4,
    )
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=len(vocab),
            max_position_embeddings=16,
            projection_dim=16,
        )
    )
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, steps_offset=1
    )
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    model_dir = folder / "tiny-sd"
    pipe.save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("diffusers"))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_pipeline_cache()


async def test_generates_reproducibly_from_a_saved_folder(tiny_model: Path) -> None:
    from PIL import Image

    events: list[tuple[float, str]] = []
    backend = DiffusersBackend(model=str(tiny_model), device="auto", default_steps=2, default_guidance=5.0)
    assert await backend.available() == (True, f"diffusers model folder {tiny_model}")
    req = ImageRequest(prompt="a red fox in the snow", negative_prompt="blurry", width=64, height=64, seed=42)

    [first] = await backend.generate(req, progress=lambda f, m: events.append((f, m)))
    assert cached_pipelines() == [(str(tiny_model), "cpu")]  # loaded through from_pretrained(folder) once
    [again] = await backend.generate(req)
    [other] = await backend.generate(ImageRequest(prompt=req.prompt, width=64, height=64, seed=43))

    assert first.png_bytes == again.png_bytes
    assert first.png_bytes != other.png_bytes
    assert png_size(first.png_bytes) == (64, 64) == (first.width, first.height)
    with Image.open(io.BytesIO(first.png_bytes)) as img:
        assert img.format == "PNG" and img.size == (64, 64)
    assert (first.seed, other.seed, first.backend, first.model) == (42, 43, "diffusers", str(tiny_model))
    assert first.meta["device"] == "cpu" and first.meta["dtype"] == "float32"
    assert first.meta["steps"] == 2 and first.meta["guidance"] == 5.0
    assert first.meta["safety_checker"] == "not in this model"

    values = [f for f, _ in events]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0
    assert [m for _, m in events if m.startswith("step")] == ["step 1/2", "step 2/2"]


async def test_batch_and_img2img(tiny_model: Path, tmp_path: Path) -> None:
    backend = DiffusersBackend(model=str(tiny_model), default_steps=2, default_guidance=1.0)
    images = await backend.generate(ImageRequest(prompt="a fox", width=64, height=96, seed=7, batch=2))
    assert [i.seed for i in images] == [7, 8]
    assert images[0].png_bytes != images[1].png_bytes
    assert all(png_size(i.png_bytes) == (64, 96) for i in images)

    init = tmp_path / "init.png"
    init.write_bytes(images[0].png_bytes)
    req = ImageRequest(prompt="a fox", width=64, height=96, seed=1, init_image=init, strength=0.5)
    [a] = await backend.generate(req)
    [b] = await backend.generate(req)
    assert a.png_bytes == b.png_bytes and a.meta["strength"] == 0.5 and png_size(a.png_bytes) == (64, 96)


async def test_missing_model_and_missing_extra_are_reported(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a repo id that is in no cache: the real loading path (local_files_only) says how to get it
    backend = DiffusersBackend(model="someone/not-downloaded", cache_dir=tmp_path / "hub-cache")
    ok, fix = await backend.available()
    assert not ok and "ainfluencer models pull someone/not-downloaded" in fix
    with pytest.raises(BackendUnavailable, match="ainfluencer models pull someone/not-downloaded"):
        await backend.generate(ImageRequest(prompt="x", width=64, height=64))

    not_a_model = tmp_path / "empty-folder"
    not_a_model.mkdir()
    ok, fix = await DiffusersBackend(model=str(not_a_model)).available()
    assert not ok and "model_index.json" in fix
    with pytest.raises(BackendUnavailable, match="model_index.json"):
        await DiffusersBackend(model=str(not_a_model)).generate(ImageRequest(prompt="x", width=64, height=64))

    # a pulled model is found in the models folder by its repo id
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "acme--tiny").symlink_to(tiny_model, target_is_directory=True)
    by_id = DiffusersBackend(model="acme/tiny", models_dir=models_dir)
    assert (await by_id.available())[0]
    assert "acme/tiny" in await by_id.list_models()

    monkeypatch.setattr(diffusers_local, "dependencies_missing", lambda: ["torch", "diffusers"])
    ok, fix = await DiffusersBackend(model=str(tiny_model)).available()
    assert not ok and "ainfluencer[diffusers]" in fix
    with pytest.raises(BackendUnavailable, match=r"ainfluencer\[diffusers\]"):
        await DiffusersBackend(model=str(tiny_model)).generate(ImageRequest(prompt="x", width=64, height=64))


async def test_face_reference_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    face = tmp_path / "face.png"
    face.write_bytes(b"x")
    with pytest.raises(BackendPermanentError, match="face reference"):
        await DiffusersBackend(model=str(tiny_model)).generate(ImageRequest(prompt="x", face_reference=face))


def test_pull_reports_offline_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub", reason="the diffusers extra is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    events: list[tuple[float, str]] = []
    with pytest.raises(BackendUnavailable) as info:
        pull_model("stabilityai/sd-turbo", models_dir=tmp_path, progress=lambda f, m: events.append((f, m)))
    message = info.value.message
    assert "cannot download stabilityai/sd-turbo" in message and "HF_HUB_OFFLINE" in message
    assert "point the diffusers backend at it" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    with pytest.raises(BackendPermanentError, match="not a Hub repository id"):
        pull_model("../etc", models_dir=tmp_path)


def test_pull_chooses_one_set_of_weights() -> None:
    files = [
        ".gitattributes",
        "README.md",
        "model_index.json",
        "sd_turbo.safetensors",
        "sd_turbo.ckpt",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/vocab.json",
        "tokenizer/tokenizer_config.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    ]
    chosen = choose_files(files, "fp16")
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in chosen
    assert "unet/diffusion_pytorch_model.safetensors" not in chosen
    assert "vae/diffusion_pytorch_model.safetensors" in chosen  # no fp16 variant for this part: the plain one
    assert not any(f.endswith((".bin", ".ckpt")) or f.startswith("sd_turbo") for f in chosen)
    assert {"model_index.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json"} <= set(chosen)
    full = choose_files(files, None)
    assert "unet/diffusion_pytorch_model.safetensors" in full and not any(".fp16." in f for f in full)


def test_tqdm_adapter_forwards_progress() -> None:
    pytest.importorskip("huggingface_hub", reason="the diffusers extra is not installed")
    from ainfluencer.backends.image.base import Progress

    events: list[tuple[float, str]] = []
    adapter = diffusers_local._tqdm_adapter(Progress(lambda f, m: events.append((f, m))))
    files = adapter(iter(["a", "b"]), total=2, desc="Fetching 2 files")
    data = adapter(total=2_000_000_000, unit="B", unit_scale=True, desc="Downloading bytes", name="x")
    data.update(500_000_000)
    assert events[-1] == (0.25, "downloading 0.50 / 2.00 GB")
    assert list(files) == ["a", "b"]
    data.update(1_500_000_000)
    assert events[-1][0] == 1.0
