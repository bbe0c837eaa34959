"""Strip private metadata from images and label what they are (IPTC digital source type in XMP).

:func:`strip_and_label` re-encodes the pixels into a fresh image, so nothing of the
source's EXIF (GPS, camera make/model, serial numbers, maker notes, owner name),
IPTC-IIM, XMP or text chunks survives. The EXIF orientation is applied to the
pixels first, so the picture still looks the right way up. Only the ICC colour
profile is carried over. Then our own XMP packet is written:

- ``Iptc4xmpExt:DigitalSourceType``: ``…/digitalsourcetype/trainedAlgorithmicMedia`` for
  generated media (IPTC's term for media created by a trained AI model; the value platforms
  and the EU AI Act labelling guidance look for), ``compositeWithTrainedAlgorithmicMedia``
  for AI parts mixed with other media, and for uploads that are not AI what the owner
  declared (``digitalCapture``, ``minorHumanEdits``, ``digitalCreation``; see :data:`ORIGINS`);
- ``Iptc4xmpExt:AISystemUsed`` (the model, when given), ``xmp:CreatorTool``,
  ``xmp:CreateDate``, ``dc:title`` and ``dc:description`` (a line saying what it is).

Where it goes: JPEG APP1 ``http://ns.adobe.com/xap/1.0/`` (Pillow's ``xmp=``),
WebP ``XMP `` chunk (Pillow's ``xmp=``), PNG ``iTXt`` keyword ``XML:com.adobe.xmp``
(Pillow's PNG writer has no ``xmp=`` option, so the chunk is added via ``PngInfo``).

Video containers are not handled here; their provenance is the C2PA manifest.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ainfluencer import __version__
from ainfluencer.media.safe_image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, open_image_safely

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
DIGITAL_SOURCE_TYPE_TRAINED = IPTC_DST + "trainedAlgorithmicMedia"
DIGITAL_SOURCE_TYPE_COMPOSITE_AI = IPTC_DST + "compositeWithTrainedAlgorithmicMedia"
DIGITAL_SOURCE_TYPE_CAPTURE = IPTC_DST + "digitalCapture"
DIGITAL_SOURCE_TYPE_MINOR_EDITS = IPTC_DST + "minorHumanEdits"
DIGITAL_SOURCE_TYPE_CREATION = IPTC_DST + "digitalCreation"
# Source types that say a trained model made (part of) the media; anything else is not labelled AI.
AI_SOURCE_TYPES = frozenset({DIGITAL_SOURCE_TYPE_TRAINED, DIGITAL_SOURCE_TYPE_COMPOSITE_AI})


@dataclass(frozen=True)
class Origin:
    """What a file is, as its owner declares it: the IPTC digital source type and a one-line description."""

    key: str
    label: str
    digital_source_type: str
    description: str

    @property
    def ai(self) -> bool:
        """True when a trained model made the media or part of it."""
        return self.digital_source_type in AI_SOURCE_TYPES


# The choices an upload offers (key → IPTC NewsCodes digital source type). "ai" is also what generated media gets.
ORIGINS: dict[str, Origin] = {
    o.key: o
    for o in (
        Origin("camera", "Camera photo (not edited beyond crop/exposure)", DIGITAL_SOURCE_TYPE_CAPTURE,
               "Photo taken with a camera."),
        Origin("edited", "Edited photo (retouched by a person, no AI)", DIGITAL_SOURCE_TYPE_MINOR_EDITS,
               "Camera photo edited by a person without generative AI."),
        Origin("created", "Digital art made by a person (no AI)", DIGITAL_SOURCE_TYPE_CREATION,
               "Digital artwork made by a person without generative AI."),
        Origin("ai", "AI-generated", DIGITAL_SOURCE_TYPE_TRAINED,
               "AI-generated image of a virtual character (not a real person)."),
        Origin("composite", "Composite: AI-generated parts combined with photos or other media",
               DIGITAL_SOURCE_TYPE_COMPOSITE_AI,
               "Composite made with AI-generated elements (a virtual character, not a real person)."),
    )
}
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
CREATOR_TOOL = f"AInfluencer/{__version__}"
DEFAULT_DESCRIPTION = "AI-generated image of a virtual character (not a real person)."

_FORMATS_BY_SUFFIX = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}

# EXIF tags that identify a person, place or device (base IFD and Exif sub-IFD).
_PRIVATE_BASE_TAGS = {0x010F: "Make", 0x0110: "Model", 0x013B: "Artist", 0x013C: "HostComputer", 0x8298: "Copyright"}
_PRIVATE_EXIF_TAGS = {
    0x927C: "MakerNote",
    0xA420: "ImageUniqueID",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0xA433: "LensMake",
    0xA434: "LensModel",
    0xA435: "LensSerialNumber",
    0x9286: "UserComment",
}
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769


def build_xmp(
    *,
    title: str | None = None,
    description: str | None = DEFAULT_DESCRIPTION,
    creator_tool: str = CREATOR_TOOL,
    ai_system: str | None = None,
    digital_source_type: str = DIGITAL_SOURCE_TYPE_TRAINED,
    created: dt.datetime | None = None,
) -> bytes:
    """Return an XMP packet declaring the digital source type, creator tool and dc fields."""
    when = (created or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    attrs = [
        f"Iptc4xmpExt:DigitalSourceType={quoteattr(digital_source_type)}",
        f"xmp:CreatorTool={quoteattr(creator_tool)}",
        f"xmp:CreateDate={quoteattr(when)}",
    ]
    if ai_system:
        attrs.append(f"Iptc4xmpExt:AISystemUsed={quoteattr(ai_system)}")
    children = []
    for tag, value in (("dc:title", title), ("dc:description", description)):
        if value:
            children.append(
                f'   <{tag}><rdf:Alt><rdf:li xml:lang="x-default">{escape(value)}</rdf:li></rdf:Alt></{tag}>'
            )
    packet = "\n".join(
        [
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>',
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            f' <rdf:RDF xmlns:rdf="{NS_RDF}">',
            '  <rdf:Description rdf:about=""',
            f'    xmlns:Iptc4xmpExt="{NS_IPTC_EXT}"',
            f'    xmlns:xmp="{NS_XMP}"',
            f'    xmlns:dc="{NS_DC}"',
            "    " + "\n    ".join(attrs) + ">",
            *children,
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
            '<?xpacket end="w"?>',
        ]
    )
    return packet.encode("utf-8")


def _xmp_values(xmp: bytes | str) -> dict[str, str | None]:
    """Pull the digital source type, creator tool, AI system, title and description out of an XMP packet."""
    from defusedxml import ElementTree

    raw = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    raw = raw.strip(b"\x00 \r\n\t")
    root = ElementTree.fromstring(raw)
    wanted = {
        f"{{{NS_IPTC_EXT}}}DigitalSourceType": "digital_source_type",
        f"{{{NS_IPTC_EXT}}}AISystemUsed": "ai_system",
        f"{{{NS_XMP}}}CreatorTool": "creator_tool",
        f"{{{NS_DC}}}title": "title",
        f"{{{NS_DC}}}description": "description",
    }
    found: dict[str, str | None] = dict.fromkeys(wanted.values())
    for element in root.iter():
        for attr, value in element.attrib.items():
            if attr in wanted and found[wanted[attr]] is None:
                found[wanted[attr]] = value
        if element.tag in wanted and found[wanted[element.tag]] is None:
            text = (element.text or "").strip()
            if not text:  # rdf:Alt / rdf:Seq wrappers, or rdf:resource
                text = element.attrib.get(f"{{{NS_RDF}}}resource", "")
                for li in element.iter(f"{{{NS_RDF}}}li"):
                    text = (li.text or "").strip()
                    break
            found[wanted[element.tag]] = text or None
    return found


def _private_exif(im: Any) -> list[str]:
    exif = im.getexif()
    names = [name for tag, name in _PRIVATE_BASE_TAGS.items() if tag in exif]
    if exif.get_ifd(_GPS_IFD):
        names.append("GPS")
    exif_ifd = exif.get_ifd(_EXIF_IFD)
    names.extend(name for tag, name in _PRIVATE_EXIF_TAGS.items() if tag in exif_ifd)
    return names


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an image's AI labelling (XMP digital source type, creator tool) and list private EXIF left in it."""
    im = open_image_safely(path, max_pixels=DEFAULT_MAX_PIXELS, max_bytes=DEFAULT_MAX_BYTES)
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    values: dict[str, str | None] = {
        "digital_source_type": None,
        "ai_system": None,
        "creator_tool": None,
        "title": None,
        "description": None,
    }
    xmp_error = None
    if xmp:
        try:
            values = _xmp_values(xmp)
        except Exception as exc:  # a broken packet is reported, never fatal
            xmp_error = f"unreadable XMP: {exc}"
    return {
        "format": im.format,
        "width": im.width,
        "height": im.height,
        "has_xmp": bool(xmp),
        "xmp_error": xmp_error,
        **values,
        "ai_generated": values["digital_source_type"] in AI_SOURCE_TYPES,
        "private_metadata": _private_exif(im),
    }


