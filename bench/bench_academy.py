"""Academy: reading and validating every lesson file, rendering a lesson, and a search over the catalogue."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from statistics import median

from bench.harness import emit


def _ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return median(times)


def main() -> None:
    """Catalogue load (cold, uncached), one lesson rendered, and a two-word search on a real SQLite database."""
    from ainfluencer.academy import service
    from ainfluencer.academy.content import CONTENT_DIR, builtin_catalog, load_catalog
    from ainfluencer.academy.render import render_markdown
    from ainfluencer.config import Settings
    from ainfluencer.db import migrate
    from ainfluencer.runtime import Runtime

    emit("academy_catalog_load_ms", _ms(lambda: load_catalog(CONTENT_DIR), 5), "ms")
    lessons = [x for c in builtin_catalog() for x in c.lessons]
    emit("academy_render_lesson_ms", _ms(lambda: [render_markdown(x.body) for x in lessons], 5) / len(lessons), "ms")
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime.build(Settings(data_dir=Path(tmp) / "data"))
        migrate.upgrade(runtime.db)
        try:
            with runtime.db.session() as s:
                service.search(s, "warm up")  # fills the plain-text cache, as the first request of a process does
                emit("academy_search_ms", _ms(lambda: service.search(s, "face score"), 20), "ms")
        finally:
            runtime.close()
