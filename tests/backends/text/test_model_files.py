"""The model fetch code against a local HTTP file server: progress, Range resume, checksums."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ainfluencer.backends.text.catalogue import LOCAL_TEXT_MODELS, LocalModel
from ainfluencer.services.model_files import (
    ChecksumMismatch,
    FetchError,
    FetchProgress,
    fetch_file,
    pull_local_text_model,
)

BLOB = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit: several chunks
SHA = hashlib.sha256(BLOB).hexdigest()


@dataclass
class FileServerState:
    body: bytes = BLOB
    cut_after: int | None = None  # drop the connection after this many body bytes (once)
    publish_sha: str | None = None  # X-Linked-Etag, as the Hugging Face Hub sends for LFS files
    honour_range: bool = True
    requests: list[dict[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    state: FileServerState

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.state
        state.requests.append({"path": self.path, "range": self.headers.get("Range", "")})
        if self.path.startswith("/redirect/"):  # the Hub answers with a redirect to its CDN
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/redirect"))
            if state.publish_sha:
                self.send_header("X-Linked-Etag", f'"{state.publish_sha}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, start = state.body, 0
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if m and state.honour_range:
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
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
        if state.cut_after is not None:
            self.wfile.write(chunk[: state.cut_after])
            self.wfile.flush()
            state.cut_after = None
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def file_server() -> Iterator[tuple[str, FileServerState]]:
    state = FileServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_reports_progress_and_is_verified(file_server, tmp_path: Path) -> None:
    base, state = file_server
    seen: list[FetchProgress] = []
    path = fetch_file(f"{base}/model.gguf", tmp_path / "model.gguf", sha256=SHA, size_bytes=len(BLOB),
                      progress=seen.append)
    assert path.read_bytes() == BLOB
    assert not (tmp_path / "model.gguf.part").exists()
    assert seen[-1].message == "done" and seen[-1].fraction == 1.0
    assert any(p.message == "downloading" for p in seen)
    # a second pull finds the verified file and downloads nothing
    before = len(state.requests)
    fetch_file(f"{base}/model.gguf", path, sha256=SHA)
    assert len(state.requests) == before


def test_an_interrupted_download_resumes_with_a_range_request(file_server, tmp_path: Path) -> None:
    base, state = file_server
    state.cut_after = 300_000
    dest = tmp_path / "model.gguf"
    with pytest.raises(FetchError) as caught:
        fetch_file(f"{base}/model.gguf", dest, sha256=SHA)
    assert caught.value.resumable and "run it again to resume" in caught.value.message
    part = tmp_path / "model.gguf.part"
    assert part.stat().st_size == 300_000 and not dest.exists()
    seen: list[FetchProgress] = []
    fetch_file(f"{base}/model.gguf", dest, sha256=SHA, progress=seen.append)
    assert dest.read_bytes() == BLOB
    assert state.requests[-1]["range"] == "bytes=300000-"  # only the rest was asked for
    assert seen[0].resumed_from == 300_000


def test_a_server_that_ignores_range_restarts_cleanly(file_server, tmp_path: Path) -> None:
    base, state = file_server
    state.honour_range = False
    (tmp_path / "model.gguf.part").write_bytes(BLOB[:1000])
    assert fetch_file(f"{base}/model.gguf", tmp_path / "model.gguf", sha256=SHA).read_bytes() == BLOB


def test_a_complete_part_file_is_verified_without_downloading_again(file_server, tmp_path: Path) -> None:
    base, state = file_server
    (tmp_path / "model.gguf.part").write_bytes(BLOB)
    assert fetch_file(f"{base}/model.gguf", tmp_path / "model.gguf", sha256=SHA).read_bytes() == BLOB
    assert state.requests[-1]["range"] == f"bytes={len(BLOB)}-"


def test_a_checksum_mismatch_removes_the_file(file_server, tmp_path: Path) -> None:
    base, _ = file_server
    with pytest.raises(ChecksumMismatch) as caught:
        fetch_file(f"{base}/model.gguf", tmp_path / "model.gguf", sha256="0" * 64)
    assert "checksum mismatch" in caught.value.message
    assert not (tmp_path / "model.gguf").exists() and not (tmp_path / "model.gguf.part").exists()


def test_the_checksum_the_hub_publishes_is_used_and_required(file_server, tmp_path: Path) -> None:
    base, state = file_server
    state.publish_sha = SHA
    path = fetch_file(f"{base}/redirect/model.gguf", tmp_path / "a.gguf")
    assert path.read_bytes() == BLOB
    state.publish_sha = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(ChecksumMismatch):
        fetch_file(f"{base}/redirect/model.gguf", tmp_path / "b.gguf")
    state.publish_sha = None
    with pytest.raises(FetchError, match="neither the catalogue nor the server"):
        fetch_file(f"{base}/model.gguf", tmp_path / "c.gguf")
    assert not (tmp_path / "c.gguf").exists()


def test_pull_fetches_a_catalogue_entry_into_the_models_folder(file_server, tmp_path: Path) -> None:
    base, state = file_server
    default = next(iter(LOCAL_TEXT_MODELS.values()))
    entry = LocalModel(id=default.id, label=default.label, repo=default.repo, filename=default.filename,
                       revision="main", size_bytes=len(BLOB), sha256=SHA, license=default.license,
                       ram_bytes=default.ram_bytes, context_tokens=default.context_tokens)
    path = pull_local_text_model(entry.id, models_dir=tmp_path / "text", base_url=base, entry=entry)
    assert path == tmp_path / "text" / default.filename and path.read_bytes() == BLOB
    assert state.requests[-1]["path"] == f"/{default.repo}/resolve/main/{default.filename}"
    with pytest.raises(FetchError, match="unknown local text model"):
        pull_local_text_model("no-such-model", models_dir=tmp_path, base_url=base)


def test_the_catalogue_names_exact_files() -> None:
    for model in LOCAL_TEXT_MODELS.values():
        assert model.filename.endswith(".gguf") and "/" in model.repo and model.size_bytes > 0
        assert model.url() == f"https://huggingface.co/{model.repo}/resolve/{model.revision}/{model.filename}"
        assert model.sha256 == "" or re.fullmatch(r"[0-9a-f]{64}", model.sha256)
