"""Benchmarks: `make bench` prints `bench: <name> <value> <unit>` lines. Never part of `make test`."""
