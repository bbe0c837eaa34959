"""The app's cost around the in-process local model: a full generate() minus the bare llama.cpp call in it."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import emit

EMAIL, PASSWORD = "bench@example.com", "benchmark password"
RUNS = 16


def main() -> None:
    """Median over runs of (generate() with backend 'local' on the tiny test model − its llama.cpp call).

    The bare model time is measured around llama.cpp's own ``create_chat_completion`` inside the same
    run, so both sides share one prompt, one sampling and one set of tokens; timing the two in separate
    runs was useless here, since on a shared 2-core machine one prompt evaluation swings by 2-3x. What is
    left is the app: database reads and writes, prompt building, the chain and its worker-thread hop,
    fitting, the disclosure check, the uniqueness check and the usage rows.
    """
    from ainfluencer.backends.text import local
    from ainfluencer.backends.text.tiny_model import write_tiny_gguf
    from ainfluencer.config import Settings
    from ainfluencer.db import migrate
    from ainfluencer.db.models import Character
    from ainfluencer.runtime import Runtime
    from ainfluencer.services import auth, writing
    from ainfluencer.services import characters as svc
    from ainfluencer.services.model_files import text_models_dir

    with tempfile.TemporaryDirectory(prefix="ainf-bench-") as tmp:
        runtime = Runtime.build(Settings(data_dir=Path(tmp)))
        migrate.upgrade(runtime.db)
        model = write_tiny_gguf(text_models_dir(runtime.settings.resolved_data_dir) / "tiny.gguf")
        with runtime.db.session() as s:
            user = auth.create_user(s, email=EMAIL, password=PASSWORD, owner=True, verified=True)
            cid = svc.create_character(s, user=user, name="Bench", handle="bench", template="home-chef",
                                       text_backend="local", text_model=model.name).id
        loaded = local._load(model, n_ctx=local.DEFAULT_CONTEXT, n_threads=None)
        inner: list[float] = []
        original = loaded.llm.create_chat_completion

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                inner.append(time.perf_counter() - t0)

        loaded.llm.create_chat_completion = timed
        overhead: list[float] = []
        for seed in range(RUNS):
            before = len(inner)
            t0 = time.perf_counter()
            with runtime.db.session() as s:
                character = s.get(Character, cid)
                assert character is not None
                out = writing.generate(s, runtime, character=character, platform="x", brief="weeknight pasta",
                                       seed=seed)
            total = time.perf_counter() - t0
            assert out.backend == "local" and out.attempts == 1 and len(inner) == before + 1, out.attempts
            overhead.append(total - inner[-1])
        local.unload()
        runtime.close()
    emit("local_text_bare_generate_ms", statistics.median(inner) * 1000, "ms")
    emit("local_text_overhead_ms", statistics.median(overhead) * 1000, "ms")


if __name__ == "__main__":
    main()
