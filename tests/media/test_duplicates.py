"""Near-duplicates with pHash + dHash: recompressed copies are near, other photos are far."""

from __future__ import annotations

import io

import pytest

pytestmark = pytest.mark.nodb

pytest.importorskip("imagehash")
skimage_data = pytest.importorskip("skimage.data")
cbook = pytest.importorskip("matplotlib.cbook")

from PIL import Image  # noqa: E402

from ainfluencer.media.quality.duplicates import (  # noqa: E402
    DEFAULT_MAX_DISTANCE,
    find_near_duplicates,
    hash_distance,
    hash_image,
)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def _recompressed(im: Image.Image) -> Image.Image:
    buf = io.BytesIO()
    im.resize((300, 300)).save(buf, "JPEG", quality=55)
    buf.seek(0)
    return Image.open(buf)


def test_hash_format(astronaut: Image.Image) -> None:
    h = hash_image(astronaut)
    assert len(h) == 32 and int(h, 16) >= 0
    assert hash_image(astronaut) == h


def test_resized_recompressed_copy_is_near(astronaut: Image.Image) -> None:
    assert hash_distance(hash_image(astronaut), hash_image(_recompressed(astronaut))) <= 2
    assert hash_distance(hash_image(astronaut), hash_image(astronaut.crop((13, 13, 499, 499)))) <= DEFAULT_MAX_DISTANCE


def test_different_images_are_far(astronaut: Image.Image) -> None:
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = Image.open(fh).convert("RGB")
    h = hash_image(astronaut)
    for other in (hopper, Image.fromarray(skimage_data.coffee()), Image.fromarray(skimage_data.chelsea())):
        assert hash_distance(h, hash_image(other)) > 2 * DEFAULT_MAX_DISTANCE


def test_find_near_duplicates_orders_and_skips_bad_rows(astronaut: Image.Image) -> None:
    h = hash_image(astronaut)
    earlier = [
        ("coffee", hash_image(Image.fromarray(skimage_data.coffee()))),
        ("copy", hash_image(_recompressed(astronaut))),
        ("broken", "not-a-hash"),
        ("same", h),
    ]
    found = find_near_duplicates(h, earlier, max_distance=DEFAULT_MAX_DISTANCE)
    assert {key for key, _ in found} == {"same", "copy"}
    assert [d for _, d in found] == sorted(d for _, d in found)
    assert dict(found)["same"] == 0
    near_only = find_near_duplicates(h, [("far", earlier[0][1]), ("same", h)], max_distance=0)
    assert near_only == [("same", 0)]
    assert find_near_duplicates(h, [], 10) == []
    with pytest.raises(ValueError):
        find_near_duplicates("abc", earlier, 5)
