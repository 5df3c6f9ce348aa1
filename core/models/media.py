"""Media: `POST /media` bodies and answers, WhatsApp's size limits per message type, and what bytes really are.

Sniffing reads magic bytes only (never a Content-Type header or a file name), so a declared type can be
checked against the content before WhatsApp sees it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MB = 1024 * 1024
#: WhatsApp's limits per message type (the Cloud API's documented maxima).
MAX_BYTES: dict[str, int] = {"image": 5 * MB, "video": 16 * MB, "audio": 16 * MB, "document": 100 * MB,
                             "sticker": 500 * 1024}
MEDIA_TYPES = frozenset(MAX_BYTES)
#: The largest upload `POST /media` accepts: the largest message type (a document).
MAX_UPLOAD_BYTES = max(MAX_BYTES.values())
MEDIA_ID_PATTERN = r"^med_[0-9a-z]{26}$"
MIME_PATTERN = r"^[\w.+-]+/[\w.+-]+$"
SNIFF_BYTES = 64  # enough for every signature below


class MediaUploadRequest(BaseModel):
    """`POST /media`: announce an upload; the bytes go to the presigned URL of the answer."""

    model_config = ConfigDict(extra="forbid")

    mime_type: str = Field(pattern=MIME_PATTERN, max_length=255, examples=["image/jpeg"])
    size_bytes: int | None = Field(default=None, ge=1, le=MAX_UPLOAD_BYTES,
                                   description="When given, the upload must be exactly this long.")
    filename: str | None = Field(default=None, min_length=1, max_length=240)


class MediaUpload(BaseModel):
    """Where and how to upload: `PUT` the bytes to `upload_url` with exactly these `headers`."""

    id: str = Field(description="Use it as `id` of an image, video, audio, document or sticker body.")
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: str = Field(description="The URL stops working at this time.")
    max_bytes: int


class MediaInfo(BaseModel):
    """An uploaded (or announced) media object of the tenant."""

    id: str
    mime_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    filename: str | None = None
    uploaded: bool
    created_at: str | None = None


class InboundMedia(BaseModel):
    """The `media` of a received message's content, as stored (`key` under `inbound/`)."""

    key: str
    mime_type: str
    size_bytes: int
    sha256: str
    filename: str | None = None
    caption: str | None = None


# --- what the bytes are -------------------------------------------------------------------------------------

_MP4_BRANDS = {b"M4A ": "audio/mp4", b"M4B ": "audio/mp4", b"M4P ": "audio/mp4", b"qt  ": "video/quicktime"}


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes of `data` prove, or None when no known signature matches."""
    head = data[:SNIFF_BYTES]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"3g2"):
            return "video/3gpp2"
        if brand.startswith(b"3gp"):
            return "video/3gpp"
        return _MP4_BRANDS.get(brand, "video/mp4")
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 in (0xE2, 0xE4, 0xE6)):
        return "audio/mpeg"  # ID3 tag, or an MPEG audio frame sync with layer III/II/I
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS: sync, layer 00
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"  # docx/xlsx/pptx/odt are zip containers
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "application/x-ole-storage"  # doc/xls/ppt (OLE2)
    return None


# A container family per MIME type: a declared type matches sniffed bytes of the same family.
_FAMILY = {
    "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/pjpeg": "jpeg",
    "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    "video/mp4": "mp4", "video/quicktime": "mp4", "video/3gpp": "mp4", "video/3gpp2": "mp4",
    "audio/mp4": "mp4", "audio/m4a": "mp4", "audio/x-m4a": "mp4", "audio/3gpp": "mp4",
    "audio/ogg": "ogg", "audio/opus": "ogg", "video/ogg": "ogg", "application/ogg": "ogg",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3",
    "audio/aac": "aac", "audio/x-aac": "aac", "audio/amr": "amr", "audio/wav": "wav", "audio/x-wav": "wav",
}
# What each message type may carry (families); documents carry anything.
_ALLOWED = {
    "image": {"jpeg", "png", "webp", "gif"},
    "sticker": {"webp"},
    "video": {"mp4"},
    "audio": {"ogg", "mp3", "aac", "mp4", "amr", "wav"},
}


def base_mime(mime_type: str | None) -> str:
    """`audio/ogg; codecs=opus` → `audio/ogg` (lower-case)."""
    return (mime_type or "").split(";", 1)[0].strip().lower()


def family(mime_type: str | None) -> str | None:
    return _FAMILY.get(base_mime(mime_type))


def fits(kind: str, mime_type: str | None) -> bool:
    """Whether a message of `kind` may carry content of `mime_type` (documents carry anything)."""
    if kind == "document":
        return True
    return family(mime_type) in _ALLOWED.get(kind, set())


def same_content(declared: str | None, sniffed: str | None) -> bool:
    """Whether the declared MIME type describes the sniffed bytes (same container family)."""
    fam = family(sniffed)
    return fam is not None and fam == family(declared)
