"""Identifiers: time-ordered, URL-safe, prefixed by what they name."""

from __future__ import annotations

import hashlib
import os
import threading
import time

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower-case
_lock = threading.Lock()
_last = (0, 0)


def b32(value: int, length: int) -> str:
    """`value` as `length` Crockford base32 characters (most significant first)."""
    chars = []
    for _ in range(length):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid() -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits, sorts by creation time.

    Monotonic within a process: two ids in the same millisecond keep their order (per-account message
    order follows message ids).
    """
    global _last
    millis = int(time.time() * 1000)
    with _lock:
        last_ms, last_rand = _last
        if millis <= last_ms:
            millis, rand = last_ms, (last_rand + 1) % (1 << 80)
        else:
            rand = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last = (millis, rand)
    return b32(millis, 10) + b32(rand, 16)


def ulid_floor(millis: int) -> str:
    """The smallest ULID of a millisecond: a range-key bound for "created before/after"."""
    return b32(max(0, millis), 10) + "0" * 16


def new_id(prefix: str) -> str:
    """A new id such as `acc_01j...`."""
    return f"{prefix}_{ulid()}"


def id_floor(prefix: str, millis: int) -> str:
    """The smallest `prefix_` id created at `millis`."""
    return f"{prefix}_{ulid_floor(millis)}"


def inbound_message_id(wa_serialized: str, timestamp: int) -> str:
    """Time-ordered and deterministic, so a re-emitted inbound message is stored once (by any host)."""
    digest = int(hashlib.sha256(wa_serialized.encode()).hexdigest()[:20], 16)
    return f"msg_{b32(timestamp * 1000, 10)}{b32(digest, 16)}"


def event_id(*parts: object) -> str:
    """A deterministic event id for something that may be published more than once (an ack seen by two
    hosts, a re-emitted inbound message): the same parts give the same `evt_…`."""
    digest = int(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32], 16)
    return f"evt_{b32(digest, 26)}"
