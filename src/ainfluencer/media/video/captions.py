"""Captions timed to the narration: short lines from word timings, written as ASS (burned in) and SRT.

The font is DejaVu Sans Bold from matplotlib's bundled fonts (a dependency of the ``media`` extra), so
captions render the same on a fresh machine with no system fonts; ``fonts_dir`` copies the font files
into a folder that is handed to libass as ``fontsdir``.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ainfluencer.backends.voice.base import WordTiming
from ainfluencer.errors import AppError
from ainfluencer.media.video.presets import VideoPreset

FONT_NAME = "DejaVu Sans"
FONT_FILES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")
MIN_SHOW_S = 0.7  # a line stays at least this long (unless the next one starts)
BRIDGE_GAP_S = 0.45  # gaps shorter than this are closed so captions do not flicker


class FontMissing(AppError):
    """The caption font cannot be found."""

    status_code = 503
    code = "font_missing"


def font_source_dir() -> Path:
    """The folder holding DejaVu Sans (matplotlib's bundled fonts)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise FontMissing("captions need the DejaVu font: pip install 'ainfluencer[media]' (matplotlib)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    if not (folder / FONT_FILES[0]).is_file():
        raise FontMissing(f"DejaVu Sans Bold is missing from {folder}; reinstall matplotlib")
    return folder


def fonts_dir(dest: Path) -> Path:
    """Copy the caption fonts into ``dest`` (so libass loads only these) and return it."""
    src = font_source_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name in FONT_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
    return dest


@dataclass(frozen=True)
class CaptionStyle:
    """Where and how big captions are for a frame size."""

    width: int
    height: int
    font_size: int
    margin_v: int
    margin_h: int
    max_chars: int
    outline: int

    @classmethod
    def for_preset(cls, preset: VideoPreset) -> CaptionStyle:
        """The caption layout of a preset, scaled to its frame size."""
        size = max(10, round(min(preset.width, preset.height) * preset.caption_font_frac))
        return cls(
            width=preset.width,
            height=preset.height,
            font_size=size,
            margin_v=round(preset.height * preset.caption_margin_frac),
            margin_h=round(preset.width * 0.06),
            max_chars=preset.caption_max_chars,
            outline=max(1, round(size * 0.08)),
        )

    def region(self) -> tuple[int, int, int, int]:
        """The (left, top, right, bottom) band in which a one-line caption is drawn."""
        bottom = self.height - self.margin_v + self.outline * 2
        top = bottom - round(self.font_size * 1.5) - self.outline * 2
        return self.margin_h, max(0, top), self.width - self.margin_h, min(self.height, bottom)


@dataclass(frozen=True)
class CaptionLine:
    """One caption on screen from ``start`` to ``end`` seconds."""

    text: str
    start: float
    end: float


def _balanced(words: Sequence[WordTiming], max_chars: int) -> list[list[WordTiming]]:
    """Break one sentence into the fewest lines of at most ``max_chars``, with lengths about equal."""
    text_len = len(" ".join(w.word for w in words))
    count = max(1, math.ceil(text_len / max_chars))
    target = text_len / count
    lines: list[list[WordTiming]] = [[]]
    length = 0
    for w in words:
        extra = len(w.word) + (1 if lines[-1] else 0)
        if lines[-1] and (
            length + extra > max_chars
            or (len(lines) < count and abs(length - target) <= abs(length + extra - target))
        ):
            lines.append([])
            length, extra = 0, len(w.word)
        lines[-1].append(w)
        length += extra
    return [line for line in lines if line]


def group_lines(words: Sequence[WordTiming], *, max_chars: int) -> list[CaptionLine]:
    """Group timed words into short lines: each sentence split into balanced lines of at most ``max_chars``."""
    sentences: list[list[WordTiming]] = [[]]
    for w in words:
        sentences[-1].append(w)
        if w.word[-1:] in ".!?…":
            sentences.append([])
    lines: list[CaptionLine] = []
    for sentence in sentences:
        if not sentence:
            continue
        for group in _balanced(sentence, max_chars):
            lines.append(CaptionLine(" ".join(w.word for w in group), group[0].start, group[-1].end))
    return lines


def settle(lines: list[CaptionLine], *, until: float | None = None) -> list[CaptionLine]:
    """Sort lines and close small gaps, keep each on screen long enough, never overlap the next."""
    lines = sorted(lines, key=lambda c: c.start)
    out: list[CaptionLine] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1].start if i + 1 < len(lines) else until
        end = max(line.end, line.start + MIN_SHOW_S)
        if nxt is not None:
            if nxt - end < BRIDGE_GAP_S:
                end = nxt
            end = min(end, nxt)
        if end - line.start > 0.05:
            out.append(CaptionLine(line.text, round(line.start, 3), round(end, 3)))
    return out


def _ass_time(t: float) -> str:
    cs = max(0, round(t * 100))
    h, rem = divmod(cs, 360_000)
    m, rem = divmod(rem, 6000)
    s, cs = divmod(rem, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _srt_time(t: float) -> str:
    ms = max(0, round(t * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _ass_text(text: str) -> str:
    # braces open override blocks and a backslash starts an escape in ASS; captions need neither
    return text.replace("\\", "/").replace("{", "(").replace("}", ")").replace("\n", " ")


def to_ass(lines: Sequence[CaptionLine], style: CaptionStyle) -> str:
    """An ASS subtitle document for ``lines`` in ``style`` (PlayRes = frame size, so sizes are pixels)."""
    header = f"""[Script Info]
ScriptType: v4.00+
PlayResX: {style.width}
PlayResY: {style.height}
WrapStyle: 0
ScaledBorderAndShadow: yes
YCbCr Matrix: TV.709

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Caption,{FONT_NAME},{style.font_size},&H00FFFFFF,&H00FFFFFF,&H00000000,&H80000000,-1,0,0,0,100,100,0,0,1,\
{style.outline},{max(1, style.outline // 2)},2,{style.margin_h},{style.margin_h},{style.margin_v},1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""
    events = [
        f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Caption,,0,0,0,,{_ass_text(c.text)}" for c in lines
    ]
    return header + "\n".join(events) + "\n"


def to_srt(lines: Sequence[CaptionLine]) -> str:
    """An SRT document for ``lines`` (for platforms that take a caption file next to the video)."""
    blocks = [
        f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text.replace(chr(10), ' ')}\n"
        for i, c in enumerate(lines, 1)
    ]
    return "\n".join(blocks)
