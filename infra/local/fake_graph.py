"""A fake of Meta's Graph API (WhatsApp Cloud API) on 127.0.0.1 for tests and local runs.

Phone numbers (checked against their Bearer token), sends (recorded exactly, answered like Meta or with Meta's
errors on demand), media upload/info/download, and signed webhooks posted as Meta posts them.

    with FakeGraph() as fake:
        fake.add_number("106540352242922", "token-1", "+1 555 0100")
        client = GraphClient(fake.base_url, "v21.0", "token-1")
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.meta_payloads import ERRORS, error_body, new_wamid, signature

_VERSIONED = re.compile(r"^/(v\d+\.\d+)/([^/]+)(?:/(messages|media))?$")
_MEDIA_PATH = "/whatsapp_business/attachments/"


@dataclass
class Number:
    phone_number_id: str
    token: str
    display_phone_number: str
    verified_name: str = "Wagate Test"
    quality_rating: str = "GREEN"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    status: int = 0
    at: float = field(default_factory=time.time)  # when the request arrived (epoch seconds)


@dataclass
class Media:
    id: str
    phone_number_id: str
    data: bytes
    mime_type: str
    filename: str | None


@dataclass
class _Failure:
    code: int
    http_status: int
    subcode: int | None
    times: int
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeGraph:
    """The Graph API endpoints the `cloud` provider uses, with a Python control API."""

    def __init__(self, port: int = 0) -> None:
        self.port = port  # 0: any free port
        self.numbers: dict[str, Number] = {}
        self.media: dict[str, Media] = {}
        self.requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.base_url = ""

    # -- control -------------------------------------------------------------------------------------------
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-graph",
                         daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGraph:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_number(self, phone_number_id: str, token: str, display_phone_number: str,
                   verified_name: str = "Wagate Test") -> Number:
        number = Number(phone_number_id, token, display_phone_number, verified_name)
        with self._lock:
            self.numbers[phone_number_id] = number
        return number

    def fail_next(self, code: int, http_status: int | None = None, subcode: int | None = None, times: int = 1,
                  message: str | None = None, retry_after: float | None = None) -> None:
        """Answer the next `times` sends with Meta's error `code` (HTTP status: Meta's usual one for the code)."""
        status = http_status or ERRORS.get(code, ("", "", 400))[2]
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self._failures.append(_Failure(code, status, subcode, times, message, headers))

    def sent(self, phone_number_id: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies of the sends that were answered with a message id, in order."""
        with self._lock:
            return [r.json for r in self.requests if r.method == "POST" and r.path.endswith("/messages")
                    and r.status == 200 and (phone_number_id is None or f"/{phone_number_id}/" in r.path)]

    @staticmethod
    def deliver_webhook(url: str, app_secret: str, payload: dict[str, Any], timeout: float = 10.0) -> int:
        """POST `payload` to `url` as Meta does (`X-Hub-Signature-256`); returns the HTTP status."""
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        request = urllib.request.Request(url, data=raw, method="POST", headers={  # noqa: S310 (tests post to loopback)
            "Content-Type": "application/json", "User-Agent": "facebookexternalua",
            "X-Hub-Signature-256": signature(app_secret, raw)})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    # -- server --------------------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        recorded = Recorded(method, handler.path, headers, raw)
        if "json" in headers.get("content-type", ""):
            try:
                recorded.json = json.loads(raw)
            except ValueError:
                recorded.json = None
        with self._lock:
            self.requests.append(recorded)
        status, answer_headers, body = self._route(method, handler.path, headers, raw, recorded)
        recorded.status = status
        try:
            handler.send_response(status)
            content_type = answer_headers.pop("Content-Type", "application/json")
            handler.send_header("Content-Type", content_type)
            for name, value in answer_headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass  # the client gave up

    def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes,
               recorded: Recorded) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(path)
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if method == "POST" and url.path == "/__fake/fail":
            spec = recorded.json or {}
            self.fail_next(int(spec["code"]), spec.get("http_status"), spec.get("subcode"),
                           int(spec.get("times", 1)), spec.get("message"))
            return 200, {}, b'{"ok": true}'
        if method == "GET" and url.path == _MEDIA_PATH:
            return self._download(parse_qs(url.query).get("mid", [""])[0], token)
        match = _VERSIONED.match(url.path)
        if not match:
            return _error(100, 400, subcode=None, message="Unknown path components")
        _, object_id, edge = match.groups()
        if not any(n.token == token for n in self.numbers.values()):
            return _error(190, 401, message="Invalid OAuth access token - Cannot parse access token")
        if edge is None and method == "GET":
            number = self.numbers.get(object_id)
            if number is not None:
                if number.token != token:
                    return _error(190, 401, message="Invalid OAuth access token - Cannot parse access token")
                return _ok({"verified_name": number.verified_name,
                            "display_phone_number": number.display_phone_number, "id": number.phone_number_id,
                            "quality_rating": number.quality_rating})
            return self._media_info(object_id, token)
        number = self.numbers.get(object_id)
        if number is None or method != "POST":
            return _unsupported(object_id, method.lower())
        if number.token != token:
            return _error(190, 401, message="Invalid OAuth access token - Cannot parse access token")
        if edge == "messages":
            return self._send(recorded)
        return self._upload(number, headers, raw)

    def _send(self, recorded: Recorded) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            failure = self._failures[0] if self._failures else None
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.pop(0)
        if failure is not None:
            status, headers, body = _error(failure.code, failure.http_status, failure.subcode, failure.message)
            return status, {**headers, **failure.headers}, body
        body = recorded.json
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return _error(100, 400, message="(#100) The parameter messaging_product is required.")
        if body.get("status") == "read":
            return _ok({"success": True})
        to = str(body.get("to", ""))
        if not to or "type" not in body:
            return _error(100, 400, message="(#100) Invalid parameter")
        return _ok({"messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": re.sub(r"\D", "", to)}],
                    "messages": [{"id": new_wamid()}]})

    def _upload(self, number: Number, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {headers.get('content-type', '')}\r\n\r\n".encode() + raw)
        fields: dict[str, str] = {}
        data: bytes | None = None
        filename: str | None = None
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if not isinstance(name, str) or not isinstance(payload, bytes):
                    continue
                if name == "file":
                    data, filename = payload, part.get_filename()
                else:
                    fields[name] = payload.decode()
        if fields.get("messaging_product") != "whatsapp" or data is None or not fields.get("type"):
            return _error(100, 400, message="(#100) The parameter messaging_product, type and file are required.")
        media_id = str(secrets.randbelow(10**15) + 10**15)
        with self._lock:
            self.media[media_id] = Media(media_id, number.phone_number_id, data, fields["type"], filename)
        return _ok({"id": media_id})

    def _media_info(self, media_id: str, token: str) -> tuple[int, dict[str, str], bytes]:
        media = self.media.get(media_id)
        if media is None or self.numbers[media.phone_number_id].token != token:
            return _unsupported(media_id)
        return _ok({"messaging_product": "whatsapp",
                    "url": f"{self.base_url}{_MEDIA_PATH}?mid={media_id}&ext=1&hash={secrets.token_hex(8)}",
                    "mime_type": media.mime_type, "sha256": hashlib.sha256(media.data).hexdigest(),
                    "file_size": len(media.data), "id": media_id})

    def _download(self, media_id: str, token: str) -> tuple[int, dict[str, str], bytes]:
        media = self.media.get(media_id)
        if media is None or self.numbers[media.phone_number_id].token != token:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        return 200, {"Content-Type": media.mime_type}, media.data


def _ok(answer: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(answer).encode()


def _error(code: int, status: int, subcode: int | None = None,
           message: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'} if code == 190 else {}
    return status, headers, json.dumps(error_body(code, subcode=subcode, message=message)).encode()


def _unsupported(object_id: str, method: str = "get") -> tuple[int, dict[str, str], bytes]:
    return _error(100, 400, subcode=33, message=(
        f"Unsupported {method} request. Object with ID '{object_id}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api"))


def main(argv: list[str] | None = None) -> None:
    """`python -m infra.local.fake_graph --number ID:TOKEN[:DISPLAY]`: the fake on a port of its own, to try Cloud
    API numbers with `make run` without Meta (`GRAPH_API_BASE_URL=<printed url> make run`)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=4580)
    parser.add_argument("--number", action="append", default=[], help="PHONE_NUMBER_ID:TOKEN[:DISPLAY_NUMBER]")
    args = parser.parse_args(argv)
    fake = FakeGraph(args.port)
    for spec in args.number:
        phone_number_id, token, *display = spec.split(":", 2)
        fake.add_number(phone_number_id, token, display[0] if display else "+1 555-010-0000")
    fake.start()
    print(f"fake Graph API at {fake.base_url} with {len(fake.numbers)} number(s); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
