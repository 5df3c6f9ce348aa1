"""Every error is the same JSON body: bad JSON, bad parameters, too large, unknown routes, wrong methods."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from tests.conftest import Api, create_account

ARABIC_INDIC_PHONE = "1\u0665\u0665\u0665\u0660\u0660\u0660\u0661\u0661\u0661\u0661"  # the 1555 000 1111


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
    # An id no resource can have names nothing: 404, like an id that names nothing yet
    assert_error(tenant_admin.get("/accounts/" + "x" * 200), 404, "account_not_found")
    assert_error(tenant_admin.get("/accounts/acc_unknown"), 404, "account_not_found")
    assert_error(tenant_admin.delete("/api-keys/not-a-key-id"), 404, "api_key_not_found")
    assert_error(tenant_admin.get("/accounts/acc_x/qr", params={"format": "svg"}), 422, "validation_error")
    assert_error(tenant_admin.get("/accounts/acc_x/contacts/0555/exists"), 422, "validation_error")


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


# --- inputs found by schemathesis (issue 11, "An API no input can break"): each was a 500 or a dropped connection


@pytest.mark.parametrize("content_type", ["text/json", "Application/JSON", "application/problem+json",
                                          "text/plain; charset=utf-8"])
def test_a_json_body_is_read_as_json_whatever_its_content_type(tenant_admin: Api, content_type: str) -> None:
    response = tenant_admin.post("/accounts", data='{"account_name": "typed"}', headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("content_type", ["text/json", "multipart/form-data; boundary=x", "application/xml"])
def test_a_body_that_is_not_json_is_400_whatever_its_content_type(tenant_admin: Api, content_type: str) -> None:
    assert_error(tenant_admin.post("/accounts", data="<account/>", headers={"Content-Type": content_type}),
                 400, "invalid_json")


def test_json_nested_5000_deep_is_400(tenant_admin: Api) -> None:
    body = '{"account_name": "x", "metadata": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    assert_error(tenant_admin.post("/accounts", data=body, headers={"Content-Type": "application/json"}),
                 400, "invalid_json")
    deep = {"account_name": "x", "metadata": {"a": json.loads("[" * 30 + "]" * 30)}}  # JSON, but past metadata's 16
    assert_error(tenant_admin.post("/accounts", json=deep), 422, "validation_error")


@pytest.mark.parametrize("path", ["/accounts", "/sessions", "/accounts/{account_id}/messages",
                                  "/accounts/{account_id}/webhook-deliveries"])
def test_a_forged_cursor_is_400(tenant_admin: Api, path: str) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    for key in ({"pk": {"S": "x"}}, {"account_id": {"S": account_id}, "tenant_id": {"S": "someone-else"},
                                     "created_at": {"S": "2026-01-01T00:00:00Z"}}, {"a": {"Q": 1}}):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")
        assert_error(tenant_admin.get(path.format(account_id=account_id), params={"cursor": cursor}),
                     400, "invalid_cursor")


def test_a_body_that_is_not_utf8_is_400(tenant_admin: Api) -> None:
    for path in ("/accounts", "/media", "/producers"):
        assert_error(tenant_admin.post(path, data=b'{"account_name": "\xff\xfe"}',
                                       headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert_error(tenant_admin.post("/accounts", data='{"account_name": "\\ud800"}',
                                   headers={"Content-Type": "application/json"}), 400, "invalid_json")


@pytest.mark.parametrize("number", ["-1.79e308", "NaN", "Infinity", "1e400", "1e-200", "1" * 39])
def test_metadata_numbers_dynamodb_cannot_store_are_422(tenant_admin: Api, number: str) -> None:
    body = '{"account_name": "x", "metadata": {"n": NUMBER}}'.replace("NUMBER", number)
    details = assert_error(tenant_admin.post("/accounts", data=body, headers={"Content-Type": "application/json"}),
                           422, "validation_error")["details"]
    assert details[0]["loc"] == ["body", "metadata"], details
    account_id = create_account(tenant_admin)["account_id"]
    assert_error(tenant_admin.patch(f"/accounts/{account_id}", data='{"metadata": {"n": N}}'.replace("N", number),
                                    headers={"Content-Type": "application/json"}), 422, "validation_error")


def test_phone_numbers_with_other_digits_are_422(tenant_admin: Api) -> None:
    assert_error(tenant_admin.post("/accounts", json={"account_name": "x", "phone_number": ARABIC_INDIC_PHONE}),
                 422, "validation_error")
    account_id = create_account(tenant_admin)["account_id"]
    send = {"to": ARABIC_INDIC_PHONE, "type": "text", "text": {"body": "hi"}}
    for path in (f"/accounts/{account_id}/messages", f"/sessions/{account_id}/messages"):
        details = assert_error(tenant_admin.post(path, json=send), 422, "validation_error")["details"]
        assert any("to" in d["loc"] for d in details), details
    assert_error(tenant_admin.post(f"/accounts/{account_id}/pairing-code", json={"phone_number": ARABIC_INDIC_PHONE}),
                 422, "validation_error")


@pytest.mark.parametrize("path", ["/sessions/%C4%80", "/accounts/%C4%80", "/accounts/%C4%80/messages/%3B",
                                  "/sessions/%C4%80/messages"])
def test_non_ascii_path_ids_are_404_json(tenant_admin: Api, path: str) -> None:
    # requests would quote the path again: send it as written
    response = requests.get(tenant_admin.base_url + path, headers={"X-Api-Key": str(tenant_admin.key)}, timeout=30)
    body = assert_error(response, 404, "account_not_found")
    assert "Ā" in body["message"]
    assert all(value.isascii() for value in response.headers.values())


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("TRACE", "/accounts", "GET, POST"), ("TRACE", "/health", "GET"),
    ("PROPFIND", "/accounts/acc_x", "DELETE, GET, PATCH"), ("TRACE", "/v1/accounts", "GET, POST"),
])
def test_methods_the_api_does_not_serve_are_405_json(tenant_admin: Api, method: str, path: str, allowed: str) -> None:
    response = tenant_admin.request(method, path)
    body = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == allowed and body["details"] == {"allowed": allowed.split(", ")}


def test_the_api_answers_under_its_stage_path_too(tenant_admin: Api) -> None:
    account_id = create_account(tenant_admin)["account_id"]
    # `v1` is the stage, not a Graph API version: the accounts routes answer, not the Cloud API compatibility ones
    listed = tenant_admin.get("/v1/accounts")
    assert listed.status_code == 200 and [a["account_id"] for a in listed.json()["items"]] == [account_id]
    assert tenant_admin.get(f"/v1/accounts/{account_id}").json()["account_id"] == account_id
    assert tenant_admin.get("/v1/health").json()["status"] == "ok"
    assert_error(tenant_admin.get("/v1/nothing/here"), 404, "route_not_found")


@pytest.mark.parametrize(("prefix", "server"), [("", "/"), ("/v1", "/v1")])
def test_docs_and_openapi_list_the_server_they_are_served_from(root_api: Api, prefix: str, server: str) -> None:
    # Given the document and Swagger UI as a browser gets them, at the root or under the stage path
    document = root_api.with_key(None).get(f"{prefix}/openapi.json").json()
    html = root_api.with_key(None).get(f"{prefix}/docs").text
    # Then the server they name is where they came from, so "Try it out" reaches the API
    assert document["servers"] == [{"url": server}]
    assert f'"url": "{server}"' in html
    assert root_api.get(server.rstrip("/") + "/accounts").status_code == 200
