"""SnapshotStore: KMS envelope encryption of account snapshots in S3, against moto over HTTP."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from browser_host.crypto import (
    META_ACCOUNT,
    META_EDK,
    META_NONCE,
    SnapshotError,
    SnapshotIntegrityError,
    SnapshotStore,
)


def test_round_trip_is_encrypted_and_bound_to_the_account(store: SnapshotStore, aws: dict[str, Any]) -> None:
    # Given a snapshot for an account
    plaintext = b'{"secret": "linked device"}' + os.urandom(64)
    # When it is saved and loaded
    store.save("acc_round", plaintext)
    loaded = store.load("acc_round")
    # Then it comes back intact, while S3 only holds ciphertext plus an encrypted data key
    assert loaded == plaintext
    head = aws["s3"].head_object(Bucket=aws["bucket"], Key="snapshots/acc_round.bin")
    body = aws["s3"].get_object(Bucket=aws["bucket"], Key="snapshots/acc_round.bin")["Body"].read()
    assert b"linked device" not in body and len(body) == len(plaintext) + 16  # GCM tag
    meta = head["Metadata"]
    assert meta[META_ACCOUNT] == "acc_round" and meta["wagate-envelope"] == "1"
    assert len(base64.b64decode(meta[META_NONCE])) == 12
    assert aws["key_id"] in meta["wagate-key-id"]
    assert head["ServerSideEncryption"] == "aws:kms"
    # and every save uses a fresh data key and nonce
    store.save("acc_round", plaintext)
    again = aws["s3"].head_object(Bucket=aws["bucket"], Key="snapshots/acc_round.bin")["Metadata"]
    assert again[META_EDK] != meta[META_EDK] and again[META_NONCE] != meta[META_NONCE]


def test_absent_and_delete(store: SnapshotStore) -> None:
    assert store.load("acc_never_saved") is None
    store.save("acc_gone", b"x")
    store.delete("acc_gone")
    assert store.load("acc_gone") is None
    store.delete("acc_gone")  # idempotent


@pytest.mark.parametrize("damage", ["body", "nonce", "edk"])
def test_tampering_is_detected(store: SnapshotStore, aws: dict[str, Any], damage: str) -> None:
    # Given a stored snapshot
    store.save("acc_tamper", b"state" * 50)
    key = "snapshots/acc_tamper.bin"
    obj = aws["s3"].get_object(Bucket=aws["bucket"], Key=key)
    body, meta = bytearray(obj["Body"].read()), dict(obj["Metadata"])
    # When one byte of the ciphertext or of the envelope changes
    if damage == "body":
        body[10] ^= 1
    else:
        name = META_NONCE if damage == "nonce" else META_EDK
        raw = bytearray(base64.b64decode(meta[name]))
        raw[-1] ^= 1
        meta[name] = base64.b64encode(bytes(raw)).decode()
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=bytes(body), Metadata=meta)
    # Then loading refuses it
    with pytest.raises(SnapshotIntegrityError):
        store.load("acc_tamper")


def test_a_snapshot_moved_to_another_account_is_refused(store: SnapshotStore, aws: dict[str, Any]) -> None:
    # Given account A's snapshot copied under account B's key
    store.save("acc_a", b"A's linked device")
    obj = aws["s3"].get_object(Bucket=aws["bucket"], Key="snapshots/acc_a.bin")
    body, meta = obj["Body"].read(), dict(obj["Metadata"])
    aws["s3"].put_object(Bucket=aws["bucket"], Key="snapshots/acc_b.bin", Body=body, Metadata=meta)
    # Then B cannot load it: its metadata names A
    with pytest.raises(SnapshotIntegrityError, match="another account"):
        store.load("acc_b")
    # and relabelling the metadata does not help: KMS context and GCM associated data both name A
    meta[META_ACCOUNT] = "acc_b"
    aws["s3"].put_object(Bucket=aws["bucket"], Key="snapshots/acc_b.bin", Body=body, Metadata=meta)
    with pytest.raises(SnapshotIntegrityError):
        store.load("acc_b")


def test_unknown_envelope_version_and_bad_ids(store: SnapshotStore, aws: dict[str, Any]) -> None:
    aws["s3"].put_object(Bucket=aws["bucket"], Key="snapshots/acc_v9.bin", Body=b"?",
                         Metadata={"wagate-envelope": "9", META_ACCOUNT: "acc_v9"})
    with pytest.raises(SnapshotError, match="version"):
        store.load("acc_v9")
    for bad in ("../etc", "a/b", "", "x" * 200):
        with pytest.raises(ValueError):
            store.object_key(bad)


def test_async_wrappers(store: SnapshotStore, run: Any) -> None:
    run(store.save_async("acc_async", b"async"))
    assert run(store.load_async("acc_async")) == b"async"
    run(store.delete_async("acc_async"))
    assert run(store.load_async("acc_async")) is None
