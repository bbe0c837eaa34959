"""Private metadata is stripped and AI provenance (IPTC digital source type in XMP) is added."""

from __future__ import annotations

from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="media tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="media tests need ainfluencer[media]")

from PIL import Image  # noqa: E402

pytest.importorskip("defusedxml")

from ainfluencer import __version__  # noqa: E402
from ainfluencer.media.provenance import availability  # noqa: E402
from ainfluencer.media.provenance.metadata import (  # noqa: E402
    DIGITAL_SOURCE_TYPE_TRAINED,
    build_xmp,
    read_provenance,
    strip_and_label,
)

pytestmark = pytest.mark.nodb

GPS_IFD, EXIF_IFD = 0x8825, 0x8769


def _camera_jpeg(path: Path) -> Path:
    """A 80×40 JPEG as a phone would write it: GPS, make/model, serial, owner, rotated by EXIF orientation."""
    rng = np.random.default_rng(3)
    im = Image.fromarray((rng.random((40, 80, 3)) * 255).astype("uint8"))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "PhoneModel X"
    exif[0x0112] = 6  # rotate 90° CW when displayed
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    sub = exif.get_ifd(EXIF_IFD)
    sub.update({0xA431: "SERIAL-12345", 0xA430: "Jane Doe"})
    im.save(path, "JPEG", exif=exif, quality=90)
    return path


def test_source_really_carries_private_metadata(tmp_path: Path) -> None:
    src = _camera_jpeg(tmp_path / "camera.jpg")
    info = read_provenance(src)
    assert {"Make", "Model", "GPS", "BodySerialNumber", "CameraOwnerName"} <= set(info["private_metadata"])
    assert info["digital_source_type"] is None and not info["ai_generated"]


def test_jpeg_is_stripped_labelled_and_upright(tmp_path: Path) -> None:
    src = _camera_jpeg(tmp_path / "camera.jpg")
    out = strip_and_label(src, tmp_path / "out" / "labelled.jpg", title="Mia at the beach", ai_system="sd-turbo")
    raw = out.read_bytes()
    for secret in (b"SERIAL-12345", b"Jane Doe", b"PhoneMaker", b"PhoneModel"):
        assert secret not in raw
    assert b"Exif\x00\x00" not in raw  # no EXIF block at all, so no GPS
    info = read_provenance(out)
    assert info["private_metadata"] == []
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPE_TRAINED and info["ai_generated"]
    assert info["creator_tool"] == f"AInfluencer/{__version__}"
    assert info["ai_system"] == "sd-turbo"
    assert info["title"] == "Mia at the beach"
    assert "AI-generated" in (info["description"] or "")
    assert (info["width"], info["height"]) == (40, 80)  # orientation applied to the pixels
    with Image.open(out) as im:
        assert 0x0112 not in im.getexif()


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_png_and_webp_carry_the_xmp(tmp_path: Path, suffix: str) -> None:
    src = _camera_jpeg(tmp_path / "camera.jpg")
    out = strip_and_label(src, tmp_path / f"labelled{suffix}")
    info = read_provenance(out)
    assert info["format"] == suffix[1:].upper()
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPE_TRAINED
    assert info["private_metadata"] == []
    if suffix == ".png":
        assert b"iTXtXML:com.adobe.xmp" in out.read_bytes()


def test_rgba_png_to_jpeg_and_in_place(tmp_path: Path) -> None:
    src = tmp_path / "alpha.png"
    Image.new("RGBA", (32, 32), (255, 0, 0, 128)).save(src)
    out = strip_and_label(src, tmp_path / "flat.jpg")
    assert read_provenance(out)["ai_generated"]
    same = strip_and_label(src, src)  # relabel in place, atomically
    assert read_provenance(same)["ai_generated"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.png", "flat.jpg"]  # no temp files left


def test_xmp_escapes_values_and_parses_back(tmp_path: Path) -> None:
    title = 'Ana <& "Co">'
    xmp = build_xmp(title=title)
    assert b"Iptc4xmpExt:DigitalSourceType" in xmp and b'<?xpacket end="w"?>' in xmp
    src = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(src)
    info = read_provenance(strip_and_label(src, tmp_path / "b.png", title=title))
    assert info["title"] == title


def test_bad_destination_and_bad_source(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(src)
    with pytest.raises(ValueError, match=".jpg, .png or .webp"):
        strip_and_label(src, tmp_path / "a.gif")
    from ainfluencer.media.safe_image import MediaRejected

    (tmp_path / "video.jpg").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    with pytest.raises(MediaRejected, match="MP4 video"):
        strip_and_label(tmp_path / "video.jpg", tmp_path / "x.jpg")


def test_availability_reports_ready() -> None:
    assert availability()["metadata"] is None
