"""Identifiers: time-ordered, URL-safe, prefixed by what they name."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower-case


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid() -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits, sorts by creation time."""
    millis = int(time.time() * 1000)
    return _b32(millis, 10) + _b32(int.from_bytes(os.urandom(10), "big"), 16)


def new_id(prefix: str) -> str:
    """A new id such as `acc_01j...`."""
    return f"{prefix}_{ulid()}"
