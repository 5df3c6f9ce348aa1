"""Legacy credentials (whatsapp-web.js `session_data`, unknown columns) are written KMS-sealed outside `metadata`, for
no function of the stack to read; without a key they are not written at all."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from core.store import secrets
from tests.migration.conftest import MigrationEnv
from tests.migration.legacy_data import write_jsonl

pytestmark = pytest.mark.integration

TOKENS = {"WABrowserId": "\"BROWSER-ID-123\"", "WASecretBundle": "SECRET-BUNDLE-456", "WAToken1": "TOKEN-789"}


def rows() -> list[dict[str, Any]]:
    return [
        {"session_id": "s-tokens", "workspace_id": "ws-1", "status": "connected", "session_data": TOKENS,
         "created_at": "2023-01-02 03:04:05", "api_password": "PASSWORD-000"},
        {"session_id": "s-text", "workspace_id": "ws-1", "status": "connected",
         "session_data": json.dumps(TOKENS), "created_at": "2023-01-02 03:04:05"},
        {"session_id": "s-plain", "workspace_id": "ws-1", "status": "disconnected", "created_at": "2023-01-02"},
    ]


def test_credentials_are_sealed_for_no_function_and_verify_matches(migration_env: MigrationEnv) -> None:
    # Given legacy rows holding session tokens and an unknown password column
    env = migration_env
    source = f"jsonl:{write_jsonl(rows(), env.tmp / 'sessions.jsonl')}"

    # When applied with the stack's key
    applied = env.run("apply", source)

    # Then every row is an account, and no stored byte holds a token or the password
    assert applied.outcomes == {"created": 3} and applied.warnings["sealed_legacy_credentials"] == 2
    stored = env.accounts_by_id()
    raw = json.dumps(stored)
    for secret in ("BROWSER-ID-123", "SECRET-BUNDLE-456", "TOKEN-789", "PASSWORD-000"):
        assert secret not in raw
    # the metadata every key of the tenant reads names what is sealed, nothing more
    legacy = stored["s-tokens"]["metadata"]["M"]["legacy"]["M"]
    assert set(legacy) == {"status", "sealed"}
    assert [v["S"] for v in legacy["sealed"]["L"]] == ["api_password", "session_data"]
    assert "legacy_secrets" not in stored["s-plain"]
    # And an operator holding the key opens them, exactly as the source had them
    kms = boto3.client("kms", endpoint_url=env.url, region_name="us-east-1")
    opened = json.loads(secrets.unseal(stored["s-tokens"]["legacy_secrets"]["S"], purpose=secrets.LEGACY_PURPOSE,
                                       kms=kms))
    assert opened == {"session_data": TOKENS, "columns": {"api_password": "PASSWORD-000"}}
    assert json.loads(secrets.unseal(stored["s-text"]["legacy_secrets"]["S"], purpose=secrets.LEGACY_PURPOSE,
                                     kms=kms)) == {"session_data": json.dumps(TOKENS)}
    # but not under the purpose the API functions may decrypt (webhook and cloud secrets)
    with pytest.raises(ValueError):
        secrets.unseal(stored["s-tokens"]["legacy_secrets"]["S"], purpose=secrets.PURPOSE, kms=kms)

    # And verify and a re-run see the same accounts (each encryption differs; presence is what counts)
    assert env.run("verify", source).outcomes == {"match": 3}
    assert env.run("apply", source).outcomes == {"created": 3}


def test_without_a_key_credentials_are_not_written_at_all(migration_env: MigrationEnv) -> None:
    # Given the same rows and no KMS key
    env = migration_env
    source = f"jsonl:{write_jsonl(rows(), env.tmp / 'sessions.jsonl')}"

    # When applied
    report = env.run("apply", source, kms_key_id=None)

    # Then the rows with credentials fail with how to fix it, and only the plain one is written
    assert report.outcomes == {"created": 1, "failed": 2} and not report.ok
    assert {p["account_id"] for p in report.problems["failed"]} == {"s-tokens", "s-text"}
    assert all("--kms-key-id" in p["reason"] for p in report.problems["failed"])
    assert set(env.accounts_by_id()) == {"s-plain"}
    # And a dry run says how many rows hold credentials
    assert env.run("dry-run", source, kms_key_id=None).warnings["sealed_legacy_credentials"] == 2


def test_verify_notices_sealed_credentials_that_went_missing(migration_env: MigrationEnv) -> None:
    env = migration_env
    source = f"jsonl:{write_jsonl(rows(), env.tmp / 'sessions.jsonl')}"
    env.run("apply", source)
    env.client.update_item(TableName=env.accounts, Key={"account_id": {"S": "s-tokens"}},
                           UpdateExpression="REMOVE legacy_secrets")
    verified = env.run("verify", source)
    assert verified.outcomes == {"match": 2, "mismatch": 1}
    assert verified.problems["mismatch"][0]["fields"] == ["legacy_secrets"]
