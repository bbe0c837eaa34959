"""C2PA: local CA, signing of JPEG/PNG/MP4, verification with our CA as trust anchor, tamper detection."""

from __future__ import annotations

import io
import stat
import struct
import zlib
from pathlib import Path

import pytest

np = pytest.importorskip("numpy", reason="media tests need ainfluencer[media]")
pytest.importorskip("PIL", reason="media tests need ainfluencer[media]")

from PIL import Image  # noqa: E402

pytest.importorskip("c2pa", reason="C2PA needs ainfluencer[media]")

from cryptography import x509  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402

from ainfluencer import __version__  # noqa: E402
from ainfluencer.media.provenance.c2pa_sign import (  # noqa: E402
    SigningCredentials,
    SigningError,
    init_local_ca,
    issue_signer,
    sign_file,
    sniff_mime,
    verify_file,
)
from ainfluencer.media.provenance.metadata import (  # noqa: E402
    DIGITAL_SOURCE_TYPE_TRAINED,
    read_provenance,
    strip_and_label,
)

pytestmark = pytest.mark.nodb


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> SigningCredentials:
    return init_local_ca(tmp_path_factory.mktemp("keys") / "c2pa")


@pytest.fixture(scope="module")
def other_creds(tmp_path_factory: pytest.TempPathFactory) -> SigningCredentials:
    return init_local_ca(tmp_path_factory.mktemp("other") / "c2pa", organization="Someone Else")


def _image(path: Path, fmt: str) -> Path:
    rng = np.random.default_rng(4)
    Image.fromarray((rng.random((64, 96, 3)) * 255).astype("uint8")).save(path, fmt)
    return path


def _mp4(path: Path) -> Path:
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for i in range(10):
        writer.write(np.full((64, 64, 3), i * 20, np.uint8))
    writer.release()
    return path


