"""A real `python -m infra.migration` process killed with SIGKILL mid-run, then re-run or rolled back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infra.migration.codec import canonical_fields, deserialize_item
from infra.migration.log import MigrationLog
from infra.migration.mapping import map_row
from tests.migration.conftest import ROOT, MigrationEnv
from tests.migration.legacy_data import legacy_rows, write_jsonl

pytestmark = pytest.mark.integration
ROWS = 800


def start(env: MigrationEnv, mode: str, source: str) -> subprocess.Popen[str]:
    return subprocess.Popen(env.cli_args(mode, source, "--batch-size", "40", "--workers", "4", "--json",
                                         "--no-progress"),
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after(process: subprocess.Popen[str], checkpoint: Path, rows: int) -> None:
    """SIGKILL once the checkpoint has passed `rows`, a little later so writes are in flight."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads(checkpoint.read_text())["rows"] >= rows:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    time.sleep(0.15)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the migration finished before it could be killed"


def test_killed_migration_reruns_to_the_same_final_state(migration_env: MigrationEnv) -> None:
    # Given a migration process of 800 rows killed with SIGKILL part-way through
    env = migration_env
    rows = legacy_rows(ROWS, seed=61)
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"
    kill_after(start(env, "apply", source), env.tmp / "checkpoint.json", 200)
    partial = len(env.scan())
    assert 200 <= partial < ROWS

    # When the same command is run again
    rerun = start(env, "apply", source)
    stdout, stderr = rerun.communicate(timeout=300)

    # Then it resumes from the checkpoint and finishes cleanly
    assert rerun.returncode == 0, stderr
    report = json.loads(stdout)
    assert report["resumed_after_rows"] >= 200
    assert report["rows"] == ROWS and report["outcomes"] == {"created": ROWS}
    # And the table holds each account exactly once, exactly as an uninterrupted run writes it
    accounts = env.accounts_by_id()
    expected = {mapped.account_id: canonical_fields(mapped.item) for mapped in map(map_row, rows)}
    assert {key: canonical_fields(deserialize_item(item)) for key, item in accounts.items()} == expected
    # And the log owns every account, so a rollback could remove them all
    state = MigrationLog(env.client, env.log, env.options("apply", source).id).load()
    assert set(state.owned) == set(accounts)


def test_killed_migration_rolls_back_to_the_prior_content(migration_env: MigrationEnv) -> None:
    # Given an account that predates the migration, and a migration killed part-way through
    env = migration_env
    rows = legacy_rows(ROWS, seed=71)
    env.client.put_item(TableName=env.accounts, Item={
        "account_id": {"S": "acc_native"}, "tenant_id": {"S": "ws-1"}, "account_name": {"S": "Native"},
        "connection_status": {"S": "STOPPED"}, "tenant_status": {"S": "ws-1#STOPPED"},
        "desired_state": {"S": "stopped"}, "created_at": {"S": "2025-01-01T00:00:00.000Z"},
        "updated_at": {"S": "2025-01-01T00:00:00.000Z"}, "version": {"N": "1"}})
    before = env.scan()
    source = f"jsonl:{write_jsonl(rows, env.tmp / 'sessions.jsonl')}"
    kill_after(start(env, "apply", source), env.tmp / "checkpoint.json", 120)
    written = len(env.scan()) - len(before)
    assert written >= 120

    # When rolled back straight away, without a re-run
    rollback = start(env, "rollback", source)
    stdout, stderr = rollback.communicate(timeout=300)

    # Then only the pre-existing account is left, exactly as it was, and the checkpoint is gone
    assert rollback.returncode == 0, stderr
    assert json.loads(stdout)["outcomes"]["deleted"] == written
    assert env.scan() == before
    assert not (env.tmp / "checkpoint.json").exists()
