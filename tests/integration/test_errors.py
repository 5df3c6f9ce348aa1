"""Every error is the same JSON body: bad JSON, bad parameters, too large, unknown routes, wrong methods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, create_account


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details", "request_id"}
    assert body["code"] == code and body["message"] and body["request_id"]
    return dict(body)


def test_invalid_json_is_400(tenant_admin: Api) -> None:
    assert_error(tenant_admin.post("/accounts", data="{not json", headers={"Content-Type": "application/json"}),
                 400, "invalid_json")


def test_body_over_the_limit_is_413(tenant_admin: Api) -> None:
    body = '{"account_name": "' + "x" * (1024 * 1024 + 10) + '"}'
    assert_error(tenant_admin.post("/accounts", data=body, headers={"Content-Type": "application/json"}),
                 413, "payload_too_large")


def test_unknown_route_404_and_wrong_method_405(tenant_admin: Api) -> None:
    assert_error(tenant_admin.get("/nothing/here"), 404, "route_not_found")
    assert_error(tenant_admin.with_key(None).get("/nothing"), 404, "route_not_found")
    body = assert_error(tenant_admin.request("PUT", "/accounts"), 405, "method_not_allowed")
    assert body["details"] == {"allowed": ["GET", "POST"]}
    response = tenant_admin.request("DELETE", "/health")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"limit": 0}, 422, "validation_error"),
    ({"limit": 101}, 422, "validation_error"),
    ({"limit": "ten"}, 422, "validation_error"),
    ({"status": "ONLINE"}, 422, "validation_error"),
    ({"cursor": "!!!"}, 400, "invalid_cursor"),
    ({"cursor": "eyJhIjoxfQ"}, 400, "invalid_cursor"),
])
def test_bad_list_parameters(tenant_admin: Api, params: dict[str, Any], status: int, code: str) -> None:
    assert_error(tenant_admin.get("/accounts", params=params), status, code)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "account_name"),
    ({"account_name": ""}, "account_name"),
    ({"account_name": "x", "phone_number": "12"}, "phone_number"),
    ({"account_name": "x", "provider": "telegram"}, "provider"),
    ({"account_name": "x", "surprise": True}, "surprise"),
    ({"account_name": "x", "metadata": {"blob": "x" * 9000}}, "metadata"),
    ({"account_name": "x", "webhook": {"url": "ftp://example.com"}}, "url"),
    ({"account_name": "x", "webhook": {"url": "https://example.com", "secret": "short"}}, "secret"),
])
def test_account_create_validation(tenant_admin: Api, body: dict[str, Any], field: str) -> None:
    details = assert_error(tenant_admin.post("/accounts", json=body), 422, "validation_error")["details"]
    assert any(field in d["loc"] for d in details), details


def test_update_errors(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    assert_error(tenant_admin.patch(f"/accounts/{account_id}", json={}), 400, "empty_update")
    assert_error(tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "x"},
                                    headers={"If-Match": "banana"}), 400, "invalid_if_match")
    assert_error(tenant_admin.patch(f"/accounts/{account_id}", json={"version": 0, "account_name": "x"}),
                 422, "validation_error")


def test_path_parameters_are_validated(tenant_admin: Api) -> None:
    assert_error(tenant_admin.get("/accounts/" + "x" * 200), 422, "validation_error")
    assert_error(tenant_admin.get("/accounts/acc_unknown"), 404, "account_not_found")
    assert_error(tenant_admin.delete("/api-keys/not-a-key-id"), 422, "validation_error")
    assert_error(tenant_admin.get("/accounts/acc_x/qr", params={"format": "svg"}), 422, "validation_error")


def test_api_key_validation(tenant_admin: Api) -> None:
    assert_error(tenant_admin.post("/api-keys", json={"name": "x", "role": "root"}), 422, "validation_error")
    assert_error(tenant_admin.post("/api-keys", json={"name": "x", "role": "admin", "tenant": "Bad Tenant!"}),
                 422, "validation_error")


def test_json_body_is_read_whatever_the_content_type(tenant_admin: Api) -> None:
    # curl -d sends application/x-www-form-urlencoded; the body is still JSON
    response = tenant_admin.post("/accounts", data='{"account_name": "from curl"}',
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 201, response.text
    assert_error(tenant_admin.post("/accounts", data="account_name=x",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"}), 400, "invalid_json")
