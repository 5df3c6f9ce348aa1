"""The "WhatsApp Numbers" dashboard: one page and its static assets, served by the stack at `/`.

The page signs in with an API key and talks to the public REST API only; this function holds no AWS access.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.config import get_settings
from core.observability import logger
from functions.dashboard.assets import Asset, bundle

PAGE_PATH = "/whatsapp-accounts"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=60"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def content_security_policy(host: str) -> str:
    """Only our own scripts and styles; images and media from S3's presigned links; the WebSocket API."""
    media = ["'self'", "blob:", "data:", "https://*.amazonaws.com"]
    connect = ["'self'", "wss:"]
    endpoint = get_settings().endpoint_url
    if endpoint:  # emulated AWS (moto, LocalStack): presigned media links point at it
        parts = urlsplit(endpoint)
        media.append(f"{parts.scheme}://{parts.netloc}")
    if host.split(":")[0] in LOOPBACK or host.startswith("[::1]"):  # a local stack: plain ws:// and http://
        media += ["http://127.0.0.1:*", "http://localhost:*"]
        connect += ["ws://127.0.0.1:*", "ws://localhost:*"]
    return "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'", f"img-src {' '.join(media)}",
        f"media-src {' '.join(media)}", f"connect-src {' '.join(connect)}", "base-uri 'none'",
        "form-action 'none'", "frame-ancestors 'none'", "manifest-src 'self'",
    ])


def _headers(event: dict[str, Any], content_type: str, cache: str) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": cache, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Content-Security-Policy": content_security_policy(_host(event))}


def _host(event: dict[str, Any]) -> str:
    headers = event.get("headers") or {}
    return str(next((v for k, v in headers.items() if k.lower() == "host"), ""))


def _base(event: dict[str, Any]) -> str:
    """The path prefix of the stage: `/v1` on an execute-api URL, nothing behind a custom domain or locally."""
    stage = (event.get("requestContext") or {}).get("stage") or ""
    return f"/{stage}" if stage and ".execute-api." in _host(event) else ""


def _redirect(event: dict[str, Any], status: int) -> dict[str, Any]:
    location = _base(event) + PAGE_PATH
    return {"statusCode": status, "headers": {**_headers(event, "text/plain; charset=utf-8", "no-cache"),
                                              "Location": location},
            "body": f"see {location}\n", "isBase64Encoded": False}


def _asset(event: dict[str, Any], name: str) -> dict[str, Any]:
    files = bundle()
    found: Asset | None = files.hashed.get(name)
    cache = IMMUTABLE
    if found is None:  # an unhashed name (a bookmark, a curl) may change under the same URL: cached briefly
        found, cache = files.plain.get(name), SHORT
    if found is None:
        return _text(event, 404, "no such asset\n")
    return {"statusCode": 200, "headers": _headers(event, found.content_type, cache),
            "body": base64.b64encode(found.body).decode(), "isBase64Encoded": True}


def _text(event: dict[str, Any], status: int, text: str, **extra: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {**_headers(event, "text/plain; charset=utf-8", "no-cache"), **extra},
            "body": text, "isBase64Encoded": False}


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Serve one GET of the dashboard (page, redirects, assets); 405 for other methods."""
    method = str(event.get("httpMethod") or "GET").upper()
    resource = str(event.get("resource") or "")
    if method not in {"GET", "HEAD"}:
        return _text(event, 405, "method not allowed\n", Allow="GET, HEAD")
    if resource == "/":
        return _redirect(event, 302)
    if resource == "/whatsapp-sessions":  # the migration plan's old name of the page
        return _redirect(event, 301)
    if resource == PAGE_PATH:
        return {"statusCode": 200, "headers": _headers(event, "text/html; charset=utf-8", "no-cache"),
                "body": bundle().page.decode(), "isBase64Encoded": False}
    if resource == "/assets/{file}":
        return _asset(event, str((event.get("pathParameters") or {}).get("file") or ""))
    logger.warning("dashboard route not handled", extra={"resource": resource})
    return _text(event, 404, "not found\n")
