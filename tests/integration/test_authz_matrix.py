"""The authorization matrix (infra/authz_matrix.py) cell by cell against the local stack, the route list against the
template, and the table in docs/security.md against the data."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from urllib3 import encode_multipart_formdata

from core.ids import new_id
from core.models.common import utcnow
from infra import authz_matrix as matrix
from infra.local.template import api_routes, load_template
from tests.conftest import Api, make_key
from tests.integration.test_idp_jwt import Jwks

VERSION = "v21.0"
PHONE = "15550001111"
TEXT = {"to": PHONE, "type": "text", "text": {"body": "matrix"}}
#: Public routes (no credentials by design): not in the matrix.
PUBLIC = {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/"), ("GET", "/whatsapp-accounts"),
          ("GET", "/whatsapp-sessions"), ("GET", "/assets/{file}"), ("GET", "/webhooks/meta/{account_id}"),
          ("POST", "/webhooks/meta/{account_id}")}
#: Rows whose allowed calls consume what they act on: every cell gets its own.
FRESH = {("DELETE", "/accounts/{account_id}"), ("DELETE", "/sessions/{session_id}"), ("DELETE", "/api-keys/{key_id}"),
         ("DELETE", "/producers/{producer_id}"), ("DELETE", "/webhooks/{webhook_id}"),
         ("DELETE", "/{version}/{object_id}"),
         ("POST", "/accounts/{account_id}/webhook-deliveries/{delivery_id}/redeliver")}
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/accounts"): {"account_name": "matrix"},
    ("PATCH", "/accounts/{account_id}"): {"account_name": "matrix renamed"},
    ("POST", "/accounts/{account_id}/pairing-code"): {"phone_number": "15550009999"},
    ("POST", "/accounts/{account_id}/messages"): TEXT,
    ("PATCH", "/accounts/{account_id}/messages/{message_id}"): {"text": {"body": "edited"}},
    ("POST", "/api-keys"): {"name": "matrix", "role": "viewer"},
    ("POST", "/producers"): {"name": "matrix"},
    ("POST", "/media"): {"mime_type": "image/png"},
    ("POST", "/webhooks"): {"url": "http://127.0.0.1:9/matrix", "enabled": False},
    ("PATCH", "/webhooks/{webhook_id}"): {"description": "matrix"},
    ("POST", "/{version}/{object_id}/messages"): {"messaging_product": "whatsapp", **TEXT},
    ("POST", "/sessions"): {"session_name": "matrix"},
    ("PATCH", "/sessions/{session_id}"): {"session_name": "matrix renamed"},
    ("POST", "/sessions/{session_id}/pairing-code"): {"phone_number": "15550009999"},
    ("POST", "/sessions/{session_id}/messages"): TEXT,
}


#: Tenant A's identity provider signs the `idp_operator` caller's token; tenant B trusts another issuer.
IDP_AUDIENCE = "matrix"


def idp_body(world: World, tenant: str) -> dict[str, Any]:
    """The identity-provider setting of tenant `a` or `b` (what the rows that change it put back)."""
    return {"issuer": world.params[("idp", "")][tenant], "audience": IDP_AUDIENCE, "jwks_url": world.jwks.url,
            "role_claim": "groups", "roles": {"wa-ops": "operator"}}


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(256)


def multipart() -> tuple[bytes, str]:
    return encode_multipart_formdata({"messaging_product": "whatsapp", "type": "image/png",
                                      "file": ("matrix.png", png(), "image/png")})


@dataclass
class World:
    """Tenant A (its keys, one account per account route, the resources the routes name) and tenant B."""

    admin: Api
    other: Api
    jwks: Jwks
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    accounts: dict[tuple[str, str], str] = field(default_factory=dict)  # the row's own account (in scope)
    outside: str = ""  # an account of tenant A outside the scoped key
    params: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # other path parameters per row

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def key(self, api: Api) -> dict[str, str]:
        return {"X-Api-Key": str(api.key)}

    def ok(self, response: Any, *statuses: int) -> Any:
        assert response.status_code in statuses, (response.request.method, response.url, response.text)
        return response.json()


def new_account(world: World) -> str:
    return str(world.ok(world.admin.post("/accounts", json={"account_name": "matrix"}), 201)["account_id"])


def new_delivery(account_id: str, tenant_id: str) -> str:
    from core.store.tables import WebhookDeliveryItem
    from functions.service.context import services

    delivery_id = new_id("dlv")
    services().deliveries.create(WebhookDeliveryItem(
        account_id, delivery_id, tenant_id=tenant_id, event_id=f"evt_{uuid.uuid4().hex}", event_type="message.status",
        target="account", url="http://127.0.0.1:9/matrix", state="failed", attempts=1, event="{}"))
    return delivery_id


def graph_media(world: World, account_id: str) -> str:
    body, content_type = multipart()
    return str(world.ok(world.admin.post(f"/{VERSION}/{account_id}/media", data=body,
                                         headers={"Content-Type": content_type}), 200)["id"])


def show_qr_and_pairing(account_id: str) -> None:
    """The account as a browser host leaves it while a phone is being linked."""
    from core.store.tables import AccountItem

    item = AccountItem.get(account_id)
    item.update(actions=[
        AccountItem.connection_status.set("SCAN_QR_CODE"),
        AccountItem.tenant_status.set(f"{item.tenant_id}#SCAN_QR_CODE"),
        AccountItem.qr.set({"value": "2@matrix,qr", "expires_at": "2099-01-01T00:00:00.000Z"}),
        AccountItem.pairing.set({"phone_number": "15550009999", "requested_at": utcnow(), "code": None})])


def known_contact(account_id: str) -> None:
    from core.store.tables import ContactItem

    ContactItem(account_id, PHONE, state="done", on_whatsapp=True, wa_id=PHONE, business=False,
                checked_at=utcnow()).save()


def build(root_api: Api, tenant_admin: Api, jwks: Jwks) -> World:
    """Every caller of matrix.CALLERS and everything the rows act on (about 60 API calls)."""
    from core.models.common import Principal
    from functions.service import api_keys
    from functions.service.context import services

    other_tenant = f"other-{uuid.uuid4().hex[:10]}"
    other = root_api.with_key(root_api.post("/api-keys", json={"name": "other", "role": "admin",
                                                               "tenant": other_tenant}).json()["api_key"])
    world = World(tenant_admin, other, jwks)
    tenant_id = world.ok(tenant_admin.get("/me"), 200)["tenant_id"]

    # One account per row that names one (rows never disturb each other), and one the scoped key does not cover
    with ThreadPoolExecutor(8) as pool:
        account_rows = [r for r in matrix.ROWS if r.names_an_account and (r.method, r.path) != ("DELETE",
                                                                                                "/{version}/{object_id}")]
        for r, account_id in zip(account_rows, pool.map(lambda _: new_account(world), account_rows), strict=True):
            world.accounts[(r.method, r.path)] = account_id
        world.outside = new_account(world)
    for (method, path), account_id in world.accounts.items():
        params: dict[str, str] = {}
        if path.endswith(("/qr", "/pairing-code")):
            show_qr_and_pairing(account_id)
        if "{message_id}" in path:
            params["message_id"] = world.ok(tenant_admin.post(f"/accounts/{account_id}/messages", json=TEXT),
                                            202)["message_id"]
        if path.endswith("/exists"):
            known_contact(account_id)
        world.params[(method, path)] = params
    world.params[("GET", "/media/{media_id}")] = {"media_id": graph_media(world, world.outside)}
    world.params[("GET", "/producers/{producer_id}")] = {"producer_id": world.ok(tenant_admin.post(
        "/producers", json={"name": "matrix"}), 201)["producer_id"]}
    webhook_id = world.ok(tenant_admin.post("/webhooks", json=BODIES[("POST", "/webhooks")]), 201)["webhook_id"]
    world.params[("GET", "/webhooks/{webhook_id}")] = world.params[("PATCH", "/webhooks/{webhook_id}")] = {
        "webhook_id": webhook_id}

    # The callers
    viewer, operator = make_key(tenant_admin, "viewer"), make_key(tenant_admin, "operator")
    scoped = make_key(tenant_admin, "operator", account_ids=sorted(set(world.accounts.values())))
    doomed = tenant_admin.post("/api-keys", json={"name": "revoked", "role": "admin"}).json()
    doomed_token = world.ok(tenant_admin.with_key(doomed["api_key"]).post("/auth/token"), 200)["access_token"]
    assert tenant_admin.delete(f"/api-keys/{doomed['key_id']}").status_code == 204
    admin_principal = api_keys.authenticate(services(), tenant_admin.key)
    expired = api_keys.issue_token(services(), Principal(**admin_principal.model_dump()), now=time.time() - 3600)
    world.headers = {
        "none": {}, "malformed": {"X-Api-Key": "not-a-key"}, "revoked": {"X-Api-Key": doomed["api_key"]},
        "revoked_jwt": world.bearer(doomed_token), "expired": world.bearer(expired.access_token),
        "viewer": world.key(viewer), "operator": world.key(operator), "admin": world.key(tenant_admin),
        "admin_jwt": world.bearer(world.ok(tenant_admin.post("/auth/token"), 200)["access_token"]),
        "scoped_own": world.key(scoped), "scoped_other": world.key(scoped), "other_admin": world.key(other),
        "other_jwt": world.bearer(world.ok(other.post("/auth/token"), 200)["access_token"]),
    }
    world.params[("tenant", "")] = {"tenant_id": tenant_id}
    world.params[("idp", "")] = {"a": f"https://idp.example.com/{uuid.uuid4().hex}",
                                 "b": f"https://idp.example.com/{uuid.uuid4().hex}"}
    world.ok(tenant_admin.request("PUT", "/identity-provider", json=idp_body(world, "a")), 200)
    world.ok(other.request("PUT", "/identity-provider", json=idp_body(world, "b")), 200)
    kid = jwks.add("RSA")
    now = int(time.time())
    world.headers["idp_operator"] = world.bearer(jwt.encode(
        {"iss": world.params[("idp", "")]["a"], "aud": IDP_AUDIENCE, "sub": "matrix@example.com", "iat": now,
         "exp": now + 1800, "groups": ["wa-ops"]}, jwks.keys[kid], algorithm="RS256", headers={"kid": kid}))
    return world


def fresh(world: World, r: matrix.Row, caller: str) -> dict[str, str]:
    """Path parameters of a consumed resource, new for this cell (scoped callers keep their own accounts)."""
    key = (r.method, r.path)
    if r.path == "/identity-provider" and r.method != "PUT":  # both tenants have one when the cell runs
        world.ok(world.admin.request("PUT", r.path, json=idp_body(world, "a")), 200)
        world.ok(world.other.request("PUT", r.path, json=idp_body(world, "b")), 200)
    if key not in FRESH:
        return {}
    if r.path.endswith("{key_id}"):
        return {"key_id": world.ok(world.admin.post("/api-keys", json={"name": "doomed", "role": "viewer"}),
                                   201)["key_id"]}
    if r.path.endswith("{producer_id}"):
        return {"producer_id": world.ok(world.admin.post("/producers", json={"name": "doomed"}), 201)["producer_id"]}
    if r.path.endswith("{webhook_id}"):
        return {"webhook_id": world.ok(world.admin.post("/webhooks", json=BODIES[("POST", "/webhooks")]),
                                       201)["webhook_id"]}
    if r.path == "/{version}/{object_id}":
        return {"object_id": graph_media(world, world.outside)}
    if r.path.endswith("/redeliver"):
        return {"delivery_id": new_delivery(world.accounts[key], world.params[("tenant", "")]["tenant_id"])}
    if caller.startswith("scoped"):  # its own accounts are the row's (in its scope) and `outside`
        return {}
    return {"account_id": new_account(world), "session_id": new_account(world)}


def request_of(world: World, r: matrix.Row, caller: str) -> tuple[str, dict[str, Any]]:
    """The concrete path and request arguments of one cell."""
    key = (r.method, r.path)
    account = world.outside if caller == "scoped_other" else world.accounts.get(key, "")
    values = {"account_id": account, "session_id": account, "object_id": account, "version": VERSION, "phone": PHONE,
              **world.params.get(key, {}), **fresh(world, r, caller)}
    path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], r.path)
    kwargs: dict[str, Any] = {"headers": dict(world.headers[caller])}
    body = BODIES.get(key)
    if key == ("PUT", "/identity-provider"):  # each tenant its own issuer
        body = idp_body(world, "b" if caller.startswith("other") else "a")
    if r.path == "/{version}/{object_id}/media":
        data, content_type = multipart()
        kwargs["data"] = data
        kwargs["headers"]["Content-Type"] = content_type
    elif body is not None:
        kwargs["json"] = body
    return path, kwargs


def run_row(world: World, r: matrix.Row) -> list[tuple[str, str, int | None, int, str]]:
    """(caller, path, expected, actual, body excerpt) of every applicable cell of a row, one call at a time."""
    return run_cells(world, r, world.admin.with_key(None))


def run_cells(world: World, r: matrix.Row, anonymous: Api) -> list[tuple[str, str, int | None, int, str]]:
    results = []
    for caller in (c.id for c in matrix.CALLERS):
        expected = r.status(caller)
        if expected is None:
            continue
        path, kwargs = request_of(world, r, caller)
        response = anonymous.request(r.method, path, **kwargs)
        results.append((caller, path, expected, response.status_code, response.text[:160]))
        # (the audit log lists the caller's own calls, which name the ids it tried)
        if caller.startswith("other") and response.status_code < 300 and r.path != "/audit":
            leaked = set(world.accounts.values()) - set(path.split("/"))
            assert not any(a in response.text for a in leaked), (r.method, path, caller, "sees tenant A")
    return results


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.stop()


def test_every_cell_of_the_matrix(root_api: Api, tenant_admin: Api, jwks: Jwks) -> None:
    # Given a tenant with every kind of key, its own identity provider, one account per route, and another tenant
    world = build(root_api, tenant_admin, jwks)

    # When every route is called by every caller (rows side by side, a row's cells in order; the rows that change
    # the identity-provider setting last, one at a time, so the provider's token works in every other row)
    changing = [r for r in matrix.ROWS if r.path == "/identity-provider"]
    with ThreadPoolExecutor(8) as pool:
        ran = dict(zip([(r.method, r.path) for r in matrix.ROWS if r not in changing],
                       pool.map(lambda r: run_row(world, r), [r for r in matrix.ROWS if r not in changing]),
                       strict=True))
    ran.update({(r.method, r.path): run_row(world, r) for r in changing})
    results = [(r, ran[(r.method, r.path)]) for r in matrix.ROWS]

    # Then each answers the documented status
    wrong = [f"{r.method} {r.path} as {caller}: expected {expected}, got {actual} ({path}: {text})"
             for r, cells in results for caller, path, expected, actual, text in cells if expected != actual]
    cells = sum(len(c) for _, c in results)
    assert not wrong, f"{len(wrong)} of {cells} cells differ from infra/authz_matrix.py:\n" + "\n".join(wrong)
    assert cells > 600


def test_every_authenticated_route_has_a_row() -> None:
    routes = {(r.method.upper(), r.path) for r in api_routes(load_template()) if r.method != "any"}
    rows = {(r.method, r.path) for r in matrix.ROWS}
    assert routes - PUBLIC - rows == set(), "add a row to infra/authz_matrix.py for each new route"
    assert rows - routes == set(), "rows of routes the template no longer has"
    for route in api_routes(load_template()):
        if route.method != "any" and (route.method.upper(), route.path) in PUBLIC:
            assert route.authorizer is None and route.function != "GraphApiFunction"


def test_the_table_in_docs_security_md_is_current() -> None:
    committed = matrix.DOC.read_text()
    assert matrix.document(committed) == committed, "run `python -m infra.authz_matrix` to regenerate it"


@pytest.mark.parametrize("cells", ["200", "200 200 200 200 200 200 200 200 200"])
def test_a_row_must_spell_out_every_caller(cells: str) -> None:
    with pytest.raises(ValueError):
        matrix.row("GET", "/x", cells)
