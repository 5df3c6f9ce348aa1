"""What no input may do to the API, checked without network: validators, the guards in front of the resolver,
cursors, and the OpenAPI document every route is checked against (issue 11, "An API no input can break")."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import InvalidRequest
from core.models.accounts import AccountCreate, AccountUpdate, PairingCodeRequest
from core.models.envelope import OUTBOUND_ADAPTER
from core.models.validators import check_webhook_url, iso_datetime_text, normalise_phone
from core.store.conditions import PageQuery, decode_cursor, encode_cursor
from core.store.tables import AccountItem, MessageItem
from functions.api import guards
from functions.api.app import create_app, openapi_json
from functions.api.openapi import base_path

ARABIC_INDIC = "1\u0665\u0665\u0665\u0660\u0660\u0660\u0661\u0661\u0661\u0661"  # the 1555 000 1111


def _event(body: str | None, content_type: str | None = "application/json", **extra: Any) -> dict[str, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    return {"httpMethod": "POST", "path": "/accounts", "resource": "/accounts", "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "body": body, "isBase64Encoded": False,
            "requestContext": {"requestId": "req-1", "path": "/v1/accounts", "stage": "v1"}, **extra}


# --- phone numbers ------------------------------------------------------------------------------------------


FULLWIDTH = "+" + "".join(chr(0xFF10 + int(d)) for d in "15551234567")


@pytest.mark.parametrize("number", [ARABIC_INDIC, "+1\u0665551234567", FULLWIDTH, "+15551234567\n"])
def test_phone_numbers_take_ascii_digits_only(number: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        normalise_phone(number)
    for build in (lambda: AccountCreate(account_name="x", phone_number=number),
                  lambda: AccountUpdate(phone_number=number), lambda: PairingCodeRequest(phone_number=number)):
        with pytest.raises(ValidationError):
            build()


def test_message_recipients_take_ascii_digits_only() -> None:
    with pytest.raises(ValidationError, match="phone number in international format"):
        OUTBOUND_ADAPTER.validate_python({"to": ARABIC_INDIC, "type": "text", "text": {"body": "hi"}})
    message = OUTBOUND_ADAPTER.validate_python({"to": "+1 (555) 123-4567", "type": "text", "text": {"body": "hi"}})
    assert message.to == "15551234567"


# --- metadata DynamoDB can store -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    '{"n": -1.79e308}', '{"n": NaN}', '{"n": Infinity}', '{"n": -Infinity}', '{"n": 1e400}', '{"n": 1e-200}',
    '{"n": ' + "1" * 39 + "}", '{"n": 100000000000000000000000000000000000000}', '{"a": {"": 1}}', '{"": 1}',
    '{"a": ' + "[" * 20 + "]" * 20 + "}",
])
def test_metadata_dynamodb_cannot_store_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        AccountCreate(account_name="x", metadata=json.loads(raw))
    with pytest.raises(ValidationError):
        AccountUpdate(metadata=json.loads(raw))


def test_metadata_dynamodb_can_store_is_kept() -> None:
    metadata = {"n": 0, "f": 1e-130, "big": -(10**38 - 1), "x": 1.5e37, "deep": [[{"k": True}]], "s": None}
    assert AccountCreate(account_name="x", metadata=metadata).metadata == metadata
    assert AccountUpdate(metadata=None).metadata is None


def test_metadata_schema_states_the_number_rule() -> None:
    schema = AccountCreate.model_json_schema()
    value = schema["$defs"]["MetadataValue"]
    number = next(branch for branch in value["anyOf"] if branch.get("type") == "number")
    assert number["exclusiveMaximum"] == 10**38 and {"minimum": 1e-130} in number["anyOf"]
    assert schema["properties"]["metadata"]["propertyNames"] == {"minLength": 1}


# --- URLs and times -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ws://example.com", "HTTP://[C", "http://:80", "https://u:p@example.com/",
                                 "https://example.com/a b", "https://ex\x1fample.com/"])
def test_webhook_urls_outside_the_documented_pattern_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_webhook_url(url)


@pytest.mark.parametrize("value", ["0.5", 0.5, "2026-12-02", "yesterday"])
def test_query_times_are_iso_text(value: Any) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        iso_datetime_text(value)
    assert iso_datetime_text("2026-12-02T10:00:00Z") == "2026-12-02T10:00:00Z"


# --- the guards in front of the resolver ----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/json", "Application/JSON", "application/problem+json",
                                          "text/plain", "multipart/form-data; boundary=x", "application/jsonx"])
def test_every_content_type_is_read_as_json(content_type: str) -> None:
    refusal, event = guards.screen(_event('{"account_name": "x"}', content_type))
    assert refusal is None
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["multiValueHeaders"]["Content-Type"] == ["application/json"]


def test_a_body_that_is_not_utf8_is_400() -> None:
    raw = base64.b64encode(b'{"account_name": "\xff\xfe"}').decode()
    refusal, _ = guards.screen(_event(raw, isBase64Encoded=True))
    assert refusal is not None and refusal["statusCode"] == 400
    body = json.loads(refusal["body"])
    assert body["code"] == "invalid_json" and body["request_id"] == "req-1"


def test_a_body_nested_5000_deep_is_400_without_exhausting_the_stack() -> None:
    for body in ("[" * 5000 + "]" * 5000, '{"a":' * 100 + "1" + "}" * 100):
        refusal, _ = guards.screen(_event(body))
        assert refusal is not None and refusal["statusCode"] == 400
        assert "deeper than" in json.loads(refusal["body"])["message"]


def test_a_string_that_is_not_unicode_is_400() -> None:
    refusal, _ = guards.screen(_event('{"account_name": "x\\ud800"}'))
    assert refusal is not None and json.loads(refusal["body"])["code"] == "invalid_json"


def test_a_body_that_is_not_json_is_left_to_the_resolver() -> None:
    refusal, event = guards.screen(_event("{not json"))
    assert refusal is None and event["body"] == "{not json"


# --- cursors ----------------------------------------------------------------------------------------------------


def _cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def test_a_cursor_must_be_a_start_key_the_query_can_have_returned() -> None:
    # Given the query of one tenant's accounts and the start key it returns
    query = PageQuery(AccountItem, "t-1", AccountItem.tenant_index)
    key = {"account_id": {"S": "acc_1"}, "tenant_id": {"S": "t-1"}, "created_at": {"S": "2026-12-02T10:00:00Z"}}
    assert decode_cursor(encode_cursor(key), query) == key
    # Then forged keys are refused: other attributes, another partition, other types, empty or unpaired strings
    for forged in ({"pk": {"S": "x"}}, {**key, "tenant_id": {"S": "t-2"}}, {**key, "account_id": {"N": "1"}},
                   {**key, "account_id": {"S": ""}}, {**key, "account_id": {"S": "\ud800"}},
                   {**key, "extra": {"S": "x"}}, {"account_id": {"S": "acc_1"}, "tenant_id": {"S": "t-1"}}):
        with pytest.raises(InvalidRequest) as caught:
            decode_cursor(_cursor(forged), query)
        assert caught.value.code == "invalid_cursor"
    for garbage in ("0" * 100, "!!!", _cursor([1])):  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest):
            decode_cursor(garbage, query)


def test_a_table_query_cursor_has_the_table_keys() -> None:
    query = PageQuery(MessageItem, "acc_1")
    assert query.key_names() == ("account_id", frozenset({"account_id", "message_id"}))


# --- the OpenAPI document -----------------------------------------------------------------------------------------


def test_every_operation_documents_its_success_and_error_body() -> None:
    document = json.loads(openapi_json(create_app()))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (method, path)
            for code, response in responses.items():
                content = response.get("content") or {}
                if code.startswith(("4", "5")):
                    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
                if code == "204":
                    assert not content, (method, path)
            if operation.get("security") != [{}]:
                assert {"401", "403", "404", "422", "429"} <= set(responses), (method, path)


def test_the_documented_server_is_where_the_document_is_served() -> None:
    assert json.loads(openapi_json(create_app()))["servers"] == [{"url": "/v1"}]
    assert json.loads(openapi_json(create_app(), ""))["servers"] == [{"url": "/"}]


@pytest.mark.parametrize(("requested", "resource", "base"), [
    ("/v1/openapi.json", "/openapi.json", "/v1"), ("/openapi.json", "/openapi.json", ""),
    ("/api/docs", "/docs", "/api"), ("/v1/docs/", "/docs", "/v1"),
])
def test_base_path_is_what_precedes_the_resource_path(requested: str, resource: str, base: str) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    event = APIGatewayProxyEvent({"path": resource, "requestContext": {"path": requested, "stage": "v1"}})
    assert base_path(event) == base
