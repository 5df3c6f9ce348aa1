"""A counting HTTP proxy in front of an AWS endpoint (moto): tallies every request by caller, service,
operation and resource, then forwards it unchanged. Product code needs no change: point a process's
`AWS_ENDPOINT_URL` here, and give it its own `AWS_ACCESS_KEY_ID` to count its calls apart (the emulator
accepts any key; the key is read from the SigV4 `Authorization` header).

    python -m bench.aws_proxy --upstream http://127.0.0.1:4566 --port 4567

`GET /__bench/counts` answers `[{"caller", "service", "operation", "resource", "count", "errors", "ms"}, ...]`
(`errors`: answers with status >= 400, e.g. a refused conditional write; `ms`: summed upstream time),
`POST /__bench/reset` empties the tally.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from yarl import URL

CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
CONTROL = "/__bench/"


def classify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, str, str, str]:
    """(caller, service, operation, resource) of one AWS request."""
    caller, service = "?", "?"
    match = CREDENTIAL.search(headers.get("Authorization", ""))
    if match:
        caller, service = match.group(1), match.group(2)
    target = headers.get("X-Amz-Target", "")
    resource = ""
    if target:
        operation = target.rsplit(".", 1)[-1]
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        if isinstance(payload, dict):
            if "TableName" in payload:
                resource = str(payload["TableName"])
            elif "QueueUrl" in payload:
                resource = str(payload["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
            elif "TransactItems" in payload:
                tables = sorted({str(v.get("TableName")) for item in payload["TransactItems"]
                                 for v in item.values() if isinstance(v, dict)})
                resource = "+".join(tables)
    elif "Action=" in (text := body[:4096].decode(errors="replace")):
        form = parse_qs(text)
        operation = form.get("Action", ["?"])[0]
        resource = form.get("QueueUrl", [""])[0].rstrip("/").rsplit("/", 1)[-1]
    elif service == "s3":
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        kind = "Object" if len(parts) > 1 else "Bucket"
        operation = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(
            method, method) + kind
        resource = parts[0] if parts else ""
    else:
        operation = f"{method} {path.split('?', 1)[0]}"
    return caller, service, operation, resource


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: dict[tuple[str, str, str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0])
        self.session: ClientSession | None = None

    async def start(self, app: web.Application) -> None:
        self.session = ClientSession(connector=TCPConnector(limit=200, force_close=False), auto_decompress=False,
                                     timeout=ClientTimeout(total=120))

    async def close(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(CONTROL):
            return self.control(request)
        body = await request.read()
        key = classify(request.method, request.raw_path, request.headers, body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self.session is not None
        t0 = time.perf_counter()
        async with self.session.request(request.method, URL(self.upstream + request.raw_path, encoded=True),
                                        headers=headers,
                                        data=body if body else None, allow_redirects=False) as upstream:
            payload = await upstream.read()
            status = upstream.status
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        tally = self.counts[key]
        tally[0] += 1
        tally[1] += (time.perf_counter() - t0) * 1000
        tally[2] += status >= 400
        return web.Response(status=status, body=payload, headers=out_headers)

    def control(self, request: web.Request) -> web.Response:
        if request.path == CONTROL + "reset" and request.method == "POST":
            self.counts.clear()
            return web.json_response({"ok": True})
        rows = [{"caller": k[0], "service": k[1], "operation": k[2], "resource": k[3], "count": int(v[0]),
                 "errors": int(v[2]), "ms": round(v[1], 1)} for k, v in sorted(self.counts.items())]
        return web.json_response(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    proxy = CountingProxy(args.upstream)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(proxy.start)
    app.on_cleanup.append(proxy.close)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None,
                handle_signals=True, shutdown_timeout=1)


if __name__ == "__main__":
    main()
