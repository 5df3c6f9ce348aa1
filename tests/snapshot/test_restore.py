"""A linked wa_sim account survives capture -> encrypt -> S3 -> decrypt -> restore, in any browser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from browser_host.crypto import SnapshotStore
from browser_host.snapshot import (
    AccountSnapshot,
    SnapshotError,
    capture_state,
    new_context_from_state,
    restore_script,
)
from infra.wa_sim import WaSimServer
from tests.snapshot.conftest import BUSINESS, CONTACT, Runner, launch, link, open_sim, shown_auth_code, sim_call

pytestmark = pytest.mark.e2e
ACCOUNT = "acc_snapshot_e2e"


@pytest.fixture(scope="module")
def saved(browser: Any, sim: WaSimServer, run: Runner, store: SnapshotStore) -> Iterator[bytes]:
    """Link the business number in context A, reload, capture, and save the snapshot to S3."""
    sim.reset()

    async def scenario() -> bytes:
        ctx = await new_context_from_state(browser, None)
        try:
            page = await open_sim(ctx, sim.url)
            await link(page, sim)
            # WhatsApp Web reloads itself: what was captured at link time must outlive the document.
            await page.reload()
            await page.wait_for_function("window.WPP && WPP.isFullReady && WPP.conn.isMainReady()")
            assert await page.evaluate("globalThis.__wagate_keys") == []
            return await capture_state(ctx)
        finally:
            await ctx.close()

    state = run(scenario())
    store.save(ACCOUNT, state)
    yield state
    store.delete(ACCOUNT)


@pytest.fixture(scope="module")
def store(aws: dict[str, Any]) -> SnapshotStore:
    return SnapshotStore(aws["s3"], aws["kms"], aws["bucket"], aws["key_id"])


async def restored_and_talking(browser: Any, state: bytes, sim: WaSimServer, text: str) -> bytes:
    """Restore `state` in `browser`, check it is linked and exchanges messages, return a new capture."""
    ctx = await new_context_from_state(browser, state)
    try:
        page = await open_sim(ctx, sim.url)
        assert await page.evaluate("globalThis.__wagate_restore") == ["restored"]
        assert await page.evaluate("WPP.conn.isAuthenticated()") is True
        assert await page.evaluate("WPP.conn.getAuthCode()") is None  # no QR
        await page.wait_for_function("WPP.conn.isMainReady()", polling=50)
        assert await page.evaluate("WPP.conn.getMyUserId().toString()") == f"{BUSINESS}@c.us"
        # The contact and the restored page reach each other.
        sim_call(sim, "POST", f"/sim/contacts/{CONTACT}/send", {"to": BUSINESS, "text": f"ping {text}"})
        await page.wait_for_function("(t) => window.__inbound.includes(t)", arg=f"ping {text}", polling=50)
        sent = await page.evaluate("([to, t]) => WPP.chat.sendTextMessage(to, t)", [f"{CONTACT}@c.us", f"pong {text}"])
        assert sent["ack"] >= 1
        received = sim_call(sim, "GET", f"/sim/contacts/{CONTACT}/messages")["messages"]
        assert f"pong {text}" in [m["body"] for m in received]
        return await capture_state(ctx)
    finally:
        await ctx.close()


def test_restore_in_the_same_browser(browser: Any, sim: WaSimServer, run: Runner, store: SnapshotStore,
                                     saved: bytes) -> None:
    # Given the snapshot read back from S3
    state = store.load(ACCOUNT)
    assert state == saved and len(AccountSnapshot.decode(state).keys) == 1
    # Then a new context in the same browser comes back linked, and can be snapshotted again
    again = run(restored_and_talking(browser, state, sim, "same browser"))
    assert AccountSnapshot.decode(again).keys[0]["raw"] == AccountSnapshot.decode(state).keys[0]["raw"]


def test_restore_in_a_new_browser(pw: Any, sim: WaSimServer, run: Runner, store: SnapshotStore,
                                  saved: bytes) -> None:
    # Given another browser process (another host taking the account over)
    other = run(launch(pw))
    try:
        state = store.load(ACCOUNT)
        assert state is not None
        run(restored_and_talking(other, state, sim, "new browser"))
    finally:
        run(other.close())


def test_without_the_key_material_the_account_needs_a_new_qr(browser: Any, sim: WaSimServer, run: Runner,
                                                              saved: bytes) -> None:
    # Given the same snapshot minus the captured key bytes (what storage_state alone gives)
    bare = AccountSnapshot.decode(saved)
    bare.keys = []

    async def scenario() -> None:
        ctx = await new_context_from_state(browser, bare.encode())
        try:
            page = await open_sim(ctx, sim.url)
            await shown_auth_code(page)
            assert await page.evaluate("WPP.conn.isAuthenticated()") is False
        finally:
            await ctx.close()

    run(scenario())


def test_capture_refuses_a_context_without_key_capture(browser: Any, sim: WaSimServer, run: Runner,
                                                       saved: bytes) -> None:
    # A context made without new_context_from_state/install_key_capture cannot give a usable snapshot:
    # failing beats overwriting a good one with a snapshot that restores as a QR.
    async def scenario() -> None:
        ctx = await browser.new_context()
        try:
            await link(await open_sim(ctx, sim.url), sim, phone="15557654321")
            with pytest.raises(SnapshotError, match="not captured"):
                await capture_state(ctx)
        finally:
            await ctx.close()

    run(scenario())


# The app's first script reads the key record at once (far earlier than the sim or WhatsApp Web do).
EAGER_PAGE = """<!doctype html><script>
window.__eager = new Promise((ok) => {
  const r = indexedDB.open('wawc_db_enc');
  r.onsuccess = () => r.result.transaction('keys').objectStore('keys').get(1).onsuccess =
    (e) => ok(!!e.target.result && e.target.result.key instanceof CryptoKey);
});
</script>"""
SLOW_IMPORT = """(() => { const orig = SubtleCrypto.prototype.importKey;
  SubtleCrypto.prototype.importKey = function () {
    return orig.apply(this, arguments).then((k) => new Promise((ok) => setTimeout(() => ok(k), 300)));
  }; })();"""
# The obvious restore (import, then open and write): correct only when the import is fast enough.
NAIVE_RESTORE = """(async () => {
  const k = %s[0];
  const key = await crypto.subtle.importKey('raw', Uint8Array.from(atob(k.raw), (c) => c.charCodeAt(0)),
                                            'HKDF', false, k.usages);
  const r = indexedDB.open(k.db);
  r.onsuccess = () => { const s = r.result.transaction('keys', 'readwrite').objectStore('keys');
                        s.get(1).onsuccess = (e) => s.put({ ...e.target.result, key }); };
})();"""


@pytest.mark.parametrize("restore", ["ours", "naive"])
def test_an_eager_reader_waits_for_the_restored_key(browser: Any, sim: WaSimServer, run: Runner, saved: bytes,
                                                    restore: str) -> None:
    # Given a restored context whose key import takes 300 ms, and a page that reads the key immediately
    snap = AccountSnapshot.decode(saved)

    async def scenario() -> bool:
        ctx = await browser.new_context(storage_state=snap.storage_state)
        try:
            await ctx.add_init_script(SLOW_IMPORT)
            await ctx.add_init_script(restore_script(snap.keys) if restore == "ours"
                                      else NAIVE_RESTORE % json.dumps(snap.keys))
            await ctx.route(sim.url + "/eager", lambda route: route.fulfill(body=EAGER_PAGE, content_type="text/html"))
            page = await ctx.new_page()
            await page.goto(sim.url + "/eager")
            return bool(await page.evaluate("window.__eager"))
        finally:
            await ctx.close()

    # Then with our restore script the read sees the CryptoKey; the naive one loses the race (control)
    assert run(scenario()) is (restore == "ours")


def test_the_capture_script_is_transparent_to_the_page(browser: Any, sim: WaSimServer, run: Runner) -> None:
    # The wrapped APIs keep their names, arity, results and errors.
    async def scenario() -> Any:
        ctx = await new_context_from_state(browser, None)
        try:
            page = await open_sim(ctx, sim.url)
            return await page.evaluate("""async () => {
              const s = crypto.subtle;
              const err = await s.importKey('raw', new Uint8Array(32), 'HKDF', true, ['deriveKey'])
                .then(() => 'no error', (e) => e.name);
              const key = await s.importKey('raw', new Uint8Array(32), { name: 'HKDF' }, false, ['deriveBits']);
              const db = await new Promise((ok) => {
                const r = indexedDB.open('other');
                r.onsuccess = () => ok(r.result);
                r.onupgradeneeded = () => r.result.createObjectStore('s');
              });
              const put = db.transaction('s', 'readwrite').objectStore('s').put({ key, n: 1 }, 'k');
              await new Promise((ok) => { put.onsuccess = ok; });
              const [c] = globalThis.__wagate_keys;
              return { name: s.importKey.name, length: s.importKey.length, putName: IDBObjectStore.prototype.put.name,
                       err, key: key instanceof CryptoKey && key.extractable === false,
                       request: put instanceof IDBRequest && put.result === 'k',
                       captured: [c.db, c.store, c.key_path, c.primary_key, c.field, c.record, c.usages] };
            }""")
        finally:
            await ctx.close()

    assert run(scenario()) == {"name": "importKey", "length": 5, "putName": "put", "err": "SyntaxError",
                               "key": True, "request": True,
                               "captured": ["other", "s", None, "k", "key", {"n": 1}, ["deriveBits"]]}
