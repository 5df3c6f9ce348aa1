"""Cloud API accounts against a fake Graph API on loopback: token check, sends with Meta's exact request bodies,
error codes → outcomes, token expiry (account FAILED, messages wait, a new token sends them)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from infra.local.harness import wait_until
from tests.conftest import Api, create_account

TOKEN = "EAAG-test-token-" + "x" * 24


def new_number(fake: Any, token: str = TOKEN, display: str = "+1 555-010-0000") -> str:
    phone_number_id = str(100000000000000 + uuid.uuid4().int % 899999999999999)
    fake.add_number(phone_number_id, token, display)
    return phone_number_id


def cloud_account(api: Api, fake: Any, **cloud: Any) -> dict[str, Any]:
    phone_number_id = cloud.pop("phone_number_id", None) or new_number(fake)
    return create_account(api, "Cloud line", provider="cloud",
                          cloud={"phone_number_id": phone_number_id, "access_token": TOKEN,
                                 "app_secret": "app-secret-123456", "verify_token": "verify-me-123", **cloud})


def send(api: Api, account_id: str, body: dict[str, Any]) -> str:
    response = api.post(f"/accounts/{account_id}/messages", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


def final(api: Api, account_id: str, message_id: str, *statuses: str, timeout: float = 20) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        message = api.get(f"/accounts/{account_id}/messages/{message_id}").json()
        return message if message["status"] in statuses else None
    return dict(wait_until(check, timeout=timeout, what=f"message {message_id} in {statuses}"))


def sends_to(fake: Any, phone_number_id: str) -> list[dict[str, Any]]:
    return list(fake.sent(phone_number_id))


def test_a_cloud_account_is_working_once_its_token_answers_and_never_shows_secrets(
        tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)

    assert account["provider"] == "cloud" and account["connection_status"] == "WORKING"
    assert account["phone_number"] == "+15550100000"  # from the number's display form at Meta
    assert account["cloud"]["has_access_token"] and account["cloud"]["has_app_secret"]
    assert account["cloud"]["verified_name"] == "Wagate Test"
    assert account["cloud"]["webhook_path"] == f"/webhooks/meta/{account['account_id']}"
    listed = tenant_admin.get("/accounts").text + tenant_admin.get(f"/accounts/{account['account_id']}").text
    for secret in (TOKEN, "app-secret-123456", "verify-me-123"):
        assert secret not in json.dumps(account) and secret not in listed


@pytest.mark.parametrize(("cloud", "reason"), [
    ({"access_token": "EAAG-not-a-token-at-all"}, "token_invalid"),
    ({"phone_number_id": "999000111222333"}, "phone_number_not_found"),
])
def test_a_cloud_account_whose_token_does_not_answer_fails_with_why(
        tenant_admin: Api, fake_graph: Any, cloud: dict[str, str], reason: str) -> None:
    account = cloud_account(tenant_admin, fake_graph, **cloud)

    assert account["connection_status"] == "FAILED"
    assert account["status_reason"].startswith(reason)


def test_cloud_credentials_are_required_and_only_for_cloud(tenant_admin: Api) -> None:
    missing = tenant_admin.post("/accounts", json={"account_name": "x", "provider": "cloud"})
    misplaced = tenant_admin.post("/accounts", json={"account_name": "x", "cloud": {
        "phone_number_id": "1", "access_token": TOKEN}})
    assert missing.status_code == 422 and misplaced.status_code == 422


def test_text_image_by_link_and_template_reach_meta_as_documented(tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    template = {"name": "order_update", "language": {"code": "en_US"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}

    ids = [send(tenant_admin, account_id, {"to": "+1 555 000 2222", "type": "text",
                                           "text": {"body": "hello", "preview_url": True},
                                           "client_reference": "ref-1"}),
           send(tenant_admin, account_id, {"to": "15550002222", "type": "image", "image": {
               "link": "https://example.com/cat.jpg", "caption": "a cat"}}),
           send(tenant_admin, account_id, {"to": "15550002222", "type": "template", "template": template})]

    done = [final(tenant_admin, account_id, i, "sent") for i in ids]
    assert sends_to(fake_graph, phone_number_id) == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550002222", "type": "text",
         "text": {"preview_url": True, "body": "hello"}, "biz_opaque_callback_data": "ref-1"},
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550002222", "type": "image",
         "image": {"link": "https://example.com/cat.jpg", "caption": "a cat"}},
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550002222", "type": "template",
         "template": template},
    ]
    assert all(m["wa_message_id"].startswith("wamid.") for m in done)  # Meta's messages[0].id


def test_an_uploaded_image_is_uploaded_to_meta_and_sent_by_its_graph_id(
        tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    import base64

    message_id = send(tenant_admin, account_id, {"to": "15550003333", "type": "image", "image": {
        "data": base64.b64encode(png).decode(), "mime_type": "image/png"}})

    final(tenant_admin, account_id, message_id, "sent")
    [body] = sends_to(fake_graph, phone_number_id)
    graph_id = body["image"]["id"]
    assert fake_graph.media[graph_id].data == png and fake_graph.media[graph_id].mime_type == "image/png"
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550003333",
                    "type": "image", "image": {"id": graph_id}}


def test_what_only_one_provider_can_send_is_refused_clearly(tenant_admin: Api, fake_graph: Any) -> None:
    cloud = cloud_account(tenant_admin, fake_graph)["account_id"]
    web = create_account(tenant_admin)["account_id"]
    template = {"to": "15550002222", "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}}}
    poll = {"to": "15550002222", "type": "poll", "poll": {"question": "?", "options": ["a", "b"]}}

    on_web = tenant_admin.post(f"/accounts/{web}/messages", json=template)
    on_cloud = tenant_admin.post(f"/accounts/{cloud}/messages", json=poll)

    assert on_web.status_code == 400 and on_web.json()["code"] == "template_needs_cloud_api"
    assert on_cloud.status_code == 400 and on_cloud.json()["code"] == "not_supported_by_cloud_api"
    assert "poll" in on_cloud.json()["message"]
    qr = tenant_admin.get(f"/accounts/{cloud}/qr")
    assert qr.status_code == 409 and qr.json()["code"] == "not_a_web_account"


@pytest.mark.parametrize(("code", "outcome", "hint"), [
    (131026, "invalid_recipient", None),
    (131047, "outside_window", "template"),
    (100, "invalid_request", None),
])
def test_meta_error_codes_fail_the_message_with_our_code(
        tenant_admin: Api, fake_graph: Any, code: int, outcome: str, hint: str | None) -> None:
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    fake_graph.fail_next(code)

    message = final(tenant_admin, account_id, send(tenant_admin, account_id, {
        "to": "15550004444", "type": "text", "text": {"body": "hi"}}), "failed")

    assert message["error"]["code"] == outcome
    if hint:
        assert hint in message["error"]["message"]


@pytest.mark.parametrize("code", [130429, 131056, 80007, 1])
def test_rate_limits_and_server_errors_are_retried_until_meta_takes_the_message(
        tenant_admin: Api, fake_graph: Any, code: int) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    fake_graph.fail_next(code, http_status=500 if code == 1 else None, retry_after=1)

    message = final(tenant_admin, account_id, send(tenant_admin, account_id, {
        "to": "15550005555", "type": "text", "text": {"body": "again"}}), "sent", "failed", timeout=30)

    assert message["status"] == "sent", message
    assert [b["text"]["body"] for b in sends_to(fake_graph, phone_number_id)] == ["again"]
    assert "queued" in [h["status"] for h in message["status_history"][1:]]  # it went back to wait


def test_messages_behind_a_retried_one_come_back_with_it_in_order(tenant_admin: Api, fake_graph: Any) -> None:
    # Given a cloud account whose first send Meta throttles three times (retry after 1 s)
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    fake_graph.fail_next(130429, retry_after=1, times=3)

    # When four messages are sent at once (the later ones reach the sender in batches behind the retried one)
    ids = [send(tenant_admin, account_id, {"to": "15550007777", "type": "text", "text": {"body": str(n)}})
           for n in range(4)]

    # Then all go, in order, seconds after Meta lets the first one through: the ones held behind it came back
    # with it, not after the queue's 180 s visibility timeout
    for message_id in ids:
        final(tenant_admin, account_id, message_id, "sent", timeout=30)
    assert [b["text"]["body"] for b in sends_to(fake_graph, phone_number_id)] == ["0", "1", "2", "3"]


def test_an_expired_token_fails_the_account_and_its_messages_wait_for_a_new_one(
        tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    fake_graph.fail_next(190, subcode=463, message="Error validating access token: Session has expired")

    first = send(tenant_admin, account_id, {"to": "15550006666", "type": "text", "text": {"body": "one"}})
    wait_until(lambda: tenant_admin.get(f"/accounts/{account_id}").json()["connection_status"] == "FAILED",
               what="account FAILED")
    second = send(tenant_admin, account_id, {"to": "15550006666", "type": "text", "text": {"body": "two"}})

    shown = tenant_admin.get(f"/accounts/{account_id}").json()
    assert shown["status_reason"].startswith("token_expired")
    assert [tenant_admin.get(f"/accounts/{account_id}/messages/{m}").json()["status"] for m in (first, second)] \
        == ["queued", "queued"]
    # A new token (PATCH) and a start: WORKING again, and the waiting messages go, in order.
    new_token = "EAAG-renewed-token-" + "y" * 20
    fake_graph.numbers[phone_number_id].token = new_token
    assert tenant_admin.patch(f"/accounts/{account_id}", json={"cloud": {"access_token": new_token}}).status_code \
        == 200
    started = tenant_admin.post(f"/accounts/{account_id}/start")
    assert started.status_code == 202 and started.json()["connection_status"] == "WORKING"
    for message_id in (first, second):
        final(tenant_admin, account_id, message_id, "sent", timeout=40)
    assert [b["text"]["body"] for b in sends_to(fake_graph, phone_number_id)] == ["one", "two"]


def test_a_deleted_cloud_account_is_gone_at_once(tenant_admin: Api, fake_graph: Any) -> None:
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]

    assert tenant_admin.delete(f"/accounts/{account_id}").status_code == 204
    assert tenant_admin.get(f"/accounts/{account_id}").status_code == 404


def test_a_migrated_meta_session_is_completed_with_its_credentials_and_started(
        tenant_admin: Api, fake_graph: Any) -> None:
    from core.store.tables import AccountItem
    from infra.migration.mapping import map_row

    # Given a legacy `meta` session as the migration tool writes it, in this tenant
    tenant = tenant_admin.get("/me").json()["tenant_id"]
    mapped = map_row({"session_id": f"s-{uuid.uuid4().hex[:8]}", "workspace_id": tenant, "status": "connected",
                      "provider_type": "meta", "session_name": "Legacy cloud", "phone_number": "+15550100000",
                      "created_at": "2025-01-01T00:00:00Z"}).item
    AccountItem(**{k: v for k, v in mapped.items() if v is not None and k != "version"}).save()
    account_id = mapped["account_id"]
    shown = tenant_admin.get(f"/accounts/{account_id}").json()
    assert (shown["provider"], shown["connection_status"]) == ("cloud", "STOPPED")
    assert shown["cloud"]["has_access_token"] is False
    assert tenant_admin.post(f"/accounts/{account_id}/start").json()["connection_status"] == "FAILED"

    # When its credentials are added and it is started
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"cloud": {
        "phone_number_id": new_number(fake_graph), "access_token": TOKEN, "app_secret": "app-secret-123456"}})
    assert patched.status_code == 200, patched.text
    started = tenant_admin.post(f"/accounts/{account_id}/start")

    # Then it works and sends like any cloud account
    assert started.json()["connection_status"] == "WORKING"
    message_id = send(tenant_admin, account_id, {"to": "15550001234", "type": "text", "text": {"body": "back"}})
    assert final(tenant_admin, account_id, message_id, "sent")["wa_message_id"].startswith("wamid.")


def test_interactive_buttons_go_to_meta_as_they_are(tenant_admin: Api, fake_graph: Any) -> None:
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    interactive = {"type": "button", "body": {"text": "Ship it?"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}

    final(tenant_admin, account_id, send(tenant_admin, account_id, {
        "to": "15550002222", "type": "interactive", "interactive": interactive}), "sent")

    assert sends_to(fake_graph, phone_number_id) == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550002222",
         "type": "interactive", "interactive": interactive}]


def test_the_sweeper_ends_cloud_messages_that_cannot_go(tenant_admin: Api, fake_graph: Any) -> None:
    import time

    from core.models.accounts import ConnectionStatus
    from core.store.accounts import AccountChange
    from core.store.tables import AccountItem, MessageItem
    from functions.service.context import services
    from functions.service.sweeper import CLOUD_RETRY_WINDOW, sweep

    svc = services()
    # Given a cloud account whose token failed, with a message waiting ...
    waiting = cloud_account(tenant_admin, fake_graph)["account_id"]
    svc.accounts.request(AccountItem.get(waiting), lambda _: AccountChange(
        status=ConnectionStatus.FAILED, reason="token_expired: test"))
    message_id = send(tenant_admin, waiting, {"to": "15550001212", "type": "text", "text": {"body": "waits"}})
    # ... and a working one with a message whose send was claimed but never answered
    working = cloud_account(tenant_admin, fake_graph)["account_id"]
    claimed = MessageItem(working, "msg_" + "0" * 9 + uuid.uuid4().hex[:17], tenant_id=AccountItem.get(working)
                          .tenant_id, direction="outbound", status="sending", type="text", to="15550001313",
                          content='{"type":"text","to":"15550001313","text":{"body":"lost"}}',
                          status_history=[], created_at="2026-01-01T00:00:00.000Z",
                          updated_at="2026-01-01T00:00:00.000Z")
    svc.messages.create(claimed)

    # When the sweeper runs later than the not-connected timeout (and the retry window)
    sweep(svc, now=time.time() + CLOUD_RETRY_WINDOW + 60)

    # Then the waiting message failed like a disconnected web account's, the claimed one as unconfirmed
    failed = tenant_admin.get(f"/accounts/{waiting}/messages/{message_id}").json()
    assert (failed["status"], failed["error"]["code"]) == ("failed", "account_not_connected")
    assert "token_expired" in failed["error"]["message"]
    lost = tenant_admin.get(f"/accounts/{working}/messages/{claimed.message_id}").json()
    assert (lost["status"], lost["error"]["code"]) == ("failed", "send_unconfirmed")


def test_the_sweeper_requeues_a_lost_cloud_message_and_gives_up_after_the_retry_window(
        tenant_admin: Api, fake_graph: Any) -> None:
    import time

    from core.ids import new_id
    from core.models.common import utcnow
    from core.store.tables import AccountItem, MessageItem
    from functions.service.context import services
    from functions.service.sweeper import CLOUD_RETRY_WINDOW, IDLE_BEFORE_REQUEUE, sweep

    svc = services()
    account = cloud_account(tenant_admin, fake_graph)
    account_id, phone_number_id = account["account_id"], account["cloud"]["phone_number_id"]
    tenant_id = AccountItem.get(account_id).tenant_id

    def stored_queued(body: str, created_at: str) -> str:
        """A queued row whose cloud outbox message was lost (stored directly, never queued)."""
        item = MessageItem(account_id, new_id("msg"), tenant_id=tenant_id, direction="outbound", status="queued",
                           type="text", to="15550001414",
                           content=json.dumps({"type": "text", "to": "15550001414", "text": {"body": body}}),
                           status_history=[], created_at=created_at, updated_at=created_at)
        svc.messages.create(item)
        return str(item.message_id)

    # Given a queued message of a working cloud account that nothing will send
    lost = stored_queued("found again", utcnow())
    time.sleep(1)
    assert tenant_admin.get(f"/accounts/{account_id}/messages/{lost}").json()["status"] == "queued"

    # When the sweeper sees it idle (but young): it is queued again, and sent
    sweep(svc, now=time.time() + IDLE_BEFORE_REQUEUE + 60)
    final(tenant_admin, account_id, lost, "sent")
    assert [b["text"]["body"] for b in sends_to(fake_graph, phone_number_id)] == ["found again"]

    # And one that waited longer than the retry window fails instead of going out late
    old = stored_queued("too late", "2026-01-01T00:00:00.000Z")
    sweep(svc, now=time.time() + CLOUD_RETRY_WINDOW + 60)
    gave_up = tenant_admin.get(f"/accounts/{account_id}/messages/{old}").json()
    assert (gave_up["status"], gave_up["error"]["code"]) == ("failed", "retries_exhausted")


def test_metas_webhook_route_is_rate_limited_per_account(runtime: Any, tenant_admin: Api, fake_graph: Any) -> None:
    import os

    import requests

    from infra.local.runtime import reset_process_caches

    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    os.environ["META_WEBHOOK_PER_MINUTE"] = "3"
    reset_process_caches()
    try:
        url = f"{runtime.api_url}/webhooks/meta/{account_id}"
        answers = [requests.post(url, data=b"{}", timeout=10) for _ in range(5)]
    finally:
        os.environ.pop("META_WEBHOOK_PER_MINUTE")
        reset_process_caches()
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [401, 401, 401] or statuses.count(429) >= 2, statuses  # a minute may turn mid-run
    limited = [a for a in answers if a.status_code == 429]
    assert limited and limited[0].headers["Retry-After"].isdigit()
