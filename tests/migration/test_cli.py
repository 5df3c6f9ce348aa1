"""The command line: `register` into wagate's parser, defaults from the environment, exit codes, reports."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from infra.migration.cli import main, options_from, register
from infra.migration.report import Progress
from infra.migration.runner import Options, run
from tests.migration.fake_dynamodb import FakeDynamoDB
from tests.migration.fake_kms import FakeKms
from tests.migration.legacy_data import legacy_rows, write_jsonl


def wagate_parser() -> argparse.ArgumentParser:
    """What infra.cli does: a top-level parser whose sub-commands modules register."""
    parser = argparse.ArgumentParser(prog="wagate")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_register_adds_migrate_sessions_to_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the environment the rest of wagate reads
    monkeypatch.setenv("ACCOUNTS_TABLE", "prod-accounts")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    # When parsing a wagate command line
    args = wagate_parser().parse_args(["migrate", "sessions-to-accounts", "--source", "dynamodb:whatsapp_sessions",
                                       "--apply", "--skip-deleted", "--batch-size", "50"])
    options = options_from(args)
    # Then the options carry the command line over the environment's defaults
    assert callable(args.func)
    assert (options.mode, options.source, options.skip_deleted, options.batch_size) == (
        "apply", "dynamodb:whatsapp_sessions", True, 50)
    assert (options.accounts_table, options.endpoint_url, options.region) == (
        "prod-accounts", "http://127.0.0.1:4566", "eu-west-1")
    assert options.log_table == "wagate-migrations"
    assert options.id == "sessions-to-accounts:prod-accounts:dynamodb:whatsapp_sessions"


def test_dry_run_is_the_default_and_modes_exclude_each_other() -> None:
    parser = wagate_parser()
    # Given no mode / Then dry-run; Given two modes / Then argparse refuses
    assert parser.parse_args(["migrate", "sessions-to-accounts", "--source", "csv:x.csv"]).mode == "dry-run"
    with pytest.raises(SystemExit):
        parser.parse_args(["migrate", "sessions-to-accounts", "--source", "csv:x.csv", "--apply", "--rollback"])


def test_errors_exit_with_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given no source, an unknown source kind, a missing file / When run / Then exit 2 with a message
    assert main(["migrate", "sessions-to-accounts", "--apply"]) == 2
    assert main(["migrate", "sessions-to-accounts", "--source", "ftp:x", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert main(["migrate", "sessions-to-accounts", "--source", f"jsonl:{tmp_path / 'none.jsonl'}",
                 "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_migration_id_names_files_by_their_name_only(tmp_path: Path) -> None:
    # Given the same export under two directories / Then it is one migration (moving the file is fine)
    one = Options(mode="apply", source=f"jsonl:{tmp_path}/a/sessions.jsonl", accounts_table="t")
    two = Options(mode="apply", source="jsonl:/elsewhere/sessions.jsonl", accounts_table="t")
    assert one.id == two.id == "sessions-to-accounts:t:jsonl:sessions.jsonl"
    assert one.checkpoint_path == Path(".wagate-migration/sessions-to-accounts_t_jsonl_sessions.jsonl.json")


def test_text_and_json_reports(tmp_path: Path) -> None:
    # Given a migration with one conflict and one invalid row
    rows = legacy_rows(20, seed=3)
    rows[5]["workspace_id"] = None
    fake = FakeDynamoDB()
    fake.create_table(TableName="accounts", KeySchema=[{"AttributeName": "account_id", "KeyType": "HASH"}],
                      AttributeDefinitions=[{"AttributeName": "account_id", "AttributeType": "S"}],
                      BillingMode="PAY_PER_REQUEST")
    fake.put_item(TableName="accounts", Item={"account_id": {"S": rows[0]["session_id"]}})
    source = f"jsonl:{write_jsonl(rows, tmp_path / 'sessions.jsonl')}"
    # When applied
    report = run(Options(mode="apply", source=source, accounts_table="accounts", progress=False,
                         checkpoint=tmp_path / "c.json", kms_key_id="fake-key"), client=fake, kms=FakeKms())
    text, data = report.to_text(), json.loads(report.to_json())
    # Then both forms give counts by outcome and status mapping, and list the rows needing attention
    assert data["outcomes"] == {"created": 18, "conflict": 1, "invalid": 1} and data["ok"] is False
    assert data["problems"]["invalid"] == [{"row": "line 6", "reason": "missing workspace_id (no tenant to own "
                                                                       "the account)"}]
    assert sum(data["status_mapping"].values()) == 19
    assert "NEEDS ATTENTION" in text and "conflict (1):" in text and "status mapping:" in text


def test_progress_without_a_terminal_prints_every_tenth() -> None:
    # Given a non-terminal stream / When 100 rows advance one at a time / Then a line per tenth, not 100
    stream = io.StringIO()
    progress = Progress(100, stream=stream)
    for _ in range(100):
        progress.advance(1)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 12 and lines[-1].startswith("[##############################] 100/~100")
