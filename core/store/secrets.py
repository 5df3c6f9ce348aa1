"""Small secrets (webhook and producer signing secrets, the JWT key) encrypted with the stack's KMS key.

Stored items hold only the ciphertext; a plaintext appears in an API answer once, when it is created.
Decrypted values are cached in-process for a few minutes: a busy dispatcher would otherwise call KMS once
per delivery.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.aws import client
from core.config import get_settings
from core.errors import DependencyFailure

#: Bound into every ciphertext: a blob encrypted for something else (a session snapshot key) does not decrypt here.
PURPOSE = "wagate-secret"
CONTEXT = {"purpose": PURPOSE}
#: The JWT signing key (functions/service/api_keys.py): the authorizer may decrypt this purpose and no other.
JWT_KEY_PURPOSE = "wagate-jwt-key"
#: Credentials migrated from the legacy store (`legacy_secrets` of an account): no function may decrypt them.
LEGACY_PURPOSE = "wagate-legacy-secret"
CACHE_SECONDS = 300.0
UNREADABLE = {"InvalidCiphertextException", "IncorrectKeyException", "NotFoundException"}
_CACHE_MAX = 1024

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[str, float]] = {}


def encrypt(plaintext: str, *, purpose: str = PURPOSE, key_id: str | None = None, kms: Any | None = None) -> str:
    """The plaintext encrypted under the stack key (SNAPSHOT_KEY_ID), base64 text for a string attribute.

    `purpose` is bound into the ciphertext: IAM grants Decrypt per purpose (JWT_KEY_PURPOSE, LEGACY_PURPOSE).
    `key_id` and `kms` let a tool outside the functions (the migration) use its own key id and client.
    """
    try:
        response = (kms or client("kms")).encrypt(KeyId=key_id or get_settings().snapshot_key_id,
                                                  Plaintext=plaintext.encode(), EncryptionContext={"purpose": purpose})
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    ciphertext = base64.b64encode(response["CiphertextBlob"]).decode()
    if kms is None:
        _remember(purpose, ciphertext, plaintext)
    return ciphertext


def decrypt(ciphertext: str, *, purpose: str = PURPOSE) -> str:
    """The plaintext of `encrypt`'s output for the same purpose (cached for CACHE_SECONDS)."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get((purpose, ciphertext))
    if hit is not None and hit[1] > now:
        return hit[0]
    try:
        response = client("kms").decrypt(CiphertextBlob=base64.b64decode(ciphertext),
                                         EncryptionContext={"purpose": purpose})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in UNREADABLE:
            raise ValueError("the stored secret cannot be decrypted") from exc
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except BotoCoreError as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except binascii.Error as exc:
        raise ValueError("the stored secret cannot be decrypted") from exc
    plaintext = bytes(response["Plaintext"]).decode()
    _remember(purpose, ciphertext, plaintext)
    return plaintext


def seal(plaintext: str, *, purpose: str, key_id: str | None = None, kms: Any | None = None) -> str:
    """Like `encrypt` for values of any size (KMS encrypts at most 4 KB): AES-256-GCM under a fresh data key that
    KMS encrypts with `purpose` bound in. JSON text `{"v": 1, "key", "nonce", "data"}` (base64 values)."""
    try:
        generated = (kms or client("kms")).generate_data_key(
            KeyId=key_id or get_settings().snapshot_key_id, KeySpec="AES_256", EncryptionContext={"purpose": purpose})
    except (ClientError, BotoCoreError) as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    nonce = os.urandom(12)
    data = AESGCM(generated["Plaintext"]).encrypt(nonce, plaintext.encode(), purpose.encode())
    return json.dumps({"v": 1, **{name: base64.b64encode(value).decode() for name, value in (
        ("key", generated["CiphertextBlob"]), ("nonce", nonce), ("data", data))}}, separators=(",", ":"))


def unseal(sealed: str, *, purpose: str, kms: Any | None = None) -> str:
    """The plaintext of `seal`'s output (for operators holding kms:Decrypt on `purpose`; nothing is cached)."""
    try:
        envelope = json.loads(sealed)
        key = (kms or client("kms")).decrypt(CiphertextBlob=base64.b64decode(envelope["key"]),
                                             EncryptionContext={"purpose": purpose})["Plaintext"]
        return AESGCM(key).decrypt(base64.b64decode(envelope["nonce"]), base64.b64decode(envelope["data"]),
                                   purpose.encode()).decode()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in UNREADABLE:
            raise ValueError("the sealed value cannot be decrypted") from exc
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except BotoCoreError as exc:
        raise DependencyFailure("the key service is unavailable; retry", code="service_unavailable") from exc
    except (ValueError, KeyError, TypeError, InvalidTag, binascii.Error) as exc:
        raise ValueError("the sealed value cannot be decrypted") from exc


def _remember(purpose: str, ciphertext: str, plaintext: str) -> None:
    with _lock:
        if len(_cache) >= _CACHE_MAX:
            now = time.monotonic()
            for key in [k for k, (_, until) in _cache.items() if until <= now] or list(_cache)[:_CACHE_MAX // 2]:
                _cache.pop(key, None)
        _cache[(purpose, ciphertext)] = (plaintext, time.monotonic() + CACHE_SECONDS)


def forget() -> None:
    """Drop every cached plaintext (tests; a rotated key)."""
    with _lock:
        _cache.clear()
