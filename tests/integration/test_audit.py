"""The audit log against the local stack: state-changing calls and refusals recorded once, by the one hook, with
who, what, result, request id and source; `GET /audit` for admins with filters and cursors, per tenant; nothing
can alter an entry; no secret or body ever lands in one; host actions through the host's store."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from core.config import get_settings
from core.store import tables
from core.store.leases import LeaseRepository
from functions.service.api_keys import new_key_string
from infra.local.template import functions, load_template
from tests.conftest import Api, create_account, make_key

TEXT = {"to": "15550001111", "type": "text", "text": {"body": "the body is never audited 7f3c"}}


def audit(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every entry `GET /audit` gives with these filters, following the cursors."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = api.get("/audit", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        entries.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return entries


def key_id(api: Api) -> str:
    return str(api.get("/me").json()["key_id"])


@pytest.fixture
def other_admin(root_api: Api) -> Api:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = root_api.post("/api-keys", json={"name": "admin", "role": "admin", "tenant": tenant})
    assert response.status_code == 201, response.text
    return root_api.with_key(response.json()["api_key"])


def test_a_sequence_of_calls_is_recorded_in_order_with_who_what_and_where(tenant_admin: Api) -> None:
    # Given a tenant admin
    admin_key = key_id(tenant_admin)

    # When it creates an account, starts it, sends a message, creates a key and revokes it
    created = tenant_admin.post("/accounts", json={"account_name": "Audited"})
    account_id = created.json()["account_id"]
    started = tenant_admin.post(f"/accounts/{account_id}/start")
    sent = tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT)
    key = tenant_admin.post("/api-keys", json={"name": "short-lived", "role": "operator"})
    revoked = tenant_admin.delete(f"/api-keys/{key.json()['key_id']}")
    calls = [created, started, sent, key, revoked]
    assert [c.status_code for c in calls] == [201, 202, 202, 201, 204]

    # Then the audit log has one entry per call, newest first, reads (GET /me) not among them
    entries = audit(tenant_admin)
    assert [(e["action"], e["target"]["type"], e["target"]["id"]) for e in entries] == [
        ("api_key.revoke", "api_key", key.json()["key_id"]),
        ("api_key.create", "api_key", key.json()["key_id"]),
        ("message.send", "message", sent.json()["message_id"]),
        ("account.start", "account", account_id),
        ("account.create", "account", account_id),
    ]
    for entry, call in zip(entries, reversed(calls), strict=True):
        assert entry["actor"] == {"type": "key", "id": admin_key}
        assert entry["result"] == "ok" and entry["reason"] is None
        assert entry["request_id"] == call.headers["x-amzn-RequestId"]
        assert entry["source_ip"] == "127.0.0.1"
        assert entry["user_agent"].startswith("python-requests/")
        assert entry["tenant_id"] == tenant_admin.get("/me").json()["tenant_id"]
    assert [e["account_id"] for e in entries] == [None, None, account_id, account_id, account_id]
    assert entries[2]["route"] == "POST /accounts/{account_id}/messages"
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    assert all(re.fullmatch(r"aud_[0-9a-z]{26}", e["id"]) for e in entries)


def test_refusals_are_recorded_and_counted_as_security_events(tenant_admin: Api, root_api: Api) -> None:
    # Given a viewer of a tenant with an account
    account_id = create_account(tenant_admin)["account_id"]
    viewer = make_key(tenant_admin, "viewer")

    # When the viewer tries to start the account and to read the audit log (both forbidden)
    start = viewer.post(f"/accounts/{account_id}/start")
    read = viewer.get("/audit")
    assert (start.status_code, read.status_code) == (403, 403)

    # Then both refusals are in the tenant's log with the viewer as actor and the reason
    viewer_key = key_id(viewer)
    refused = audit(tenant_admin, actor=viewer_key)
    assert [(e["action"], e["result"], e["route"]) for e in refused] == [
        ("audit.read", "403", "GET /audit"), ("account.start", "403", "POST /accounts/{account_id}/start")]
    assert refused[1]["reason"] == start.json()["code"] and refused[1]["account_id"] == account_id
    assert refused[1]["request_id"] == start.headers["x-amzn-RequestId"]

    # When a bad key, a revoked key and no key at all are presented
    bad = new_key_string()
    doomed = make_key(tenant_admin, "operator")
    assert tenant_admin.delete(f"/api-keys/{key_id(doomed)}").status_code == 204
    answers = [tenant_admin.with_key(bad).post("/accounts", json={"account_name": "x"}),
               doomed.get(f"/accounts/{account_id}"), tenant_admin.with_key(None).get("/accounts")]
    assert [a.status_code for a in answers] == [401, 401, 401]

    # Then each is an auth.refused entry in the operator's (bootstrap) log: key prefix or anonymous, route, why
    entries = {e["request_id"]: e for e in audit(root_api, action="auth.refused",
                                                 since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())}
    bad_entry, revoked_entry, anonymous = (entries[a.headers["x-amzn-RequestId"]] for a in answers)
    assert bad_entry["actor"] == {"type": "key", "id": bad[:12]}
    assert bad_entry["route"] == "POST /accounts" and bad_entry["reason"] == "invalid or revoked API key"
    assert revoked_entry["actor"]["id"] == doomed.key[:12] and revoked_entry["route"] == "GET /accounts/{account_id}"
    assert anonymous["actor"]["id"] == "anonymous" and anonymous["reason"] == "no credentials"
    assert all(e["result"] == "401" and e["source_ip"] == "127.0.0.1" for e in (bad_entry, revoked_entry, anonymous))
    # And the tenant whose key was revoked does not see them (a refused key names no tenant one can trust)
    assert audit(tenant_admin, action="auth.refused") == []


def test_filters_by_account_actor_action_and_time(tenant_admin: Api) -> None:
    # Given calls on two accounts by two keys
    operator = make_key(tenant_admin, "operator")
    first = create_account(tenant_admin, "First")["account_id"]
    second = create_account(tenant_admin, "Second")["account_id"]
    assert operator.post(f"/accounts/{first}/start").status_code == 202
    assert operator.post(f"/accounts/{first}/messages", json=TEXT).status_code == 202
    assert tenant_admin.post(f"/accounts/{second}/stop").status_code == 202
    everything = audit(tenant_admin)

    # Then each filter gives exactly the matching entries
    assert [e["action"] for e in audit(tenant_admin, account_id=first)] == [
        "message.send", "account.start", "account.create"]
    assert [e["action"] for e in audit(tenant_admin, account_id=second)] == ["account.stop", "account.create"]
    assert {e["action"] for e in audit(tenant_admin, actor=key_id(operator))} == {"message.send", "account.start"}
    assert [e["target"]["id"] for e in audit(tenant_admin, action="account.create")] == [second, first]
    assert {e["action"] for e in audit(tenant_admin, action="account.*")} == {
        "account.create", "account.start", "account.stop"}
    assert [e["action"] for e in audit(tenant_admin, action="account.*", account_id=first,
                                       actor=key_id(operator))] == ["account.start"]
    # And a time range cuts at the entries' times
    send = next(e for e in everything if e["action"] == "message.send")
    assert [e["id"] for e in audit(tenant_admin, since=send["at"])] == [e["id"] for e in everything
                                                                        if e["at"] >= send["at"]]
    assert [e["id"] for e in audit(tenant_admin, until=send["at"])] == [e["id"] for e in everything
                                                                        if e["at"] <= send["at"]]
    assert audit(tenant_admin, since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []


def test_pages_follow_cursors_without_gaps_or_repeats(tenant_admin: Api) -> None:
    # Given seven recorded calls
    account_id = create_account(tenant_admin)["account_id"]
    for _ in range(6):
        assert tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT).status_code == 202
    everything = audit(tenant_admin)
    assert len(everything) == 7

    # When they are read three at a time, Then the pages join up to the whole log
    pages, cursor = [], None
    while True:
        response = tenant_admin.get("/audit", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        pages.append([e["id"] for e in response.json()["items"]])
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    assert pages == [[e["id"] for e in everything[i:i + 3]] for i in range(0, 7, 3)]
    # And a filtered page is cut the same way
    first = tenant_admin.get("/audit", params={"limit": 2, "action": "message.send"}).json()
    rest = tenant_admin.get("/audit", params={"action": "message.send", "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 4 and rest["next_cursor"] is None
    # And forged cursors and bad filters are 4xx answers, not errors
    for params in ({"cursor": "not-a-cursor"}, {"cursor": "eyJrZXkiOiB7IlMiOiAiYSJ9fQ"}, {"limit": 0},
                   {"since": "yesterday"}, {"action": "Account Start"}):
        response = tenant_admin.get("/audit", params=params)
        assert response.status_code in {400, 422}, (params, response.text)
    assert tenant_admin.get("/audit", params={"cursor": "not-a-cursor"}).json()["code"] == "invalid_cursor"


def test_another_tenant_sees_none_of_it(tenant_admin: Api, other_admin: Api) -> None:
    # Given activity in one tenant
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    mine = audit(tenant_admin)
    assert mine

    # Then another tenant's admin sees none of it, by account, by actor or by a cursor taken from it
    assert audit(other_admin) == []
    assert audit(other_admin, account_id=account_id) == []
    assert audit(other_admin, actor=key_id(tenant_admin)) == []
    page = tenant_admin.get("/audit", params={"limit": 1}).json()
    assert other_admin.get("/audit", params={"cursor": page["next_cursor"]}).json()["items"] == []


def test_only_unscoped_admins_read_the_log(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    for key in (make_key(tenant_admin, "viewer"), make_key(tenant_admin, "operator"),
                make_key(tenant_admin, "admin", [account_id])):
        response = key.get("/audit")
        assert response.status_code == 403, response.text
    assert tenant_admin.get("/audit").status_code == 200


def test_no_route_changes_or_deletes_an_entry(tenant_admin: Api) -> None:
    # Given an entry
    create_account(tenant_admin)
    [entry] = audit(tenant_admin)

    # When every other method is tried on /audit and on the entry's would-be path
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert tenant_admin.request(method, "/audit", json={}).status_code == 405, method
        response = tenant_admin.request(method, f"/audit/{entry['id']}", json={"result": "ok"})
        assert response.status_code in {404, 405}, (method, response.text)

    # Then the log is as it was
    assert audit(tenant_admin) == [entry]


def test_no_secret_and_no_body_lands_in_an_entry(tenant_admin: Api) -> None:
    # Given calls whose answers or bodies carry secrets: a key, a webhook secret, a producer secret, a ticket
    key = tenant_admin.post("/api-keys", json={"name": "k", "role": "viewer"}).json()
    webhook_secret = "whsec-" + uuid.uuid4().hex
    webhook = tenant_admin.post("/webhooks", json={"url": "http://127.0.0.1:9/hooks", "secret": webhook_secret})
    producer = tenant_admin.post("/producers", json={"name": "crm", "reply_queue_urls": []}).json()
    ticket = tenant_admin.post("/realtime/tickets").json()
    account_id = create_account(tenant_admin)["account_id"]
    assert tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT).status_code == 202
    assert webhook.status_code == 201, webhook.text

    # Then the entries name the objects by id and nothing else
    entries = audit(tenant_admin)
    text = json.dumps(entries)
    for secret in (key["api_key"], webhook_secret, producer["secret"], ticket["ticket"], TEXT["text"]["body"],
                   tenant_admin.key):
        assert secret not in text
    by_action = {e["action"]: e for e in entries}
    assert by_action["api_key.create"]["target"] == {"type": "api_key", "id": key["key_id"]}
    assert by_action["webhook.create"]["target"]["id"] == webhook.json()["webhook_id"]
    assert by_action["producer.create"]["target"]["id"] == producer["producer_id"]
    assert by_action["realtime_ticket.create"]["target"] == {"type": "realtime_ticket", "id": None}


def test_cloud_api_routes_are_audited_too(tenant_admin: Api, root_api: Api) -> None:
    # Given an account, When a message is sent through the Cloud API compatibility route, and a bad bearer tried
    account_id = create_account(tenant_admin)["account_id"]
    sent = requests.post(f"{tenant_admin.base_url}/v21.0/{account_id}/messages", timeout=30,
                         headers={"Authorization": f"Bearer {tenant_admin.key}"},
                         json={"messaging_product": "whatsapp", **TEXT})
    assert sent.status_code == 200, sent.text
    bad = requests.post(f"{tenant_admin.base_url}/v21.0/{account_id}/messages", timeout=30,
                        headers={"Authorization": "Bearer not-a-key"}, json={"messaging_product": "whatsapp"})
    assert bad.status_code == 401

    # Then the send is recorded like any other, and the bad bearer as a refused credential
    entry = audit(tenant_admin, action="message.send")[0]
    assert entry["target"]["id"] == sent.json()["messages"][0]["id"]
    assert entry["route"] == "POST /{version}/{object_id}/messages"
    assert entry["actor"] == {"type": "key", "id": key_id(tenant_admin)}
    refused = [e for e in audit(root_api, action="auth.refused", since=entry["at"])
               if e["request_id"] == bad.headers["x-amzn-RequestId"]]
    assert [(e["actor"]["id"], e["reason"]) for e in refused] == [("anonymous", "malformed credentials")]


def test_host_actions_are_recorded_through_the_hosts_store(tenant_admin: Api, runtime: Any) -> None:
    from browser_host.store import HostStore

    # Given an account a host died holding (the item still names it; its lease ran out)
    account_id = create_account(tenant_admin)["account_id"]
    tenant_id = tenant_admin.get("/me").json()["tenant_id"]
    leases = LeaseRepository()
    dead = leases.claim(account_id, "host-dead", ttl_seconds=0.001)
    assert dead is not None
    from core.store.accounts import AccountRepository
    assert AccountRepository().attach(account_id, "host-dead", dead.token, None) is not None

    async def take_over() -> None:
        store = HostStore(get_settings(), "host-new")
        lease = await store.claim(account_id, 30)
        assert lease is not None
        assert await store.attach(lease) is not None
        store.audit("host.start", tenant_id, account_id, reason="a host took the account")
        store.audit("host.failure", tenant_id, account_id, reason="qr_timeout: the QR code was not scanned in time",
                    failed=True)
        await asyncio.gather(*store._audit_writes)

    # When another host takes it over, starts it and fails
    asyncio.run(take_over())

    # Then the takeover, the start and the failure are in the account's log, by that host
    entries = audit(tenant_admin, account_id=account_id, action="host.*")
    assert sorted((e["action"], e["result"]) for e in entries) == [
        ("host.failure", "failed"), ("host.start", "ok"), ("host.takeover", "ok")]
    assert all(e["actor"] == {"type": "host", "id": "host-new"} for e in entries)
    assert all(e["target"] == {"type": "account", "id": account_id} for e in entries)
    takeover = next(e for e in entries if e["action"] == "host.takeover")
    assert "host-dead" in takeover["reason"]


def test_a_failing_audit_table_never_breaks_the_call(tenant_admin: Api, runtime: Any) -> None:
    # Given the audit table pointed somewhere that does not exist
    tables.AuditItem.Meta.table_name, tables.AuditItem._connection = "no-such-audit-table", None
    try:
        # When a state-changing call is made, Then it succeeds all the same
        created = tenant_admin.post("/accounts", json={"account_name": "Unaudited"})
        assert created.status_code == 201, created.text
    finally:
        tables.AuditItem.Meta.table_name, tables.AuditItem._connection = get_settings().audit_table, None
    assert audit(tenant_admin) == []


def test_the_table_matches_its_model_and_functions_may_only_add_and_read() -> None:
    template = load_template()
    props = template["Resources"]["AuditTable"]["Properties"]
    schema = tables.AuditItem._get_schema()
    assert sorted((k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]) == sorted(
        (k["AttributeName"], k["KeyType"]) for k in schema["key_schema"])
    assert [(g["IndexName"], sorted(map(str, g["KeySchema"]))) for g in props["GlobalSecondaryIndexes"]] == [
        (g["index_name"], sorted(map(str, g["key_schema"]))) for g in schema["global_secondary_indexes"]]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}

    # Every grant on the audit table, functions and the host's role alike: PutItem and Query, nothing else
    def grants(value: Any) -> list[Any]:
        found = []
        if isinstance(value, dict):
            text = json.dumps(value)
            if "Action" in value and "AuditTable" in text:
                actions = value["Action"]
                found.append(actions if isinstance(actions, list) else [actions])
            elif any("AuditTable" in json.dumps(v) for k, v in value.items() if k.startswith("DynamoDB")):
                found.append([next(iter(value))])  # a SAM policy template naming the table
            else:
                for v in value.values():
                    found.extend(grants(v))
        elif isinstance(value, list):
            for v in value:
                found.extend(grants(v))
        return found

    everything = [a for res in template["Resources"].values() for actions in grants(res.get("Properties", {}))
                  for a in actions]
    assert everything and set(everything) <= {"dynamodb:PutItem", "dynamodb:Query"}, everything
    with_env = [lid for lid, f in functions(template).items() if "AUDIT_TABLE" in f["Environment"]["Variables"]]
    assert {"AuthorizerFunction", "ApiFunction", "IntegrationsApiFunction", "LegacyApiFunction",
            "GraphApiFunction"} <= set(with_env)
