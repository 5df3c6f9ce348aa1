"""What bytes really are (magic numbers), and which message types may carry them."""

from __future__ import annotations

import pytest

from core.models.media import fits, same_content, sniff

SAMPLES = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "image/gif": b"GIF89a\x01\x00\x01\x00",
    "video/mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2",
    "video/3gpp": b"\x00\x00\x00\x18ftyp3gp5\x00\x00\x00\x00",
    "video/quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00",
    "audio/mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",
    "audio/ogg": b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00OpusHead",
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "audio/aac": b"\xff\xf1\x50\x80\x02\x1f\xfc",
    "audio/amr": b"#!AMR\n\x3c",
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "application/pdf": b"%PDF-1.7\n",
    "application/zip": b"PK\x03\x04\x14\x00\x06\x00",
    "application/x-ole-storage": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00",
}


@pytest.mark.parametrize(("expected", "data"), SAMPLES.items())
def test_signatures_are_recognised(expected: str, data: bytes) -> None:
    assert sniff(data) == expected


def test_mp3_frames_without_a_tag_are_audio_and_unknown_bytes_are_nothing() -> None:
    assert sniff(b"\xff\xfb\x90\x64\x00") == "audio/mpeg"
    assert sniff(b"<html><body>not an image</body></html>") is None
    assert sniff(b"") is None
    assert sniff(b"\xff") is None


@pytest.mark.parametrize(("kind", "mime", "ok"), [
    ("image", "image/jpeg", True), ("image", "image/png", True), ("image", "video/mp4", False),
    ("sticker", "image/webp", True), ("sticker", "image/png", False),
    ("video", "video/mp4", True), ("video", "video/3gpp", True), ("video", "image/gif", False),
    ("audio", "audio/ogg; codecs=opus", True), ("audio", "audio/mpeg", True), ("audio", "audio/amr", True),
    ("audio", "audio/mp4", True), ("audio", "application/pdf", False),
    ("document", "application/pdf", True), ("document", "text/plain", True), ("document", None, True),
])
def test_what_each_message_type_may_carry(kind: str, mime: str | None, ok: bool) -> None:
    assert fits(kind, mime) is ok


def test_a_declared_type_matches_bytes_of_its_container_family() -> None:
    assert same_content("image/jpg", "image/jpeg")
    assert same_content("audio/ogg; codecs=opus", "audio/ogg")
    assert same_content("audio/mp4", "video/mp4")  # m4a audio in an isom container
    assert not same_content("image/png", "image/jpeg")
    assert not same_content("image/png", None)
    assert not same_content(None, "image/png")
