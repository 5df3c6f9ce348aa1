"""Legacy sources: a DynamoDB `whatsapp_sessions` table, or a JSON-lines / CSV export of the SQL table.

Each source yields rows in a stable order together with a JSON-safe position from which a later run
resumes (the row's key for DynamoDB, the line or record number for files). Sources only read.
"""

from __future__ import annotations

import base64
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.migration.codec import deserialize_item

CSV_NULL = "\\N"  # how MySQL/PostgreSQL text exports spell NULL; anything else stays a string
_SCAN_PAGE = 1000


@dataclass(frozen=True)
class SourceRow:
    """One legacy row (or the reason it could not be read) and the position just after it."""

    ref: str
    position: dict[str, Any]
    row: dict[str, Any] | None = None
    error: str | None = None


class Source(Protocol):
    name: str

    def estimate(self) -> int | None:
        """Roughly how many rows there are (for the progress bar), if cheap to know."""

    def rows(self, start: dict[str, Any] | None = None) -> Iterator[SourceRow]:
        """Rows after `start` (a position an earlier row carried), in a stable order."""


class JsonlSource:
    """One JSON object per line; blank lines are ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"jsonl:{path}"

    def estimate(self) -> int | None:
        with self.path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())

    def rows(self, start: dict[str, Any] | None = None) -> Iterator[SourceRow]:
        skip = int((start or {}).get("line", 0))
        with self.path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if number <= skip or not line.strip():
                    continue
                ref, position = f"line {number}", {"line": number}
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as error:
                    yield SourceRow(ref, position, error=f"not JSON: {error.msg}")
                    continue
                if not isinstance(value, dict):
                    yield SourceRow(ref, position, error="not a JSON object")
                    continue
                yield SourceRow(ref, position, row=value)


class CsvSource:
    """A CSV export with a header row; `\\N` is NULL, every other value is kept as text."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"csv:{path}"
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # session_data columns can be large

    def estimate(self) -> int | None:
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            return sum(1 for _ in csv.reader(handle)) - 1

    def rows(self, start: dict[str, Any] | None = None) -> Iterator[SourceRow]:
        skip = int((start or {}).get("record", 0))
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            for number, record in enumerate(reader, start=1):
                if number <= skip:
                    continue
                row: dict[str, Any] = {}
                for key, value in record.items():
                    if key is None:  # more fields than the header names: keep them, do not drop
                        row["_extra_fields"] = value
                    elif value is not None:  # fewer fields than the header: the column is missing
                        row[key] = None if value == CSV_NULL else value
                yield SourceRow(f"record {number}", {"record": number}, row=row)


class DynamoDBSource:
    """A scan of the legacy table, strongly consistent, resuming after the last processed key."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.name = f"dynamodb:{table}"
        schema = client.describe_table(TableName=table)["Table"]
        self._keys = [k["AttributeName"] for k in schema["KeySchema"]]
        self._count = int(schema.get("ItemCount", 0))

    def estimate(self) -> int | None:
        return self._count or None  # DescribeTable's count lags on AWS: a hint for the progress bar

    def rows(self, start: dict[str, Any] | None = None) -> Iterator[SourceRow]:
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True, "Limit": _SCAN_PAGE}
        if start and start.get("key"):
            params["ExclusiveStartKey"] = _decode_key(start["key"])
        while True:
            page = self.client.scan(**params)
            for raw in page.get("Items", []):
                key = {name: raw[name] for name in self._keys}
                ref = "/".join(str(next(iter(v.values()))) for v in key.values())
                yield SourceRow(ref, {"key": _encode_key(key)}, row=deserialize_item(raw))
            if not page.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _encode_key(key: dict[str, Any]) -> dict[str, Any]:
    return {name: ({"B64": base64.b64encode(v["B"]).decode()} if "B" in v else v) for name, v in key.items()}


def _decode_key(key: dict[str, Any]) -> dict[str, Any]:
    return {name: ({"B": base64.b64decode(v["B64"])} if "B64" in v else v) for name, v in key.items()}


def open_source(spec: str, dynamodb: Any) -> Source:
    """`dynamodb:TABLE`, `jsonl:PATH` or `csv:PATH`."""
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise ValueError(f"--source must be dynamodb:TABLE, jsonl:PATH or csv:PATH, not {spec!r}")
    if kind == "dynamodb":
        return DynamoDBSource(dynamodb, target)
    path = Path(target)
    if kind in {"jsonl", "csv"} and not path.is_file():
        raise ValueError(f"no such file: {path}")
    if kind == "jsonl":
        return JsonlSource(path)
    if kind == "csv":
        return CsvSource(path)
    raise ValueError(f"unknown source kind {kind!r}: use dynamodb, jsonl or csv")


def source_label(spec: str) -> str:
    """The part of a source spec that names the migration: kind plus table or file name."""
    kind, _, target = spec.partition(":")
    return f"{kind}:{Path(target).name if kind in {'jsonl', 'csv'} else target}"
