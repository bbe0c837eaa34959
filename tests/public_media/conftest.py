"""Public media tests reuse the Graph fake from tests/platforms."""

from __future__ import annotations

import sys
from pathlib import Path

PLATFORM_TESTS = str(Path(__file__).resolve().parents[1] / "platforms")
if PLATFORM_TESTS not in sys.path:
    sys.path.append(PLATFORM_TESTS)
