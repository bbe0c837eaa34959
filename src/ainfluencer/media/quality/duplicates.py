"""Near-duplicate detection with perceptual hashes (imagehash pHash + dHash).

A hash string is 32 hex digits: the 64-bit pHash followed by the 64-bit dHash.
The distance between two images is the **larger** of the two Hamming distances,
so both hashes must agree that the images look alike; that keeps false alarms
down (different images rarely come close on both) while resized, recompressed
or slightly recoloured copies stay within a few bits.

Measured on skimage's astronaut (512 px): resized to 300 px + JPEG q60 → 0,
brightness +20 % → 1, 5 % border crop → 9, 3° rotation → 11, 10 % crop → 14;
unrelated photos (Grace Hopper, coffee, cat, camera) → 32-38.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from ainfluencer.media.safe_image import to_rgb_image

#: Default largest distance (bits out of 64) counted as a near-duplicate.
DEFAULT_MAX_DISTANCE = 10
HASH_HEX_LEN = 32

K = TypeVar("K")


def hash_image(image: Any) -> str:
    """Return the combined pHash+dHash of an image as 32 hex digits."""
    import imagehash

    rgb = to_rgb_image(image)
    return f"{imagehash.phash(rgb)}{imagehash.dhash(rgb)}"


def _split(value: str) -> tuple[int, int]:
    value = value.strip().lower()
    if len(value) != HASH_HEX_LEN:
        raise ValueError(f"expected a {HASH_HEX_LEN}-hex-digit image hash, got {len(value)} characters")
    return int(value[:16], 16), int(value[16:], 16)


def hash_distance(a: str, b: str) -> int:
    """Distance between two hashes from :func:`hash_image`: max of the pHash and dHash Hamming distances."""
    pa, da = _split(a)
    pb, db = _split(b)
    return max((pa ^ pb).bit_count(), (da ^ db).bit_count())


def find_near_duplicates(
    image_hash: str, earlier: Iterable[tuple[K, str]], max_distance: int = DEFAULT_MAX_DISTANCE
) -> list[tuple[K, int]]:
    """Return (id, distance) of earlier hashes within max_distance, closest first; malformed hashes are skipped."""
    _split(image_hash)  # a bad probe hash is the caller's bug: fail loudly
    found: list[tuple[K, int]] = []
    for key, other in earlier:
        try:
            distance = hash_distance(image_hash, other)
        except (ValueError, AttributeError):
            continue
        if distance <= max_distance:
            found.append((key, distance))
    found.sort(key=lambda item: item[1])
    return found