def _clean_copy(im: Any, fmt: str) -> Any:
    """Orientation applied, mode fit for the format, and a pixel-only copy carrying no metadata at all."""
    from PIL import Image, ImageOps

    im = ImageOps.exif_transpose(im)
    mode = im.mode
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info)
    if fmt == "JPEG":
        target = "L" if mode in ("L", "1") else "RGB"
        if has_alpha:
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            im = flat
    elif fmt == "PNG":
        target = mode if mode in ("RGB", "RGBA", "L", "LA", "I;16") else ("RGBA" if has_alpha else "RGB")
    else:  # WEBP
        target = "RGBA" if has_alpha else "RGB"
    if im.mode != target:
        im = im.convert(target)
    return Image.frombytes(im.mode, im.size, im.tobytes())


def strip_and_label(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    title: str | None = None,
    description: str | None = DEFAULT_DESCRIPTION,
    ai_system: str | None = None,
    creator_tool: str = CREATOR_TOOL,
    quality: int = 95,
    digital_source_type: str = DIGITAL_SOURCE_TYPE_TRAINED,
) -> Path:
    """Write dst (JPEG/PNG/WebP by suffix) with private metadata removed and a provenance XMP packet added.

    ``digital_source_type`` is what the file is (an IPTC NewsCodes URI; see :data:`ORIGINS`): a camera
    photo keeps ``digitalCapture`` and is not labelled AI.
    """
    from PIL import PngImagePlugin

    dst_path = Path(dst)
    fmt = _FORMATS_BY_SUFFIX.get(dst_path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot label {dst_path.name}: use a .jpg, .png or .webp destination")
    source = open_image_safely(src)
    icc = source.info.get("icc_profile")
    clean = _clean_copy(source, fmt)
    xmp = build_xmp(title=title, description=description, creator_tool=creator_tool, ai_system=ai_system,
                    digital_source_type=digital_source_type)

    options: dict[str, Any] = {}
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=quality, xmp=xmp, optimize=True)
    elif fmt == "WEBP":
        options.update(quality=quality, xmp=xmp)
    else:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8"), zip=False)
        options.update(pnginfo=info, optimize=False)

    dst_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".label-", suffix=dst_path.suffix, dir=dst_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            clean.save(fh, format=fmt, **options)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; media files are served/read by others
        os.replace(tmp_name, dst_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dst_path
