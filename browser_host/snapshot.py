"""Account snapshots that keep a linked WhatsApp device: storage_state plus the captured HKDF key bytes.

WhatsApp Web keeps the linked device behind a non-extractable HKDF CryptoKey in IndexedDB
(`wawc_db_enc`/`keys`, records `{id, key, _expiration}`); `storage_state(indexed_db=True)` turns it into
`{}`. The raw bytes exist only in the page's `crypto.subtle.importKey('raw', bytes, 'HKDF', false, ...)`
call, so every account context gets KEY_CAPTURE_SCRIPT, which remembers them and, when the page stores
that CryptoKey with `IDBObjectStore.put/add`, which record (origin, database, store, primary key, field)
holds it. Each capture is pushed to Python through a binding, so it outlives reloads and new pages.

Host usage, in this order:
    context = await new_context_from_state(browser, await store.load(account_id))  # capture (+ restore)
    ...host's own init scripts and bindings, new_page, goto...
    await store.save(account_id, await capture_state(context))  # on conn.authenticated / main_ready, then
                                                               # periodically; delete on logout

Restore ordering guarantee (`restore_script`): the script runs when each document is created, before any
page script, and calls `indexedDB.open(db, version)` right then, so its request is first in the database's
connection queue. Its success handler synchronously opens a readwrite transaction on the store and keeps
it alive (chained `count()` requests) until the raw bytes are re-imported, then writes the CryptoKey and
commits. IndexedDB starts transactions with overlapping scopes in creation order, and a readwrite one
blocks all later ones, so any transaction the app creates on that store, from this page, a frame or a
worker, runs after the write; an app upgrade (versionchange) waits for our connection to close.
Limits: keys imported or stored inside a Worker are not captured (init scripts run in frames only;
WhatsApp Web does this on the main thread); a page of the same origin already open in the context when
the new document starts could read first (new contexts have none); the import gets 10 s, after which the
transaction commits without the key (the app then shows a QR, as without a snapshot). The write happens
only where the record still holds the storage_state placeholder (or the database did not exist), so
reloads after a key rotation or a logout never bring an old key back.
"""

from __future__ import annotations

import gzip
import json
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError

from browser_host.crypto import SnapshotError, SnapshotIntegrityError, SnapshotStore

__all__ = [
    "FORMAT", "FORMAT_VERSION", "KEY_BINDING", "KEY_CAPTURE_SCRIPT", "KEY_STORES", "AccountSnapshot", "CapturedKey",
    "SnapshotError", "SnapshotIntegrityError", "SnapshotStore", "capture_state", "captured_keys",
    "install_key_capture", "new_context_from_state", "restore_script",
]

FORMAT = "wagate.account-snapshot"
FORMAT_VERSION = 1
#: Page-to-Python binding through which KEY_CAPTURE_SCRIPT reports each captured key.
KEY_BINDING = "__wagateKeyMaterial"
#: (database, store) pairs known to hold WhatsApp Web's device key: a snapshot must carry their keys.
KEY_STORES: frozenset[tuple[str, str]] = frozenset({("wawc_db_enc", "keys")})


class CapturedKey(TypedDict):
    """One CryptoKey field of one IndexedDB record, with the raw bytes it was imported from."""

    origin: str
    db: str
    db_version: int
    store: str
    key_path: str | list[str] | None
    auto_increment: bool
    primary_key: Any
    field: str
    record: dict[str, Any]  # the record's other (JSON-safe) fields, used when the database is missing
    raw: str  # base64
    algorithm: str
    usages: list[str]


