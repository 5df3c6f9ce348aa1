"""Leases and fencing against the emulator: a host that lost an account cannot write about it any more."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from core.errors import LeaseLost
from core.models.accounts import ConnectionStatus
from core.models.common import utcnow
from core.models.messages import MessageStatus
from core.store.accounts import AccountRepository
from core.store.leases import LeaseRepository
from core.store.messages import MessageRepository
from core.store.tables import MessageItem
from tests.conftest import Api, create_account


@pytest.fixture
def account_id(tenant_admin: Api) -> str:
    return str(create_account(tenant_admin)["account_id"])


def test_a_lease_has_one_holder_and_its_token_only_grows(account_id: str, runtime: Any) -> None:
    leases = LeaseRepository()
    first = leases.claim(account_id, "host-a", 30)
    assert first is not None and first.token == 1
    assert leases.claim(account_id, "host-b", 30) is None  # held: refused
    assert leases.holder(account_id) is not None and leases.holder(account_id).owner == "host-a"  # type: ignore[union-attr]

    assert leases.release(first)
    second = leases.claim(account_id, "host-b", 30)
    assert second is not None and second.token == 2
    # The old holder can neither renew nor release what is no longer its lease
    assert leases.renew(first, 30) is None and not leases.release(first)


def test_an_expired_lease_is_taken_over_and_the_old_holder_notices(account_id: str, runtime: Any) -> None:
    leases = LeaseRepository()
    old = leases.claim(account_id, "host-a", 0.2)
    assert old is not None
    time.sleep(0.4)
    new = leases.claim(account_id, "host-b", 30)
    assert new is not None and new.token == old.token + 1
    assert leases.renew(old, 30) is None


def test_account_writes_are_fenced_by_the_lease_token(account_id: str, runtime: Any) -> None:
    leases, accounts = LeaseRepository(), AccountRepository()
    old = leases.claim(account_id, "host-a", 0.1)
    assert old is not None and accounts.attach(account_id, "host-a", old.token, None) is not None
    accounts.set_status(account_id, old.token, ConnectionStatus.STARTING, "opening")
    time.sleep(0.3)
    new = leases.claim(account_id, "host-b", 30)
    assert new is not None and accounts.attach(account_id, "host-b", new.token, None) is not None

    # The old holder's status write is refused; the new holder's goes through
    with pytest.raises(LeaseLost):
        accounts.set_status(account_id, old.token, ConnectionStatus.FAILED, "qr_timeout")
    accounts.set_status(account_id, new.token, ConnectionStatus.WORKING, "connected")
    item = accounts.read(account_id)
    assert item is not None and item.connection_status == "WORKING" and item.host_id == "host-b"
    # ... and an older token can never attach again
    assert accounts.attach(account_id, "host-a", old.token, None) is None


def test_message_writes_and_inbound_records_are_fenced(account_id: str, tenant_admin: Api, runtime: Any) -> None:
    leases, accounts, messages = LeaseRepository(), AccountRepository(), MessageRepository()
    old = leases.claim(account_id, "host-a", 0.1)
    assert old is not None and accounts.attach(account_id, "host-a", old.token, None)
    accepted = tenant_admin.post(f"/accounts/{account_id}/messages",
                                 json={"to": "15550001111", "type": "text", "text": {"body": "x"}}).json()
    item = messages.get(account_id, accepted["message_id"])
    assert messages.mark_sending(item, "true_15550001111@c.us_X", old.token)
    time.sleep(0.3)
    new = leases.claim(account_id, "host-b", 30)
    assert new is not None and accounts.attach(account_id, "host-b", new.token, None)

    # The new owner writes the message; the old one cannot overwrite it afterwards
    assert messages.advance(messages.get(account_id, item.message_id), MessageStatus.SENT, new.token)
    assert not messages.fail(messages.get(account_id, item.message_id), "send_failed", "late", old.token,
                             allowed_from=frozenset(MessageStatus))
    assert messages.get(account_id, item.message_id).status == "sent"

    # An inbound message reported by the old owner is refused as a lost lease, not stored
    now = utcnow()
    inbound = MessageItem(account_id, "msg_01zzzzzzzzzzzzzzzzzzzzzzzz", tenant_id="t", direction="inbound",
                          status="received", type="text", content=json.dumps({"type": "text"}),
                          status_history=[], created_at=now, updated_at=now)
    with pytest.raises(LeaseLost):
        messages.record_inbound(inbound, account_id, old.token)
    assert messages.record_inbound(inbound, account_id, new.token)
    assert not messages.record_inbound(inbound, account_id, new.token)  # stored once


def test_the_fleet_is_one_read_and_a_dead_host_is_forgotten_once(runtime: Any) -> None:
    leases = LeaseRepository()
    leases.register_host("reg-a", "https://queue/a", 11, 5, 1, 30)
    leases.register_host("reg-b", None, 12, 5, 0, 0.001)
    time.sleep(0.01)
    hosts = {h.host_id: h for h in leases.hosts()}
    assert hosts["reg-a"].alive() and hosts["reg-a"].inbox_url == "https://queue/a"
    dead = hosts["reg-b"]
    assert not dead.alive()

    # A host that re-registered since is not forgotten; the one seen expired is, and only once
    leases.register_host("reg-a", "https://queue/a", 11, 5, 2, 30)
    assert not leases.forget_host(hosts["reg-a"])
    assert leases.forget_host(dead) and not leases.forget_host(dead)
    assert "reg-b" not in {h.host_id for h in leases.hosts()} and "reg-a" in {h.host_id for h in leases.hosts()}

