"""Throttling and items DynamoDB refuses, against the in-memory fake (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.migration.report import Report
from infra.migration.runner import Mode, Options, run
from tests.migration.fake_dynamodb import FakeDynamoDB
from tests.migration.fake_kms import FakeKms
from tests.migration.legacy_data import legacy_rows, write_jsonl


def accounts_fake(**kwargs: Any) -> FakeDynamoDB:
    fake = FakeDynamoDB(**kwargs)
    fake.create_table(TableName="accounts", KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}],
                      BillingMode="PAY_PER_REQUEST")
    return fake


def migrate(fake: FakeDynamoDB, mode: Mode, source: str, tmp: Path, **extra: Any) -> Report:
    return run(Options(mode=mode, source=source, accounts_table="accounts", checkpoint=tmp / "c.json",
                       progress=False, kms_key_id="fake-key", **extra), client=fake, kms=FakeKms())


@pytest.mark.parametrize("strategy", ["put", "transact"])
def test_throttled_writes_and_reads_are_retried(strategy: str, tmp_path: Path) -> None:
    # Given a table that throttles every 7th request
    fake = accounts_fake(throttle_every=7)
    source = f"jsonl:{write_jsonl(legacy_rows(400, seed=2), tmp_path / 'sessions.jsonl')}"
    # When applied and verified / Then backoff and retries hide it completely
    assert migrate(fake, "apply", source, tmp_path, strategy=strategy).outcomes == {"created": 400}
    assert migrate(fake, "verify", source, tmp_path).outcomes == {"match": 400}
    assert len(fake.items("accounts")) == 400


@pytest.mark.parametrize("strategy", ["put", "transact"])
def test_an_item_too_large_fails_alone_and_is_reported(strategy: str, tmp_path: Path) -> None:
    # Given one row whose session_data makes the account larger than DynamoDB's 400 KB
    rows = legacy_rows(60, seed=4)
    rows[10]["session_data"] = "x" * 500_000
    source = f"jsonl:{write_jsonl(rows, tmp_path / 'sessions.jsonl')}"
    fake = accounts_fake()
    # When applied
    report = migrate(fake, "apply", source, tmp_path, strategy=strategy)
    # Then only that row fails, with DynamoDB's reason, and the run says it needs attention
    assert report.outcomes == {"created": 59, "failed": 1} and not report.ok
    assert report.problems["failed"][0]["account_id"] == rows[10]["session_id"]
    assert "ValidationException" in report.problems["failed"][0]["reason"]
    # And a rollback removes the 59 and finds nothing else to undo
    assert migrate(fake, "rollback", source, tmp_path).outcomes == {"deleted": 59, "already_absent": 1}
    assert fake.items("accounts") == []
