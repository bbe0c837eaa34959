"""Technical score: a sharp, a blurred and an over-exposed version of one photo rank as expected."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.nodb

skimage_data = pytest.importorskip("skimage.data")

from PIL import Image, ImageEnhance, ImageFilter  # noqa: E402

from ainfluencer.media.quality.technical import TechnicalScore, score_technical  # noqa: E402


@pytest.fixture(scope="module")
def sharp() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def test_sharp_beats_blurred_beats_nothing(sharp: Image.Image) -> None:
    good = score_technical(sharp)
    soft = score_technical(sharp.filter(ImageFilter.GaussianBlur(1)))
    blurred = score_technical(sharp.filter(ImageFilter.GaussianBlur(3)))
    assert good.score > soft.score > blurred.score
    assert good.blur == 1.0 and good.score > 0.9 and good.reasons == []
    assert blurred.blur < 0.2
    assert any("blurry" in r for r in blurred.reasons)


def test_overexposed_and_underexposed_rank_below_sharp(sharp: Image.Image) -> None:
    good = score_technical(sharp)
    over = score_technical(ImageEnhance.Brightness(sharp).enhance(2.6))
    under = score_technical(ImageEnhance.Brightness(sharp).enhance(0.15))
    assert good.score > over.score and good.score > under.score
    assert over.exposure < 0.5 and over.clipped_highlights > 0.2
    assert any("overexposed" in r for r in over.reasons)
    assert any("underexposed" in r for r in under.reasons)


def test_resolution_against_target(sharp: Image.Image) -> None:
    at_target = score_technical(sharp, target=(512, 512))
    assert at_target.resolution_ok and at_target.resolution == 1.0
    small = score_technical(sharp, target=(1024, 1024))
    assert not small.resolution_ok and small.resolution == pytest.approx(0.5)
    assert any("below the target 1024×1024" in r for r in small.reasons)
    portrait = score_technical(sharp.resize((512, 910)), target=(1080, 1920))
    assert not portrait.resolution_ok
    assert score_technical(sharp.resize((1080, 1920)), target=(1920, 1080)).resolution_ok  # orientation-agnostic


def test_flat_and_tiny_images_do_not_crash() -> None:
    flat = score_technical(Image.new("RGB", (600, 400), (128, 128, 128)))
    assert isinstance(flat, TechnicalScore) and flat.blur == 0.0 and flat.score < 0.1
    tiny = score_technical(Image.new("L", (2, 2)))
    assert tiny.score == 0.0 and not tiny.resolution_ok
    assert set(flat.as_dict()) >= {"score", "blur", "exposure", "resolution_ok", "reasons"}
