"""The domain core's pure parts: ids that keep per-account order, account changes, inbox names."""

from __future__ import annotations

import time

from core.ids import id_floor, new_id, ulid
from core.models.accounts import ConnectionStatus
from core.store.accounts import UNSET, AccountChange
from core.store.queues import inbox_name
from core.store.tables import AccountItem


def test_ids_made_in_the_same_millisecond_keep_their_order() -> None:
    # Given many ids made as fast as possible (most share a millisecond)
    ids = [ulid() for _ in range(5000)]

    # Then they are unique and sorted as made: message order is id order
    assert len(set(ids)) == len(ids) and ids == sorted(ids)


def test_id_floor_bounds_every_id_made_at_or_after_it() -> None:
    floor = id_floor("msg", int(time.time() * 1000))
    later = new_id("msg")
    earlier = id_floor("msg", int(time.time() * 1000) - 60_000)
    assert earlier < floor <= later


def test_an_account_change_touches_only_what_it_names() -> None:
    item = AccountItem("acc_1", tenant_id="t", account_name="a", connection_status="STARTING",
                       tenant_status="t#STARTING", desired_state="running", status_history=[],
                       created_at="2026-01-01T00:00:00Z", updated_at="2026-01-01T00:00:00Z")
    assert not AccountChange()
    change = AccountChange(qr=None, desired_state="stopped", status=ConnectionStatus.FAILED, reason="qr_timeout")
    assert change and change.pairing is UNSET
    text = " ".join(str(a) for a in change.actions(item))
    assert "qr" in text and "desired_state" in text and "connection_status" in text and "pairing" not in text
    # A status equal to the stored one writes no transition
    same = AccountChange(status=ConnectionStatus.STARTING, reason="again")
    assert same.actions(item) == []


def test_inbox_names_are_valid_sqs_names() -> None:
    name = inbox_name("wagate-host-", "ip-10-0-1-2.ec2.internal/task:abc" + "x" * 100)
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)


def test_aws_calls_give_up_before_api_gateway_does() -> None:
    """Finding 2: 30 s read timeout x 5 attempts outlasted the 29 s function timeout, so the code that answers
    503 (and would clean up) never ran on AWS."""
    from core.aws import client, reset_clients
    from core.config import Settings, get_settings, reset_settings
    from core.store import tables

    reset_settings()
    reset_clients()
    try:
        settings = get_settings()
        config = client("sqs").meta.config
        worst = (config.connect_timeout + config.read_timeout) * config.retries["total_max_attempts"]
        assert worst < 29, worst
        # A long poll's client waits longer than the poll, or every empty poll would end in a timeout error
        assert client("sqs", long_poll=20).meta.config.read_timeout > 20
        tables.bind(Settings())
        meta = tables.MessageItem.Meta
        worst_dynamodb = (meta.connect_timeout_seconds + meta.read_timeout_seconds) * (meta.max_retry_attempts + 1)
        assert worst_dynamodb < 29 and settings.aws_max_attempts >= 1
    finally:
        reset_settings()
        reset_clients()


def test_a_service_endpoint_of_its_own_wins_as_the_aws_sdks_read_it() -> None:
    from core.config import Settings

    settings = Settings.from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                                  "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:4566",
                                  "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"})
    assert settings.endpoint_for("s3") == "http://127.0.0.1:4566"
    assert settings.endpoint_for("dynamodb") == "http://127.0.0.1:8000"
    assert settings.endpoint_for("sqs") == settings.endpoint_for("kms") == "http://127.0.0.1:5000"
    assert Settings.from_env({}).endpoint_for("s3") is None  # AWS itself
