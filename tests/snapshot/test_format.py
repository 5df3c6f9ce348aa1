"""The snapshot document: format/version, and which captured keys a storage state keeps."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from browser_host.snapshot import (
    FORMAT_VERSION,
    AccountSnapshot,
    CapturedKey,
    SnapshotError,
    _select_keys,
    restore_script,
)

ORIGIN = "https://web.whatsapp.com"


def key(pk: Any = 1, raw: str = "AAAA") -> CapturedKey:
    return CapturedKey(origin=ORIGIN, db="wawc_db_enc", db_version=1, store="keys", key_path="id",
                       auto_increment=False, primary_key=pk, field="key", record={"id": pk, "_expiration": 9},
                       raw=raw, algorithm="HKDF", usages=["deriveKey", "deriveBits"])


def state(*pks: Any, version: int = 3) -> dict[str, Any]:
    """A storage_state(indexed_db=True) as Playwright 1.65 writes it (CryptoKey -> {})."""
    records = [{"valueEncoded": {"o": [{"k": "id", "v": pk}, {"k": "key", "v": {"o": [], "id": 2}},
                                       {"k": "_expiration", "v": 9}], "id": 1}} for pk in pks]
    return {"cookies": [], "origins": [{"origin": ORIGIN, "localStorage": [], "indexedDB": [
        {"name": "wawc_db_enc", "version": version, "stores": [
            {"name": "keys", "autoIncrement": False, "keyPath": "id", "records": records, "indexes": []}]}]}]}


def test_encode_decode_round_trip() -> None:
    snap = AccountSnapshot(storage_state=state(1), keys=[key()])
    data = snap.encode()
    assert data[:2] == b"\x1f\x8b"
    doc = json.loads(gzip.decompress(data))
    assert doc["format"] == "wagate.account-snapshot" and doc["version"] == FORMAT_VERSION
    back = AccountSnapshot.decode(data)
    assert back.storage_state == snap.storage_state and back.keys == snap.keys


@pytest.mark.parametrize("data", [b"", b"not json", gzip.compress(b'{"format": "other"}'),
                                  gzip.compress(b'{"format": "wagate.account-snapshot", "version": 99}')])
def test_decode_rejects_what_it_does_not_understand(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        AccountSnapshot.decode(data)


def test_keys_follow_the_stored_records() -> None:
    # A captured key whose record is stored is kept, with the database version as stored now
    [kept] = _select_keys(state(1, version=3), [key(1), key(7)])
    assert kept["primary_key"] == 1 and kept["db_version"] == 3
    # After a logout (store cleared) the key is dropped
    assert _select_keys(state(), [key(1)]) == []


def test_a_stored_device_key_without_captured_bytes_is_an_error() -> None:
    # Such a snapshot would restore as a QR: better fail than overwrite a good one
    with pytest.raises(SnapshotError, match="not captured"):
        _select_keys(state(1), [])


def test_restore_script_embeds_keys_as_json() -> None:
    script = restore_script([key(1, raw="c2VjcmV0")])
    assert '"raw":"c2VjcmV0"' in script and "__KEYS__" not in script
    assert "indexedDB.open(k.db, k.db_version)" in script
