"""Seal the legacy credentials of accounts migrated before credentials were sealed.

Migrations before that change kept whatsapp-web.js `session_data` and unknown legacy columns in plaintext in
`metadata.legacy` (the API has not shown them since; they were still in the table). This pass moves them into
`legacy_secrets`, KMS-encrypted under the purpose no function of the stack may decrypt, exactly as a migration
writes them today, and names what was sealed in `metadata.legacy.sealed`. Each account is updated only if it is
still the version that was read (a concurrent API write wins and the account is tried on the next run); running it
again changes nothing.

    python -m infra.migration migrate reseal-legacy-credentials [--apply] [--kms-key-id KEY]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from core.store import secrets
from infra.migration.codec import canonical

#: What old migrations left in plaintext in metadata.legacy.
CREDENTIAL_KEYS = ("session_data", "columns")
_FIND = ("attribute_not_exists(legacy_secrets) AND attribute_not_exists(metadata.legacy.sealed) AND "
         "(attribute_exists(metadata.legacy.session_data) OR attribute_exists(metadata.legacy.#columns))")


@dataclass
class ResealReport:
    found: list[str] = field(default_factory=list)
    sealed: list[str] = field(default_factory=list)
    changed_meanwhile: list[str] = field(default_factory=list)

    def to_text(self, apply: bool) -> str:
        verb = "sealed" if apply else "would seal (dry run; --apply writes)"
        lines = [f"accounts with plaintext legacy credentials: {len(self.found)}", f"{verb}: "
                 f"{len(self.sealed) if apply else len(self.found)}"]
        if self.changed_meanwhile:
            lines.append(f"changed while sealing, left for the next run: {', '.join(self.changed_meanwhile)}")
        return "\n".join(lines)


def plaintext_accounts(client: Any, table: str) -> Iterator[dict[str, Any]]:
    """Accounts whose metadata.legacy still holds credentials in plaintext (a consistent scan)."""
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "FilterExpression": _FIND,
                              "ExpressionAttributeNames": {"#columns": "columns"}}
    while True:
        page = client.scan(**params)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reseal(client: Any, kms: Any, table: str, key_id: str, *, apply: bool) -> ResealReport:
    report = ResealReport()
    read, write = TypeDeserializer(), TypeSerializer()
    for item in plaintext_accounts(client, table):
        account_id = item["account_id"]["S"]
        report.found.append(account_id)
        if not apply:
            continue
        legacy = read.deserialize(item["metadata"])["legacy"]
        values = {name: legacy[name] for name in CREDENTIAL_KEYS if name in legacy}
        text = json.dumps(canonical(values), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        sealed = secrets.seal(text, purpose=secrets.LEGACY_PURPOSE, key_id=key_id, kms=kms)
        columns = values.get("columns") if isinstance(values.get("columns"), dict) else {}
        names = sorted([*(["session_data"] if "session_data" in values else []), *columns])
        condition = "attribute_not_exists(legacy_secrets)"
        values_expr: dict[str, Any] = {":sealed": {"S": sealed}, ":names": write.serialize(names),
                                       ":one": {"N": "1"}}
        if "version" in item:
            condition += " AND version = :version"
            values_expr[":version"] = item["version"]
        removes = ", ".join(f"metadata.legacy.{'#columns' if n == 'columns' else n}" for n in values)
        extra = {"ExpressionAttributeNames": {"#columns": "columns"}} if "columns" in values else {}
        try:
            client.update_item(
                TableName=table, Key={"account_id": item["account_id"]},
                UpdateExpression=f"SET legacy_secrets = :sealed, metadata.legacy.sealed = :names "
                                 f"ADD version :one REMOVE {removes}",
                ConditionExpression=condition, ExpressionAttributeValues=values_expr, **extra)
        except client.exceptions.ConditionalCheckFailedException:
            report.changed_meanwhile.append(account_id)
            continue
        report.sealed.append(account_id)
    return report
