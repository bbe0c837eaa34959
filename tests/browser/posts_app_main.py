"""`python tests/browser/posts_app_main.py up ...`: the ainfluencer CLI with the FakeNet adapters registered, so a
browser test can publish to a local FakeNet server (the network the publishing tests use)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "publishing"))

import fake_network  # noqa: E402

from ainfluencer.cli import main  # noqa: E402

if __name__ == "__main__":
    fake_network.register()
    main()
