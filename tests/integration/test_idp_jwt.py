"""Tokens of a tenant's own identity provider: `PUT /identity-provider` (issuer, audience, JWKS URL, role mapping),
then the authorizer accepts the provider's RS256/ES256 JWTs as `Authorization: Bearer`; everything else is 401."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.local.emulator import free_port
from tests.conftest import Api, create_account
from tests.integration.test_jwt import bearer

AUDIENCE = "wagate-test"


class Jwks:
    """A loopback JWKS endpoint serving the public halves of the keys the test signs with."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid → private key
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": [jwks.public(kid) for kid in list(jwks.keys)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks-{uuid.uuid4().hex[:8]}.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, kind: str = "RSA") -> str:
        kid = f"{kind.lower()}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RSA"
                          else ec.generate_private_key(ec.SECP256R1()))
        return kid

    def public(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        return {**json.loads(algorithm.to_jwk(key.public_key())), "kid": kid, "use": "sig"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.stop()


class Provider:
    """A tenant's identity provider: what it was configured with, and tokens it signs."""

    def __init__(self, jwks: Jwks, issuer: str) -> None:
        self.jwks, self.issuer = jwks, issuer
        self.kid = jwks.add("RSA")

    def config(self, **changes: Any) -> dict[str, Any]:
        return {"issuer": self.issuer, "audience": AUDIENCE, "jwks_url": self.jwks.url, "role_claim": "groups",
                "roles": {"wa-admins": "admin", "wa-ops": "operator", "staff": "viewer"},
                "accounts_claim": "wa_accounts", **changes}

    def token(self, *, kid: str | None = None, algorithm: str = "RS256", headers: dict[str, Any] | None = None,
              **claims: Any) -> str:
        kid = kid or self.kid
        now = int(time.time())
        body = {"iss": self.issuer, "aud": AUDIENCE, "sub": "alice@example.com", "iat": now, "exp": now + 300,
                "groups": ["staff"], **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.jwks.keys[kid], algorithm=algorithm, headers={"kid": kid, **(headers or {})})


def configure(admin: Api, jwks: Jwks, **changes: Any) -> Provider:
    provider = Provider(jwks, f"https://idp.example.com/{uuid.uuid4().hex[:10]}")
    response = admin.request("PUT", "/identity-provider", json=provider.config(**changes))
    assert response.status_code == 200, response.text
    return provider


def test_an_admin_configures_the_provider_and_its_tokens_work(tenant_admin: Api, jwks: Jwks) -> None:
    # Given a tenant trusting its identity provider
    provider = configure(tenant_admin, jwks)
    tenant_id = tenant_admin.get("/me").json()["tenant_id"]
    shown = tenant_admin.get("/identity-provider")
    assert shown.status_code == 200 and shown.json()["issuer"] == provider.issuer
    assert shown.json()["tenant_id"] == tenant_id and shown.json()["roles"]["wa-ops"] == "operator"

    # When one of its users calls with the provider's token
    me = bearer(tenant_admin, provider.token(groups=["staff", "wa-ops"])).get("/me")

    # Then the caller is that subject, in the tenant, with the highest role its groups map to
    assert me.status_code == 200, me.text
    assert me.json() == {"key_id": "idp:alice@example.com", "tenant_id": tenant_id, "role": "operator",
                         "account_ids": [], "credential": "idp", "rate_limit": ""}


def test_roles_and_account_scope_come_from_the_claims(tenant_admin: Api, jwks: Jwks) -> None:
    # Given two accounts and a provider
    mine, other = create_account(tenant_admin)["account_id"], create_account(tenant_admin)["account_id"]
    provider = configure(tenant_admin, jwks)
    text = {"to": "15550001111", "type": "text", "text": {"body": "hi"}}
    viewer = bearer(tenant_admin, provider.token(groups="staff"))
    operator = bearer(tenant_admin, provider.token(groups=["wa-ops"], wa_accounts=[mine]))

    # Then a viewer reads but cannot send, an operator sends from its accounts only, neither manages the provider
    assert viewer.get(f"/accounts/{mine}").status_code == 200
    assert viewer.post(f"/accounts/{mine}/messages", json=text).status_code == 403
    assert operator.post(f"/accounts/{mine}/messages", json=text).status_code == 202
    assert operator.get(f"/accounts/{other}").status_code == 404
    assert operator.get("/me").json()["account_ids"] == [mine]
    assert viewer.get("/identity-provider").status_code == 403
    # and a token cannot be exchanged for a wagate token (nor renew itself)
    assert bearer(tenant_admin, provider.token(groups=["wa-admins"])).post("/auth/token").status_code == 403
    # and no matching group is no access at all
    assert bearer(tenant_admin, provider.token(groups=["marketing"])).get("/me").status_code == 401


def test_every_bad_token_is_refused(tenant_admin: Api, jwks: Jwks) -> None:
    # Given a provider, and a token of it that works
    provider = configure(tenant_admin, jwks)
    good = provider.token()
    assert bearer(tenant_admin, good).get("/me").status_code == 200
    public_pem = jwks.keys[provider.kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head, payload, signature = good.split(".")
    tampered_claims = json.loads(jwt.utils.base64url_decode(payload)) | {"groups": ["wa-admins"]}
    tampered = ".".join([head, jwt.utils.base64url_encode(json.dumps(tampered_claims).encode()).decode(), signature])
    unsigned = jwt.encode({**tampered_claims}, key=None, algorithm="none", headers={"kid": provider.kid})
    hs256 = ".".join([jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": provider.kid})
                                                 .encode()).decode(), payload])
    hs256 += "." + jwt.utils.base64url_encode(hmac.new(public_pem, hs256.encode(), hashlib.sha256).digest()).decode()
    stranger = Jwks()
    try:
        stranger_kid = stranger.add("RSA")
        foreign = jwt.encode(jwt.decode(good, options={"verify_signature": False}), stranger.keys[stranger_kid],
                             algorithm="RS256", headers={"kid": stranger_kid})
    finally:
        stranger.stop()
    bad = {
        "wrong audience": provider.token(aud="someone-else"),
        "wrong issuer": Provider(jwks, "https://idp.example.com/unknown").token(),
        "expired": provider.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "not yet valid": provider.token(nbf=int(time.time()) + 3600),
        "no exp": provider.token(exp=None),
        "alg none": unsigned,
        "HS256 with the public key as secret": hs256,
        "unknown kid": foreign,
        "tampered": tampered,
        "no subject": provider.token(sub=None),
    }

    # Then each is a 401, and the good token still works
    answers = {name: bearer(tenant_admin, token).get("/me").status_code for name, token in bad.items()}
    assert answers == dict.fromkeys(bad, 401)
    assert bearer(tenant_admin, good).get("/me").status_code == 200


def test_es256_keys_and_rotation(tenant_admin: Api, jwks: Jwks) -> None:
    # Given a provider whose keys were fetched
    provider = configure(tenant_admin, jwks)
    assert bearer(tenant_admin, provider.token()).get("/me").status_code == 200

    # When it publishes a new (EC) key and signs with it
    time.sleep(3.1)  # unknown kids make the authorizer fetch again at most every 3 s
    kid = jwks.add("EC")
    fetches = jwks.fetches
    me = bearer(tenant_admin, provider.token(kid=kid, algorithm="ES256")).get("/me")

    # Then the authorizer fetched the keys again once, and the token works
    assert me.status_code == 200, me.text
    assert jwks.fetches == fetches + 1
    # and an ES256 header on the RSA key is refused
    es256 = provider.token(kid=kid, algorithm="ES256")
    mislabelled = ".".join([jwt.utils.base64url_encode(json.dumps({"alg": "RS256", "kid": kid}).encode()).decode(),
                            *es256.split(".")[1:]])
    assert bearer(tenant_admin, mislabelled).get("/me").status_code == 401


def test_deleting_the_provider_stops_its_tokens_at_once(tenant_admin: Api, jwks: Jwks) -> None:
    # Given a working token
    provider = configure(tenant_admin, jwks)
    client = bearer(tenant_admin, provider.token(groups=["wa-admins"]))
    assert client.get("/me").status_code == 200

    # When an admin deletes the provider
    assert tenant_admin.delete("/identity-provider").status_code == 204

    # Then the next call is refused, and the provider is gone
    assert client.get("/me").status_code == 401
    assert tenant_admin.get("/identity-provider").status_code == 404
    assert tenant_admin.delete("/identity-provider").status_code == 204  # idempotent


def test_tenants_are_isolated(root_api: Api, tenant_admin: Api, jwks: Jwks) -> None:
    # Given tenant A's provider and an account of tenant B
    provider = configure(tenant_admin, jwks)
    other = root_api.with_key(root_api.post("/api-keys", json={
        "name": "b", "role": "admin", "tenant": f"b-{uuid.uuid4().hex[:10]}"}).json()["api_key"])
    b_account = create_account(other)["account_id"]
    a_admin = bearer(tenant_admin, provider.token(groups=["wa-admins"]))

    # Then A's provider admin sees only A; B cannot take over A's issuer
    assert a_admin.get(f"/accounts/{b_account}").status_code == 404
    assert b_account not in a_admin.get("/accounts").text
    taken = other.request("PUT", "/identity-provider", json=provider.config())
    assert taken.status_code == 409 and taken.json()["code"] == "issuer_taken", taken.text
    assert other.get("/identity-provider").status_code == 404
    # and A's provider admin manages A's own provider (never B's)
    assert a_admin.get("/identity-provider").json()["issuer"] == provider.issuer


def test_the_jwks_url_follows_the_outbound_rules_and_a_dead_provider_is_a_401(tenant_admin: Api) -> None:
    # A private, a metadata and a plain-http public JWKS URL are refused when configured
    for url in ("https://10.0.0.5/jwks", "http://169.254.169.254/latest", "http://example.com/jwks"):
        response = tenant_admin.request("PUT", "/identity-provider", json={
            "issuer": "https://idp.example.com/x", "audience": AUDIENCE, "jwks_url": url, "roles": {"a": "admin"}})
        assert response.status_code == 400, (url, response.text)
        assert response.json()["code"] == "jwks_url_not_allowed"
    # and strict validation: unknown fields, a non-https issuer, an unknown role
    for change in ({"extra": 1}, {"issuer": "http://idp.example.com"}, {"roles": {"a": "owner"}}, {"roles": {}}):
        body = {"issuer": "https://idp.example.com/x", "audience": AUDIENCE, "jwks_url": "https://127.0.0.1/j",
                "roles": {"a": "admin"}, **change}
        assert tenant_admin.request("PUT", "/identity-provider", json=body).status_code in (400, 422), change

    # Given a provider whose JWKS server is down
    dead = Jwks()
    provider = Provider(dead, f"https://idp.example.com/{uuid.uuid4().hex[:10]}")
    assert tenant_admin.request("PUT", "/identity-provider", json=provider.config()).status_code == 200
    token = provider.token()
    dead.stop()

    # Then its tokens are refused (401, never a 5xx)
    assert bearer(tenant_admin, token).get("/me").status_code == 401
