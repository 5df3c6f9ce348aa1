"""Container health probe of the browser host: exit 0 when GET /health answers 2xx, else 1.

Used by the image's HEALTHCHECK and the ECS task definition (ECS ignores HEALTHCHECK). Standard library
only, so it runs with any Python in the image and costs ~30 ms. It reads the host's own settings: port
HOST_HEALTH_PORT (8080) on HOST_HEALTH_HOST (127.0.0.1; a wildcard bind is probed on loopback).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    """Probe http://$HOST_HEALTH_HOST:$HOST_HEALTH_PORT/health once."""
    port = os.environ.get("HOST_HEALTH_PORT") or "8080"
    host = os.environ.get("HOST_HEALTH_HOST") or "127.0.0.1"
    if host in {"0.0.0.0", "::", "*"}:  # noqa: S104 - a bind address to recognise, not to bind
        host = "127.0.0.1"
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