# Wraps SubtleCrypto.importKey and IDBObjectStore.put/add in place; results and errors pass through
# untouched (same promise, same request). Bytes are copied at call time: callers zero their buffer.
KEY_CAPTURE_SCRIPT = r"""
(() => {
  'use strict';
  const G = globalThis;
  if (G.__wagate_capture || !G.SubtleCrypto || !G.IDBObjectStore || !G.CryptoKey) return;
  Object.defineProperty(G, '__wagate_capture', { value: true });
  const raws = new WeakMap();   // CryptoKey -> {raw, usages}
  const entries = new Map();    // "db\u0000store\u0000pk\u0000field" -> CapturedKey
  Object.defineProperty(G, '__wagate_keys', { get: () => [...entries.values()], configurable: true });
  const b64 = (u8) => {
    let s = '';
    for (let i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]);
    return btoa(s);
  };
  const copy = (d) => ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice()
    : new Uint8Array(d).slice();
  const isHkdf = (a) => String(typeof a === 'string' ? a : a && a.name).toUpperCase() === 'HKDF';
  const json = (v) => { try { return JSON.parse(JSON.stringify(v)); } catch (e) { return {}; } };

  const importKey = SubtleCrypto.prototype.importKey;
  const named = (fn, name) => Object.defineProperty(fn, 'name', { value: name });
  SubtleCrypto.prototype.importKey = named(function (format, keyData, algorithm, extractable, usages) {
    const result = importKey.apply(this, arguments);
    try {
      if (format === 'raw' && isHkdf(algorithm)) {
        const found = { raw: b64(copy(keyData)), usages: Array.from(usages || []) };
        // Attached before the caller's own await, so the key is known by the time it is stored.
        result.then((key) => raws.set(key, found), () => {});
      }
    } catch (e) { /* never disturb the page */ }
    return result;
  }, 'importKey');

  const report = (entry) => {
    entries.set([entry.db, entry.store, JSON.stringify(entry.primary_key), entry.field].join('\u0000'), entry);
    try { if (typeof G.__wagateKeyMaterial === 'function') G.__wagateKeyMaterial(entry).catch(() => {}); } catch (e) {}
  };
  for (const method of ['put', 'add']) {
    const original = IDBObjectStore.prototype[method];
    IDBObjectStore.prototype[method] = named(function (value) {
      const request = original.apply(this, arguments);
      try {
        if (value && typeof value === 'object') {
          for (const name of Object.keys(value)) {
            const found = value[name] instanceof CryptoKey && raws.get(value[name]);
            if (!found) continue;
            const rest = { ...value };
            delete rest[name];
            const db = this.transaction.db;
            const base = { origin: location.origin, db: db.name, db_version: db.version, store: this.name,
              key_path: this.keyPath, auto_increment: this.autoIncrement, field: name, record: json(rest),
              raw: found.raw, algorithm: 'HKDF', usages: found.usages };
            // The result of a successful put/add is the record's primary key, whatever the key path.
            request.addEventListener('success', () => report({ ...base, primary_key: request.result }));
          }
        }
      } catch (e) { /* never disturb the page */ }
      return request;
    }, method);
  }
})();
"""

