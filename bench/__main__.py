"""`make bench`: every benchmark in turn."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["bench.control_plane", "bench.migration_bench", "bench.snapshots", "bench.browser_host",
              "bench.density", "bench.fleet", "bench.messaging", "bench.realtime", "bench.cloud", "bench.auth"]


def main() -> int:
    for name in BENCHMARKS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            print(f"(skipping {name}: not present)")
            continue
        print(f"== {name}", flush=True)
        module.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
