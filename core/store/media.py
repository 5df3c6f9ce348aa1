"""Media objects in the media bucket: tenants' uploads and inline data, and received media.

Keys: `media/{tenant_id}/{media_id}` (uploads through a presigned PUT, inline data moved out of messages) and
`inbound/{account_id}/{message_id}` (media received by an account). Snapshots share the bucket under
`snapshots/{account_id}.bin` (the browser host writes them); here only the sweeper's cleanup removes a deleted
account's (`snapshot_key`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from core.aws import client
from core.config import get_settings
from core.errors import DependencyFailure, InvalidRequest, NotFound
from core.ids import b32, new_id
from core.models.media import MEDIA_ID_PATTERN

MEDIA_PREFIX = "media/"
INBOUND_PREFIX = "inbound/"
SNAPSHOT_PREFIX = "snapshots/"  # browser_host/crypto.py's SnapshotStore default
UPLOAD_URL_TTL = 900  # seconds a presigned upload URL works
_SEGMENT = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MEDIA_ID = re.compile(MEDIA_ID_PATTERN)
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
# Object metadata (x-amz-meta-*): `state` is `pending` on the placeholder POST /media writes, `uploaded`
# on what the client PUT (the presigned URL signs it), `stored` on what wagate wrote itself.
PENDING, UPLOADED, STORED = "pending", "uploaded", "stored"


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or value in {".", ".."}:
        raise InvalidRequest(f"{what} cannot be part of a media key", code="invalid_media_key")
    return value


def media_key(tenant_id: str, media_id: str) -> str:
    """`media/{tenant}/{media_id}`; refuses ids that are not wagate media ids."""
    if not _MEDIA_ID.match(media_id):
        raise NotFound("no such media", code="media_not_found")
    return f"{MEDIA_PREFIX}{_segment(tenant_id, 'tenant id')}/{media_id}"


def inbound_key(account_id: str, message_id: str) -> str:
    return f"{INBOUND_PREFIX}{_segment(account_id, 'account id')}/{_segment(message_id, 'message id')}"


def inbound_prefix(account_id: str) -> str:
    """Where everything an account received is kept (`inbound/{account_id}/`)."""
    return f"{INBOUND_PREFIX}{_segment(account_id, 'account id')}/"


def snapshot_key(account_id: str) -> str:
    """The account's encrypted session snapshot (`snapshots/{account_id}.bin`)."""
    return f"{SNAPSHOT_PREFIX}{_segment(account_id, 'account id')}.bin"


def content_media_id(tenant_id: str, data: bytes) -> tuple[str, str]:
    """(media id, sha256) of inline bytes: the same bytes of a tenant always get the same id, so
    accepting a message twice (a retry, an idempotent replay) stores one object and one body."""
    digest = hashlib.sha256(data).hexdigest()
    tagged = int(hashlib.sha256(f"{tenant_id}\x1f{digest}".encode()).hexdigest()[:33], 16) >> 2  # 130 bits
    return f"med_{b32(tagged, 26)}", digest


class NewUpload(NamedTuple):
    media_id: str
    url: str
    headers: dict[str, str]
    expires_at: str


@dataclass(frozen=True)
class MediaObject:
    """What S3 knows about a media object (metadata only)."""

    key: str
    mime_type: str | None
    size_bytes: int
    uploaded: bool  # False for the placeholder of an announced upload
    sha256: str | None = None
    filename: str | None = None
    created_at: str | None = None


def presigner() -> Any:
    """An S3 client for presigned URLs only (signing is local: no timeouts or retries to set).

    SigV4, so the URL signs Content-Type, Content-Length and the metadata headers of an upload; on AWS
    the regional virtual-hosted endpoint (the global one redirects for new buckets outside us-east-1, and
    a redirected PUT fails); against an emulator its own endpoint, which a client on this machine reaches.
    """
    settings = get_settings()
    if settings.target == "localstack":
        return client("s3")
    return _presigner(settings.region, settings.endpoint_url)


@cache
def _presigner(region: str, endpoint_url: str | None) -> Any:
    endpoint = endpoint_url
    if endpoint is None:
        suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
        endpoint = f"https://s3.{region}.{suffix}"
    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint_url else "virtual"})
    return boto3.session.Session().client(
        "s3", region_name=region, endpoint_url=endpoint, config=config)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return str(error.get("Code")) in _MISSING


def _fail(exc: ClientError) -> Exception:
    """S3 errors as domain errors: a 5xx/throttle is retryable (503), anything else stays what it is."""
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if status >= 500 or exc.response.get("Error", {}).get("Code") in {"SlowDown", "RequestTimeout"}:
        return DependencyFailure("the media store is unavailable; retry")
    return exc


