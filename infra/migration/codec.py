"""DynamoDB attribute values <-> Python values, and the canonical form used for checksums."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from core.store.tables import AccountItem

# Every attribute of the account model: a checksum covers all of them, so a field the migration
# never sets (e.g. `host_id`) but an account has since gained still counts as a difference.
ACCOUNT_FIELDS: tuple[str, ...] = tuple(sorted(AccountItem.get_attributes()))
# Encrypted anew on every write: a checksum covers whether they are there, not their bytes. Absent, they leave the
# canonical form as it was before the field existed (checksums in older migration logs still match).
SEALED_FIELDS = frozenset({"legacy_secrets"})


def serialize(value: Any) -> dict[str, Any]:
    """One AttributeValue, shaped exactly as PynamoDB's untyped Map/List attributes write it."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float):
        return {"N": json.dumps(value)}  # what pynamodb's NumberAttribute writes
    if isinstance(value, Decimal):
        return {"N": str(value)}  # keeps all 38 digits a DynamoDB number can hold
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, set | frozenset):
        return _serialize_set(value)
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _serialize_set(value: set[Any] | frozenset[Any]) -> dict[str, Any]:
    if not value:
        return {"NULL": True}  # DynamoDB has no empty sets; pynamodb stores NULL too
    if all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    if all(isinstance(v, bytes) for v in value):
        return {"BS": sorted(value)}
    if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
        return {"NS": sorted(str(v) if isinstance(v, Decimal) else json.dumps(v) for v in value)}
    raise TypeError("cannot store a set of mixed types in DynamoDB")


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item; top-level `None` means "attribute absent", as in a PynamoDB model."""
    return {name: serialize(value) for name, value in item.items() if value is not None}


def deserialize(value: Mapping[str, Any]) -> Any:
    """One AttributeValue to Python; numbers stay `Decimal` so nothing is rounded."""
    (kind, raw), = value.items()
    if kind == "S":
        return raw
    if kind == "N":
        return Decimal(raw)
    if kind == "BOOL":
        return bool(raw)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(raw)
    if kind == "M":
        return {k: deserialize(v) for k, v in raw.items()}
    if kind == "L":
        return [deserialize(v) for v in raw]
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {Decimal(v) for v in raw}
    if kind == "BS":
        return {bytes(v) for v in raw}
    raise ValueError(f"unknown attribute type {kind}")


def deserialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: deserialize(value) for name, value in item.items()}


def canonical(value: Any) -> Any:
    """A JSON-safe form in which equal stored values compare equal (1, 1.0 and Decimal('1.00') alike)."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return value
    if kind is dict:  # the common cases first: this runs for every value of every row
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | Decimal):
        return {"$n": str(Decimal(str(value)).normalize())}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        if not value:
            return None
        return {"$set": sorted(json.dumps(canonical(v), sort_keys=True) for v in value)}
    raise TypeError(f"no canonical form for {type(value).__name__}")


def canonical_fields(item: Mapping[str, Any], fields: Iterable[str] = ACCOUNT_FIELDS) -> dict[str, Any]:
    """Canonical value of each account field; absent fields are `None`, sealed ones `True` when present."""
    return {name: True if name in SEALED_FIELDS else canonical(item.get(name)) for name in fields
            if name not in SEALED_FIELDS or item.get(name)}


def checksum(item: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every account field."""
    text = json.dumps(canonical_fields(item), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def differing_fields(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Names of the account fields whose stored values differ."""
    want, have = canonical_fields(expected), canonical_fields(actual)
    return [name for name in ACCOUNT_FIELDS if want.get(name) != have.get(name)]
