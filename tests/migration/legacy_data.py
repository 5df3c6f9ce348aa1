"""Generated legacy `whatsapp_sessions` rows, and writers for each kind of source."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

NAMES = ["Suporte São Paulo 🚀", "客服热线", "Поддержка", "الدعم الفني", "Ventas", "  padded  ", "", "   ",
         "x" * 140, "Zoë's line", "🙂", "ñandú"]
STATUSES = ["connected"] * 6 + ["disconnected"] * 3 + ["qr_scanning", "authenticating", "failed", "Connected",
                                                        "zombie", "PAUSED", "", None, "open", "banned"]
PROVIDERS = ["webjs"] * 16 + ["meta"] * 3 + [None, "baileys"]
EXTRA = {"webhook_url": "https://example.com/hook", "plan": "pro", "retries": 3}


def _timestamp(rnd: random.Random, base: int) -> Any:
    moment = base + rnd.randint(0, 10**7)
    kind = rnd.randrange(6)
    if kind == 0:
        return moment * 1000  # epoch milliseconds
    dt = datetime.fromtimestamp(moment, UTC)
    if kind == 1:
        return dt.strftime("%Y-%m-%d %H:%M:%S")  # SQL, naive UTC
    if kind == 2:
        return dt.astimezone(timezone(timedelta(hours=-3))).isoformat()
    if kind == 3:
        return dt.isoformat(timespec="microseconds").replace("+00:00", "Z")
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def legacy_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` rows covering the awkward cases: unicode, blanks, unknown statuses, duplicates, deletions."""
    rnd = random.Random(seed)
    phones = [f"55119{rnd.randrange(10**7, 10**8)}" for _ in range(max(1, int(count * 0.7)))]
    rows = []
    for index in range(count):
        phone = rnd.choice(phones)
        row: dict[str, Any] = {
            "session_id": f"sess-{index:06d}-{rnd.randrange(16**6):06x}",
            "workspace_id": f"ws-{rnd.randint(1, 40)}",
            "phone_number": rnd.choice([phone, f"+{phone}", f"+{phone[:2]} {phone[2:4]} {phone[4:]}",
                                        f"{phone}@c.us", "", None, "n/a"]),
            "status": rnd.choice(STATUSES),
            "provider_type": rnd.choice(PROVIDERS),
            "session_name": rnd.choice(NAMES + [None] * 3),
            "session_data": rnd.choice([
                None, "", {"WABrowserId": f"\"{rnd.randrange(10**9)}\"", "tokens": [1, 2.5, {"k": True}]},
                json.dumps({"me": {"id": f"{phone}@c.us"}, "ratio": 0.1})]),
            "created_at": _timestamp(rnd, 1_600_000_000),
            "updated_at": _timestamp(rnd, 1_620_000_000),
            "deleted_at": _timestamp(rnd, 1_640_000_000) if rnd.random() < 0.05 else None,
        }
        if rnd.random() < 0.1:
            row.update(EXTRA)
        for optional in ("session_name", "session_data", "deleted_at", "provider_type", "updated_at"):
            if rnd.random() < 0.1:
                row.pop(optional)  # missing, not just empty
        rows.append(row)
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """A SQL-style CSV: every column on every row, NULL as \\N, JSON columns as text."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            values = []
            for column in columns:
                value = row.get(column)
                values.append("\\N" if value is None else json.dumps(value) if isinstance(value, dict)
                              else str(value))
            writer.writerow(values)
    return path


def to_dynamodb(value: Any) -> Any:
    """Python → boto3 resource-style value (floats become Decimal)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamodb(v) for v in value]
    return value


def load_dynamodb(client: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """Create the legacy table (key `session_id`) and fill it; None columns are stored as NULL."""
    from boto3.dynamodb.types import TypeSerializer

    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}])
    serializer = TypeSerializer()
    requests = [{"PutRequest": {"Item": {k: serializer.serialize(to_dynamodb(v))
                                         for k, v in row.items()}}} for row in rows]
    for start in range(0, len(requests), 25):
        pending = {table: requests[start:start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
