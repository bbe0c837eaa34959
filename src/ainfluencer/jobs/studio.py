"""Studio jobs: image generation, voice clips and video composition; every result is ingested into the vault."""

from __future__ import annotations

from typing import Any

from ainfluencer.jobs.registry import Handler, JobContext


def generate_images(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Generate the requested images with the configured backends and store each in the vault."""
    from ainfluencer.services.studio import run_generation

    return run_generation(ctx, payload)


def voice_clip(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Speak a text with the character's voice and store the clip in the vault."""
    from ainfluencer.services.studio_av import run_voice

    return run_voice(ctx, payload)


def video(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Compose a video (narration, scenes, captions, music) and store it with its narration in the vault."""
    from ainfluencer.services.studio_av import run_video

    return run_video(ctx, payload)


def voice_pull(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Download a catalogue voice into the data directory, reporting bytes as progress."""
    from ainfluencer.services.studio_av import run_voice_pull

    return run_voice_pull(ctx, payload)


HANDLERS: dict[str, Handler] = {
    "studio.generate_images": generate_images,
    "studio.voice": voice_clip,
    "studio.video": video,
    "studio.voice_pull": voice_pull,
}
