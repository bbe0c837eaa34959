"""Local text models the app knows how to fetch: where each file lives, how big it is, its checksum.

This is data, kept in one place so `ainfluencer models pull text`, the setup page and the docs agree.
A catalogue entry is a single GGUF file from a public repository on the Hugging Face Hub, fetched
over HTTPS with ``Range`` resume (see ``services/model_files.py``).

``sha256`` is the SHA-256 of the whole file. When an entry has none recorded, the fetcher takes the
checksum the Hub publishes for the file (its ``X-Linked-Etag`` header, the Git LFS object id, which is
the file's SHA-256) and still verifies every byte against it; a server that publishes none is refused.
``size_bytes`` is what the pull page shows before the download starts; the server's own length wins
when they differ and a checksum is known.
"""

from __future__ import annotations

from dataclasses import dataclass

HUB_BASE_URL = "https://huggingface.co"


@dataclass(frozen=True)
class LocalModel:
    """One downloadable GGUF model file."""

    id: str
    label: str
    repo: str
    filename: str
    revision: str
    size_bytes: int
    sha256: str
    license: str
    ram_bytes: int  # resident memory while loaded, from the model card's parameter count and quantisation
    context_tokens: int
    note: str = ""

    def url(self, base_url: str = HUB_BASE_URL) -> str:
        """The download address (``base_url`` is replaceable so tests use a local server)."""
        return f"{base_url.rstrip('/')}/{self.repo}/resolve/{self.revision}/{self.filename}"


# The default is the smallest Qwen2.5 instruct model in Q4_K_M: it writes short multilingual social
# texts acceptably on a 2-core CPU; the 1.5B model writes better and is about three times slower.
LOCAL_TEXT_MODELS: dict[str, LocalModel] = {
    m.id: m
    for m in (
        LocalModel(
            id="qwen2.5-0.5b-instruct-q4_k_m",
            label="Qwen2.5 0.5B Instruct (Q4_K_M)",
            repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            filename="qwen2.5-0.5b-instruct-q4_k_m.gguf",
            revision="main",
            size_bytes=491_400_032,
            sha256="",
            license="Apache-2.0",
            ram_bytes=700 * 1024 * 1024,
            context_tokens=32768,
            note="default; 29+ languages incl. English, Spanish, German, Portuguese, French",
        ),
        LocalModel(
            id="qwen2.5-1.5b-instruct-q4_k_m",
            label="Qwen2.5 1.5B Instruct (Q4_K_M)",
            repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
            filename="qwen2.5-1.5b-instruct-q4_k_m.gguf",
            revision="main",
            size_bytes=1_117_320_736,
            sha256="",
            license="Apache-2.0",
            ram_bytes=1400 * 1024 * 1024,
            context_tokens=32768,
            note="better writing, about three times slower per caption on a CPU",
        ),
    )
}
DEFAULT_LOCAL_TEXT_MODEL = "qwen2.5-0.5b-instruct-q4_k_m"


def local_model(model_id: str) -> LocalModel | None:
    """The catalogue entry for an id (or a file name), or None."""
    if model_id in LOCAL_TEXT_MODELS:
        return LOCAL_TEXT_MODELS[model_id]
    return next((m for m in LOCAL_TEXT_MODELS.values() if m.filename == model_id), None)
