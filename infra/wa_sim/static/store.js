/* wa_sim: linked-device credentials kept the way WhatsApp Web keeps them.
 *
 * A non-extractable HKDF CryptoKey lives in IndexedDB `wawc_db_enc` / `keys` as {id, key, _expiration};
 * an AES-GCM key derived from it by HKDF encrypts the device secrets in localStorage
 * (`WANoiseInfo`, `WANoiseInfoIv`, `WebEncKeySalt`; `last-wid-md` holds the device wid).
 * The HKDF key only ever comes from crypto.subtle.importKey('raw', bytes, 'HKDF', false, ...) at link
 * time: an init script that wraps importKey sees those bytes there and nowhere else. */
'use strict';
(function () {
  const S = (window.__waSim = window.__waSim || {});
  const DB = 'wawc_db_enc';
  const STORE = 'keys';
  const KEY_ID = 1;
  const LS_KEYS = ['WANoiseInfo', 'WANoiseInfoIv', 'WebEncKeySalt', 'last-wid-md'];
  const HKDF_INFO = new TextEncoder().encode('wa_sim WebEncKey');
  const KEY_LIFETIME_MS = 365 * 24 * 3600 * 1000;

  const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
  const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (bytes) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
  const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  // WhatsApp Web keeps these localStorage values JSON-encoded (quoted strings).
  const lsGet = (k) => { try { return JSON.parse(localStorage.getItem(k)); } catch (e) { return null; } };
  const lsSet = (k, v) => localStorage.setItem(k, JSON.stringify(v));

  function req(r) {
    return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  }
  async function openDb() {
    const r = indexedDB.open(DB);
    r.onupgradeneeded = () => {
      if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE, { keyPath: 'id' });
    };
    const db = await req(r);
    if (db.objectStoreNames.contains(STORE)) return db;
    // A restored profile may carry the database without our store: add it in a new version.
    const version = db.version + 1;
    db.close();
    const up = indexedDB.open(DB, version);
    up.onupgradeneeded = () => up.result.createObjectStore(STORE, { keyPath: 'id' });
    return req(up);
  }
  async function withStore(mode, fn) {
    const db = await openDb();
    try {
      const tx = db.transaction(STORE, mode);
      const result = await req(fn(tx.objectStore(STORE)));
      await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); tx.onabort = () => reject(tx.error); });
      return result;
    } finally {
      db.close();
    }
  }

  function deriveAes(key, salt) {
    return crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt, info: HKDF_INFO }, key,
      { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  }

  /** Persist {wid, deviceId, secret, pushName} behind a fresh non-extractable key. */
  async function save(creds) {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    // Looked up at call time on purpose: a capture hook installed by an init script must see this call.
    const key = await window.crypto.subtle.importKey('raw', raw, 'HKDF', false, ['deriveKey', 'deriveBits']);
    raw.fill(0);
    const salt = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const aes = await deriveAes(key, salt);
    const plain = new TextEncoder().encode(JSON.stringify(creds));
    const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, plain);
    // IndexedDB first: it survives a browser kill better than localStorage.
    await withStore('readwrite', (s) => s.put({ id: KEY_ID, key, _expiration: Date.now() + KEY_LIFETIME_MS }));
    lsSet('WebEncKeySalt', b64(salt));
    lsSet('WANoiseInfoIv', b64(iv));
    lsSet('WANoiseInfo', b64(ct));
    lsSet('last-wid-md', `${creds.wid.split('@')[0]}:${creds.deviceId}@c.us`);
  }

  /** {status: 'ok', creds} | {status: 'empty'} | {status: 'no_key' | 'corrupt', reason}. */
  async function load() {
    const [info, iv, salt] = ['WANoiseInfo', 'WANoiseInfoIv', 'WebEncKeySalt'].map(lsGet);
    let record = null;
    try {
      record = await withStore('readonly', (s) => s.get(KEY_ID));
    } catch (e) {
      return { status: 'corrupt', reason: `indexeddb: ${e}` };
    }
    if (!info && !iv && !salt && !record) return { status: 'empty' };
    // What storage_state(indexed_db=True) restores is a plain {} here: no key, no session.
    if (!record || !(record.key instanceof CryptoKey)) return { status: 'no_key', reason: 'CryptoKey missing' };
    if (record._expiration && record._expiration < Date.now()) return { status: 'no_key', reason: 'key expired' };
    if (!info || !iv || !salt) return { status: 'corrupt', reason: 'localStorage secrets missing' };
    try {
      const aes = await deriveAes(record.key, unb64(salt));
      const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(iv) }, aes, unb64(info));
      return { status: 'ok', creds: JSON.parse(new TextDecoder().decode(plain)) };
    } catch (e) {
      return { status: 'corrupt', reason: `decrypt: ${e}` };
    }
  }

  async function clear() {
    for (const k of LS_KEYS) localStorage.removeItem(k);
    try { await withStore('readwrite', (s) => s.clear()); } catch (e) { console.warn('[wa_sim] clear keys', e); }
  }

  /** HMAC-SHA256(device secret, server nonce): proves the device without sending the secret. */
  async function prove(secretHex, nonceHex) {
    const k = await crypto.subtle.importKey('raw', unhex(secretHex), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return hex(await crypto.subtle.sign('HMAC', k, unhex(nonceHex)));
  }

  S.store = { save, load, clear, prove, b64, hex, DB, STORE, KEY_ID, LS_KEYS };
})();
