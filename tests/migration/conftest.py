"""Fixtures: moto's server on a free loopback port, and per-test accounts/log/legacy tables."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.config import Settings
from core.store.tables import AccountItem, bind
from infra.migration.report import Report
from infra.migration.runner import Mode, Options, run

ROOT = Path(__file__).resolve().parents[2]
TEST_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Test credentials and region for this process and the subprocesses it starts."""
    saved = {key: os.environ.get(key) for key in TEST_ENV}
    os.environ.update(TEST_ENV)
    yield TEST_ENV
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_url(aws_env: dict[str, str]) -> Iterator[str]:
    """moto's server in its own process (the harness's emulator): in a thread it would share this process's
    GIL with the migration under test and halve throughput (measured: ~50 vs ~100 account writes/s)."""
    from infra.local.emulator import MotoEmulator

    emulator = MotoEmulator(own_process=True)
    yield emulator.start()
    emulator.stop()


@pytest.fixture(scope="session")
def kms_key_id(moto_url: str) -> str:
    """The key that seals legacy credentials (the stack's key when deployed)."""
    return str(boto3.client("kms", endpoint_url=moto_url, region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"])


@dataclass
class MigrationEnv:
    """One test's tables on the emulator and a way to run the migration against them."""

    url: str
    client: Any
    accounts: str
    log: str
    legacy: str
    tmp: Path
    kms_key_id: str

    def options(self, mode: Mode, source: str | None, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "mode": mode, "source": source, "accounts_table": self.accounts, "log_table": self.log,
            "endpoint_url": self.url, "checkpoint": self.tmp / "checkpoint.json", "progress": False,
            "workers": 8, "batch_size": 100, "kms_key_id": self.kms_key_id}
        values.update(overrides)
        return Options(**values)

    def run(self, mode: Mode, source: str | None, **overrides: Any) -> Report:
        return run(self.options(mode, source, **overrides), client=self.client)

    def cli_args(self, mode: str, source: str, *extra: str) -> list[str]:
        """The same migration as a `python -m infra.migration` command line."""
        return [sys.executable, "-m", "infra.migration", "migrate", "sessions-to-accounts",
                "--source", source, f"--{mode}", "--accounts-table", self.accounts, "--log-table", self.log,
                "--endpoint-url", self.url, "--checkpoint", str(self.tmp / "checkpoint.json"),
                "--kms-key-id", self.kms_key_id, *extra]

    def scan(self, table: str | None = None) -> list[dict[str, Any]]:
        """Every item of a table (accounts by default), exactly as stored."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": table or self.accounts, "ConsistentRead": True}
        while True:
            page = self.client.scan(**params)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def accounts_by_id(self) -> dict[str, dict[str, Any]]:
        return {item["account_id"]["S"]: item for item in self.scan()}


def create_accounts_table(url: str, stack_name: str) -> str:
    """The accounts table as template.yaml declares it (so schema drift fails here too)."""
    try:
        from infra.local.resources import create_resources
        from infra.local.template import load_template
    except ImportError:  # without the local runtime, the model's own schema
        name = f"{stack_name}-accounts"
        bind(Settings(accounts_table=name, endpoint_url=url, region="us-east-1"))
        AccountItem.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        return name
    accounts = load_template()["Resources"]["AccountsTable"]
    stack = create_resources({"Resources": {"AccountsTable": accounts}}, endpoint_url=url, stack_name=stack_name)
    return stack.refs["AccountsTable"]


@pytest.fixture()
def migration_env(moto_url: str, kms_key_id: str, tmp_path: Path) -> Iterator[MigrationEnv]:
    """A fresh accounts table bound to AccountItem; accounts, log and legacy tables dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1")
    accounts = create_accounts_table(moto_url, f"migration-{suffix}")
    env = MigrationEnv(moto_url, client, accounts, f"migrations-{suffix}", f"sessions-{suffix}", tmp_path, kms_key_id)
    bind(Settings(accounts_table=accounts, endpoint_url=moto_url, region="us-east-1"))
    yield env
    for table in (env.accounts, env.log, env.legacy):
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_table(TableName=table)