# Per-document restore; see the module docstring for the ordering argument. __KEYS__ is a JSON list.
_RESTORE_TEMPLATE = r"""
(() => {
  'use strict';
  const mine = __KEYS__.filter((k) => k.origin === location.origin);
  if (!mine.length || !globalThis.indexedDB || !globalThis.crypto || !crypto.subtle) return;
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const restore = (k) => new Promise((resolve) => {
    let key = null, failed = false, created = false, status = 'pending';
    crypto.subtle.importKey('raw', unb64(k.raw), k.algorithm, false, k.usages)
      .then((v) => { key = v; }, () => { failed = true; });
    let req;
    try { req = indexedDB.open(k.db, k.db_version); } catch (e) { return resolve('open_failed'); }
    req.onupgradeneeded = (e) => {
      // Only a missing database gets created here, with the app's own store layout.
      created = e.oldVersion === 0;
      const db = req.result;
      if (created && !db.objectStoreNames.contains(k.store)) {
        db.createObjectStore(k.store, k.key_path == null ? { autoIncrement: k.auto_increment }
          : { keyPath: k.key_path, autoIncrement: k.auto_increment });
      }
    };
    req.onerror = (e) => { e.preventDefault(); resolve('open_failed'); };
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => db.close();
      if (!db.objectStoreNames.contains(k.store)) { db.close(); return resolve('no_store'); }
      const tx = db.transaction(k.store, 'readwrite');
      const store = tx.objectStore(k.store);
      const deadline = Date.now() + 10000;
      let existing;
      const write = () => {
        if (!key) { status = failed ? 'import_failed' : 'timeout'; return; }
        const holder = existing === undefined ? (created ? { ...k.record } : null) : existing;
        if (!holder || typeof holder !== 'object') { status = 'absent'; return; }
        if (holder[k.field] instanceof CryptoKey) { status = 'kept'; return; }
        const value = { ...holder, [k.field]: key };
        if (k.key_path == null) store.put(value, k.primary_key); else store.put(value);
        status = 'restored';
      };
      // Keep the transaction alive until the import settles: later transactions on the store wait.
      const spin = () => { if (key || failed || Date.now() > deadline) write(); else store.count().onsuccess = spin; };
      store.get(k.primary_key).onsuccess = (e) => { existing = e.target.result; spin(); };
      tx.oncomplete = () => { db.close(); resolve(status); };
      tx.onabort = () => { db.close(); resolve('aborted'); };
    };
  });
  Object.defineProperty(globalThis, '__wagate_restore', { value: Promise.all(mine.map(restore)), configurable: true });
})();
"""


def restore_script(keys: Sequence[CapturedKey]) -> str:
    """An init script that puts the captured keys back into IndexedDB before the app can read them."""
    return _RESTORE_TEMPLATE.replace("__KEYS__", json.dumps(list(keys), separators=(",", ":")))


