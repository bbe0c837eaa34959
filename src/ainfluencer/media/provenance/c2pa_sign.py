"""C2PA manifests: a local signing CA, signing of images/videos, and verification against our CA.

A self-hosted install has no certificate from a public C2PA CA, so
:func:`init_local_ca` makes a small private PKI the way the C2PA certificate
profile wants it (checked by c2pa-rs when signing and when reading):

- a root CA: P-256 key, ``basicConstraints CA:TRUE, pathlen 0`` (critical),
  ``keyUsage keyCertSign, cRLSign`` (critical), subject key identifier;
- a signer ("leaf") issued by that CA: P-256 key, ``basicConstraints CA:FALSE``
  (critical), ``keyUsage digitalSignature`` (critical), ``extendedKeyUsage
  emailProtection`` (one of the EKUs C2PA allows; ``anyExtendedKeyUsage`` is
  refused), subject and authority key identifiers. A self-signed leaf is refused
  by c2pa-rs ("the certificate was self-signed"); a leaf without an EKU is refused
  ("the certificate is invalid").

Private keys are written ``0600`` in a ``0700`` folder. Manifests are signed with
ES256; no timestamp authority is used (a self-hosted install may be offline), so
a manifest stays valid only while the signer certificate is (``signer_days``).

Verification reads the manifest with only our CA as trust anchor (``trust.trust_anchors``
in a per-call ``c2pa.Context``; the deprecated process-wide ``load_settings`` is not used)
and with OCSP and remote-manifest fetching off. ``valid`` means c2pa-rs reports the
state ``Trusted``: the signature and every hash check out *and* the chain ends at
our CA. A file signed by another CA reads as ``Valid`` with ``signingCredential.untrusted``;
a changed pixel or byte reads as ``Invalid`` (``assertion.dataHash.mismatch`` /
``assertion.bmffHash.mismatch``). Both give ``valid=False`` with the codes in ``errors``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ainfluencer import __version__
from ainfluencer.media.provenance.metadata import DIGITAL_SOURCE_TYPE_TRAINED

CA_CERT_FILE = "c2pa-ca.pem"
CA_KEY_FILE = "c2pa-ca.key"
SIGNER_CERT_FILE = "c2pa-signer.pem"
SIGNER_KEY_FILE = "c2pa-signer.key"
CLAIM_GENERATOR_NAME = "AInfluencer"
UNAVAILABLE = "unavailable: install ainfluencer[media]"

_READ_SETTINGS: dict[str, Any] = {
    "verify": {"verify_trust": True, "ocsp_fetch": False, "remote_manifest_fetch": False},
}


class ProvenanceUnavailable(RuntimeError):
    """c2pa-python is not installed."""


class SigningError(RuntimeError):
    """Signing could not happen: no credentials, unsupported file type, or c2pa refused."""


@dataclass(frozen=True)
class SigningCredentials:
    """Paths of the local CA and the signer certificate/key made by :func:`init_local_ca`."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    signer_cert: Path
    signer_key: Path

    @classmethod
    def at(cls, directory: str | os.PathLike[str]) -> SigningCredentials:
        """Credential paths inside a folder (they may not exist yet)."""
        d = Path(directory)
        return cls(d, d / CA_CERT_FILE, d / CA_KEY_FILE, d / SIGNER_CERT_FILE, d / SIGNER_KEY_FILE)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> SigningCredentials:
        """Credentials in a folder, or SigningError telling how to create them."""
        creds = cls.at(directory)
        missing = [p.name for p in (creds.ca_cert, creds.signer_cert, creds.signer_key) if not p.is_file()]
        if missing:
            raise SigningError(
                f"C2PA signing is not set up in {creds.directory} (missing {', '.join(missing)}); "
                "run `ainfluencer provenance init`"
            )
        return creds

    def trust_anchors_pem(self) -> str:
        """The CA certificate (PEM) to use as trust anchor when verifying."""
        return self.ca_cert.read_text()


