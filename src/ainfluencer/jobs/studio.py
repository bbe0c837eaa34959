"""Studio jobs: image generation for a character, every result ingested into the vault."""

from __future__ import annotations

from typing import Any

from ainfluencer.jobs.registry import JobContext, handler


@handler("studio.generate_images")
def generate_images(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Generate the requested images with the configured backends and store each in the vault."""
    from ainfluencer.services.studio import run_generation

    return run_generation(ctx, payload)
