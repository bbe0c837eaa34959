"""Technical image quality: resolution, blur and exposure, each a 0..1 sub-score.

- **Resolution**: ``sqrt(pixels / target_pixels)`` capped at 1; ``resolution_ok`` when
  both sides reach the target (either orientation).
- **Blur**: variance of the 4-neighbour Laplacian of the luminance, measured at a
  fixed working size (long side :data:`WORK_SIDE`) so the number means the same at
  any resolution. Log-linear from :data:`BLURRY_LAPLACIAN_VAR` (0) to
  :data:`SHARP_LAPLACIAN_VAR` (1). Reference points at 512 px: skimage's astronaut
  ≈ 860, the same after a 1 px Gaussian blur ≈ 70, after 2 px ≈ 11.
- **Exposure**: share of clipped shadows (≤ 8/255) and highlights (≥ 247/255)
  beyond :data:`CLIP_TOLERANCE` (dark or white studio backgrounds are
  normal; the astronaut photo has 15 % black sky), and mean luminance outside
  :data:`GOOD_MEAN_RANGE`; the worst of the three.

The overall score is the weighted geometric mean
``blur^0.4 · exposure^0.4 · resolution^0.2``: one failing aspect drags it down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ainfluencer.media.safe_image import to_rgb_image

WORK_SIDE = 512
SHARP_LAPLACIAN_VAR = 250.0
BLURRY_LAPLACIAN_VAR = 10.0
CLIP_TOLERANCE = 0.20
CLIP_FULL_PENALTY = 0.50
#: A sub-score under this is named in the reasons.
REPORT_BELOW = 0.75
GOOD_MEAN_RANGE = (70.0, 185.0)
BAD_MEAN_LIMITS = (20.0, 235.0)
DEFAULT_TARGET = (512, 512)
WEIGHTS = {"blur": 0.4, "exposure": 0.4, "resolution": 0.2}


@dataclass(frozen=True)
class TechnicalScore:
    """Technical quality of one image; sub-scores are 0..1 where 1 is good."""

    score: float
    resolution_ok: bool
    blur: float
    exposure: float
    reasons: list[str] = field(default_factory=list)
    resolution: float = 1.0
    width: int = 0
    height: int = 0
    laplacian_var: float = 0.0
    mean_luminance: float = 0.0
    clipped_shadows: float = 0.0
    clipped_highlights: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the scores as a JSON-ready dict."""
        return {
            "score": round(self.score, 4),
            "resolution_ok": self.resolution_ok,
            "resolution": round(self.resolution, 4),
            "blur": round(self.blur, 4),
            "exposure": round(self.exposure, 4),
            "width": self.width,
            "height": self.height,
            "laplacian_var": round(self.laplacian_var, 2),
            "mean_luminance": round(self.mean_luminance, 2),
            "clipped_shadows": round(self.clipped_shadows, 4),
            "clipped_highlights": round(self.clipped_highlights, 4),
            "reasons": list(self.reasons),
        }


def _ramp(value: float, bad: float, good: float) -> float:
    """0 at ``bad``, 1 at ``good``, linear between (either direction)."""
    if good == bad:
        return 1.0 if value >= good else 0.0
    return min(1.0, max(0.0, (value - bad) / (good - bad)))


def laplacian_variance(gray: Any) -> float:
    """Variance of the 4-neighbour Laplacian of a 2-D float array (0.0 when too small)."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4.0 * gray[1:-1, 1:-1]
    return float(lap.var())


def score_technical(image: Any, *, target: tuple[int, int] = DEFAULT_TARGET) -> TechnicalScore:
    """Score resolution, blur and exposure of an image (PIL, numpy RGB, bytes or path)."""
    import numpy as np
    from PIL import Image

    rgb = to_rgb_image(image)
    width, height = rgb.size
    reasons: list[str] = []

    # Resolution, orientation-agnostic.
    t_long, t_short = max(target), min(target)
    i_long, i_short = max(width, height), min(width, height)
    resolution_ok = i_long >= t_long and i_short >= t_short
    resolution = min(1.0, math.sqrt((width * height) / max(1, target[0] * target[1])))
    if not resolution_ok:
        reasons.append(f"resolution {width}×{height} is below the target {target[0]}×{target[1]}")

    gray_im = rgb.convert("L")
    if max(gray_im.size) > WORK_SIDE:
        gray_im = gray_im.copy()
        gray_im.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    gray = np.asarray(gray_im, dtype=np.float32)

    lap_var = laplacian_variance(gray)
    if lap_var <= BLURRY_LAPLACIAN_VAR:
        blur = 0.0
    else:
        blur = min(1.0, math.log(lap_var / BLURRY_LAPLACIAN_VAR) / math.log(SHARP_LAPLACIAN_VAR / BLURRY_LAPLACIAN_VAR))
    if blur < 0.5:
        reasons.append(
            f"looks blurry: detail (variance of Laplacian) {lap_var:.0f}; sharp images reach {SHARP_LAPLACIAN_VAR:.0f}"
        )

    mean_lum = float(gray.mean()) if gray.size else 0.0
    shadows = float((gray <= 8).mean()) if gray.size else 0.0
    highlights = float((gray >= 247).mean()) if gray.size else 0.0
    shadow_score = 1.0 - _ramp(shadows, CLIP_TOLERANCE, CLIP_FULL_PENALTY)
    highlight_score = 1.0 - _ramp(highlights, CLIP_TOLERANCE, CLIP_FULL_PENALTY)
    lo_good, hi_good = GOOD_MEAN_RANGE
    lo_bad, hi_bad = BAD_MEAN_LIMITS
    mean_score = _ramp(mean_lum, lo_bad, lo_good) if mean_lum < lo_good else _ramp(mean_lum, hi_bad, hi_good)
    exposure = min(shadow_score, highlight_score, mean_score)
    if highlight_score < REPORT_BELOW or (mean_lum > hi_good and mean_score < REPORT_BELOW):
        reasons.append(
            f"overexposed: {highlights:.0%} of pixels are blown-out highlights, mean brightness {mean_lum:.0f}/255"
        )
    if shadow_score < REPORT_BELOW or (mean_lum < lo_good and mean_score < REPORT_BELOW):
        reasons.append(f"underexposed: {shadows:.0%} of pixels are crushed shadows, mean brightness {mean_lum:.0f}/255")

    score = (
        max(blur, 1e-6) ** WEIGHTS["blur"]
        * max(exposure, 1e-6) ** WEIGHTS["exposure"]
        * max(resolution, 1e-6) ** WEIGHTS["resolution"]
    )
    if score < 1e-3:
        score = 0.0
    return TechnicalScore(
        score=score,
        resolution_ok=resolution_ok,
        blur=blur,
        exposure=exposure,
        reasons=reasons,
        resolution=resolution,
        width=width,
        height=height,
        laplacian_var=lap_var,
        mean_luminance=mean_lum,
        clipped_shadows=shadows,
        clipped_highlights=highlights,
    )
