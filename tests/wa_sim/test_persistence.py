"""Linked-device credentials in the browser profile: what survives and what does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from browser_host.chromium import CHROMIUM_PATH, launch_args

pytestmark = pytest.mark.e2e
BUSINESS = "15551234567"

# What a browser host can do: see the HKDF key bytes at the one call that ever has them.
CAPTURE_KEY = """
const orig = crypto.subtle.importKey.bind(crypto.subtle);
crypto.subtle.importKey = (format, data, algo, extractable, usages) => {
  if (format === 'raw' && (algo === 'HKDF' || (algo && algo.name === 'HKDF'))) {
    window.__capturedKey = Array.from(new Uint8Array(data.buffer || data));
  }
  return orig(format, data, algo, extractable, usages);
};
"""
# ...and put the key back into a profile restored from storage_state(indexed_db=True).
RESTORE_KEY = """
(async (bytes) => {
  const usages = ['deriveKey', 'deriveBits'];
  const key = await crypto.subtle.importKey('raw', new Uint8Array(bytes), 'HKDF', false, usages);
  const db = await new Promise((ok, ko) => {
    const r = indexedDB.open('wawc_db_enc');
    r.onsuccess = () => ok(r.result);
    r.onerror = ko;
  });
  const tx = db.transaction('keys', 'readwrite');
  const store = tx.objectStore('keys');
  store.get(1).onsuccess = (e) => store.put({ ...e.target.result, key });
  await new Promise((ok) => { tx.oncomplete = ok; });
  db.close();
})(%s);
"""


def came_back_linked(sp: Any) -> None:
    sp.wait_event("conn.main_ready")
    assert sp.wpp("WPP.conn.isAuthenticated()") is True
    assert sp.wpp("WPP.conn.isRegistered()") is True
    assert sp.wpp("WPP.conn.getAuthCode()") is None
    assert sp.wpp("WPP.conn.getMyUserId().toString()") == f"{BUSINESS}@c.us"
    assert all(p is None for n, p in sp.events if n == "conn.auth_code_change")
    # Like wa-js: a session restored at load is not a new authentication.
    assert "conn.authenticated" not in sp.names()


def test_storage_layout_and_reload(open_page: Any, client: Any, link: Any) -> None:
    sp = open_page()
    link(sp)
    stored = sp.wpp("""async () => {
      const db = await new Promise((ok) => {
        const r = indexedDB.open('wawc_db_enc');
        r.onsuccess = () => ok(r.result);
      });
      const rec = await new Promise((ok) => {
        db.transaction('keys').objectStore('keys').get(1).onsuccess = (e) => ok(e.target.result);
      });
      const names = ['WANoiseInfo', 'WANoiseInfoIv', 'WebEncKeySalt', 'last-wid-md'];
      return { isKey: rec.key instanceof CryptoKey, algo: rec.key.algorithm.name,
               extractable: rec.key.extractable, usages: rec.key.usages,
               expires: rec._expiration > Date.now(), ls: names.map((k) => localStorage.getItem(k)) };
    }""")
    assert stored["isKey"] and stored["algo"] == "HKDF" and stored["extractable"] is False
    assert sorted(stored["usages"]) == ["deriveBits", "deriveKey"] and stored["expires"]
    assert all(stored["ls"]) and stored["ls"][3] == f'"{BUSINESS}:1@c.us"'
    assert "secret" not in stored["ls"][0]  # encrypted
    sp.events.clear()
    sp.page.reload()
    came_back_linked(sp)


def test_persistent_profile_survives_browser_restart(playwright: Any, client: Any, link: Any,
                                                     attach_page: Any, sim: Any, tmp_path: Path) -> None:
    def launch() -> Any:
        return playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM_PATH, args=launch_args(), headless=True)

    ctx = launch()
    try:
        link(attach_page(ctx, sim.url))
    finally:
        ctx.close()
    ctx = launch()
    try:
        sp = attach_page(ctx, sim.url)
        came_back_linked(sp)
        assert client.get("/sim/accounts")["accounts"][0]["online"] is True
    finally:
        ctx.close()


def test_storage_state_loses_the_key_and_shows_qr(browser: Any, open_page: Any, client: Any, link: Any,
                                                   attach_page: Any, sim: Any) -> None:
    sp = open_page()
    sp.page.context.add_init_script(CAPTURE_KEY)
    sp.page.reload()
    link(sp)
    captured = sp.wpp("window.__capturedKey")
    assert isinstance(captured, list) and len(captured) == 32
    state = sp.page.context.storage_state(indexed_db=True)
    origin = next(o for o in state["origins"] if o["origin"] == sim.url)
    assert {e["name"] for e in origin["localStorage"]} >= {"WANoiseInfo", "WANoiseInfoIv", "WebEncKeySalt"}

    restored = browser.new_context(storage_state=state)
    try:
        lost = attach_page(restored, sim.url)
        code = lost.wait_event("conn.auth_code_change", lambda c: c is not None)
        assert lost.wpp("WPP.conn.isAuthenticated()") is False
        assert lost.wpp("WPP.conn.getAuthCode()")["ref"] == code["ref"]
        assert "conn.main_ready" not in lost.names()
        assert lost.wpp("localStorage.getItem('WANoiseInfo')") is None  # stale secrets cleared
    finally:
        restored.close()

    # With the captured key bytes put back before the app starts, the same snapshot is a session.
    restored = browser.new_context(storage_state=state)
    try:
        restored.add_init_script(RESTORE_KEY % captured)
        came_back_linked(attach_page(restored, sim.url))
    finally:
        restored.close()
