"""Run every benchmark module in turn."""

from __future__ import annotations

import importlib
import sys

MODULES = ["bench.bench_api", "bench.bench_characters", "bench.bench_local_text", "bench.bench_media",
           "bench.bench_publishing", "bench.bench_academy", "bench.bench_mcp"]


def main() -> int:
    """Run the benchmarks named on the command line, or all."""
    names = sys.argv[1:] or MODULES
    for name in names:
        importlib.import_module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
