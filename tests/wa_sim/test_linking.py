"""Linking a page: QR rotation, QR scan, pairing code, unlink."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.wa_sim import WaSimServer

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"


@pytest.fixture
def fast_sim() -> Iterator[WaSimServer]:
    """A second simulator whose QR rotates every 0.4 s and idles after 3 codes."""
    with WaSimServer(port=0, qr_interval=0.4, qr_max_rotations=3) as s:
        yield s


def test_qr_rotates_then_idles_until_refresh(open_page: Any, fast_sim: WaSimServer, make_client: Any) -> None:
    sp = open_page(fast_sim.url)
    sp.wait_event("conn.qrcode_idle", timeout=5)
    codes = [p for n, p in sp.events if n == "conn.auth_code_change"]
    assert len(codes) == 3
    assert len({c["ref"] for c in codes}) == 3
    for c in codes:
        assert c["type"] == "multidevice"
        assert c["fullCode"] == ",".join([c["ref"], c["staticKeyPair"], c["identityKeyPair"], c["secretKey"]])
    assert sp.wpp("WPP.conn.isIdle()") is True
    assert sp.wpp("WPP.conn.getAuthCode()") is None
    # An expired code cannot be scanned any more.
    status, body = make_client(fast_sim.url).call(
        "POST", "/sim/link", {"qr": codes[0]["fullCode"], "phone_number": BUSINESS})
    assert (status, body["error"]) == (410, "qr_expired")
    fresh = sp.wpp("WPP.conn.refreshQR()")
    assert fresh["ref"] not in {c["ref"] for c in codes}
    assert sp.wpp("WPP.conn.isIdle()") is False


def test_link_by_qr(open_page: Any, client: Any) -> None:
    sp = open_page()
    assert sp.wpp("WPP.conn.isAuthenticated()") is False
    assert sp.wpp("WPP.conn.isRegistered()") is False
    code = sp.auth_code()
    assert code["fullCode"].startswith("2@")
    assert sp.page.text_content("#qr-code") == code["fullCode"]
    assert sp.page.get_attribute("#qr-img", "src").startswith("/qr.svg?data=")
    result = client.post("/sim/link", {"qr": code["fullCode"], "phone_number": "+1 555 123 4567"})
    assert result["wid"] == f"{BUSINESS}@c.us"
    sp.wait_event("conn.main_ready")
    names = sp.names()
    assert names.index("conn.authenticated") < names.index("conn.main_ready")
    assert sp.wpp("WPP.conn.isAuthenticated()") is True
    assert sp.wpp("WPP.conn.isMainReady()") is True
    assert sp.wpp("WPP.conn.getMyUserId().toString()") == f"{BUSINESS}@c.us"
    assert sp.wpp("WPP.conn.getMyUserId()._serialized") == f"{BUSINESS}@c.us"
    assert sp.wpp("WPP.conn.getAuthCode()") is None
    accounts = client.get("/sim/accounts")["accounts"]
    assert [(a["phone_number"], a["online"]) for a in accounts] == [(BUSINESS, True)]
    # The same code cannot link twice.
    status, _ = client.call("POST", "/sim/link", {"qr": code["fullCode"], "phone_number": BUSINESS})
    assert status in (404, 410)


def test_link_by_pairing_code(open_page: Any, client: Any) -> None:
    sp = open_page()
    code = sp.wpp("p => WPP.conn.genLinkDeviceCodeForPhoneNumber(p)", BUSINESS)
    assert re.fullmatch(r"[1-9A-HJ-NP-TV-Z]{8}", code)
    assert sp.page.inner_text("[data-testid=pairing-code]") == f"{code[:4]}-{code[4:]}"
    # Typed on another number's phone: refused.
    status, body = client.call("POST", "/sim/link", {"pairing_code": code, "phone_number": "15559999999"})
    assert (status, body["error"]) == (409, "pairing_phone_mismatch")
    client.post("/sim/link", {"pairing_code": f"{code[:4]}-{code[4:]}".lower(), "phone_number": BUSINESS})
    sp.wait_event("conn.main_ready")
    assert sp.wpp("WPP.conn.isAuthenticated()") is True
    with pytest.raises(Exception, match=r"already authenticated"):
        sp.wpp("WPP.conn.genLinkDeviceCodeForPhoneNumber('15551234567')")


def test_unlink_from_phone_logs_out_and_shows_qr(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    mark = len(sp.events)
    client.post("/sim/unlink", {"phone_number": BUSINESS})
    sp.wait_event("conn.logout", after=mark)
    assert sp.wait_event("conn.logout_reason", after=mark) == "device_removed"
    code = sp.wait_event("conn.auth_code_change", lambda c: c is not None, after=mark)
    assert sp.wpp("WPP.conn.isAuthenticated()") is False
    assert sp.wpp("WPP.conn.getAuthCode()")["ref"] == code["ref"]
    assert sp.wpp("localStorage.getItem('WANoiseInfo')") is None
    assert client.get("/sim/accounts")["accounts"][0]["linked"] is False


def test_logout_from_page(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    assert sp.wpp("WPP.conn.logout()") is True
    assert "conn.logout" in sp.names()
    assert client.get("/sim/accounts")["accounts"][0]["devices"] == []
