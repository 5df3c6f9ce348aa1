"""Found as an attacker would (issue 11): a viewer could read the live QR (and pairing code) and link its own phone
to the account, and every key of a tenant read migrated whatsapp-web.js tokens in `metadata.legacy`. Now viewers
get neither (REST, legacy /sessions, WebSocket events) and no answer carries legacy credentials."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from core.models.events import EventType
from tests.conftest import Api, create_account, make_key
from tests.integration.test_realtime import connected, publish, run

TOKENS = {"WABrowserId": "\"BROWSER-ID-123\"", "WASecretBundle": "SECRET-BUNDLE-456", "WAToken1": "TOKEN-789"}


def show_qr(account_id: str, value: str = "2@QR-VALUE-XYZ,abc,def") -> None:
    """The account as a browser host leaves it while waiting for a scan."""
    from core.store.tables import AccountItem

    item = AccountItem.get(account_id)
    item.update(actions=[AccountItem.connection_status.set("SCAN_QR_CODE"),
                         AccountItem.tenant_status.set(f"{item.tenant_id}#SCAN_QR_CODE"),
                         AccountItem.qr.set({"value": value, "expires_at": "2099-01-01T00:00:00.000Z"})])


@pytest.mark.parametrize("prefix", ["/accounts", "/sessions"])
def test_viewers_cannot_read_what_links_a_phone(tenant_admin: Api, prefix: str) -> None:
    # Given an account showing a QR code, and a pairing code asked for
    account_id = create_account(tenant_admin)["account_id"]
    show_qr(account_id)
    operator, viewer = make_key(tenant_admin, "operator"), make_key(tenant_admin, "viewer")
    scoped = make_key(tenant_admin, "operator", account_ids=[account_id])
    assert operator.get(f"{prefix}/{account_id}/qr", params={"format": "raw"}).status_code == 200

    # When a viewer asks for the QR (as JSON or PNG) or the pairing code / Then 403, and nothing of the code
    for response in (viewer.get(f"{prefix}/{account_id}/qr", params={"format": "raw"}),
                     viewer.get(f"{prefix}/{account_id}/qr")):
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role", response.text
        assert "QR-VALUE-XYZ" not in response.text
    show_qr(account_id)
    assert operator.post(f"{prefix}/{account_id}/pairing-code", json={"phone_number": "15550009999"}).status_code \
        in (200, 201, 202)
    refused = viewer.get(f"{prefix}/{account_id}/pairing-code")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    # And the account itself still reads fine for the viewer; writers (scoped ones too) get the codes
    assert viewer.get(f"{prefix}/{account_id}").status_code == 200
    assert scoped.get(f"{prefix}/{account_id}/pairing-code").status_code == 200


def test_viewers_websocket_never_carries_the_qr(tenant_admin: Api) -> None:
    # Given a viewer and an operator subscribed to everything of the tenant
    account_id = create_account(tenant_admin)["account_id"]
    viewer_ticket = make_key(tenant_admin, "viewer").post("/realtime/tickets").json()
    operator_ticket = make_key(tenant_admin, "operator").post("/realtime/tickets").json()

    async def scenario() -> None:
        async with connected(viewer_ticket["url"]) as viewer, connected(operator_ticket["url"]) as operator:
            subscribed = await viewer.subscribe(account_ids=None)
            assert "account.qr" not in subscribed["events"] and "message.received" in subscribed["events"]
            assert (await viewer.subscribe(account_ids=None, events=["account.qr"]))["events"] == []
            await viewer.subscribe(account_ids=None)
            assert (await operator.subscribe(account_ids=None))["events"] is None
            # When a host publishes a QR, then a status change
            qr = publish(account_id, EventType.ACCOUNT_QR, {"qr": "2@QR-VALUE-XYZ", "expires_at": None})
            status = publish(account_id, EventType.ACCOUNT_STATUS, {"status": "SCAN_QR_CODE"})
            # Then the operator gets both, the viewer only the status
            assert [e["id"] for e in await operator.events_until(status)] == [qr, status]
            assert [e["id"] for e in await viewer.events_until(status)] == [status]

    run(scenario())


def test_legacy_credentials_of_older_migrations_are_never_shown(tenant_admin: Api) -> None:
    from core.store.tables import AccountItem

    # Given an account migrated before credentials were sealed: tokens and unknown columns in metadata.legacy
    account_id = create_account(tenant_admin, metadata={"crm": "42"})["account_id"]
    item = AccountItem.get(account_id)
    item.update(actions=[AccountItem.metadata.set({"crm": "42", "legacy": {
        "status": "connected", "session_data": TOKENS, "columns": {"api_password": "PASSWORD-000"}}})])
    viewer = make_key(tenant_admin, "viewer")

    # When any key reads it, in any shape the API has
    answers = [client.get(path) for client in (viewer, tenant_admin)
               for path in (f"/accounts/{account_id}", "/accounts", f"/sessions/{account_id}", "/sessions")]
    answers.append(tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "Renamed"}))

    # Then no answer carries a token or the unknown column, and the rest of the metadata is there
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in ("BROWSER-ID-123", "SECRET-BUNDLE-456", "TOKEN-789", "PASSWORD-000", "session_data"):
            assert secret not in answer.text, (answer.url, secret)
    shown = answers[0].json()["metadata"]
    assert shown == {"crm": "42", "legacy": {"status": "connected"}}
    # And the stored item is left as it was (only hidden): an operator can still seal or drop it
    assert AccountItem.get(account_id).metadata.as_dict()["legacy"]["session_data"] == TOKENS  # type: ignore[no-untyped-call]


def test_a_freshly_migrated_account_keeps_its_sealed_credentials_out_of_every_answer(tenant_admin: Api) -> None:
    from core.config import get_settings
    from core.store import secrets
    from core.store.tables import AccountItem
    from infra.migration.mapping import map_row
    from infra.migration.runner import Options, Sealer

    # Given a legacy row with tokens migrated into this tenant with the stack's key
    tenant = tenant_admin.get("/me").json()["tenant_id"]
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    mapped = map_row({"session_id": session_id, "workspace_id": tenant, "status": "connected",
                      "session_data": TOKENS, "api_password": "PASSWORD-000", "created_at": "2024-01-01"})
    settings = get_settings()
    options = Options(mode="apply", source=None, accounts_table=settings.accounts_table,
                      endpoint_url=settings.endpoint_url, kms_key_id=settings.snapshot_key_id)
    item: dict[str, Any] = Sealer(options)(mapped).item
    AccountItem(**{k: v for k, v in item.items() if v is not None and k != "version"}).save()

    # When a viewer and an admin read it
    viewer = make_key(tenant_admin, "viewer")
    answers = [client.get(path) for client in (viewer, tenant_admin)
               for path in (f"/accounts/{session_id}", f"/sessions/{session_id}", "/accounts")]

    # Then they see that credentials were sealed, never the credentials or their ciphertext
    stored = AccountItem.get(session_id).legacy_secrets
    assert stored
    for answer in answers:
        assert answer.status_code == 200, answer.text
        for secret in ("BROWSER-ID-123", "SECRET-BUNDLE-456", "TOKEN-789", "PASSWORD-000", "legacy_secrets",
                       json.loads(stored)["data"][:24]):
            assert secret not in answer.text
    assert answers[0].json()["metadata"]["legacy"]["sealed"] == ["api_password", "session_data"]
    # And they open only with the legacy purpose, which no function of the stack is granted
    assert json.loads(secrets.unseal(stored, purpose=secrets.LEGACY_PURPOSE))["columns"] == {
        "api_password": "PASSWORD-000"}
    with pytest.raises(ValueError):
        secrets.unseal(stored, purpose=secrets.PURPOSE)


def test_no_function_of_the_stack_may_decrypt_legacy_credentials() -> None:
    from core.store import secrets
    from infra.local.template import functions, load_template

    # Every kms:Decrypt grant of a function is bound to a purpose (the encryption context), never the legacy one
    granted = set()
    for name, props in functions(load_template()).items():
        for policy in props.get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if "kms:Decrypt" in actions:
                    purpose = statement["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"]
                    granted.add(purpose)
                    assert purpose != secrets.LEGACY_PURPOSE, name
    assert granted == {secrets.PURPOSE, secrets.JWT_KEY_PURPOSE}
