/* wa_sim: window.WPP with the names, argument and return shapes of @wppconnect/wa-js 4.6.0.
 * The behaviour lives in app.js (the simulated WhatsApp Web client); this file is the contract. */
'use strict';
(function () {
  const S = (window.__waSim = window.__waSim || {});

  /** EventEmitter2-like emitter (no wildcards), as wa-js exposes on WPP / WPP.ev. */
  class Emitter {
    constructor() { this._l = new Map(); this._any = []; this._max = 10; }
    _add(ev, fn, times, prepend) {
      if (typeof fn !== 'function') throw new TypeError('listener must be a function');
      const list = this._l.get(ev) || [];
      const entry = { fn, times };
      prepend ? list.unshift(entry) : list.push(entry);
      this._l.set(ev, list);
      return this;
    }
    on(ev, fn) { return this._add(ev, fn, Infinity, false); }
    addListener(ev, fn) { return this.on(ev, fn); }
    prependListener(ev, fn) { return this._add(ev, fn, Infinity, true); }
    once(ev, fn) { return this._add(ev, fn, 1, false); }
    prependOnceListener(ev, fn) { return this._add(ev, fn, 1, true); }
    many(ev, n, fn) { return this._add(ev, fn, n, false); }
    prependMany(ev, n, fn) { return this._add(ev, fn, n, true); }
    off(ev, fn) {
      const list = this._l.get(ev);
      if (list) {
        const i = list.findIndex((e) => e.fn === fn);
        if (i >= 0) list.splice(i, 1);
      }
      return this;
    }
    removeListener(ev, fn) { return this.off(ev, fn); }
    removeAllListeners(ev) { ev === undefined ? this._l.clear() : this._l.delete(ev); return this; }
    onAny(fn) { this._any.push(fn); return this; }
    prependAny(fn) { this._any.unshift(fn); return this; }
    offAny(fn) { this._any = this._any.filter((f) => f !== fn); return this; }
    listenersAny() { return this._any.slice(); }
    listeners(ev) { return (this._l.get(ev) || []).map((e) => e.fn); }
    listenerCount(ev) {
      if (ev === undefined) return [...this._l.values()].reduce((n, l) => n + l.length, 0);
      return (this._l.get(ev) || []).length;
    }
    hasListeners(ev) { return this.listenerCount(ev) > 0; }
    eventNames() { return [...this._l.keys()].filter((k) => this._l.get(k).length); }
    setMaxListeners(n) { this._max = n; }
    getMaxListeners() { return this._max; }
    _call(ev, args) {
      const out = [];
      const list = this._l.get(ev) || [];
      for (const entry of list.slice()) {
        if (--entry.times <= 0) this.off(ev, entry.fn);
        // A throwing listener must not stop the simulator (nor the other listeners).
        try { out.push(entry.fn(...args)); } catch (e) { console.error(`[wa_sim] listener of ${ev}`, e); }
      }
      for (const fn of this._any.slice()) {
        try { fn(ev, ...args); } catch (e) { console.error('[wa_sim] onAny listener', e); }
      }
      return { had: list.length > 0, out };
    }
    emit(ev, ...args) { return this._call(ev, args).had; }
    emitAsync(ev, ...args) { return Promise.all(this._call(ev, args).out); }
    waitFor(ev, opt) {
      const o = typeof opt === 'number' ? { timeout: opt } : typeof opt === 'function' ? { filter: opt } : opt || {};
      return new Promise((resolve, reject) => {
        let timer = null;
        const fn = (...args) => {
          if (o.filter && !o.filter(...args)) return;
          this.off(ev, fn);
          if (timer) clearTimeout(timer);
          resolve(args);
        };
        this.on(ev, fn);
        if (o.timeout) timer = setTimeout(() => { this.off(ev, fn); reject(new Error('timeout')); }, o.timeout);
      });
    }
  }

  class WPPError extends Error {
    constructor(code, message, extra) {
      super(message);
      this.name = 'WPPError';
      this.code = code;
      Object.assign(this, extra || {});
    }
  }

  /** Wid: `15551234567@c.us`, `15551234567:3@c.us` for a device. */
  class Wid {
    constructor(id) {
      const [userPart, server] = String(id).split('@');
      const [user, device] = userPart.split(':');
      this.server = server;
      this.user = user;
      if (device !== undefined) this.device = Number(device);
      this._serialized = String(id);
    }
    toString() { return this._serialized; }
    toJSON() { return this._serialized; }
    toJid() { return this._serialized; }
    equals(w) { return !!w && (typeof w === 'string' ? w : w._serialized) === this._serialized; }
    isUser() { return this.server === 'c.us'; }
    isGroup() { return this.server === 'g.us'; }
    isLid() { return this.server === 'lid'; }
    isBroadcast() { return this.server === 'broadcast'; }
    isNewsletter() { return this.server === 'newsletter'; }
    isServer() { return false; }
    isCompanion() { return this.device !== undefined && this.device > 0; }
    getDeviceId() { return this.device || 0; }
  }

  /** MsgKey: `_serialized` is `${fromMe}_${remote}_${id}`. */
  class MsgKey {
    constructor(o) {
      this.fromMe = !!o.fromMe;
      this.remote = o.remote instanceof Wid ? o.remote : new Wid(String(o.remote));
      this.id = o.id;
      this.participant = o.participant;
      this._serialized = `${this.fromMe}_${this.remote._serialized}_${this.id}`;
    }
    toString() { return this._serialized; }
    equals(k) { return !!k && String(k._serialized || k) === this._serialized; }
    clone() { return new MsgKey(this); }
    static fromString(s) {
      const [fromMe, remote, ...rest] = String(s).split('_');
      return new MsgKey({ fromMe: fromMe === 'true', remote: new Wid(remote), id: rest.join('_') });
    }
    static async newId() { return S.newMessageId(); }
  }

  /** The fields of WhatsApp's MsgModel that a text message has. */
  class MsgModel {
    constructor(a) { Object.assign(this, a); }
    get attributes() { return this.serialize(); }
    serialize() { return { ...this }; }
    toJSON() { return { ...this }; }
  }

  const SERVERS = { 'c.us': 'c.us', 's.whatsapp.net': 'c.us', 'g.us': 'g.us', lid: 'lid', broadcast: 'broadcast', newsletter: 'newsletter' };

  /** Like WPP.util.createWid: undefined for anything that is not a wid. */
  function createWid(v) {
    if (!v) return undefined;
    if (typeof v === 'object' && typeof v._serialized === 'string') v = v._serialized;
    if (typeof v !== 'string') return undefined;
    if (/^\d+$/.test(v)) return new Wid(`${v}@c.us`);
    if (/^\d+-\d+$/.test(v)) return new Wid(`${v}@g.us`);
    const m = /^(\d+(?:-\d+)?)(?::(\d+))?@([a-z.]+)$/.exec(v);
    if (!m || !SERVERS[m[3]]) return undefined;
    return new Wid(`${m[1]}${m[2] ? `:${m[2]}` : ''}@${SERVERS[m[3]]}`);
  }

  function assertWid(id) {
    const wid = createWid(id);
    if (!wid) {
      const err = new WPPError('invalid_wid', `Invalid WID value for ${id}`);
      err.id = id;
      throw err;
    }
    return wid;
  }

  const ev = new Emitter();
  Object.assign(S, { Emitter, WPPError, Wid, MsgKey, MsgModel, createWid, assertWid, ev });
  const core = () => {
    if (!S.core) throw new WPPError('not_ready', 'WPP is not ready yet');
    return S.core;
  };
  // Async calls made before the client booted wait for it instead of failing.
  S.booted = new Promise((resolve) => { S.resolveBooted = resolve; });
  const later = (fn) => async (...args) => { await S.booted; return fn(...args); };

  const loader = {
    loaderType: 'unknown',
    get isInjected() { return !!S.injected; },
    get isReady() { return !!S.ready; },
    get isFullReady() { return !!S.fullReady; },
    onInjected(fn, delay = 0) { S.injected ? setTimeout(fn, delay) : ev.once('loader.injected', () => setTimeout(fn, delay)); },
    onReady(fn, delay = 0) { S.ready ? setTimeout(fn, delay) : ev.once('loader.ready', () => setTimeout(fn, delay)); },
    onFullReady(fn, delay = 0) { S.fullReady ? setTimeout(fn, delay) : ev.once('loader.full_ready', () => setTimeout(fn, delay)); },
  };

  const conn = {
    isAuthenticated: () => !!S.core && core().state.authenticated,
    isMainReady: () => !!S.core && core().state.mainReady,
    isMainLoaded: () => !!S.core && core().state.mainReady,
    isMainInit: () => !!S.core,
    isRegistered: () => !!S.core && core().state.registered,
    isOnline: () => !!S.core && core().state.online,
    isIdle: () => !!S.core && core().state.stage === 'idle',
    getStreamData: () => (S.core ? core().getStreamData() : { mode: 'QR', info: undefined }),
    isMultiDevice: () => true,
    needsUpdate: () => false,
    getAuthCode: later(() => core().getAuthCode()),
    refreshQR: later(() => core().refreshQR()),
    genLinkDeviceCodeForPhoneNumber: later((phone, sendPushNotification = true) =>
      core().genLinkDeviceCode(phone, sendPushNotification)),
    logout: later(() => core().logout()),
    getMyUserId: () => (S.core ? core().state.me || undefined : undefined),
    getMyUserWid: () => (S.core ? core().state.me || undefined : undefined),
    getMyDeviceId: () => {
      const st = S.core && core().state;
      return st && st.me ? new Wid(`${st.me.user}:${st.deviceId}@c.us`) : undefined;
    },
    getPlatform: () => 'web',
  };

  const M = () => S.messages; // messages.js
  const chat = {
    sendTextMessage: later((chatId, content, options) => core().sendTextMessage(chatId, content, options || {})),
    sendFileMessage: later((chatId, content, options) => M().sendFile(chatId, content, options || {})),
    sendLocationMessage: later((chatId, options) => M().sendLocation(chatId, options || {})),
    sendVCardContactMessage: later((chatId, contacts, options) => M().sendVCard(chatId, contacts, options || {})),
    sendCreatePollMessage: later((chatId, name, choices, options) => M().sendPoll(chatId, name, choices, options || {})),
    sendReactionToMessage: later((messageId, reaction) => M().sendReaction(messageId, reaction)),
    editMessage: later((msgId, newText, options) => M().edit(msgId, newText, options || {})),
    deleteMessage: later((chatId, ids, deleteMediaInDevice = false, revoke = false) =>
      M().deleteMessage(chatId, ids, deleteMediaInDevice, revoke)),
    downloadMedia: later((id) => M().downloadMedia(id)),
    markIsRead: later((chatId) => core().markIsRead(chatId)),
    markIsComposing: later((chatId, duration) => core().markIsComposing(chatId, duration)),
    markIsPaused: later((chatId) => core().markIsPaused(chatId)),
    get: (chatId) => (S.core ? core().getChat(chatId) : undefined),
    getMessageById: later((id) => M().getMessageById(id)),
  };

  const contact = {
    queryExists: later((contactId) => M().queryExists(contactId)),
    queryWidExists: later((contactId) => M().queryExists(contactId)),
    getPnLidEntry: later((contactId) => M().getPnLidEntry(contactId)),
  };

  const emitterApi = {};
  for (const name of ['on', 'once', 'off', 'many', 'emit', 'emitAsync', 'waitFor', 'addListener', 'removeListener',
    'removeAllListeners', 'prependListener', 'prependOnceListener', 'prependMany', 'onAny', 'offAny', 'prependAny',
    'listenersAny', 'listeners', 'listenerCount', 'hasListeners', 'eventNames', 'setMaxListeners', 'getMaxListeners']) {
    emitterApi[name] = (...args) => ev[name](...args);
  }

  const WPP = {
    ...emitterApi,
    ev,
    loader,
    webpack: loader, // the pre-4.x name of WPP.loader, kept for older callers
    conn,
    chat,
    contact,
    util: { createWid, WPPError },
    whatsapp: { Wid, MsgKey, MsgModel },
    version: '4.6.0',
    supportedWhatsappWeb: '>= 2.3000.0',
    license: 'Apache-2.0',
    simulator: { name: 'wa_sim', protocol: 1 },
  };
  for (const k of ['isInjected', 'isReady', 'isFullReady']) {
    Object.defineProperty(WPP, k, { enumerable: true, get: () => loader[k] });
  }
  window.WPP = WPP;
})();
