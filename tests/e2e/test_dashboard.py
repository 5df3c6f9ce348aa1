"""The "WhatsApp Numbers" dashboard in Chromium against the local stack, a browser host and wa_sim: sign in, add a
number, link it by its QR, watch the status change without a reload, send and receive, log out; a viewer sees no
destructive buttons. Screenshots go to docs/screenshots/ with WAGATE_SCREENSHOTS=1 (else to the test's tmp dir)."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from browser_host.chromium import chromium_path, launch_args
from infra.local.host_process import HostProcess
from tests.conftest import ROOT, Api, create_account, make_key
from tests.e2e.conftest import Phone, account_status, wait_until

WIDE = {"width": 1200, "height": 900}
PHONE = {"width": 380, "height": 800}


def _number() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    path = chromium_path()
    if not Path(path).exists():
        pytest.skip(f"no Chromium at {path} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=launch_args())
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=WIDE)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "CSP" in msg.text else None)
    tab.on("dialog", lambda dialog: dialog.accept())  # confirmations of stop / log out / delete
    yield tab
    context.close()
    assert not errors, errors  # no script errors, no Content-Security-Policy violations


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return ROOT / "docs" / "screenshots" if os.environ.get("WAGATE_SCREENSHOTS") else tmp_path


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/")
    page.fill("#api-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#numbers:not([hidden])")


def test_the_stack_serves_the_dashboard_with_strict_headers(runtime: Any, root_api: Api) -> None:
    base = runtime.api_url
    # Given the local API, When `/` and the old page name are asked for, Then they redirect to the page
    root = requests.get(base + "/", allow_redirects=False, timeout=10)
    assert root.status_code == 302 and root.headers["Location"] == "/whatsapp-accounts"
    old = requests.get(base + "/whatsapp-sessions", allow_redirects=False, timeout=10)
    assert old.status_code == 301 and old.headers["Location"] == "/whatsapp-accounts"
    # And the page has its title, a strict CSP, and content-hashed assets cached for good
    page = requests.get(base + "/whatsapp-accounts", timeout=10)
    assert page.status_code == 200 and "<title>WhatsApp Numbers</title>" in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp and page.headers["X-Content-Type-Options"] == "nosniff"
    script = re.search(r'src="assets/(app\.[0-9a-f]{12}\.js)"', page.text)
    assert script, page.text
    asset = requests.get(f"{base}/assets/{script.group(1)}", timeout=10)
    assert asset.status_code == 200 and asset.headers["Content-Type"].startswith("text/javascript")
    assert "immutable" in asset.headers["Cache-Control"]
    assert re.search(r'from "\./api\.[0-9a-f]{12}\.js"', asset.text)  # imports point at hashed names too
    plain = requests.get(f"{base}/assets/style.css", timeout=10)
    assert plain.status_code == 200 and plain.headers["Cache-Control"] == "public, max-age=60"
    assert requests.get(f"{base}/assets/nope.js", timeout=10).status_code == 404
    posted = requests.post(base + "/whatsapp-accounts", timeout=10)
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    # And /me tells a key what it is
    me = root_api.get("/me")
    assert me.status_code == 200 and me.json()["role"] == "admin" and me.json()["key_id"].startswith("key_")


def test_add_link_send_receive_and_log_out_without_a_reload(
        runtime: Any, tenant_admin: Api, phone: Phone, host: HostProcess, page: Any, shots: Path) -> None:
    business, contact = _number(), _number()
    # Given the sign-in page, When a wrong key is tried, Then it says so
    page.goto(runtime.api_url + "/")
    assert page.url.endswith("/whatsapp-accounts") and page.title() == "WhatsApp Numbers"
    page.fill("#api-key", "wgk_" + "0" * 26 + "_wrong")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('401')")
    page.fill("#api-key", "")
    page.screenshot(path=shots / "sign-in.png")

    # When the tenant's admin signs in and adds a number linked by QR
    page.fill("#api-key", tenant_admin.key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#numbers:not([hidden])")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.get_by_role("button", name="Add WhatsApp Number").click()
    page.fill("#add-name", "Support line")
    page.click("#add-submit")

    # Then its panel shows the QR, which follows the code as it rotates
    page.wait_for_selector("#qr[data-value]", timeout=45_000)
    account_id = page.locator("#accounts-table tbody tr").first.get_attribute("data-account-id")
    assert account_id and account_status(tenant_admin, account_id) == "SCAN_QR_CODE"
    page.screenshot(path=shots / "qr-panel.png")

    # When the phone scans the code the page shows (read again if it rotated meanwhile)
    def scan_from_page() -> bool:
        value = page.locator("#qr").get_attribute("data-value")
        status, _ = phone.call("POST", "/sim/link", {"qr": value, "phone_number": business})
        return status < 300
    wait_until(scan_from_page, 30, "the page's QR scanned", every=0.5)

    # Then the badge turns WORKING in the panel and in the table, without a reload
    page.wait_for_selector("#panel-status [data-status=WORKING]", timeout=30_000)
    row = f"#accounts-table tr[data-account-id='{account_id}']"
    page.wait_for_selector(f"{row} [data-status=WORKING]")
    assert page.locator(f"{row} .phone").inner_text() == business
    assert page.locator("#qr").count() == 0

    # When a test message is sent, Then it shows sent, and read once the contact's phone acks it
    page.fill("#send-to", contact)
    page.fill("#send-text", "Hello from the dashboard")
    page.click("#send-form button[type=submit]")
    page.wait_for_selector(".message.out .status-chip[data-status=sent]", timeout=30_000)
    key = wait_until(lambda: phone.received(contact), 15, "the message on the phone")[0]["key"]
    phone.post(f"/sim/contacts/{contact}/ack", {"message_id": key, "ack": "read"})
    page.wait_for_selector(".message.out .status-chip[data-status=read]", timeout=20_000)

    # When the contact writes back, Then the inbound message appears
    phone.post(f"/sim/contacts/{contact}/send", {"to": business, "text": "Thanks, got it!"})
    page.wait_for_selector(".message.in:has-text('Thanks, got it!')", timeout=20_000)
    page.screenshot(path=shots / "working-panel.png")

    # And at phone width the list and the panel still work
    page.set_viewport_size(PHONE)
    page.screenshot(path=shots / "phone-panel.png")
    page.click("#panel-close")
    page.screenshot(path=shots / "phone-list.png")
    page.set_viewport_size(WIDE)
    page.screenshot(path=shots / "list.png")

    # When the number is logged out (confirmed), Then the badge changes without a reload
    page.click(f"{row} button.name")
    page.click("[data-action=logout]")
    page.wait_for_selector(f"{row} .status .badge:not([data-status=WORKING])", timeout=30_000)
    live = page.locator("#live").inner_text()
    assert live == "Live" or "refreshing every" in live, live  # the socket, or polling that says so
    assert page.evaluate("window.__sameDocument") is True

    # When signing out, Then the key is forgotten
    page.keyboard.press("Escape")  # the panel is a modal dialog: Escape closes it
    page.click("#sign-out")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.length") == 0


def test_a_viewer_sees_no_destructive_buttons_and_the_api_refuses_them(
        runtime: Any, tenant_admin: Api, page: Any) -> None:
    # Given a number and a viewer key of its tenant
    account_id = create_account(tenant_admin, "Sales")["account_id"]
    viewer = make_key(tenant_admin, "viewer")
    # When the viewer signs in and opens the number
    sign_in(page, runtime.api_url, str(viewer.key))
    page.click(f"#accounts-table tr[data-account-id='{account_id}'] button.name")
    page.wait_for_selector("#panel #readonly-note")
    # Then there is nothing to add, change, send, redeliver or revoke
    assert page.locator("#add-number").is_hidden()
    assert page.locator("#panel [data-action]").count() == 0
    assert page.locator("#send-form").count() == 0
    assert page.locator("#keys").is_hidden()
    assert "viewer" in page.locator("#whoami").inner_text()
    # And the API refuses those actions anyway
    for method, path in [("POST", f"/accounts/{account_id}/stop"), ("POST", f"/accounts/{account_id}/logout"),
                         ("DELETE", f"/accounts/{account_id}")]:
        answer = viewer.request(method, path)
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden_role", (path, answer.text)


def test_without_a_websocket_it_polls_and_says_so(runtime: Any, tenant_admin: Api, page: Any) -> None:
    # Given a stack whose WebSocket tickets cannot be had (as before the WebSocket API existed)
    page.route("**/realtime/tickets", lambda route: route.fulfill(
        status=404, content_type="application/json",
        body='{"code": "route_not_found", "message": "no such route", "details": null, "request_id": "x"}'))
    account_id = create_account(tenant_admin, "Polling")["account_id"]
    sign_in(page, runtime.api_url, str(tenant_admin.key))
    # Then the page says it refreshes every few seconds
    page.wait_for_selector("#live[data-state=polling]:has-text('refreshing every')")
    # When the number is started through the API, Then its badge follows without a reload
    assert tenant_admin.post(f"/accounts/{account_id}/start").status_code == 202
    page.wait_for_selector(f"#accounts-table tr[data-account-id='{account_id}'] [data-status=STARTING]",
                           timeout=15_000)


def test_a_cloud_api_number_is_added_from_the_form_and_shows_its_webhook(
        runtime: Any, tenant_admin: Api, fake_graph: Any, page: Any, shots: Path) -> None:
    # Given a number at Meta (the fake Graph API) and the signed-in admin
    phone_number_id = str(100000000000000 + uuid.uuid4().int % 899999999999999)
    token = "EAAG-dashboard-" + "t" * 24
    fake_graph.add_number(phone_number_id, token, "+1 555-010-0042", "Dashboard Co")
    sign_in(page, runtime.api_url, str(tenant_admin.key))

    # When a Cloud API number is added with its id, token and secrets
    page.get_by_role("button", name="Add WhatsApp Number").click()
    page.fill("#add-name", "Cloud line")
    page.check("input[name=link][value=cloud]")
    assert page.locator("#add-phone").is_hidden() and page.locator("#add-pnid").is_visible()
    page.click("#add-submit")
    page.wait_for_selector("#add-error:has-text('phone number ID')")  # asked for what is missing
    page.fill("#add-pnid", phone_number_id)
    page.fill("#add-token", token)
    page.fill("#add-app-secret", "app-secret-from-meta")
    page.fill("#add-verify-token", "verify-token-123")
    page.click("#add-submit")

    # Then its token is checked at once: WORKING, Meta's facts and the callback URL to enter at Meta, no secrets
    page.wait_for_selector("#panel-status [data-status=WORKING]")
    callback = page.locator("#cloud-callback").inner_text()
    account_id = callback.rsplit("/", 1)[-1]
    assert callback == f"{runtime.api_url}/webhooks/meta/{account_id}"
    assert "Dashboard Co" in page.locator("#panel-link").inner_text()
    assert token not in page.content() and "app-secret-from-meta" not in page.content()
    assert page.locator("[data-action=logout]").is_hidden()
    page.screenshot(path=shots / "cloud-panel.png")
    assert tenant_admin.get(f"/accounts/{account_id}").json()["provider"] == "cloud"
