"""Media as the host sends and receives it: outbound bytes from an upload id or a link (checked against the
declared type and WhatsApp's limits), received media stored for the API to hand out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import posixpath
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import unquote, urlsplit

from core.config import Settings
from core.errors import DependencyFailure, DomainError, NotFound
from core.models.media import MAX_BYTES, base_mime, family, fits, same_content, sniff
from core.net import FetchError, OutboundPolicy, UnsafeUrl, fetch
from core.store.media import MediaStore, inbound_key, media_key

FETCH_TIMEOUT = 30.0
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Media:
    """Bytes ready to hand to WhatsApp Web."""

    data: bytes
    mime_type: str
    filename: str | None
    sha256: str


class MediaError(Exception):
    """The media cannot be sent. `permanent`: the message fails; otherwise a later attempt may succeed.

    Codes: media_not_found, media_too_large, media_type_mismatch, media_url_not_allowed, media_fetch_failed.
    """

    def __init__(self, code: str, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.permanent = permanent


@cache
def _store(bucket: str) -> MediaStore:
    return MediaStore(bucket)


async def load_outbound(settings: Settings, tenant_id: str, body: dict[str, Any], *, kind: str,
                        timeout: float = FETCH_TIMEOUT) -> Media:
    """The bytes of a stored message's media body (`kind`: image, video, audio, document or sticker) from its
    `id` (the tenant's media) or its `link`; MediaError when they cannot be sent."""
    if kind not in MAX_BYTES:
        raise MediaError("media_type_mismatch", f"{kind!r} is not a media message type")
    limit = MAX_BYTES[kind]
    declared = body.get("mime_type") if isinstance(body.get("mime_type"), str) else None
    filename = body.get("filename") if isinstance(body.get("filename"), str) else None
    if isinstance(body.get("id"), str):
        data, stored_type, stored_name = await asyncio.to_thread(_read_upload, settings, tenant_id, body["id"], limit)
        mime_type = _decide(kind, declared or stored_type, None, data)
        return _media(data, mime_type, filename or (stored_name if kind == "document" else None))
    if isinstance(body.get("link"), str):
        link = body["link"]
        data, hint = await asyncio.to_thread(_download, settings, link, limit, timeout)
        mime_type = _decide(kind, declared, hint, data)
        if filename is None and kind == "document":
            filename = posixpath.basename(unquote(urlsplit(link).path)) or None
        return _media(data, mime_type, filename)
    if isinstance(body.get("data"), str):  # a row stored before inline media moved to the bucket
        try:
            data = base64.b64decode(body["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaError("media_not_found", "the inline media is not valid base64") from exc
        if len(data) > limit:
            raise MediaError("media_too_large", f"the media has {len(data)} bytes; the limit is {limit}")
        return _media(data, _decide(kind, declared, None, data), filename)
    raise MediaError("media_not_found", "the body has no id, link or data")


def _media(data: bytes, mime_type: str, filename: str | None) -> Media:
    return Media(data=data, mime_type=mime_type, filename=filename, sha256=hashlib.sha256(data).hexdigest())


def _read_upload(settings: Settings, tenant_id: str, media_id: str, limit: int) -> tuple[bytes, str | None, str | None]:
    store = _store(settings.media_bucket)
    try:
        key = media_key(tenant_id, media_id)
        found = store.head(key)
        if found is None or not found.uploaded:
            raise MediaError("media_not_found", f"no uploaded media {media_id!r}")
        if found.size_bytes > limit:
            raise MediaError("media_too_large", f"the media has {found.size_bytes} bytes; the limit is {limit}")
        data, content_type = store.get(key, limit)
    except NotFound as exc:
        raise MediaError("media_not_found", f"no uploaded media {media_id!r}") from exc
    except DependencyFailure as exc:
        raise MediaError("media_fetch_failed", exc.message, permanent=False) from exc
    except DomainError as exc:
        raise MediaError(exc.code if exc.code.startswith("media_") else "media_not_found", exc.message) from exc
    except MediaError:
        raise
    except Exception as exc:  # S3 unreachable, throttled...: a later attempt may work
        raise MediaError("media_fetch_failed", f"the media store failed: {type(exc).__name__}",
                         permanent=False) from exc
    return data, content_type, found.filename


def _download(settings: Settings, link: str, limit: int, timeout: float) -> tuple[bytes, str | None]:
    """(body, the Content-Type header as a hint) of a link, every hop checked against the outbound policy."""
    try:
        result = fetch(link, OutboundPolicy.from_settings(settings), max_bytes=limit, timeout=timeout)
    except UnsafeUrl as exc:
        raise MediaError("media_url_not_allowed", f"the media link may not be fetched: {exc}") from exc
    except FetchError as exc:
        if exc.code == "too_large":
            raise MediaError("media_too_large", f"the media is over the limit of {limit} bytes") from exc
        transient = exc.code in {"timeout", "connection_error"}
        raise MediaError("media_fetch_failed", f"downloading the media failed: {exc}", permanent=not transient) \
            from exc
    if result.status in (404, 410):
        raise MediaError("media_not_found", f"the media link answered {result.status}")
    if not 200 <= result.status < 300:
        transient = result.status >= 500 or result.status in (408, 429)
        raise MediaError("media_fetch_failed", f"the media link answered {result.status}", permanent=not transient)
    return result.body, result.headers.get("content-type")


def _decide(kind: str, declared: str | None, hint: str | None, data: bytes) -> str:
    """The MIME type to send: the declared one when the bytes are that, else what the bytes are (a
    Content-Type header only refines a type the bytes already show, or names an otherwise unknown document)."""
    sniffed = sniff(data)
    if not data:
        raise MediaError("media_not_found", "the media is empty")
    if declared:
        if kind != "document" and not (fits(kind, declared) and same_content(declared, sniffed)):
            raise MediaError("media_type_mismatch",
                             f"a {kind} declared {declared} but the bytes are {sniffed or 'of an unknown type'}")
        return declared
    if hint and same_content(hint, sniffed) and (kind == "document" or fits(kind, hint)):
        return base_mime(hint)
    if sniffed and (kind == "document" or fits(kind, sniffed)):
        return "audio/mp4" if kind == "audio" and family(sniffed) == "mp4" else sniffed
    if kind == "document":
        useful = base_mime(hint)
        return useful if useful and "/" in useful and useful != "text/html" else OCTET_STREAM
    raise MediaError("media_type_mismatch", f"the bytes are not a {kind} ({sniffed or 'unknown type'})")


async def store_inbound(settings: Settings, account_id: str, message_id: str, data: bytes, mime_type: str,
                        filename: str | None = None, caption: str | None = None) -> dict[str, Any]:
    """Store received media (`inbound/{account}/{message}`); the `media` dict of the message's content."""
    key = inbound_key(account_id, message_id)
    metadata = {"account": account_id}
    if filename:
        metadata["filename"] = filename.encode("ascii", "backslashreplace").decode()[:240]
    stored = await asyncio.to_thread(_store(settings.media_bucket).put, key, data, mime_type, metadata)
    media: dict[str, Any] = {"key": key, "mime_type": mime_type, "size_bytes": stored.size_bytes,
                             "sha256": stored.sha256}
    if filename:
        media["filename"] = filename
    if caption:
        media["caption"] = caption
    return media
