"""A webhook receiver on loopback: what a business runs to get wagate's events, for tests, benchmarks and demos."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    """What the receiver answers one delivery: a status, headers, after a pause."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    sleep: float = 0.0
    body: bytes = b"ok"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival
    method: str = "POST"

    @property
    def route(self) -> str:
        """The path without its query string."""
        return urlsplit(self.path).path

    @property
    def params(self) -> dict[str, str]:
        """The query string's parameters (the first value of each)."""
        return {name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()}

    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        """True when `X-Wagate-Signature` is the HMAC-SHA256 of `timestamp + "." + body` under `secret`."""
        timestamp = self.headers.get("x-wagate-timestamp", "")
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-wagate-signature", ""), f"sha256={expected}")


def meta_verification(verify_token: str) -> Callable[[Seen], Answer]:
    """Answers Meta's subscription handshake like a Cloud API bot: the `hub.challenge` when `hub.mode` is
    `subscribe` and `hub.verify_token` is `verify_token`, else 403."""
    def answer(seen: Seen) -> Answer:
        params = seen.params
        if params.get("hub.mode") == "subscribe" and params.get("hub.verify_token") == verify_token:
            return Answer(200, {"Content-Type": "text/plain"}, body=params.get("hub.challenge", "").encode())
        return Answer(403, body=b"Forbidden")
    return answer


class Receiver:
    """HTTP server on 127.0.0.1: each path answers its scripted answers in turn (the last one repeats), or what
    its handler (`handle`) computes from the request. POSTs and GETs alike."""

    def __init__(self, port: int = 0) -> None:
        self.scripts: dict[str, list[Answer]] = {}
        self.handlers: dict[str, Callable[[Seen], Answer]] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_GET(self) -> None:
                self._answer(b"")

            def _answer(self, body: bytes) -> None:
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(),
                            self.command)
                with receiver._lock:
                    receiver.seen.append(seen)
                    handler = receiver.handlers.get(seen.route)
                    script = receiver.scripts.get(self.path) or receiver.scripts.get(seen.route) or [Answer()]
                    answer = script.pop(0) if len(script) > 1 and handler is None else script[0]
                if handler is not None:
                    answer = handler(seen)
                time.sleep(answer.sleep)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
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

    def handle(self, path: str, handler: Callable[[Seen], Answer]) -> str:
        """Answer requests to `path` (any query string) with what `handler` returns; returns the path's URL."""
        with self._lock:
            self.handlers[path] = handler
        return self.url(path)

    def requests(self, path: str | None = None, method: str | None = None) -> list[Seen]:
        """The requests received (on `path`, with or without their query string; of one method), in order."""
        with self._lock:
            return [s for s in self.seen if (path is None or path in (s.path, s.route))
                    and (method is None or s.method == method)]

    def events(self, path: str | None = None, *, account_id: str | None = None,
               type: str | None = None) -> list[dict[str, Any]]:
        """The events received (on `path`), optionally of one account and type, in arrival order."""
        found = []
        for seen in self.requests(path, "POST"):
            event = seen.event()
            if (account_id is None or event.get("account_id") == account_id) and \
                    (type is None or event.get("type") == type):
                found.append(event)
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
