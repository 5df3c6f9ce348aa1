"""Media: presigned uploads (`POST /media`), their metadata, media sources checked when a message is
accepted, and short-lived download URLs for received media."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from core.errors import InvalidRequest, NotFound
from core.ids import new_id
from core.models.common import Principal, utcnow
from core.models.media import (
    MAX_BYTES,
    MAX_UPLOAD_BYTES,
    MEDIA_TYPES,
    MIME_PATTERN,
    SNIFF_BYTES,
    MediaInfo,
    MediaUpload,
    MediaUploadRequest,
    base_mime,
    fits,
    same_content,
    sniff,
)
from core.net import OutboundPolicy, UnresolvedHost, UnsafeUrl, check_url
from core.observability import logger
from core.store.media import INBOUND_PREFIX, MediaObject, content_media_id, media_key
from functions.service.accounts import WRITERS, require_role
from functions.service.context import Services

DOWNLOAD_URL_TTL = 900  # seconds a received media URL works


def create_upload(svc: Services, principal: Principal, request: MediaUploadRequest) -> MediaUpload:
    """`POST /media`: a media id of the caller's tenant and the presigned PUT that uploads its bytes."""
    require_role(principal, *WRITERS)
    upload = svc.media.new_upload(principal.tenant_id, request.mime_type, request.size_bytes, request.filename)
    return MediaUpload(id=upload.media_id, upload_url=upload.url, headers=upload.headers,
                       expires_at=upload.expires_at, max_bytes=request.size_bytes or MAX_UPLOAD_BYTES)


def get_media(svc: Services, principal: Principal, media_id: str) -> MediaInfo:
    """`GET /media/{id}`: what was uploaded (or that nothing was yet); other tenants' ids do not exist."""
    found = svc.media.exists(principal.tenant_id, media_id)
    if found is None:
        raise NotFound("no such media", code="media_not_found")
    return MediaInfo(id=media_id, mime_type=found.mime_type, size_bytes=found.size_bytes if found.uploaded else None,
                     sha256=found.sha256, filename=found.filename, uploaded=found.uploaded,
                     created_at=found.created_at)


def message_type_for(mime_type: str) -> str:
    """The message type that carries content of `mime_type` (`image/png` → image; unknown kinds → document)."""
    major = base_mime(mime_type).split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")


def store_bytes(svc: Services, principal: Principal, data: bytes, mime_type: str,
                filename: str | None = None) -> MediaInfo:
    """Bytes that came with the request (the Cloud API's multipart upload), checked like a message's media (the
    bytes' real type against `mime_type`, the size limit of the type's message type) and stored under a new media
    id of the tenant, to send as `id`."""
    require_role(principal, *WRITERS)
    if not re.match(MIME_PATTERN, base_mime(mime_type)):
        raise InvalidRequest(f"{mime_type!r} is not a MIME type", code="validation_error")
    _check_content(message_type_for(mime_type), mime_type, data[:SNIFF_BYTES], len(data))
    media_id = new_id("med")
    metadata = {"tenant": principal.tenant_id, "source": "upload"}
    if filename:
        metadata["filename"] = filename.encode("ascii", "backslashreplace").decode()[:240]
    stored = svc.media.put(media_key(principal.tenant_id, media_id), data, mime_type, metadata)
    return MediaInfo(id=media_id, mime_type=mime_type, size_bytes=len(data), sha256=stored.sha256,
                     filename=stored.filename, uploaded=True, created_at=utcnow())


def download_url(svc: Services, principal: Principal, media_id: str, ttl_seconds: int) -> tuple[MediaInfo, str]:
    """An uploaded media object of the tenant and a presigned GET of its bytes; `media_not_found` when it does
    not exist or was announced but never uploaded."""
    info = get_media(svc, principal, media_id)
    if not info.uploaded:
        raise NotFound("the media was announced but its bytes were never uploaded", code="media_not_found")
    return info, svc.media.presign_get(media_key(principal.tenant_id, media_id), ttl_seconds)


def delete_media(svc: Services, principal: Principal, media_id: str) -> None:
    """Delete the tenant's media object; messages already accepted with it fail with `media_not_found`."""
    require_role(principal, *WRITERS)
    if svc.media.exists(principal.tenant_id, media_id) is None:
        raise NotFound("no such media", code="media_not_found")
    svc.media.delete(media_key(principal.tenant_id, media_id))