@dataclass(frozen=True)
class ProvenanceReport:
    """What reading a file's C2PA manifest back found."""

    valid: bool
    signed_by: str | None = None
    digital_source_type: str | None = None
    errors: list[str] = field(default_factory=list)
    has_manifest: bool = False
    state: str | None = None
    issuer: str | None = None
    title: str | None = None
    claim_generator: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the asset's provenance column."""
        return {
            "valid": self.valid,
            "state": self.state,
            "has_manifest": self.has_manifest,
            "signed_by": self.signed_by,
            "issuer": self.issuer,
            "digital_source_type": self.digital_source_type,
            "title": self.title,
            "claim_generator": self.claim_generator,
            "errors": list(self.errors),
        }


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:
        raise ProvenanceUnavailable(f"{UNAVAILABLE} (c2pa-python: {exc})") from None
    return c2pa


def sniff_mime(path: str | os.PathLike[str]) -> str:
    """MIME type of a file C2PA can carry (JPEG, PNG, WebP, MP4/MOV, WAV, MP3) from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    raise SigningError(f"{Path(path).name}: not a JPEG, PNG, WebP, MP4/MOV, WAV or MP3 file; cannot carry C2PA here")


# -- local CA -------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _issue_signer_cert(ca_key: Any, ca_cert: Any, organization: str, days: int) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} content signer"),
        ]
    )
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_local_ca(
    directory: str | os.PathLike[str],
    *,
    organization: str = "AInfluencer self-hosted",
    force: bool = False,
    ca_days: int = 3650,
    signer_days: int = 730,
) -> SigningCredentials:
    """Create a local C2PA signing CA and a signer certificate (ES256/P-256) in directory; keys are 0600."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    creds = SigningCredentials.at(directory)
    if creds.ca_cert.exists() and not force:
        raise SigningError(
            f"a signing CA already exists in {creds.directory}; pass force=True to replace it "
            "(files signed before then will no longer verify against the new CA)"
        )
    creds.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(creds.directory, 0o700)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{organization} C2PA root CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=ca_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key, signer_cert = _issue_signer_cert(ca_key, ca_cert, organization, signer_days)
    _write_private(creds.ca_key, _pem_key(ca_key))
    _write_private(creds.signer_key, _pem_key(signer_key))
    _write_public(creds.signer_cert, _pem_cert(signer_cert))
    _write_public(creds.ca_cert, _pem_cert(ca_cert))
    return creds


def ensure_local_ca(directory: str | os.PathLike[str], *, organization: str = "AInfluencer self-hosted") -> bool:
    """Create the local CA and signer when the folder has none (at app start); True when it made one.

    Built in a private sibling folder and moved into place with one rename, so a web process and a
    worker starting together cannot interleave two CAs: the loser's rename fails and it keeps the
    winner's. A folder that holds some credential files but not all is left alone (and logged by the
    caller): replacing a CA makes earlier files stop verifying, so that is ``provenance init --force``.
    """
    target = Path(directory)
    creds = SigningCredentials.at(target)
    if target.exists() and any(target.iterdir()):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".provenance-", dir=target.parent))
    try:
        init_local_ca(staging, organization=organization)
        try:
            os.rename(staging, target)  # replaces only an empty folder; fails if another process won
        except OSError:
            if creds.ca_cert.is_file():
                return False
            raise
    finally:
        if staging.exists():
            for child in staging.iterdir():
                child.unlink()
            staging.rmdir()
    return True


def issue_signer(directory: str | os.PathLike[str], *, days: int = 730) -> SigningCredentials:
    """Replace the signer certificate/key with a fresh one from the existing local CA (rotation)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    creds = SigningCredentials.at(directory)
    if not creds.ca_key.is_file() or not creds.ca_cert.is_file():
        raise SigningError(f"no local CA in {creds.directory}; run `ainfluencer provenance init` first")
    ca_cert = x509.load_pem_x509_certificate(creds.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(creds.ca_key.read_bytes(), password=None)
    organization = ca_cert.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)[0].value
    key, cert = _issue_signer_cert(ca_key, ca_cert, str(organization), days)
    _write_private(creds.signer_key, _pem_key(key))
    _write_public(creds.signer_cert, _pem_cert(cert))
    return creds


# -- signing ----------------------------------------------------------------------------------------


def build_manifest(
    *,
    title: str,
    digital_source_type: str = DIGITAL_SOURCE_TYPE_TRAINED,
    ai_system: str | None = None,
    extra_assertions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The manifest definition: title, claim generator AInfluencer/<version>, c2pa.created + digital source type."""
    action: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": digital_source_type,
        "softwareAgent": {"name": CLAIM_GENERATOR_NAME, "version": __version__},
    }
    if ai_system:
        action["parameters"] = {"description": f"generated with {ai_system}"}
    return {
        "claim_generator_info": [{"name": CLAIM_GENERATOR_NAME, "version": __version__}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}, *extra_assertions],
    }


