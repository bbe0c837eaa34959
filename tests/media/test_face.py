"""Face consistency on real photos shipped in packages (skimage's astronaut, matplotlib's Grace Hopper)."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="media tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="media tests need ainfluencer[media]")
pytestmark = pytest.mark.nodb

pytest.importorskip("cv2", reason="face scoring needs ainfluencer[media]")
skimage_data = pytest.importorskip("skimage.data")
cbook = pytest.importorskip("matplotlib.cbook")

from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

from ainfluencer.media.quality import face as face_mod  # noqa: E402
from ainfluencer.media.quality.face import (  # noqa: E402
    DEFAULT_THRESHOLD,
    DETECTOR_FILE,
    RECOGNIZER_FILE,
    WEIGHT_SHA256,
    FaceEmbedding,
    FaceModelError,
    FaceScorer,
    default_model_dir,
    get_face_scorer,
)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def grace_hopper() -> Image.Image:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        return Image.open(fh).convert("RGB")


@pytest.fixture(scope="module")
def scorer() -> FaceScorer:
    return get_face_scorer()


@pytest.fixture(scope="module")
def canonical(scorer: FaceScorer, astronaut: Image.Image) -> FaceEmbedding:
    emb = scorer.embed(astronaut)
    assert emb is not None
    return emb


def _hue_shift(im: Image.Image, shift: int) -> Image.Image:
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + shift) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


VARIANTS = {
    "mirrored": lambda im: ImageOps.mirror(im),
    "cropped": lambda im: im.crop((100, 0, 400, 300)),
    "grayscale": lambda im: ImageOps.grayscale(im),
    "hue+40": lambda im: _hue_shift(im, 40),
    "brighter x1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "darker x0.6": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "half size, jpeg q30": lambda im: _jpeg(im.resize((256, 256)), 30),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_person_variants_score_above_threshold(
    scorer: FaceScorer, canonical: FaceEmbedding, astronaut: Image.Image, variant: str
) -> None:
    result = scorer.score(canonical, VARIANTS[variant](astronaut))
    assert result.same_person, result.reason
    assert result.similarity >= 0.7 > DEFAULT_THRESHOLD
    assert result.faces_found == 1
    assert result.reason.startswith("same person")


def test_another_person_scores_below_threshold(
    scorer: FaceScorer, canonical: FaceEmbedding, grace_hopper: Image.Image
) -> None:
    result = scorer.score(canonical, grace_hopper)
    assert not result.same_person
    assert result.similarity < DEFAULT_THRESHOLD
    assert result.faces_found == 1
    assert "different person" in result.reason


def test_image_to_image_and_numpy_inputs(scorer: FaceScorer, astronaut: Image.Image) -> None:
    result = scorer.score(np.asarray(astronaut), np.asarray(ImageOps.mirror(astronaut)))
    assert result.same_person and result.cosine is not None and result.cosine > 0.9


def test_no_face_gives_none_and_a_reason(scorer: FaceScorer, canonical: FaceEmbedding) -> None:
    coffee = Image.fromarray(skimage_data.coffee())
    assert scorer.embed(coffee) is None
    assert scorer.detect(coffee) == []
    result = scorer.score(canonical, coffee)
    assert not result.same_person and result.faces_found == 0
    assert result.reason == "no face found in the image"
    assert "canonical" in scorer.score(coffee, canonical).reason


def test_threshold_is_configurable(canonical: FaceEmbedding, grace_hopper: Image.Image) -> None:
    lenient = FaceScorer(threshold=0.05)
    assert lenient.score(canonical, grace_hopper).same_person
    assert not get_face_scorer().score(canonical, grace_hopper, threshold=0.99).same_person
    with pytest.raises(ValueError):
        FaceScorer(threshold=2.0)


def test_embedding_round_trips_through_json(canonical: FaceEmbedding) -> None:
    again = FaceEmbedding.from_dict(canonical.to_dict())
    assert len(again.vector) == 128
    assert again.cosine(canonical) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        FaceEmbedding.from_dict({"vector": [0.1, 0.2]})


def test_shipped_weights_match_the_pins() -> None:
    folder = default_model_dir()
    assert folder is not None
    for name, digest in WEIGHT_SHA256.items():
        assert face_mod.read_verified_weights(folder / name, digest)


def test_pin_mismatch_raises_a_clear_error(tmp_path: Path, astronaut: Image.Image) -> None:
    folder = default_model_dir()
    assert folder is not None
    for name in (DETECTOR_FILE, RECOGNIZER_FILE):
        shutil.copy(folder / name, tmp_path / name)
    tampered = bytearray((tmp_path / RECOGNIZER_FILE).read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (tmp_path / RECOGNIZER_FILE).write_bytes(bytes(tampered))
    with pytest.raises(FaceModelError, match="SHA-256") as info:
        FaceScorer(model_dir=tmp_path).embed(astronaut)
    assert RECOGNIZER_FILE in str(info.value) and WEIGHT_SHA256[RECOGNIZER_FILE] in str(info.value)


def test_missing_weights_or_opencv_report_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canonical: FaceEmbedding, astronaut: Image.Image
) -> None:
    empty = FaceScorer(model_dir=tmp_path)
    assert not empty.available()
    result = empty.score(canonical, astronaut)
    assert not result.available and result.reason.startswith("unavailable: install ainfluencer[media]")

    real_find_spec = face_mod.importlib.util.find_spec
    monkeypatch.setattr(
        face_mod.importlib.util, "find_spec", lambda name, *a: None if name == "cv2" else real_find_spec(name, *a)
    )
    reason = FaceScorer().unavailable_reason()
    assert reason is not None and "OpenCV" in reason


def test_concurrent_use_is_safe(scorer: FaceScorer, astronaut: Image.Image, canonical: FaceEmbedding) -> None:
    results: list[float] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            emb = scorer.embed(astronaut)
            assert emb is not None
            results.append(emb.cosine(canonical))
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 4 and all(r == pytest.approx(1.0, abs=1e-5) for r in results)
