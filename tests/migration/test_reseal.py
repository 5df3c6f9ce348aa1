"""Accounts migrated before legacy credentials were sealed (whatsapp-web.js `session_data` and unknown columns in
plaintext in `metadata.legacy`) are sealed in place by `migrate reseal-legacy-credentials`: the same shape a
migration writes today, conditional on the version read, idempotent, and a dry run by default."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest

from core.store import secrets
from infra.migration.reseal import reseal
from tests.migration.conftest import MigrationEnv

pytestmark = pytest.mark.integration

TOKENS = {"WABrowserId": "\"BROWSER-ID-123\"", "WAToken1": "TOKEN-789"}


def old_row(env: MigrationEnv, account_id: str, legacy: dict[str, Any], version: int = 3) -> None:
    """An account as migrations before sealing wrote it."""
    item = {"account_id": account_id, "tenant_id": "ws-1", "account_name": account_id,
            "connection_status": "STOPPED", "desired_state": "stopped", "created_at": "2023-01-02T03:04:05.000Z",
            "updated_at": "2023-01-02T03:04:05.000Z", "version": version,
            "metadata": {"crm": "x", "legacy": legacy}}
    serializer = boto3.dynamodb.types.TypeSerializer()
    env.client.put_item(TableName=env.accounts, Item={k: serializer.serialize(v) for k, v in item.items()})


def cli(env: MigrationEnv, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.migration", "migrate", "reseal-legacy-credentials",
                           "--accounts-table", env.accounts, "--endpoint-url", env.url,
                           "--kms-key-id", env.kms_key_id, *extra], capture_output=True, text=True, timeout=60)


def test_plaintext_credentials_are_sealed_in_place_once(migration_env: MigrationEnv) -> None:
    env = migration_env
    old_row(env, "s-tokens", {"status": "connected", "session_data": TOKENS,
                              "columns": {"api_password": "PASSWORD-000"}})
    old_row(env, "s-text", {"status": "connected", "session_data": json.dumps(TOKENS)})
    old_row(env, "s-plain", {"status": "disconnected"})

    dry = cli(env)
    assert dry.returncode == 0, dry.stderr
    assert "plaintext legacy credentials: 2" in dry.stdout and "dry run" in dry.stdout
    assert "TOKEN-789" in json.dumps(env.accounts_by_id())  # nothing written by a dry run

    applied = cli(env, "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "sealed: 2" in applied.stdout
    stored = env.accounts_by_id()
    raw = json.dumps(stored)
    for secret in ("BROWSER-ID-123", "TOKEN-789", "PASSWORD-000"):
        assert secret not in raw
    legacy = stored["s-tokens"]["metadata"]["M"]["legacy"]["M"]
    assert set(legacy) == {"status", "sealed"}
    assert [v["S"] for v in legacy["sealed"]["L"]] == ["api_password", "session_data"]
    assert stored["s-tokens"]["metadata"]["M"]["crm"] == {"S": "x"} and stored["s-tokens"]["version"] == {"N": "4"}
    assert "legacy_secrets" not in stored["s-plain"] and stored["s-plain"]["version"] == {"N": "3"}
    kms = boto3.client("kms", endpoint_url=env.url, region_name="us-east-1")
    opened = json.loads(secrets.unseal(stored["s-tokens"]["legacy_secrets"]["S"], purpose=secrets.LEGACY_PURPOSE,
                                       kms=kms))
    assert opened == {"session_data": TOKENS, "columns": {"api_password": "PASSWORD-000"}}
    with pytest.raises(ValueError):  # not under the purpose the API functions may decrypt
        secrets.unseal(stored["s-tokens"]["legacy_secrets"]["S"], purpose=secrets.PURPOSE, kms=kms)

    again = cli(env, "--apply")
    assert again.returncode == 0 and "plaintext legacy credentials: 0" in again.stdout
    assert env.accounts_by_id() == stored


def test_an_account_changed_meanwhile_is_left_for_the_next_run(migration_env: MigrationEnv) -> None:
    env = migration_env
    old_row(env, "s-busy", {"session_data": TOKENS})
    kms = boto3.client("kms", endpoint_url=env.url, region_name="us-east-1")

    class Racing:
        """The accounts table as the pass sees it, with an API write landing between its read and its write."""

        def __init__(self, client: Any) -> None:
            self.client, self.exceptions = client, client.exceptions

        def scan(self, **kw: Any) -> Any:
            page = self.client.scan(**kw)
            self.client.update_item(TableName=env.accounts, Key={"account_id": {"S": "s-busy"}},
                                    UpdateExpression="SET account_name = :n ADD version :one",
                                    ExpressionAttributeValues={":n": {"S": "renamed"}, ":one": {"N": "1"}})
            return page

        def update_item(self, **kw: Any) -> Any:
            return self.client.update_item(**kw)

    report = reseal(Racing(env.client), kms, env.accounts, env.kms_key_id, apply=True)
    assert (report.found, report.sealed, report.changed_meanwhile) == (["s-busy"], [], ["s-busy"])
    assert "TOKEN-789" in json.dumps(env.accounts_by_id())
    assert reseal(env.client, kms, env.accounts, env.kms_key_id, apply=True).sealed == ["s-busy"]
    assert "TOKEN-789" not in json.dumps(env.accounts_by_id())
