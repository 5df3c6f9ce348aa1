"""Keys, roles and tenants: 401 without a key, 403 for the wrong role, 404 across tenants and scopes."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, create_account, make_key

TEXT = {"to": "15550001111", "type": "text", "text": {"body": "hi"}}


@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "nope"}, {"Authorization": "Bearer nope"},
                                     {"X-Api-Key": "wgk_00000000000000000000000000_" + "x" * 43}])
def test_missing_or_bad_key_is_401_with_the_error_body(root_api: Api, headers: dict[str, str]) -> None:
    response = root_api.with_key(None).get("/accounts", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthorized" and body["request_id"]


def test_bearer_header_is_accepted(tenant_admin: Api) -> None:
    response = tenant_admin.with_key(None).get("/accounts", headers={"Authorization": f"Bearer {tenant_admin.key}"})
    assert response.status_code == 200


def test_health_and_docs_need_no_key(root_api: Api) -> None:
    anonymous = root_api.with_key(None)
    assert anonymous.get("/health").json()["status"] == "ok"
    assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.")
    docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_viewer_reads_but_cannot_write(tenant_admin: Api) -> None:
    # Given an account and a viewer key
    account_id = create_account(tenant_admin)["account_id"]
    viewer = make_key(tenant_admin, "viewer")

    # Then reads work and every write is 403
    assert viewer.get(f"/accounts/{account_id}").status_code == 200
    assert viewer.get(f"/accounts/{account_id}/messages").status_code == 200
    for response in (viewer.post("/accounts", json={"account_name": "x"}),
                     viewer.patch(f"/accounts/{account_id}", json={"account_name": "x"}),
                     viewer.post(f"/accounts/{account_id}/start"),
                     viewer.post(f"/accounts/{account_id}/messages", json=TEXT),
                     viewer.delete(f"/accounts/{account_id}"),
                     viewer.get("/api-keys")):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden_role"


def test_operator_sends_but_cannot_manage_keys_or_delete(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    operator = make_key(tenant_admin, "operator")
    assert operator.post(f"/accounts/{account_id}/messages", json=TEXT).status_code == 202
    assert operator.post("/accounts", json={"account_name": "by operator"}).status_code == 201
    assert operator.post("/api-keys", json={"name": "x", "role": "viewer"}).status_code == 403
    assert operator.delete(f"/accounts/{account_id}").status_code == 403


def test_tenants_never_see_each_other(root_api: Api, tenant_admin: Api) -> None:
    # Given an account in another tenant
    other_tenant = f"other-{uuid.uuid4().hex[:10]}"
    other = root_api.with_key(root_api.post("/api-keys", json={
        "name": "other", "role": "admin", "tenant": other_tenant}).json()["api_key"])
    theirs = create_account(other, "theirs")["account_id"]

    # When this tenant's admin looks for it, by id or in lists
    # Then it does not exist for them (404, not 403: no hint that the id is taken)
    for response in (tenant_admin.get(f"/accounts/{theirs}"),
                     tenant_admin.patch(f"/accounts/{theirs}", json={"account_name": "mine"}),
                     tenant_admin.post(f"/accounts/{theirs}/messages", json=TEXT),
                     tenant_admin.get(f"/accounts/{theirs}/messages"),
                     tenant_admin.delete(f"/accounts/{theirs}")):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "account_not_found"
    assert tenant_admin.get("/accounts").json()["items"] == []
    assert theirs not in tenant_admin.get("/api-keys").text
    # And key management stays inside each tenant
    their_key = other.get("/api-keys").json()["items"][0]["key_id"]
    assert tenant_admin.delete(f"/api-keys/{their_key}").status_code == 404


def test_account_scoped_key_sees_only_its_accounts(tenant_admin: Api) -> None:
    mine = create_account(tenant_admin, "mine")["account_id"]
    other = create_account(tenant_admin, "other")["account_id"]
    scoped = make_key(tenant_admin, "operator", account_ids=[mine])

    assert [a["account_id"] for a in scoped.get("/accounts").json()["items"]] == [mine]
    assert scoped.get(f"/accounts/{other}").status_code == 404
    assert scoped.post(f"/accounts/{mine}/messages", json=TEXT).status_code == 202
    assert scoped.post(f"/accounts/{other}/messages", json=TEXT).status_code == 404
    assert scoped.post("/accounts", json={"account_name": "x"}).json()["code"] == "forbidden_scope"


def test_key_lifecycle_shown_once_and_revocable(tenant_admin: Api) -> None:
    # Given a new key
    created = tenant_admin.post("/api-keys", json={"name": "crm", "role": "viewer"}).json()
    key, key_id = created["api_key"], created["key_id"]
    assert created["prefix"] == key[:12]

    # Then listing never shows the secret
    listing = tenant_admin.get("/api-keys")
    assert key_id in listing.text and key not in listing.text

    # When it is revoked, it stops working at once
    assert tenant_admin.with_key(key).get("/accounts").status_code == 200
    assert tenant_admin.delete(f"/api-keys/{key_id}").status_code == 204
    assert tenant_admin.with_key(key).get("/accounts").status_code == 401


def test_only_bootstrap_admins_create_tenants_and_only_once(root_api: Api, tenant_admin: Api) -> None:
    denied = tenant_admin.post("/api-keys", json={"name": "x", "role": "admin", "tenant": "another-tenant"})
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden_tenant"
    once = f"tenant-{uuid.uuid4().hex[:10]}"
    first = root_api.post("/api-keys", json={"name": "a", "role": "admin", "tenant": once})
    again = root_api.post("/api-keys", json={"name": "b", "role": "admin", "tenant": once})
    assert first.status_code == 201 and again.status_code == 409
    assert again.json()["code"] == "tenant_exists"


def test_scoped_key_must_name_accounts_of_the_tenant(tenant_admin: Api) -> None:
    response = tenant_admin.post("/api-keys", json={"name": "x", "role": "viewer", "account_ids": ["acc_nope"]})
    assert response.status_code == 400 and response.json()["code"] == "unknown_account"
