"""AI provenance on every output: private metadata stripped, IPTC digital source type added, C2PA signed.

- :mod:`.metadata`: ``strip_and_label`` / ``read_provenance`` (XMP in JPEG, PNG, WebP).
- :mod:`.c2pa_sign`: ``init_local_ca`` / ``sign_file`` / ``verify_file`` (C2PA via c2pa-python).

Both import Pillow and c2pa-python lazily; :func:`availability` reports what can run.
"""

from __future__ import annotations

import importlib.util

UNAVAILABLE = "unavailable: install ainfluencer[media]"

_REQUIREMENTS = {
    "metadata": ("PIL", "defusedxml"),
    "c2pa": ("c2pa", "cryptography"),
}


def availability() -> dict[str, str | None]:
    """Map each provenance feature to None when it can run, or an "unavailable: install …" message."""
    result: dict[str, str | None] = {}
    for feature, modules in _REQUIREMENTS.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        result[feature] = f"{UNAVAILABLE} (missing: {', '.join(missing)})" if missing else None
    return result
