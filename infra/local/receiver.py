"""A webhook receiver on loopback: what a business runs to get wagate's events, for tests, benchmarks and demos."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """What the receiver answers one delivery: a status, headers, after a pause."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival

    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        """True when `X-Wagate-Signature` is the HMAC-SHA256 of `timestamp + "." + body` under `secret`."""
        timestamp = self.headers.get("x-wagate-timestamp", "")
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-wagate-signature", ""), f"sha256={expected}")


class Receiver:
    """HTTP server on 127.0.0.1: each path answers its scripted answers in turn (the last one repeats)."""

    def __init__(self, port: int = 0) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                              time.monotonic()))
                    script = receiver.scripts.get(self.path) or [Answer()]
                    answer = script.pop(0) if len(script) > 1 else script[0]
                time.sleep(answer.sleep)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *answers: Answer) -> str:
        """Answer deliveries to `path` with `answers` in turn; returns the path's URL."""
        with self._lock:
            self.scripts[path] = list(answers)
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    def events(self, path: str | None = None, *, account_id: str | None = None,
               type: str | None = None) -> list[dict[str, Any]]:
        """The events received (on `path`), optionally of one account and type, in arrival order."""
        found = []
        for seen in self.requests(path):
            event = seen.event()
            if (account_id is None or event.get("account_id") == account_id) and \
                    (type is None or event.get("type") == type):
                found.append(event)
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
