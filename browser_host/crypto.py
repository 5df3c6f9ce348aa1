"""Encrypted account snapshots in S3: KMS envelope encryption with AES-256-GCM.

Each `save` asks KMS for a fresh AES-256 data key bound to the account by the KMS encryption context,
encrypts the snapshot locally with AES-GCM (associated data binds the account id and format too) and
stores the ciphertext with the *encrypted* data key in the object's metadata. Reading needs
`kms:Decrypt` with the same encryption context, so a snapshot copied under another account's name fails
twice: in KMS and in the GCM tag. The object also gets S3 server-side encryption, as defence in depth.

The methods are synchronous (boto3); the browser host runs them with `asyncio.to_thread`. The `*_async`
wrappers do exactly that for callers that prefer awaiting. Key material is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.models.accounts import ACCOUNT_ID_PATTERN

log = logging.getLogger(__name__)

#: Version of the encrypted object layout (metadata names, AAD); the snapshot JSON has its own version.
ENVELOPE_VERSION = "1"
NONCE_BYTES = 12
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN)
# S3 lower-cases user metadata names; keep ours lower-case so a round trip is exact.
META_EDK, META_KEY_ID, META_NONCE, META_VERSION, META_ACCOUNT = (
    "wagate-edk", "wagate-key-id", "wagate-nonce", "wagate-envelope", "wagate-account-id")


class SnapshotError(Exception):
    """A snapshot cannot be stored or read."""


class SnapshotIntegrityError(SnapshotError):
    """The stored snapshot was altered, or belongs to another account: never use it."""


def _aad(account_id: str) -> bytes:
    # Binds the ciphertext to its account and layout: moving or relabelling it breaks the GCM tag.
    return f"wagate-snapshot/{ENVELOPE_VERSION}/{account_id}".encode()


def _check_account_id(account_id: str) -> str:
    # The id becomes part of an S3 key: no slashes or dot-dot tricks.
    if not _ACCOUNT_ID.match(account_id) or ".." in account_id:
        raise ValueError(f"invalid account id for a snapshot key: {account_id!r}")
    return account_id


class SnapshotStore:
    """Account snapshots in `s3://{bucket}/{prefix}{account_id}.bin`, envelope-encrypted with a KMS key."""

    def __init__(self, s3: Any, kms: Any, bucket: str, kms_key_id: str, *, prefix: str = "snapshots/",
                 server_side_encryption: str = "aws:kms") -> None:
        """`s3`/`kms` are boto3 clients; SSE is "aws:kms" (same key) or "AES256"."""
        self.s3 = s3
        self.kms = kms
        self.bucket = bucket
        self.kms_key_id = kms_key_id
        self.prefix = prefix
        self.server_side_encryption = server_side_encryption

    def object_key(self, account_id: str) -> str:
        """The S3 key of an account's snapshot."""
        return f"{self.prefix}{_check_account_id(account_id)}.bin"

    def save(self, account_id: str, plaintext: bytes) -> None:
        """Encrypt `plaintext` under a fresh data key and replace the account's snapshot."""
        key = self.object_key(account_id)
        context = {"account_id": account_id}
        data_key = self.kms.generate_data_key(KeyId=self.kms_key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key["Plaintext"]).encrypt(nonce, plaintext, _aad(account_id))
        del data_key["Plaintext"]  # drop our reference to the plaintext key as soon as it has been used
        sse: dict[str, str] = {"ServerSideEncryption": self.server_side_encryption}
        if self.server_side_encryption == "aws:kms":
            sse["SSEKMSKeyId"] = self.kms_key_id
        self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=ciphertext, ContentType="application/octet-stream",
            Metadata={
                META_EDK: base64.b64encode(data_key["CiphertextBlob"]).decode(),
                META_KEY_ID: data_key["KeyId"],
                META_NONCE: base64.b64encode(nonce).decode(),
                META_VERSION: ENVELOPE_VERSION,
                META_ACCOUNT: account_id,
            },
            **sse,
        )
        log.info("snapshot saved", extra={"account_id": account_id, "bytes": len(ciphertext)})

    def load(self, account_id: str) -> bytes | None:
        """The account's decrypted snapshot, or None when there is none.

        Raises SnapshotIntegrityError when the object was altered or was written for another account.
        """
        key = self.object_key(account_id)
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        body: bytes = obj["Body"].read()
        meta = {k.lower(): v for k, v in obj.get("Metadata", {}).items()}
        if meta.get(META_VERSION) != ENVELOPE_VERSION:
            raise SnapshotError(f"snapshot {key}: unsupported envelope version {meta.get(META_VERSION)!r}")
        if meta.get(META_ACCOUNT) != account_id:
            raise SnapshotIntegrityError(f"snapshot {key} was written for another account")
        try:
            encrypted_key = base64.b64decode(meta[META_EDK], validate=True)
            nonce = base64.b64decode(meta[META_NONCE], validate=True)
        except (KeyError, ValueError) as exc:
            raise SnapshotIntegrityError(f"snapshot {key}: envelope metadata damaged") from exc
        try:
            data_key = self.kms.decrypt(CiphertextBlob=encrypted_key, KeyId=meta.get(META_KEY_ID, self.kms_key_id),
                                        EncryptionContext={"account_id": account_id})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise SnapshotIntegrityError(f"snapshot {key}: data key rejected by KMS ({code})") from exc
            raise
        try:
            plaintext: bytes = AESGCM(data_key["Plaintext"]).decrypt(nonce, body, _aad(account_id))
        except (InvalidTag, ValueError) as exc:
            raise SnapshotIntegrityError(f"snapshot {key}: authentication failed (altered or misplaced)") from exc
        finally:
            del data_key["Plaintext"]
        return plaintext

    def delete(self, account_id: str) -> None:
        """Forget the account's snapshot (no error when there is none)."""
        self.s3.delete_object(Bucket=self.bucket, Key=self.object_key(account_id))
        log.info("snapshot deleted", extra={"account_id": account_id})

    async def save_async(self, account_id: str, plaintext: bytes) -> None:
        """`save` in a worker thread."""
        await asyncio.to_thread(self.save, account_id, plaintext)

    async def load_async(self, account_id: str) -> bytes | None:
        """`load` in a worker thread."""
        return await asyncio.to_thread(self.load, account_id)

    async def delete_async(self, account_id: str) -> None:
        """`delete` in a worker thread."""
        await asyncio.to_thread(self.delete, account_id)
