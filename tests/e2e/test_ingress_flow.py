"""A signed SQS producer message reaches the contact's phone through a browser host."""

from __future__ import annotations

import json
import uuid
from typing import Any

from infra.local.host_process import HostProcess
from tests.conftest import Api, create_account
from tests.e2e.conftest import Phone, link_by_qr, wait_until
from tests.integration.test_ingress import send


def test_a_signed_producer_message_is_sent_to_the_contact(tenant_admin: Api, runtime: Any, phone: Phone,
                                                          host: HostProcess) -> None:
    # Given a linked account and a producer of its tenant
    business, contact = "1555" + str(uuid.uuid4().int)[:7], "1555" + str(uuid.uuid4().int)[:7]
    account_id = create_account(tenant_admin, "ingress-e2e")["account_id"]
    link_by_qr(tenant_admin, phone, account_id, business)
    producer = tenant_admin.register_producer("crm")

    # When the producer puts a signed message on the ingress queue
    send(runtime, json.dumps({"account_id": account_id, "to": contact, "type": "text",
                              "text": {"body": "Your order shipped"}, "client_reference": "crm-e2e"}), producer)

    # Then the contact's phone receives it once and the message is sent
    received = wait_until(lambda: phone.received(contact), 30, "the message on the phone")
    assert [m["body"] for m in received] == ["Your order shipped"]
    wait_until(lambda: [m["status"] for m in tenant_admin.get(f"/accounts/{account_id}/messages").json()["items"]]
               == ["sent"], 20, "status sent")