def _png_with_one_pixel_changed(data: bytes) -> bytes:
    """Rewrite a PNG's image data with one pixel changed; every other chunk (the C2PA one too) is kept."""
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    pixels = bytearray(zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT")))
    pixels[1] ^= 0x01  # first pixel's red channel (byte 0 is the scanline filter type)
    out, wrote_idat = [data[:8]], False
    for kind, body in chunks:
        if kind == b"IDAT":
            if wrote_idat:
                continue
            kind, body, wrote_idat = b"IDAT", zlib.compress(bytes(pixels)), True
        out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
    return b"".join(out)


def test_local_ca_files_and_certificate_profile(creds: SigningCredentials) -> None:
    assert stat.S_IMODE(creds.directory.stat().st_mode) == 0o700
    for key in (creds.ca_key, creds.signer_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(creds.signer_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.issuer == ca.subject and leaf.issuer != leaf.subject  # not self-signed
    leaf.verify_directly_issued_by(ca)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_init_refuses_to_overwrite(creds: SigningCredentials) -> None:
    with pytest.raises(SigningError, match="already exists"):
        init_local_ca(creds.directory)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_signed_image_verifies_with_our_ca(tmp_path: Path, creds: SigningCredentials, fmt: str) -> None:
    src = _image(tmp_path / f"src.{fmt.lower()}", fmt)
    labelled = strip_and_label(src, tmp_path / f"labelled.{fmt.lower()}")
    signed = sign_file(labelled, tmp_path / f"signed.{fmt.lower()}", credentials=creds, title="Mia, beach day")
    report = verify_file(signed, trust_anchors_pem=creds.trust_anchors_pem())
    assert report.valid, report.errors
    assert report.state == "Trusted" and report.errors == []
    assert report.signed_by == "AInfluencer self-hosted content signer"
    assert report.digital_source_type == DIGITAL_SOURCE_TYPE_TRAINED
    assert report.claim_generator == f"AInfluencer/{__version__}"
    assert report.title == "Mia, beach day"
    assert report.as_dict()["valid"] is True
    assert read_provenance(signed)["digital_source_type"] == DIGITAL_SOURCE_TYPE_TRAINED  # the XMP label survives


def test_tampered_jpeg_bytes_are_detected(tmp_path: Path, creds: SigningCredentials) -> None:
    signed = sign_file(_image(tmp_path / "a.jpg", "JPEG"), tmp_path / "s.jpg", credentials=creds)
    data = bytearray(signed.read_bytes())
    data[-20] ^= 0xFF  # inside the entropy-coded image data, before EOI
    tampered = tmp_path / "t.jpg"
    tampered.write_bytes(bytes(data))
    report = verify_file(tampered, trust_anchors_pem=creds.trust_anchors_pem())
    assert not report.valid and report.state == "Invalid"
    assert any(e.startswith("assertion.dataHash.mismatch") for e in report.errors)


def test_one_changed_png_pixel_is_detected(tmp_path: Path, creds: SigningCredentials) -> None:
    signed = sign_file(_image(tmp_path / "a.png", "PNG"), tmp_path / "s.png", credentials=creds)
    tampered = tmp_path / "t.png"
    tampered.write_bytes(_png_with_one_pixel_changed(signed.read_bytes()))
    with Image.open(io.BytesIO(tampered.read_bytes())) as a, Image.open(signed) as b:
        diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int))
        # One filtered byte changed (PNG row filters may carry it to a few neighbours); still a valid PNG.
        assert 0 < np.count_nonzero(diff) <= 16
    report = verify_file(tampered, trust_anchors_pem=creds.trust_anchors_pem())
    assert not report.valid and report.has_manifest
    assert any("mismatch" in e for e in report.errors)


def test_mp4_signs_verifies_and_detects_tampering(tmp_path: Path, creds: SigningCredentials) -> None:
    signed = sign_file(_mp4(tmp_path / "clip.mp4"), tmp_path / "signed.mp4", credentials=creds, title="short")
    assert sniff_mime(signed) == "video/mp4"
    report = verify_file(signed, trust_anchors_pem=creds.trust_anchors_pem())
    assert report.valid, report.errors
    assert report.digital_source_type == DIGITAL_SOURCE_TYPE_TRAINED
    data = bytearray(signed.read_bytes())
    data[data.find(b"mdat") + 40] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    bad = verify_file(tampered, trust_anchors_pem=creds.trust_anchors_pem())
    assert not bad.valid and any(e.startswith("assertion.bmffHash.mismatch") for e in bad.errors)


def test_file_signed_by_another_ca_is_not_trusted(
    tmp_path: Path, creds: SigningCredentials, other_creds: SigningCredentials
) -> None:
    signed = sign_file(_image(tmp_path / "a.jpg", "JPEG"), tmp_path / "s.jpg", credentials=other_creds)
    report = verify_file(signed, trust_anchors_pem=creds.trust_anchors_pem())
    assert not report.valid
    assert report.signed_by == "Someone Else content signer"
    assert any(e.startswith("signingCredential.untrusted") for e in report.errors)
    assert verify_file(signed, trust_anchors_pem=other_creds.trust_anchors_pem()).valid


def test_unsigned_and_unsupported_files(tmp_path: Path, creds: SigningCredentials) -> None:
    plain = _image(tmp_path / "plain.jpg", "JPEG")
    report = verify_file(plain, trust_anchors_pem=creds.trust_anchors_pem())
    assert not report.valid and not report.has_manifest and report.errors == ["no C2PA manifest found"]
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(SigningError, match="cannot carry C2PA"):
        sign_file(text, tmp_path / "x.txt", credentials=creds)
    assert not verify_file(text, trust_anchors_pem=creds.trust_anchors_pem()).valid
    with pytest.raises(ValueError):
        verify_file(plain, trust_anchors_pem="not a pem")


def test_missing_credentials_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="ainfluencer provenance init"):
        SigningCredentials.load(tmp_path / "nothing")
    with pytest.raises(SigningError, match="ainfluencer provenance init"):
        sign_file(_image(tmp_path / "a.jpg", "JPEG"), tmp_path / "b.jpg", credentials=SigningCredentials.at(tmp_path))


def test_signer_rotation_keeps_the_same_trust_anchor(tmp_path: Path) -> None:
    creds = init_local_ca(tmp_path / "keys")
    before = creds.signer_cert.read_bytes()
    issue_signer(creds.directory)
    assert creds.signer_cert.read_bytes() != before
    assert stat.S_IMODE(creds.signer_key.stat().st_mode) == 0o600
    signed = sign_file(_image(tmp_path / "a.png", "PNG"), tmp_path / "s.png", credentials=creds)
    assert verify_file(signed, trust_anchors_pem=creds.trust_anchors_pem()).valid
