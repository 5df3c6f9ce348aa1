"""10,000 legacy rows through dry-run, apply and verify, from every kind of source.

These run against the in-memory DynamoDB fake: on moto the same run takes minutes (its serializer
costs ~10 ms per account item on this machine). test_fake_matches_moto in test_emulator.py holds the
fake to moto's behaviour; the emulator tests run the same paths at a smaller scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.migration.codec import deserialize_item
from infra.migration.mapping import InvalidRow, map_row
from infra.migration.report import Report
from infra.migration.runner import Options, run
from tests.migration.fake_dynamodb import FakeDynamoDB
from tests.migration.fake_kms import FakeKms
from tests.migration.legacy_data import legacy_rows, load_dynamodb, write_csv, write_jsonl

ROWS = 10_000


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    generated = legacy_rows(ROWS, seed=11)
    generated[17]["workspace_id"] = None  # two rows no account can be made from
    generated[4242]["workspace_id"] = ""
    return generated


@pytest.fixture(scope="module")
def expected_ids(rows: list[dict[str, Any]]) -> dict[bool, set[str]]:
    """Account ids the rows should produce, without and with --skip-deleted."""
    ids: dict[bool, set[str]] = {False: set(), True: set()}
    for legacy in rows:
        try:
            mapped = map_row(legacy)
        except InvalidRow:
            continue
        ids[False].add(mapped.account_id)
        if not mapped.deleted:
            ids[True].add(mapped.account_id)
    return ids


def source_for(kind: str, rows: list[dict[str, Any]], fake: FakeDynamoDB, tmp: Path) -> str:
    if kind == "dynamodb":
        load_dynamodb(fake, "whatsapp_sessions", rows)
        return "dynamodb:whatsapp_sessions"
    if kind == "jsonl":
        return f"jsonl:{write_jsonl(rows, tmp / 'sessions.jsonl')}"
    return f"csv:{write_csv(rows, tmp / 'sessions.csv')}"


def migrate(fake: FakeDynamoDB, mode: str, source: str, tmp: Path, **extra: Any) -> Report:
    options = Options(mode=mode, source=source, accounts_table="accounts", log_table="migrations",  # type: ignore[arg-type]
                      checkpoint=tmp / "checkpoint.json", progress=False, kms_key_id="fake-key", **extra)
    return run(options, client=fake, kms=FakeKms())


@pytest.mark.parametrize(("kind", "skip_deleted"), [("dynamodb", False), ("jsonl", False), ("csv", True)])
def test_ten_thousand_rows_all_accounted_for(kind: str, skip_deleted: bool, rows: list[dict[str, Any]],
                                             expected_ids: dict[bool, set[str]], tmp_path: Path) -> None:
    # Given 10,000 awkward legacy rows in a source and an empty accounts table
    fake = FakeDynamoDB()
    fake.create_table(TableName="accounts", KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}],
                      BillingMode="PAY_PER_REQUEST")
    source = source_for(kind, rows, fake, tmp_path)
    fake.calls.clear()
    source_before = fake.items("whatsapp_sessions") if kind == "dynamodb" else None
    expected = expected_ids[skip_deleted]
    deleted = len(expected_ids[False]) - len(expected_ids[True])

    # When dry-running
    dry = migrate(fake, "dry-run", source, tmp_path, skip_deleted=skip_deleted)
    # Then every row has exactly one outcome and nothing was written
    assert dry.rows == ROWS and sum(dry.outcomes.values()) == ROWS
    assert dry.outcomes["would_create"] == len(expected)
    assert dry.outcomes["invalid"] == 2
    assert dry.outcomes["skipped_deleted"] == (deleted if skip_deleted else 0)
    assert sum(dry.mappings.values()) == ROWS - 2
    assert fake.items("accounts") == []

    # When applying
    applied = migrate(fake, "apply", source, tmp_path, skip_deleted=skip_deleted)
    # Then exactly the expected accounts exist, each once, and every row is accounted for
    assert sum(applied.outcomes.values()) == ROWS
    assert applied.outcomes["created"] == len(expected)
    assert applied.outcomes.keys() <= {"created", "invalid", "skipped_deleted"}
    stored = [deserialize_item(item) for item in fake.items("accounts")]
    assert {item["account_id"] for item in stored} == expected and len(stored) == len(expected)
    assert not (tmp_path / "checkpoint.json").exists()  # a finished run leaves no checkpoint behind

    # When verifying
    verified = migrate(fake, "verify", source, tmp_path, skip_deleted=skip_deleted)
    # Then every account matches its row field by field
    assert verified.outcomes.keys() <= {"match", "invalid", "skipped_deleted"}, verified.problems
    assert verified.outcomes["match"] == len(expected)
    assert verified.outcomes.get("mismatch", 0) == verified.outcomes.get("missing", 0) == 0
    assert verified.extra["source_digest"] == verified.extra["target_digest"]
    assert verified.extra["owned_by_migration"] == len(expected)
    assert verified.to_dict()["warnings"]["duplicate_phone_number"] > 0
    # And the source was only read
    if source_before is not None:
        assert fake.items("whatsapp_sessions") == source_before
    assert fake.calls.get("BatchWriteItem", 0) == 0  # never unconditional writes


def test_transactions_write_the_same_accounts(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    # Given the same rows migrated once with conditional puts and once with transactions
    tables = {}
    for strategy in ("put", "transact"):
        fake = FakeDynamoDB()
        fake.create_table(TableName="accounts", KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
        source = f"jsonl:{write_jsonl(rows[:2000], tmp_path / f'{strategy}.jsonl')}"
        # When applied
        report = migrate(fake, "apply", source, tmp_path, strategy=strategy)
        assert report.outcomes["created"] == 2000 - 1
        # (sealed credentials differ on every encryption: compared by being there)
        stored = ({**item, "legacy_secrets": "legacy_secrets" in item} for item in fake.items("accounts"))
        tables[strategy] = sorted(stored, key=lambda item: item["account_id"]["S"])
    # Then both strategies leave identical tables
    assert tables["put"] == tables["transact"]
