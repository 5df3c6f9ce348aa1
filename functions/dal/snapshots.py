"""The API's side of session snapshots: it only ever deletes them (the browser host writes and reads)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from functions.shared.aws import client
from functions.shared.errors import DependencyFailure

# The browser host stores `s3://{media bucket}/snapshots/{account_id}.bin` (browser_host/crypto.py).
SNAPSHOT_PREFIX = "snapshots/"


class SnapshotObjects:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def delete(self, account_id: str) -> None:
        """Forget an account's linked-device state: the next start needs a new QR."""
        if not self.bucket:
            return
        try:
            client("s3").delete_object(Bucket=self.bucket, Key=f"{SNAPSHOT_PREFIX}{account_id}.bin")
        except (ClientError, BotoCoreError) as exc:
            raise DependencyFailure("could not delete the account's session snapshot; retry") from exc
