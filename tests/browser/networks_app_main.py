"""`python tests/browser/networks_app_main.py up ...`: the ainfluencer CLI with X's API pointed at a local fake
(``FAKE_X_URL``), so a browser test can connect an X account end to end without leaving 127.0.0.1."""

from __future__ import annotations

import os
from typing import Any

from ainfluencer import runtime
from ainfluencer.cli import main
from ainfluencer.platforms import registry

_default = registry.default_registry


def _with_local_x(extra: Any = ()) -> registry.PlatformRegistry:
    return _default(extra).with_transport("x", base_url=os.environ["FAKE_X_URL"], timeout=5)


if __name__ == "__main__":
    runtime.default_registry = _with_local_x  # type: ignore[assignment]
    main()