@dataclass
class AccountSnapshot:
    """The decoded snapshot document: Playwright storage state plus captured key material."""

    storage_state: dict[str, Any]
    keys: list[CapturedKey] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)

    def encode(self) -> bytes:
        """Compact gzipped JSON with a format name and version."""
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "created_at": round(self.created_at, 3),
               "storage_state": self.storage_state, "keys": self.keys}
        return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6, mtime=0)

    @classmethod
    def decode(cls, data: bytes) -> AccountSnapshot:
        """Parse `encode`'s output; SnapshotError when it is not a snapshot this code understands."""
        try:
            doc = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        except (OSError, EOFError, ValueError) as exc:
            raise SnapshotError(f"not an account snapshot: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise SnapshotError("not an account snapshot")
        if doc.get("version") != FORMAT_VERSION:
            raise SnapshotError(f"unsupported snapshot version {doc.get('version')!r}")
        return cls(storage_state=doc["storage_state"], keys=list(doc.get("keys") or []),
                   created_at=float(doc.get("created_at") or 0))


# Keys reported through the binding, per context: they survive reloads and replaced pages.
_REGISTRY: weakref.WeakKeyDictionary[BrowserContext, dict[str, CapturedKey]] = weakref.WeakKeyDictionary()


def _entry_id(key: CapturedKey) -> str:
    return json.dumps([key["origin"], key["db"], key["store"], key["primary_key"], key["field"]])


def _remember(context: BrowserContext, keys: Iterable[CapturedKey]) -> None:
    known = _REGISTRY.setdefault(context, {})
    for key in keys:
        known[_entry_id(key)] = key


async def install_key_capture(context: BrowserContext) -> None:
    """Add KEY_CAPTURE_SCRIPT and its binding to `context` (before its pages load the app)."""
    _REGISTRY.setdefault(context, {})

    def on_key(_source: Any, key: CapturedKey) -> None:
        _remember(context, [key])

    await context.expose_binding(KEY_BINDING, on_key)
    await context.add_init_script(KEY_CAPTURE_SCRIPT)


async def captured_keys(context: BrowserContext) -> list[CapturedKey]:
    """Everything captured in `context`: binding reports plus what its open pages still hold."""
    for page in context.pages:
        try:
            found = await page.evaluate("() => globalThis.__wagate_keys || []")
        except PlaywrightError:  # a crashed or closing page: the binding copy remains
            continue
        _remember(context, cast(list[CapturedKey], found))
    return list(_REGISTRY.get(context, {}).values())


def _decode_value(value: Any) -> Any:
    """Just enough of Playwright's serialised-value format to read primary keys from records."""
    if not isinstance(value, dict):
        return value
    if "o" in value:
        return {item["k"]: _decode_value(item["v"]) for item in value["o"]}
    if "a" in value:
        return [_decode_value(v) for v in value["a"]]
    for tag in ("s", "n", "b"):
        if tag in value:
            return value[tag]
    return None if value.get("v") in {"null", "undefined"} else value


def _primary_keys(store: dict[str, Any]) -> list[Any]:
    keys = []
    for record in store.get("records", []):
        if "key" in record or "keyEncoded" in record:
            keys.append(record["key"] if "key" in record else _decode_value(record["keyEncoded"]))
            continue
        value = _decode_value(record.get("valueEncoded", record.get("value")))
        path = store.get("keyPath") or ""
        for part in path.split(".") if path else []:
            value = value.get(part) if isinstance(value, dict) else None
        keys.append(value)
    return keys


def _select_keys(state: dict[str, Any], keys: list[CapturedKey]) -> list[CapturedKey]:
    """Keys whose record is in `state` (a logout drops them), with the database version as stored.

    Raises SnapshotError when a store known to hold WhatsApp's device key has records but no key was
    captured for it: such a snapshot would restore as a QR, and must not replace a good one.
    """
    present: dict[tuple[str, str, str, str], int] = {}
    for origin in state.get("origins", []):
        for db in origin.get("indexedDB") or []:
            for store in db.get("stores", []):
                for pk in _primary_keys(store):
                    present[(origin["origin"], db["name"], store["name"], json.dumps(pk))] = int(db["version"])
    selected: list[CapturedKey] = []
    for key in keys:
        where = (key["origin"], key["db"], key["store"], json.dumps(key["primary_key"]))
        if where in present:
            selected.append({**key, "db_version": present[where]})
    covered = {(k["origin"], k["db"], k["store"]) for k in selected}
    for origin_name, db_name, store_name, _pk in present:
        if (db_name, store_name) in KEY_STORES and (origin_name, db_name, store_name) not in covered:
            raise SnapshotError(f"{origin_name} {db_name}/{store_name} holds a key that was not captured "
                                "(KEY_CAPTURE_SCRIPT must be installed before the app imports it)")
    return selected


async def capture_state(context: BrowserContext) -> bytes:
    """The context's storage (IndexedDB included) and captured keys, as an encoded AccountSnapshot.

    Raises SnapshotError rather than return a snapshot that would silently lose a linked device.
    """
    state = cast(dict[str, Any], await context.storage_state(indexed_db=True))
    keys = _select_keys(state, await captured_keys(context))
    return AccountSnapshot(storage_state=state, keys=keys).encode()


async def new_context_from_state(browser: Browser, state: bytes | None, **context_kwargs: Any) -> BrowserContext:
    """A context with key capture installed and, given a snapshot, its storage and keys restored."""
    snapshot = AccountSnapshot.decode(state) if state else None
    if snapshot is not None:
        context_kwargs["storage_state"] = snapshot.storage_state
    context = await browser.new_context(**context_kwargs)
    try:
        await install_key_capture(context)
        if snapshot is not None and snapshot.keys:
            # Known before any page runs: a snapshot taken later still has them even if no page re-reports.
            _remember(context, snapshot.keys)
            await context.add_init_script(restore_script(snapshot.keys))
    except BaseException:
        await context.close()
        raise
    return context
