"""Account proxies through the API: strict validation, credentials encrypted and never shown, `null` removes it,
no proxy for Cloud API numbers, and the outbound rules of webhook URLs for the proxy's host."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, create_account

USER, PASSWORD = "proxy-user-7f3a", "Pr0xy-Passw0rd-91c2"
WITH_CREDENTIALS = {"url": "http://127.0.0.1:3128", "username": USER, "password": PASSWORD}


def stored_proxy(account_id: str) -> dict[str, Any] | None:
    from core.store.accounts import plain
    from core.store.tables import AccountItem

    item = AccountItem.get(account_id, consistent_read=True)
    return plain(item.proxy) if item.proxy else None


def test_a_proxy_is_stored_encrypted_and_never_returned(tenant_admin: Api) -> None:
    from core.proxies import PROXY_PURPOSE
    from core.store import secrets

    # When a web account is created with a proxy and its credentials
    created = tenant_admin.post("/accounts", json={"account_name": "via proxy", "proxy": WITH_CREDENTIALS})

    # Then the answer shows the server and that credentials are set, never the credentials
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["proxy"] == {"server": "http://127.0.0.1:3128", "has_credentials": True}
    account_id = account["account_id"]
    answers = [created, tenant_admin.get(f"/accounts/{account_id}"), tenant_admin.get("/accounts"),
               tenant_admin.get(f"/sessions/{account_id}")]
    stored = stored_proxy(account_id)
    assert stored is not None and set(stored) == {"server", "credentials_ciphertext"}
    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
        for secret in (USER, PASSWORD, "credentials_ciphertext", stored["credentials_ciphertext"][:24]):
            assert secret not in answer.text

    # And the table holds them only as ciphertext, which opens with the proxy purpose (the hosts') alone
    assert USER not in json.dumps(stored) and PASSWORD not in json.dumps(stored)
    assert json.loads(secrets.decrypt(stored["credentials_ciphertext"], purpose=PROXY_PURPOSE)) == {
        "username": USER, "password": PASSWORD}
    secrets._cache.clear()  # the encrypting process remembers plaintexts; ask KMS itself
    with pytest.raises(ValueError):
        secrets.decrypt(stored["credentials_ciphertext"])


def test_patch_replaces_the_proxy_and_null_removes_it(tenant_admin: Api) -> None:
    # Given a web account with a proxy and credentials
    account_id = create_account(tenant_admin, "patched", proxy=WITH_CREDENTIALS)["account_id"]

    # When the proxy is replaced by a SOCKS5 proxy without credentials
    replaced = tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": {"url": "socks5://LOCALHOST:1080/"}})

    # Then the server is normalised and the old credentials are gone with the old proxy
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["proxy"] == {"server": "socks5://localhost:1080", "has_credentials": False}
    assert stored_proxy(account_id) == {"server": "socks5://localhost:1080"}

    # When the proxy is set to null, Then the account goes direct
    removed = tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": None})
    assert removed.status_code == 200, removed.text
    assert removed.json()["proxy"] is None
    assert stored_proxy(account_id) is None

    # And a PATCH of other fields leaves a proxy alone
    tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": WITH_CREDENTIALS})
    renamed = tenant_admin.patch(f"/accounts/{account_id}", json={"account_name": "renamed"})
    assert renamed.json()["proxy"] == {"server": "http://127.0.0.1:3128", "has_credentials": True}


@pytest.mark.parametrize("proxy", [
    {"url": "ftp://proxy.example.com:21"},
    {"url": "socks4://proxy.example.com:1080"},
    {"url": "http://proxy.example.com"},  # no port
    {"url": "http://proxy.example.com:0"},
    {"url": "http://proxy.example.com:65536"},
    {"url": "http://user:secret@proxy.example.com:3128"},
    {"url": "http://proxy.example.com:3128/path"},
    {"url": "http://proxy.example.com:3128/?q=1"},
    {"url": "http://proxy.example.com:3128#frag"},
    {"url": "http://prøxy.example.com:3128"},
    {"url": "http://proxy.example.com:3128 "},
    {"url": "http://[::zz]:3128"},
    {"url": "http://" + "a" * 300 + ".com:3128"},
    {"url": "http://proxy.example.com:3128", "username": "u-Q7k2"},  # one without the other
    {"url": "http://proxy.example.com:3128", "password": "p-Z9w4"},
    {"url": "http://proxy.example.com:3128", "username": "u:Q7k2", "password": "p-Z9w4"},
    {"url": "http://proxy.example.com:3128", "username": "u-Q7k2", "password": "p-Z9ẃ4"},
    {"url": "http://proxy.example.com:3128", "username": "u-Q7k2", "password": "x" * 257},
    {"url": "socks5://proxy.example.com:1080", "username": "u-Q7k2", "password": "p-Z9w4"},  # Chromium cannot
    {"url": "http://proxy.example.com:3128", "extra": 1},
])
def test_invalid_proxies_are_refused_and_not_echoed(tenant_admin: Api, proxy: dict[str, Any]) -> None:
    # When an account is created with a malformed proxy, or one updated to it
    created = tenant_admin.post("/accounts", json={"account_name": "bad proxy", "proxy": proxy})
    account_id = create_account(tenant_admin, "good")["account_id"]
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": proxy})

    # Then both are 422 and the answer does not repeat a credential
    for answer in (created, patched):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "validation_error"
        for name in ("username", "password"):
            if name in proxy:
                assert str(proxy[name]) not in answer.text
    assert stored_proxy(account_id) is None


@pytest.mark.parametrize("url", [
    "http://10.1.2.3:3128",  # private
    "socks5://169.254.169.254:1080",  # the metadata service
    "http://[fd00::1]:3128",  # unique local
    "https://0x7f000002:443",  # 127.0.0.2, not allow-listed by the local stack
    "http://100.64.0.1:3128",  # shared address space
])
def test_a_proxy_on_a_private_host_is_refused(tenant_admin: Api, url: str) -> None:
    # When the proxy's host is not a public address (the local stack allow-lists only 127.0.0.1, localhost, ::1)
    created = tenant_admin.post("/accounts", json={"account_name": "inside", "proxy": {"url": url}})
    account_id = create_account(tenant_admin, "good")["account_id"]
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": {"url": url}})

    # Then it is refused like a webhook URL would be
    for answer in (created, patched):
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "proxy_not_allowed"
    assert stored_proxy(account_id) is None


def test_an_allow_listed_loopback_proxy_is_taken(tenant_admin: Api) -> None:
    # OUTBOUND_ALLOW_HOSTS of the local stack lists 127.0.0.1, localhost and ::1 (what the e2e proxy uses)
    for url, server in (("http://127.0.0.1:8888", "http://127.0.0.1:8888"),
                        ("https://[0:0::1]:8443", "https://[::1]:8443")):
        account = create_account(tenant_admin, "loopback", proxy={"url": url})
        assert account["proxy"] == {"server": server, "has_credentials": False}


def test_cloud_numbers_take_no_proxy(tenant_admin: Api, fake_graph: Any) -> None:
    from tests.integration.test_cloud_provider import cloud_account

    # When a Cloud API number is created with a proxy, Then 400 not_a_web_account
    created = tenant_admin.post("/accounts", json={
        "account_name": "cloud", "provider": "cloud", "proxy": {"url": "http://127.0.0.1:3128"},
        "cloud": {"phone_number_id": "1234567", "access_token": "EAAG" + "x" * 40}})
    assert created.status_code == 400, created.text
    assert created.json()["code"] == "not_a_web_account"

    # When an existing Cloud API number is given one, Then the same
    account_id = cloud_account(tenant_admin, fake_graph)["account_id"]
    patched = tenant_admin.patch(f"/accounts/{account_id}", json={"proxy": WITH_CREDENTIALS})
    assert patched.status_code == 400, patched.text
    assert patched.json()["code"] == "not_a_web_account"
    assert tenant_admin.get(f"/accounts/{account_id}").json()["proxy"] is None


def test_the_host_checks_the_proxy_again_and_pins_its_address(tenant_admin: Api) -> None:
    from core.net import OutboundPolicy
    from core.proxies import ProxyRefused, ProxyUnavailable, for_browser

    # Given a stored proxy by name, with credentials
    account_id = create_account(tenant_admin, "pinned", proxy={**WITH_CREDENTIALS, "url": "http://localhost:3128"})[
        "account_id"]
    stored = stored_proxy(account_id)

    # When a host with the stack's allow-list builds the browser's proxy
    proxy = for_browser(stored, OutboundPolicy(frozenset({"127.0.0.1", "localhost", "::1"})))

    # Then the name is pinned to the address it checked, and the credentials are decrypted for the browser only
    assert proxy is not None
    assert proxy["server"] in ("http://127.0.0.1:3128", "http://[::1]:3128")
    assert (proxy["username"], proxy["password"]) == (USER, PASSWORD)

    # When the host's rules do not allow loopback (the deployed default), Then it refuses to use it
    with pytest.raises(ProxyRefused) as refused:
        for_browser(stored, OutboundPolicy(frozenset()))
    assert refused.value.code == "proxy_not_allowed"
    # And a damaged record is refused rather than ignored (never a direct connection instead)
    with pytest.raises(ProxyRefused):
        for_browser({"server": "http://127.0.0.1:3128", "credentials_ciphertext": "bm90IGEgY2lwaGVydGV4dA=="},
                    OutboundPolicy(frozenset({"127.0.0.1"})))
    assert for_browser(None, OutboundPolicy(frozenset())) is None
    # And a name that does not resolve (now) is worth another try, not a refusal
    with pytest.raises(ProxyUnavailable) as unresolved:
        for_browser({"server": "http://no-such-proxy.invalid:3128"}, OutboundPolicy(frozenset()))
    assert unresolved.value.code == "proxy_unresolved"
