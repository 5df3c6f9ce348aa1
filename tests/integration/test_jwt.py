"""Access tokens: `POST /auth/token` exchanges an API key for a short-lived JWT that the authorizer and the Cloud API
routes accept like the key; a revoked key and its tokens stop at once; the authorizer allows only the call made."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest

from core.config import Settings
from core.store import secrets
from infra.local.template import load_template
from tests.conftest import Api, create_account, make_key

TEXT = {"to": "15550001111", "type": "text", "text": {"body": "hi"}}


def token_of(api: Api) -> str:
    response = api.post("/auth/token")
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(api: Api, token: str) -> Api:
    """A client that presents `token` as `Authorization: Bearer` (and no API key)."""
    client = api.with_key(None)
    original = client.request

    def request(method: str, path: str, **kw: Any) -> Any:
        kw["headers"] = {"Authorization": f"Bearer {token}", **(kw.get("headers") or {})}
        return original(method, path, **kw)

    client.request = request  # type: ignore[method-assign]
    return client


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def forge(token: str, secret: bytes, **changes: Any) -> str:
    header = jwt.get_unverified_header(token)
    return jwt.encode({**claims_of(token), **changes}, secret, algorithm="HS256", headers={"kid": header["kid"]})


def test_a_key_gets_a_token_that_says_who_it_is(tenant_admin: Api) -> None:
    # Given an account-scoped operator key
    account_id = create_account(tenant_admin)["account_id"]
    operator = make_key(tenant_admin, "operator", account_ids=[account_id])
    me = operator.get("/me").json()

    # When it asks for an access token
    before = int(time.time())
    response = operator.post("/auth/token")

    # Then it gets a Bearer JWT valid 15 minutes with the key's id, tenant, role and scope
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    claims = claims_of(body["access_token"])
    assert claims["sub"] == me["key_id"] and claims["tenant"] == me["tenant_id"]
    assert claims["role"] == "operator" and claims["accounts"] == [account_id]
    assert claims["iss"] == "wagate" and claims["aud"] == "wagate-api" and claims["jti"]
    assert claims["exp"] - claims["iat"] == 900 and before <= claims["iat"] <= int(time.time())
    assert body["expires_at"].startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(claims["exp"])))
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


def test_the_token_works_like_its_key_on_every_kind_of_route(tenant_admin: Api, fake_graph: Any) -> None:
    # Given an operator's token
    account_id = create_account(tenant_admin)["account_id"]
    client = bearer(tenant_admin, token_of(make_key(tenant_admin, "operator")))

    # Then the REST API takes it, and knows it was a token
    assert client.get("/accounts").status_code == 200
    me = client.get("/me").json()
    assert me["role"] == "operator" and me["credential"] == "jwt"
    assert client.post(f"/accounts/{account_id}/messages", json=TEXT).status_code == 202
    # and so do the Cloud API routes, which authenticate the bearer themselves
    graph = client.post(f"/v21.0/{account_id}/messages", json={"messaging_product": "whatsapp", **TEXT})
    assert graph.status_code == 200, graph.text
    # and the role still applies
    assert client.delete(f"/accounts/{account_id}").status_code == 403


def test_a_token_cannot_renew_itself(tenant_admin: Api) -> None:
    response = bearer(tenant_admin, token_of(tenant_admin)).post("/auth/token")
    assert response.status_code == 403 and response.json()["code"] == "api_key_required"


def test_a_revoked_key_and_its_tokens_stop_at_once(tenant_admin: Api) -> None:
    # Given a key, a token of it, both working
    account_id = create_account(tenant_admin)["account_id"]
    created = tenant_admin.post("/api-keys", json={"name": "soon revoked", "role": "operator"}).json()
    key = tenant_admin.with_key(created["api_key"])
    token_client = bearer(tenant_admin, token_of(key))
    assert key.get("/accounts").status_code == 200 and token_client.get("/accounts").status_code == 200

    # When the key is revoked
    assert tenant_admin.delete(f"/api-keys/{created['key_id']}").status_code == 204

    # Then the very next call with the key or the token is refused, on the REST API and the Cloud API routes
    for client in (key, token_client):
        assert client.get("/accounts").status_code == 401
        assert client.get(f"/accounts/{account_id}").status_code == 401
        graph = client.post(f"/v21.0/{account_id}/messages", json={"messaging_product": "whatsapp", **TEXT},
                            headers={"Authorization": f"Bearer {client.key}"} if client.key else None)
        assert graph.status_code == 401 and graph.json()["error"]["code"] == 190, graph.text


def test_expired_forged_and_foreign_tokens_are_refused(tenant_admin: Api) -> None:
    from functions.service import api_keys
    from functions.service.context import services

    viewer = make_key(tenant_admin, "viewer")
    principal = api_keys.authenticate(services(), viewer.key)
    good = token_of(viewer)
    signing = services().signing_keys.get()
    assert signing is not None
    header, payload, signature = good.split(".")
    escalated = json.loads(base64.urlsafe_b64decode(payload + "=="))
    escalated["role"] = "admin"
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(escalated).encode()).decode().rstrip("="),
                         signature])
    unsigned = jwt.encode(claims_of(good), key=None, algorithm="none")
    cases = {
        "expired": api_keys.issue_token(services(), principal, now=time.time() - 3600).access_token,
        "tampered payload": tampered,
        "alg none": unsigned,
        "another secret": forge(good, b"x" * 32),
        "unknown kid": jwt.encode(claims_of(good), signing.secret, algorithm="HS256", headers={"kid": "nope"}),
        "another audience": forge(good, signing.secret, aud="someone-else"),
        "another issuer": forge(good, signing.secret, iss="someone-else"),
        "role changed and re-signed for another key": forge(good, signing.secret, sub="key_" + "0" * 26),
        "claims that disagree with the key": forge(good, signing.secret, role="admin"),
        "no expiry": jwt.encode({k: v for k, v in claims_of(good).items() if k != "exp"}, signing.secret,
                                algorithm="HS256", headers={"kid": signing.kid}),
        "not a JWT": "a.b.c",
    }
    for name, token in cases.items():
        response = bearer(tenant_admin, token).get("/accounts")
        assert response.status_code == 401, (name, response.text)
    assert bearer(tenant_admin, good).get("/accounts").status_code == 200


def test_the_signing_key_is_stored_encrypted_for_its_purpose_only(tenant_admin: Api) -> None:
    from core.store.api_keys import SIGNING_KEY_ID
    from core.store.tables import SigningKeyItem
    from functions.service.context import services

    token_of(tenant_admin)
    item = SigningKeyItem.get(SIGNING_KEY_ID, consistent_read=True)
    key = services().signing_keys.get()
    assert key is not None and item.kid == key.kid
    assert base64.b64encode(key.secret).decode() not in json.dumps(item.attribute_values)
    secrets.forget()
    with pytest.raises(ValueError):  # the context binds it: a grant for webhook secrets cannot open it
        secrets.decrypt(item.ciphertext)
    assert secrets.decrypt(item.ciphertext, purpose=secrets.JWT_KEY_PURPOSE)
    # and it is no tenant's key
    assert SIGNING_KEY_ID not in tenant_admin.get("/api-keys").text


def test_authorizer_results_are_never_cached_and_allow_only_the_call_made(tenant_admin: Api) -> None:
    from functions.auth.handler import lambda_handler

    # The template keeps API Gateway's authorizer cache off (the local gateway never caches)
    authorizer = load_template()["Resources"]["Api"]["Properties"]["Auth"]["Authorizers"]["ApiKeyAuthorizer"]
    assert authorizer["Identity"]["ReauthorizeEvery"] == 0

    # And the policy the authorizer returns names exactly the method and path of the request
    arn = "arn:aws:execute-api:us-east-1:123456789012:abcdef/v1/GET/accounts/acc_1"
    for credential in (tenant_admin.key, token_of(tenant_admin)):
        result = lambda_handler({"type": "REQUEST", "methodArn": arn,
                                 "headers": {"Authorization": f"Bearer {credential}"}}, _Context())
        statements = result["policyDocument"]["Statement"]
        assert statements == [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}]


def test_the_local_gateway_evaluates_the_policy_like_iam() -> None:
    from infra.local.apigw import _allows

    arn = "arn:aws:execute-api:us-east-1:1:api/v1/GET/accounts/a[b]c"
    allow_this = {"Statement": [{"Effect": "Allow", "Resource": arn}]}
    assert _allows(allow_this, arn)  # [ ] are not wildcards in IAM
    assert not _allows(allow_this, arn.replace("GET", "DELETE"))
    assert _allows({"Statement": [{"Effect": "Allow", "Resource": "arn:*:api/v1/*"}]}, arn)
    assert not _allows({"Statement": [{"Effect": "Allow", "Resource": "*"}, {"Effect": "Deny", "Resource": arn}]}, arn)


def test_token_lifetime_is_a_bounded_setting() -> None:
    assert Settings.from_env({"JWT_TTL_SECONDS": "3600"}).jwt_ttl_seconds == 3600
    for bad in ("59", str(12 * 3600 + 1)):
        with pytest.raises(ValueError):
            Settings.from_env({"JWT_TTL_SECONDS": bad})


class _Context:
    function_name = "AuthorizerFunction"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:AuthorizerFunction"
    aws_request_id = str(uuid.uuid4())
