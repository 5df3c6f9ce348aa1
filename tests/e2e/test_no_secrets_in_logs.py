"""An end-to-end run logs no secret: API keys, access tokens, webhook and producer secrets, snapshot keys.

The run is the usual one (a tenant webhook, an account webhook, a producer, an access token, an account linked by
QR through a browser host, a message sent by API and one by SQS, a snapshot saved); what it logs is every line of
the local stack's functions (the app logger and anything else on the root logger), the runtime's own stderr, and
the browser host's log file. A canary logged on purpose proves the capture sees what the functions log.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
import requests

from browser_host.crypto import META_EDK
from core.observability import logger as app_logger
from infra.local.host_process import HostProcess
from infra.local.receiver import Receiver
from tests.conftest import Api, create_account
from tests.e2e.conftest import WEBHOOK_SECRET, Phone, link_by_qr, wait_until
from tests.integration.test_ingress import send

ACCOUNT_WEBHOOK_SECRET = "account-webhook-secret-" + uuid.uuid4().hex


class _Recorder(logging.Handler):
    """Every record, formatted as the stack writes it (the app logger's JSON, with its extra keys)."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(level=logging.DEBUG)
        if formatter is not None:
            self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted still counts with its raw parts
            self.lines.append(f"{record.msg!r} {record.args!r} {record.__dict__!r}")


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """The lines the stack's functions log meanwhile (app logger and root logger)."""
    app = _Recorder(app_logger.registered_formatter)
    root = _Recorder(logging.Formatter("%(name)s %(levelname)s %(message)s %(exc_info)s"))
    app_logger.addHandler(app)
    logging.getLogger().addHandler(root)
    lines: list[str] = []
    try:
        yield lines
    finally:
        app_logger.removeHandler(app)
        logging.getLogger().removeHandler(root)
        lines.extend(app.lines + root.lines)


def snapshot_key_forms(runtime: Any, account_id: str) -> list[str]:
    """The account's snapshot data key as the forms a log line could hold it in (base64, hex)."""
    s3 = boto3.client("s3", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    kms = boto3.client("kms", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
    bucket = runtime.env["MEDIA_BUCKET"]
    head = wait_until(lambda: _head(s3, bucket, f"snapshots/{account_id}.bin"), 60, "the account's snapshot")
    meta = {k.lower(): v for k, v in head["Metadata"].items()}
    encrypted = base64.b64decode(meta[META_EDK.lower()])
    plaintext = kms.decrypt(CiphertextBlob=encrypted, EncryptionContext={"account_id": account_id})["Plaintext"]
    return [base64.b64encode(plaintext).decode(), plaintext.hex()]


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except s3.exceptions.ClientError:
        return None


def test_an_end_to_end_run_logs_no_secret(tenant_admin: Api, root_api: Api, runtime: Any, phone: Phone,
                                          host: HostProcess, receiver: Receiver, tenant_webhook: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    business, contact = "1555" + str(uuid.uuid4().int)[:7], "1555" + str(uuid.uuid4().int)[:7]
    canary = "canary-" + uuid.uuid4().hex
    with captured_logs() as lines:
        # Given an access token, a producer and an account with a signed webhook, linked through a browser host
        token = tenant_admin.post("/auth/token").json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        producer = tenant_admin.register_producer("crm")
        account_id = create_account(tenant_admin, "secrets", webhook={
            "url": receiver.url("/account"), "secret": ACCOUNT_WEBHOOK_SECRET})["account_id"]
        link_by_qr(tenant_admin, phone, account_id, business)

        # When a message goes out by API (with the token) and one by SQS (signed by the producer)
        sent = requests.post(f"{tenant_admin.base_url}/accounts/{account_id}/messages", headers=bearer, timeout=30,
                             json={"to": contact, "type": "text", "text": {"body": "by API"}})
        assert sent.status_code == 202, sent.text
        send(runtime, json.dumps({"account_id": account_id, "to": contact, "type": "text",
                                  "text": {"body": "by SQS"}}), producer)
        wait_until(lambda: len(phone.received(contact)) == 2, 60, "both messages on the phone")
        wait_until(lambda: receiver.events(account_id=account_id, type="message.status"), 30, "signed webhooks")
        key_forms = snapshot_key_forms(runtime, account_id)
        app_logger.info("the capture sees what the functions log", extra={"probe": canary})

    # Then no secret appears in what the stack, the runtime and the host logged
    host_log = host.log_path.read_text() if host.log_path else ""
    logged = "\n".join([*lines, capsys.readouterr().err, host_log])
    assert canary in logged, "the capture missed a line the app logger wrote"
    assert "message accepted" in logged and "snapshot saved" in host_log, "the run's own lines are missing"
    assert_no_secret(logged, {
        "the tenant admin's API key": str(tenant_admin.key),
        "its secret part": str(tenant_admin.key).rsplit("_", 1)[-1],
        "the bootstrap API key": str(root_api.key),
        "the access token": token,
        "the access token's signature": token.rsplit(".", 1)[-1],
        "the tenant webhook's secret": WEBHOOK_SECRET,
        "the account webhook's secret": ACCOUNT_WEBHOOK_SECRET,
        "the producer's secret": producer[1],
        "the snapshot key (base64)": key_forms[0],
        "the snapshot key (hex)": key_forms[1],
    })


def assert_no_secret(logged: str, secrets: dict[str, str]) -> None:
    found = {what: logged.count(value) for what, value in secrets.items() if value and value in logged}
    assert not found, f"secrets in the logs: {found}"


def test_the_scan_fails_when_a_secret_is_logged() -> None:
    # Given a log that holds a key, When it is scanned, Then the scan names it
    with captured_logs() as lines:
        app_logger.info("key created", extra={"api_key": "wgk_01abc_s3cr3t"})
    with pytest.raises(AssertionError, match="the API key"):
        assert_no_secret("\n".join(lines), {"the API key": "wgk_01abc_s3cr3t"})
