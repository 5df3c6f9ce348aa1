"""An accepted-looking send that cannot be queued must not stay 'queued' forever."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from functions.dal.messages import OutboundQueue
from functions.models.envelope import OUTBOUND_ADAPTER
from functions.service.messages import enqueue
from functions.shared.errors import DependencyFailure
from tests.conftest import Api, create_account


def test_queue_failure_fails_the_message_and_frees_the_idempotency_key(tenant_admin: Api, runtime: Any) -> None:
    # Given services whose outbound queue does not exist
    from functions.api.context import Principal
    from functions.models.common import Role
    from functions.service.context import services

    account = create_account(tenant_admin)
    svc = services()
    broken = dataclasses.replace(svc, outbound=OutboundQueue(svc.settings.outbound_queue_url + "-missing.fifo"))
    principal = Principal(key_id="k", tenant_id=account_id_tenant(tenant_admin), role=Role.ADMIN)
    message = OUTBOUND_ADAPTER.validate_python({"to": "15550001111", "type": "text", "text": {"body": "x"}})

    # When a send is attempted
    with pytest.raises(DependencyFailure):
        enqueue(broken, principal, account["account_id"], message, idempotency_key="k1", correlation_id=None)

    # Then the stored message is failed with the reason, and the key can be retried
    items = tenant_admin.get(f"/accounts/{account['account_id']}/messages").json()["items"]
    assert [(m["status"], m["error"]["code"]) for m in items] == [("failed", "enqueue_failed")]
    retried = enqueue(svc, principal, account["account_id"], message, idempotency_key="k1", correlation_id=None)
    assert retried.message.status == "queued" and not retried.replayed


def account_id_tenant(api: Api) -> str:
    return str(api.get("/api-keys").json()["items"][0]["tenant_id"])