def externalize(svc: Services, tenant_id: str, envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope to store: inline `data` moved to the media bucket and replaced by its `id` (with
    `sha256` and `size_bytes`), an `id` checked to be the tenant's uploaded media, a `link` checked to be
    fetchable. Envelopes without media come back unchanged. The same inline bytes always get the same id,
    so accepting one body twice stores the same envelope.

    Raises InvalidRequest: `media_not_found`, `media_too_large`, `media_type_mismatch`,
    `media_url_not_allowed`.
    """
    kind = envelope.get("type")
    if not isinstance(kind, str) or kind not in MEDIA_TYPES or not isinstance(envelope.get(kind), dict):
        return envelope
    out = copy.copy(envelope)
    body = out[kind] = dict(envelope[kind])
    if body.get("data") is not None:
        _store_inline(svc, tenant_id, kind, body)
    elif body.get("id") is not None:
        _check_upload(svc, tenant_id, kind, body)
    elif body.get("link") is not None:
        _check_link(svc, str(body["link"]))
    return out


def _store_inline(svc: Services, tenant_id: str, kind: str, body: dict[str, Any]) -> None:
    try:
        data = base64.b64decode(str(body["data"]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("inline media is not valid base64", code="validation_error") from exc
    mime_type = str(body.get("mime_type") or "application/octet-stream")
    _check_content(kind, mime_type, data, len(data))
    media_id, digest = content_media_id(tenant_id, data)
    metadata = {"tenant": tenant_id, "source": "inline"}
    if kind == "document" and body.get("filename"):
        metadata["filename"] = str(body["filename"]).encode("ascii", "backslashreplace").decode()[:240]
    svc.media.put(media_key(tenant_id, media_id), data, mime_type, metadata)
    del body["data"]
    body.update(id=media_id, mime_type=mime_type, sha256=digest, size_bytes=len(data))


def _check_upload(svc: Services, tenant_id: str, kind: str, body: dict[str, Any]) -> None:
    media_id = str(body["id"])
    found: MediaObject | None = svc.media.exists(tenant_id, media_id)
    if found is None or not found.uploaded:
        raise InvalidRequest(f"no uploaded media {media_id!r}: upload it with POST /media first",
                             code="media_not_found", details={"id": media_id})
    mime_type = str(body.get("mime_type") or found.mime_type or "application/octet-stream")
    head = svc.media.peek(found.key, SNIFF_BYTES) if kind != "document" else b""
    _check_content(kind, mime_type, head, found.size_bytes)
    body.setdefault("mime_type", mime_type)
    body["size_bytes"] = found.size_bytes
    if found.sha256:
        body["sha256"] = found.sha256


def _check_content(kind: str, mime_type: str, head: bytes, size: int) -> None:
    """WhatsApp's size limit of the message type, and bytes that are what the body says they are."""
    limit = MAX_BYTES[kind]
    if size > limit:
        raise InvalidRequest(f"{kind} media is limited to {limit} bytes; this one has {size}",
                             code="media_too_large", details={"size_bytes": size, "max_bytes": limit})
    if size == 0:
        raise InvalidRequest("the media is empty", code="media_not_found")
    if kind == "document":
        return
    sniffed = sniff(head)
    if not fits(kind, mime_type) or not same_content(mime_type, sniffed):
        raise InvalidRequest(
            f"a {kind} cannot carry this content (declared {mime_type}, bytes look like {sniffed or 'unknown'})",
            code="media_type_mismatch", details={"declared": mime_type, "detected": sniffed})


def _check_link(svc: Services, link: str) -> None:
    try:
        check_url(link, OutboundPolicy.from_settings(svc.settings))
    except UnresolvedHost:
        # Not shown to be unsafe; the host checks again (and fails the message) when it downloads.
        logger.info("media link does not resolve at accept time")
    except UnsafeUrl as exc:
        raise InvalidRequest(f"the media link may not be fetched: {exc}", code="media_url_not_allowed") from exc


def media_view(content: dict[str, Any], svc: Services) -> dict[str, Any]:
    """A received message's content with `media.url` (presigned, short-lived) and `media.url_expires_at`
    added when it holds stored media; anything else, malformed content included, comes back as it is."""
    try:
        media = content.get("media") if isinstance(content, dict) else None
        if not isinstance(media, dict):
            return content
        key = media.get("key")
        if not isinstance(key, str) or not key.startswith(INBOUND_PREFIX) or ".." in key:
            return content
        url = svc.media.presign_get(key, DOWNLOAD_URL_TTL)
        expires = datetime.now(UTC) + timedelta(seconds=DOWNLOAD_URL_TTL)
        return {**content, "media": {**media, "url": url,
                                     "url_expires_at": expires.isoformat(timespec="seconds").replace("+00:00", "Z")}}
    except Exception:  # noqa: BLE001 - a read must never fail because of one message's media
        logger.warning("no download URL for a received message's media")
        return content
