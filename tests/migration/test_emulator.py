"""The migration against moto's server over the wire: sources, AccountItem round trip, conflicts, rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.store import secrets
from core.store.tables import AccountItem
from infra.migration.codec import canonical, deserialize_item, serialize_item
from infra.migration.mapping import MappedAccount, map_row
from infra.migration.runner import Options, Sealer, run
from tests.migration.conftest import MigrationEnv
from tests.migration.fake_dynamodb import FakeDynamoDB
from tests.migration.fake_kms import FakeKms
from tests.migration.legacy_data import legacy_rows, load_dynamodb, write_csv, write_jsonl

pytestmark = pytest.mark.integration


def as_written(env: MigrationEnv, mapped: MappedAccount) -> dict[str, Any]:
    """The item exactly as `apply` writes it (credentials sealed with the test key)."""
    return Sealer(env.options("apply", None))(mapped).item


def legacy_of(account: AccountItem) -> Any:
    """`metadata.legacy` as the model reads it."""
    return account.metadata.as_dict()["legacy"]  # type: ignore[no-untyped-call]


def test_dynamodb_source_dry_run_apply_verify(migration_env: MigrationEnv) -> None:
    # Given a legacy whatsapp_sessions table of 400 awkward rows
    env = migration_env
    rows = legacy_rows(400, seed=5)
    load_dynamodb(env.client, env.legacy, rows)
    source = f"dynamodb:{env.legacy}"
    legacy_before = sorted(env.scan(env.legacy), key=lambda item: item["session_id"]["S"])

    # When dry-running / Then a full report and no writes
    dry = env.run("dry-run", source)
    assert dry.rows == 400 and dry.outcomes == {"would_create": 400}
    assert dry.mappings["connected -> WORKING"] > 0 and dry.warnings["unknown_status"] > 0
    assert env.scan() == []

    # When applying and verifying
    applied = env.run("apply", source)
    verified = env.run("verify", source)
    # Then every row became one account that matches field by field, and the source is untouched
    assert applied.outcomes == {"created": 400}
    assert verified.ok and verified.outcomes == {"match": 400}
    assert len(env.scan()) == 400
    assert sorted(env.scan(env.legacy), key=lambda item: item["session_id"]["S"]) == legacy_before


def test_migrated_items_load_through_the_account_model(migration_env: MigrationEnv) -> None:
    # Given rows covering deleted, unknown-status, meta and unicode cases, migrated from JSON lines
    env = migration_env
    rows: list[dict[str, Any]] = [
        {"session_id": "s-web", "workspace_id": "ws-1", "phone_number": "+55 11 91234-5678", "status": "connected",
         "provider_type": "webjs", "session_name": "Suporte São Paulo 🚀", "session_data": {"WABrowserId": "x"},
         "created_at": "2023-01-02 03:04:05", "updated_at": 1675400706000, "plan": "pro"},
        {"session_id": "s-del", "workspace_id": "ws-1", "status": "zombie", "provider_type": "meta",
         "session_name": "", "created_at": "2023-01-02T03:04:05+02:00", "deleted_at": "2024-01-01 00:00:00"},
    ]
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"
    assert env.run("apply", source).outcomes == {"created": 2}

    # When loaded through the PynamoDB model the rest of wagate uses
    web, deleted = AccountItem.get("s-web"), AccountItem.get("s-del")

    # Then every field reads back as mapped
    assert (web.tenant_id, web.account_name, web.phone_number, web.provider) == (
        "ws-1", "Suporte São Paulo 🚀", "5511912345678", "web")
    assert (web.connection_status, web.tenant_status, web.desired_state, web.version) == (
        "WORKING", "ws-1#WORKING", "running", 1)
    assert (web.created_at, web.updated_at) == ("2023-01-02T03:04:05.000Z", "2023-02-03T05:05:06.000Z")
    assert web.deleted_at is None
    assert web.status_history == [{"at": "2023-02-03T05:05:06.000Z", "from": None, "to": "WORKING",
                                   "reason": "migrated from legacy status connected"}]
    assert legacy_of(web) == {
        "status": "connected", "phone_number": "+55 11 91234-5678", "sealed": ["plan", "session_data"]}
    kms = boto3.client("kms", endpoint_url=env.url, region_name="us-east-1")
    assert json.loads(secrets.unseal(web.legacy_secrets, purpose=secrets.LEGACY_PURPOSE, kms=kms)) == {
        "session_data": {"WABrowserId": "x"}, "columns": {"plan": "pro"}}
    assert (deleted.connection_status, deleted.desired_state, deleted.provider) == ("STOPPED", "stopped", "cloud")
    assert deleted.deleted_at == "2024-01-01T00:00:00.000Z" and deleted.account_name == "WhatsApp s-del"
    assert deleted.created_at == deleted.updated_at == "2023-01-02T01:04:05.000Z"
    assert legacy_of(deleted)["status"] == "zombie"
    # And the app's own optimistic locking works on them (version 1 -> 2)
    web.account_name = "Renamed"
    web.save()
    assert AccountItem.get("s-web").version == 2


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_file_sources(kind: str, migration_env: MigrationEnv) -> None:
    # Given a SQL export of 300 rows as JSON lines or CSV
    env = migration_env
    rows = legacy_rows(300, seed=9)
    writer = write_jsonl if kind == "jsonl" else write_csv
    source = f"{kind}:{writer(rows, env.tmp / f'sessions.{kind}')}"
    deleted = sum(1 for r in rows if r.get("deleted_at"))
    # When applied with --skip-deleted, then verified
    applied = env.run("apply", source, skip_deleted=True)
    verified = env.run("verify", source, skip_deleted=True)
    # Then live rows are accounts, deleted rows are counted and skipped, and all accounts match
    assert applied.outcomes == {"created": 300 - deleted, "skipped_deleted": deleted}
    assert verified.outcomes == {"match": 300 - deleted, "skipped_deleted": deleted}
    assert len(env.scan()) == 300 - deleted


def test_fake_matches_moto(migration_env: MigrationEnv) -> None:
    # Given the same rows migrated into moto and into the in-memory fake the scale tests use
    env = migration_env
    source = f"jsonl:{write_jsonl(legacy_rows(150, seed=13), env.tmp / 'sessions.jsonl')}"
    env.run("apply", source)
    fake = FakeDynamoDB()
    fake.create_table(TableName=env.accounts, KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}],
                      BillingMode="PAY_PER_REQUEST")
    run(Options(mode="apply", source=source, accounts_table=env.accounts, log_table="log", progress=False,
                checkpoint=env.tmp / "fake.json", kms_key_id="fake-key"), client=fake, kms=FakeKms())

    # When both tables are read back / Then they hold the same accounts, value for value (sealed credentials
    # differ on every encryption: only whether they are there)
    def normalised(items: list[dict[str, Any]]) -> dict[str, Any]:
        return {item["account_id"]["S"]: canonical({**deserialize_item(item),
                                                    "legacy_secrets": "legacy_secrets" in item}) for item in items}

    assert normalised(env.scan()) == normalised(fake.items(env.accounts))


def test_changed_account_is_a_conflict_on_rerun(migration_env: MigrationEnv) -> None:
    # Given a finished migration and one account renamed afterwards through the model
    env = migration_env
    rows = legacy_rows(80, seed=21)
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"
    env.run("apply", source)
    changed = AccountItem.get(rows[3]["session_id"])
    changed.account_name = "Renamed by an operator"
    changed.save()
    before = env.accounts_by_id()[rows[3]["session_id"]]

    # When the migration runs again
    rerun = env.run("apply", source)

    # Then that account is reported as a conflict naming the fields, and is not overwritten
    assert rerun.outcomes == {"created": 79, "conflict": 1} and not rerun.ok
    assert rerun.problems["conflict"][0]["account_id"] == rows[3]["session_id"]
    assert rerun.problems["conflict"][0]["fields"] == ["account_name", "version"]
    assert env.accounts_by_id()[rows[3]["session_id"]] == before
    assert AccountItem.get(rows[3]["session_id"]).account_name == "Renamed by an operator"
    # And verify lists it as the one mismatch
    verified = env.run("verify", source)
    assert verified.outcomes == {"match": 79, "mismatch": 1}
    assert verified.problems["mismatch"][0]["fields"] == ["account_name", "version"]


def test_rollback_restores_the_exact_prior_content(migration_env: MigrationEnv) -> None:
    # Given accounts that existed before the migration: an unrelated one, one with a legacy id but
    # different content (a conflict) and one identical to what the migration would write
    env = migration_env
    rows = legacy_rows(120, seed=31)
    unrelated = AccountItem(account_id="acc_native", tenant_id="ws-1", account_name="Native",
                            connection_status="STOPPED", tenant_status="ws-1#STOPPED", desired_state="stopped",
                            created_at="2025-01-01T00:00:00.000Z", updated_at="2025-01-01T00:00:00.000Z")
    unrelated.save()
    conflicting = AccountItem(account_id=rows[0]["session_id"], tenant_id="ws-9", account_name="Taken",
                              connection_status="WORKING", tenant_status="ws-9#WORKING", desired_state="running",
                              created_at="2025-01-01T00:00:00.000Z", updated_at="2025-01-01T00:00:00.000Z")
    conflicting.save()
    env.client.put_item(TableName=env.accounts, Item=serialize_item(as_written(env, map_row(rows[1]))))
    before = sorted(env.scan(), key=lambda item: item["account_id"]["S"])
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"

    # When applied, then rolled back
    applied = env.run("apply", source)
    assert applied.outcomes == {"created": 118, "conflict": 1, "already_present": 1}
    rolled_back = env.run("rollback", source)

    # Then exactly the 118 created accounts are gone and everything else is byte-for-byte as before
    assert rolled_back.outcomes == {"deleted": 118} and rolled_back.ok
    assert sorted(env.scan(), key=lambda item: item["account_id"]["S"]) == before
    # And a second rollback has nothing left to do, while a new apply starts a fresh epoch
    assert env.run("rollback", source).outcomes == {}
    assert env.run("apply", source).outcomes["created"] == 118


def test_rollback_keeps_accounts_changed_after_the_migration(migration_env: MigrationEnv) -> None:
    # Given a migration and an account updated through the app afterwards
    env = migration_env
    rows = legacy_rows(30, seed=41)
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"
    env.run("apply", source)
    changed = AccountItem.get(rows[5]["session_id"])
    changed.connection_status = "FAILED"
    changed.save()
    # When rolled back / Then the changed account is kept and reported, the others are deleted
    report = env.run("rollback", source)
    assert report.outcomes == {"deleted": 29, "kept_changed": 1}
    assert list(env.accounts_by_id()) == [rows[5]["session_id"]]


def test_rollback_after_a_crash_between_intent_and_outcome(migration_env: MigrationEnv, tmp_path: Path) -> None:
    # Given a log whose last chunk recorded its intent but died before recording the outcome,
    # after one of its two accounts was written
    env = migration_env
    rows = legacy_rows(2, seed=51)
    written, never = map_row(rows[0]), map_row(rows[1])
    options = env.options("apply", f"jsonl:{write_jsonl(rows, tmp_path / 'sessions.jsonl')}")
    from infra.migration.log import MigrationLog

    log = MigrationLog(env.client, env.log, options.id)
    log.ensure_table()
    log.record_intent(MigrationLog.chunk_name(0, "crashed", 0),
                      {written.account_id: written.checksum, never.account_id: never.checksum})
    env.client.put_item(TableName=env.accounts, Item=serialize_item(as_written(env, written)))
    # When rolled back without re-running / Then the written account is removed
    report = run(env.options("rollback", options.source), client=env.client)
    assert report.outcomes == {"deleted": 1, "already_absent": 1}
    assert env.scan() == []
