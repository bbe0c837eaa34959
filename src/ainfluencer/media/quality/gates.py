"""Quality gates: face consistency, technical quality and near-duplicates, one decision per image.

Each check that falls below the character's :class:`QualityThresholds` adds a
human-readable reason; any reason turns the decision into the character's
``action`` ("flag" for review, or "reject"). Checks that cannot run (no canonical
face yet, OpenCV not installed) add a note instead and never fail the image.

:func:`evaluate` is CPU work (tens of milliseconds per image); call it from a
worker thread, not inside ``async def``.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ainfluencer.media.quality.duplicates import DEFAULT_MAX_DISTANCE, find_near_duplicates, hash_image
from ainfluencer.media.quality.face import DEFAULT_THRESHOLD, FaceEmbedding, FaceScorer, get_face_scorer
from ainfluencer.media.quality.technical import DEFAULT_TARGET, score_technical
from ainfluencer.media.safe_image import to_rgb_image

Decision = Literal["pass", "flag", "reject"]


class QualityThresholds(BaseModel):
    """Per-character gate thresholds; below any of them the image is flagged or rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_face_similarity: float = Field(
        DEFAULT_THRESHOLD, ge=0.0, le=1.0, description="face similarity (clamped SFace cosine); OpenCV's 0.363"
    )
    min_technical: float = Field(0.5, ge=0.0, le=1.0, description="overall technical score 0..1")
    max_phash_distance: int = Field(
        DEFAULT_MAX_DISTANCE, ge=0, le=64, description="bits; at or below this an earlier asset is a near-duplicate"
    )
    action: Literal["flag", "reject"] = "flag"
    target_width: int = Field(DEFAULT_TARGET[0], ge=1, le=16384)
    target_height: int = Field(DEFAULT_TARGET[1], ge=1, le=16384)
    require_face: bool = Field(True, description="with a canonical face set, an image without any face fails")


@dataclass(frozen=True)
class GateResult:
    """The gate's decision for one image, its scores (JSON-ready) and the reasons behind it."""

    decision: Decision
    scores: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    image_hash: str = ""
    duplicates: list[tuple[Any, int]] = field(default_factory=list)


def evaluate(
    image: Any,
    *,
    canonical_embedding: FaceEmbedding | None,
    earlier_hashes: Iterable[tuple[Hashable, str]],
    thresholds: QualityThresholds | None = None,
    face_scorer: FaceScorer | None = None,
) -> GateResult:
    """Score an image against the character's canonical face, quality bar and earlier assets."""
    limits = thresholds or QualityThresholds()
    rgb = to_rgb_image(image)
    reasons: list[str] = []
    notes: list[str] = []
    scores: dict[str, Any] = {}

    technical = score_technical(rgb, target=(limits.target_width, limits.target_height))
    scores["technical"] = round(technical.score, 4)
    scores["technical_detail"] = technical.as_dict()
    if technical.score < limits.min_technical:
        detail = "; ".join(technical.reasons) or "below the bar"
        reasons.append(f"technical quality {technical.score:.2f} is below {limits.min_technical:.2f}: {detail}")

    scores["face_similarity"] = None
    scores["faces_found"] = None
    if canonical_embedding is None:
        notes.append("face consistency not checked: the character has no canonical face yet")
    else:
        scorer = face_scorer or get_face_scorer()
        face = scorer.score(canonical_embedding, rgb, threshold=limits.min_face_similarity)
        if not face.available:
            notes.append(f"face consistency not checked: {face.reason}")
        else:
            scores["faces_found"] = face.faces_found
            if face.faces_found == 0:
                if limits.require_face:
                    reasons.append("no face found, but the character's face is expected")
                else:
                    notes.append("no face found")
            else:
                scores["face_similarity"] = round(face.similarity, 4)
                if face.similarity < limits.min_face_similarity:
                    reasons.append(
                        f"face does not match the canonical face: similarity {face.similarity:.2f} "
                        f"is below {limits.min_face_similarity:.2f}"
                    )

    image_hash = hash_image(rgb)
    duplicates = find_near_duplicates(image_hash, earlier_hashes, limits.max_phash_distance)
    scores["phash"] = image_hash
    scores["nearest_duplicate_distance"] = duplicates[0][1] if duplicates else None
    if duplicates:
        first_id, distance = duplicates[0]
        more = f" and {len(duplicates) - 1} more" if len(duplicates) > 1 else ""
        reasons.append(f"near-duplicate of asset {first_id}{more} (distance {distance} ≤ {limits.max_phash_distance})")

    decision: Decision = limits.action if reasons else "pass"
    return GateResult(
        decision=decision,
        scores=scores,
        reasons=reasons,
        notes=notes,
        image_hash=image_hash,
        duplicates=duplicates,
    )