class MediaStore:
    """The media bucket's verbs; blocking (the host calls them through asyncio.to_thread)."""

    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        return self._s3 or client("s3")

    def new_upload(self, tenant_id: str, mime_type: str, size: int | None = None, filename: str | None = None,
                   ttl_seconds: int = UPLOAD_URL_TTL) -> NewUpload:
        """Announce an upload (a `pending` placeholder) and presign the PUT that replaces it."""
        media_id = new_id("med")
        key = media_key(tenant_id, media_id)
        metadata = {"state": UPLOADED, "tenant": tenant_id}
        if filename:
            metadata["filename"] = filename.encode("ascii", "backslashreplace").decode()[:240]
        self._put(key, b"", mime_type, {"state": PENDING, "tenant": tenant_id, **(
            {"filename": metadata["filename"]} if filename else {})})
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": mime_type, "Metadata": metadata}
        headers = {"Content-Type": mime_type, **{f"x-amz-meta-{k}": v for k, v in metadata.items()}}
        if size is not None:
            params["ContentLength"] = size
            headers["Content-Length"] = str(size)
        url = presigner().generate_presigned_url("put_object", Params=params, ExpiresIn=ttl_seconds)
        expires = _iso(datetime.now(UTC) + timedelta(seconds=ttl_seconds))
        return NewUpload(media_id, str(url), headers, expires)

    def put(self, key: str, data: bytes, mime_type: str, metadata: dict[str, str] | None = None) -> MediaObject:
        """Store `data` under `key` (sha256 kept in the object's metadata)."""
        digest = hashlib.sha256(data).hexdigest()
        self._put(key, data, mime_type, {"state": STORED, "sha256": digest, **(metadata or {})})
        return MediaObject(key=key, mime_type=mime_type, size_bytes=len(data), uploaded=True, sha256=digest,
                           filename=(metadata or {}).get("filename"))

    def _put(self, key: str, data: bytes, mime_type: str, metadata: dict[str, str]) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=mime_type, Metadata=metadata)
        except ClientError as exc:
            raise _fail(exc) from exc

    def head(self, key: str) -> MediaObject | None:
        """The object's metadata, or None when there is none."""
        try:
            answer = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise _fail(exc) from exc
        meta = {str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()}
        modified = answer.get("LastModified")
        return MediaObject(
            key=key, mime_type=answer.get("ContentType"), size_bytes=int(answer.get("ContentLength") or 0),
            uploaded=meta.get("state") != PENDING, sha256=meta.get("sha256"), filename=meta.get("filename"),
            created_at=_iso(modified) if isinstance(modified, datetime) else None,
        )

    def exists(self, tenant_id: str, media_id: str) -> MediaObject | None:
        """The tenant's media object (uploaded or still pending), or None: other tenants' ids do not exist."""
        try:
            key = media_key(tenant_id, media_id)
        except (NotFound, InvalidRequest):
            return None
        return self.head(key)

    def get(self, key: str, max_bytes: int) -> tuple[bytes, str | None]:
        """(bytes, content type); NotFound `media_not_found`, InvalidRequest `media_too_large`."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise NotFound("no such media", code="media_not_found") from exc
            raise _fail(exc) from exc
        body = answer["Body"]
        try:
            if int(answer.get("ContentLength") or 0) > max_bytes:
                raise InvalidRequest(f"the media is larger than {max_bytes} bytes", code="media_too_large")
            data = bytes(body.read(max_bytes + 1))
        finally:
            body.close()
        if len(data) > max_bytes:
            raise InvalidRequest(f"the media is larger than {max_bytes} bytes", code="media_too_large")
        return data, answer.get("ContentType")

    def peek(self, key: str, size: int) -> bytes:
        """The first `size` bytes of an object (b"" when it is empty or missing)."""
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{size - 1}")
        except ClientError as exc:
            if _missing(exc) or exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise _fail(exc) from exc
        body = answer["Body"]
        try:
            return bytes(body.read(size))
        finally:
            body.close()

    def delete(self, key: str) -> None:
        """Remove an object (S3 answers alike whether it existed or not)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise _fail(exc) from exc

    def delete_prefix(self, prefix: str, limit: int = 1000) -> tuple[int, bool]:
        """Remove up to `limit` objects under `prefix`: (how many, whether more remain)."""
        try:
            listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=min(limit, 1000))
            keys = [{"Key": str(o["Key"])} for o in listed.get("Contents") or []]
            if keys:
                answer = self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                if answer.get("Errors"):
                    raise DependencyFailure(f"{len(answer['Errors'])} object(s) under {prefix} were not deleted")
        except ClientError as exc:
            raise _fail(exc) from exc
        return len(keys), bool(listed.get("IsTruncated"))

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        """A URL that reads the object for `ttl_seconds` (no AWS call: signed locally)."""
        return str(presigner().generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=ttl_seconds))
