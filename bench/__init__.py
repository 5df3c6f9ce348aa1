"""Benchmarks: `make bench` prints numbers and writes them to docs/benchmarks.md (never asserted in tests)."""
