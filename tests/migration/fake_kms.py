"""An in-memory stand-in for the two KMS calls the migration's sealing makes (for runs against FakeDynamoDB)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from botocore.exceptions import ClientError


class FakeKms:
    """`generate_data_key` and `decrypt` with the encryption context bound in, as KMS does."""

    def __init__(self) -> None:
        self.calls = 0

    def generate_data_key(self, *, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:
        assert KeySpec == "AES_256"
        self.calls += 1
        key = os.urandom(32)
        blob = json.dumps({"key_id": KeyId, "context": EncryptionContext, "key": base64.b64encode(key).decode()})
        return {"Plaintext": key, "CiphertextBlob": blob.encode(), "KeyId": KeyId}

    def decrypt(self, *, CiphertextBlob: bytes, EncryptionContext: dict[str, str]) -> dict[str, Any]:
        blob = json.loads(CiphertextBlob)
        if blob["context"] != EncryptionContext:
            raise ClientError({"Error": {"Code": "InvalidCiphertextException", "Message": "context"}}, "Decrypt")
        return {"Plaintext": base64.b64decode(blob["key"]), "KeyId": blob["key_id"]}