def sign_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    credentials: SigningCredentials,
    title: str | None = None,
    ai_system: str | None = None,
    digital_source_type: str = DIGITAL_SOURCE_TYPE_TRAINED,
    extra_assertions: Sequence[dict[str, Any]] = (),
) -> Path:
    """Embed a signed C2PA manifest (c2pa.created, trainedAlgorithmicMedia) into a copy of src at dst."""
    c2pa = _c2pa()
    src_path, dst_path = Path(src), Path(dst)
    mime = sniff_mime(src_path)
    manifest = build_manifest(
        title=title or dst_path.name,
        digital_source_type=digital_source_type,
        ai_system=ai_system,
        extra_assertions=extra_assertions,
    )
    try:
        info = c2pa.C2paSignerInfo(
            b"es256", credentials.signer_cert.read_bytes(), credentials.signer_key.read_bytes(), None
        )
    except FileNotFoundError:
        SigningCredentials.load(credentials.directory)  # raises the "run provenance init" message
        raise
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".c2pa-", suffix=dst_path.suffix, dir=dst_path.parent)
    try:
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Context.from_dict(_READ_SETTINGS) as context,
            c2pa.Builder(manifest, context=context) as builder,
            open(src_path, "rb") as source,
            os.fdopen(fd, "w+b") as dest,
        ):
            builder.sign(signer, mime, source, dest)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, dst_path)
    except c2pa.C2paError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise SigningError(f"C2PA signing of {src_path.name} failed: {exc}") from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return dst_path


# -- verification -----------------------------------------------------------------------------------


def _digital_source_type(manifest: dict[str, Any]) -> str | None:
    for assertion in manifest.get("assertions", []):
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in assertion.get("data", {}).get("actions", []):
            if action.get("action") == "c2pa.created" and action.get("digitalSourceType"):
                return str(action["digitalSourceType"])
    return None


def verify_file(path: str | os.PathLike[str], *, trust_anchors_pem: str | bytes) -> ProvenanceReport:
    """Read a file's C2PA manifest back and check signature, hashes and chain to the given trust anchors."""
    c2pa = _c2pa()
    anchors = trust_anchors_pem.decode() if isinstance(trust_anchors_pem, bytes) else trust_anchors_pem
    if "BEGIN CERTIFICATE" not in anchors:
        raise ValueError("trust_anchors_pem must hold at least one PEM certificate")
    try:
        mime = sniff_mime(path)
    except SigningError as exc:
        return ProvenanceReport(valid=False, errors=[str(exc)])
    settings = {**_READ_SETTINGS, "trust": {"trust_anchors": anchors}}
    try:
        with c2pa.Context.from_dict(settings) as context, open(path, "rb") as fh:
            reader = c2pa.Reader.try_create(mime, fh, None, context)
            if reader is None:
                return ProvenanceReport(valid=False, errors=["no C2PA manifest found"])
            with reader:
                data = json.loads(reader.json())
    except c2pa.C2paError as exc:
        return ProvenanceReport(valid=False, errors=[f"C2PA manifest unreadable: {exc}"])

    state = data.get("validation_state")
    failures: list[dict[str, Any]] = list(data.get("validation_status") or [])
    active_results = (data.get("validation_results") or {}).get("activeManifest") or {}
    for item in active_results.get("failure", []):
        if item not in failures:
            failures.append(item)
    errors = [f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failures]
    manifest = (data.get("manifests") or {}).get(data.get("active_manifest") or "", {})
    if not manifest:
        errors.append("the manifest store has no active manifest")
    sig = manifest.get("signature_info") or {}
    generator: dict[str, Any] = next(iter(manifest.get("claim_generator_info") or []), {})
    if state != "Trusted" and not errors:
        errors.append(f"validation state is {state!r}, not 'Trusted'")
    return ProvenanceReport(
        valid=state == "Trusted" and not errors,
        signed_by=sig.get("common_name"),
        digital_source_type=_digital_source_type(manifest),
        errors=errors,
        has_manifest=True,
        state=state,
        issuer=sig.get("issuer"),
        title=manifest.get("title"),
        claim_generator=f"{generator.get('name')}/{generator.get('version')}" if generator else None,
    )
