"""Plain stderr lines for the local runtime (the functions log JSON through powertools)."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [local] {message}", file=sys.stderr, flush=True)
