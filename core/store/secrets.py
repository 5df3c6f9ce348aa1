"""Small secrets (webhook and producer signing secrets) encrypted with the stack's KMS key.

Stored items hold only the ciphertext; a plaintext appears in an API answer once, when it is created.
Decrypted values are cached in-process for a few minutes: a busy dispatcher would otherwise call KMS once
per delivery.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from core.aws import client
from core.config import get_settings
from core.errors import DependencyFailure

#: Bound into every ciphertext: a blob encrypted for something else (a session snapshot key) does not decrypt here.
CONTEXT = {"purpose": "wagate-secret"}
CACHE_SECONDS = 300.0
UNREADABLE = {"InvalidCiphertextException", "IncorrectKeyException", "NotFoundException"}
_CACHE_MAX = 1024

_lock = threading.Lock()
_cache: dict[str, tuple[str, float]] = {}


def encrypt(plaintext: str) -> str:
    """The plaintext encrypted under the stack key (SNAPSHOT_KEY_ID), base64 text for a string attribute."""
    try:
        response = client("kms").encrypt(KeyId=get_settings().snapshot_key_id, Plaintext=plaintext.encode(),
                                         EncryptionContext=CONTEXT)
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    ciphertext = base64.b64encode(response["CiphertextBlob"]).decode()
    _remember(ciphertext, plaintext)
    return ciphertext


def decrypt(ciphertext: str) -> str:
    """The plaintext of `encrypt`'s output (cached for CACHE_SECONDS)."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(ciphertext)
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        response = client("kms").decrypt(CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=CONTEXT)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in UNREADABLE:
            raise ValueError("the stored secret cannot be decrypted") from exc
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except BotoCoreError as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except binascii.Error as exc:
        raise ValueError("the stored secret cannot be decrypted") from exc
    plaintext = bytes(response["Plaintext"]).decode()
    _remember(ciphertext, plaintext)
    return plaintext


def _remember(ciphertext: str, plaintext: str) -> None:
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            now = time.monotonic()
            for key in [k for k, (_, until) in _cache.items() if until <= now] or list(_cache)[:_CACHE_MAX // 2]:
                _cache.pop(key, None)
        _cache[ciphertext] = (plaintext, time.monotonic() + CACHE_SECONDS)


def forget() -> None:
    """Drop every cached plaintext (tests; a rotated key)."""
    with _lock:
        _cache.clear()
