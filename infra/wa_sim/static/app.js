/* wa_sim: the simulated WhatsApp Web client behind window.WPP (state, socket, protocol). */
'use strict';
(function () {
  const S = window.__waSim;
  const { Wid, MsgKey, MsgModel, WPPError, assertWid, ev, store } = S;
  const RECONNECT_MS = 500;
  const CLOSE_REPLACED = 4002; // the server closed this connection for a newer login of the device
  const ACK = { FAILED: -1, CLOCK: 0, SENT: 1, RECEIVED: 2, READ: 3 };
  const CONFLICT_MESSAGE = 'WhatsApp is open on another computer or browser. Click "Use here" to use WhatsApp in this window.';
  const conflictError = () => new WPPError('conflict', CONFLICT_MESSAGE, { streamMode: 'CONFLICT' });

  const state = {
    stage: 'boot', // boot | qr | idle | pairing | main
    authenticated: false, registered: false, mainReady: false, online: false,
    conflict: false, streamMode: 'QR', // StreamMode: QR | MAIN | CONFLICT
    me: null, deviceId: null, pushName: null, creds: null,
    authCode: null, pairingCode: null, pairingPhone: null,
    chats: new Map(), msgs: new Map(), outbox: new Map(), seenFids: new Set(),
  };
  const reqs = new Map(); // req id -> {frame, needsLogin, resolve, reject}
  let ws = null, nonce = null, reqSeq = 0, onlineWaiters = [];
  let inbox = Promise.resolve(); // frames are handled one after the other, in order

  const rand = (n) => crypto.getRandomValues(new Uint8Array(n));
  S.newMessageId = () => `3EB0${store.hex(rand(8)).toUpperCase()}`;
  // Per-browser keys shown in the QR (WhatsApp: noise static key, identity key, ADV secret).
  const qrKeys = [store.b64(rand(32)), store.b64(rand(32)), store.b64(rand(32))];
  const render = () => S.ui && S.ui.render(state);

  // -- socket ----------------------------------------------------------------------------------
  function connect() {
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    ws.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      inbox = inbox.then(() => handle(frame)).catch((err) => console.error('[wa_sim] frame', err));
    };
    ws.onclose = (e) => {
      ws = null;
      nonce = null;
      if (e.code === CLOSE_REPLACED) enterConflict();
      setOnline(false);
      // Replaced by a newer login: stay down (no ping-pong) until "Use here" or a reload.
      if (!state.conflict) setTimeout(connect, RECONNECT_MS);
    };
  }
  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }
  function request(frame, needsLogin) {
    const req = `r${++reqSeq}`;
    const full = { ...frame, req };
    return new Promise((resolve, reject) => {
      reqs.set(req, { frame: full, needsLogin, resolve, reject });
      if (needsLogin ? state.online : nonce) send(full);
    });
  }
  function resend(needsLogin) {
    for (const r of reqs.values()) if (r.needsLogin === needsLogin) send(r.frame);
  }
  function settle(frame, ok) {
    const r = reqs.get(frame.req);
    if (!r) return;
    reqs.delete(frame.req);
    ok ? r.resolve(frame) : r.reject(new WPPError(frame.code || 'error', frame.message || 'request failed'));
  }
  function setOnline(online) {
    if (state.online === online) return;
    state.online = online;
    ev.emit('conn.online', online);
    if (online) onlineWaiters.splice(0).forEach((w) => w.resolve());
    render();
  }
  const whenOnline = () => {
    if (state.online) return Promise.resolve();
    if (state.conflict) return Promise.reject(conflictError());
    return new Promise((resolve, reject) => onlineWaiters.push({ resolve, reject }));
  };
  function setStreamMode(mode) {
    if (state.streamMode === mode) return;
    state.streamMode = mode;
    ev.emit('conn.stream_mode_changed', mode);
  }

  /** Another page logged in with this device: WhatsApp Web's "conflict" (WhatsApp is open elsewhere). */
  function enterConflict() {
    if (state.conflict || !state.authenticated) return;
    state.conflict = true;
    setStreamMode('CONFLICT');
    setOnline(false);
    // What the server did not take before the conflict fails now instead of waiting forever.
    for (const item of state.outbox.values()) {
      item.msg.ack = ACK.FAILED;
      item.resolve({ messageSendResult: 'ERROR_NETWORK' });
    }
    state.outbox.clear();
    for (const [id, r] of reqs) {
      if (r.needsLogin) { reqs.delete(id); r.reject(conflictError()); }
    }
    onlineWaiters.splice(0).forEach((w) => w.reject(conflictError()));
    render();
  }

  /** "Use here": log in again in this window, which replaces the other one. */
  function takeover() {
    if (!state.conflict) return false;
    state.conflict = false;
    if (ws) {
      // The replaced socket may not have closed yet: forget it, its close must not count.
      const old = ws;
      old.onclose = old.onmessage = null;
      old.close();
      ws = nonce = null;
    }
    connect();
    render();
    return true;
  }

  // -- frames from the network -------------------------------------------------------------------
  async function handle(f) {
    switch (f.type) {
      case 'challenge':
        nonce = f.nonce;
        if (state.creds) {
          send({ type: 'login', wid: state.creds.wid, device_id: state.creds.deviceId,
            proof: await store.prove(state.creds.secret, nonce) });
        } else if (state.stage === 'pairing' && ![...reqs.values()].some((r) => r.frame.type === 'pair_request')) {
          // The server forgets a pairing code with its connection: show a QR again, like an expired code.
          Object.assign(state, { stage: 'qr', pairingCode: null, pairingPhone: null });
          send({ type: 'qr_request' });
        } else if (state.stage === 'qr' || state.stage === 'boot') {
          send({ type: 'qr_request' });
        }
        resend(false);
        return;
      case 'ref': return onRef(f.ref);
      case 'qr_idle':
        state.stage = 'idle';
        state.authCode = null;
        ev.emit('conn.qrcode_idle');
        return render();
      case 'pair_code': return settle(f, true);
      case 'exists_result': return settle(f, true);
      case 'done': return settle(f, true);
      case 'error': return settle(f, false);
      case 'paired': return onPaired(f);
      case 'login_ok': return onLoginOk(f);
      case 'login_failed': return onLogout(f.reason);
      case 'logout': return onLogout(f.reason);
      case 'probe': send({ type: 'probe_ack', id: f.id }); return undefined;
      case 'conflict': return enterConflict();
      case 'message': return S.messages.onMessage(f);
      case 'reaction': case 'edit': case 'revoke': case 'vote': return S.messages.onProtocol(f);
      case 'receipt': return onReceipt(f);
      case 'send_ack': return onSendResult(f.id, ACK.SENT, { messageSendResult: 'OK', t: f.t });
      case 'send_error': return onSendResult(f.id, ACK.FAILED, { messageSendResult: 'ERROR_UNKNOWN' });
      default: return undefined;
    }
  }

  function onRef(ref) {
    state.stage = 'qr';
    const [staticKeyPair, identityKeyPair, secretKey] = qrKeys;
    const fullCode = [ref, staticKeyPair, identityKeyPair, secretKey].join(',');
    state.authCode = { type: 'multidevice', ref, staticKeyPair, identityKeyPair, secretKey, fullCode };
    send({ type: 'auth_code', ref, full_code: fullCode });
    ev.emit('conn.auth_code_change', state.authCode);
    render();
  }

  async function onPaired(f) {
    const creds = { wid: f.wid, deviceId: f.device_id, secret: f.secret, pushName: f.push_name };
    // Persist before announcing, so a profile snapshot taken on conn.authenticated has the session.
    await store.save(creds);
    setCreds(creds);
    state.authCode = null;
    state.pairingCode = null;
    ev.emit('conn.auth_code_change', null);
    ev.emit('conn.authenticated');
    await onLoginOk(f);
  }

  function setCreds(creds) {
    state.creds = creds;
    state.registered = state.authenticated = true;
    state.me = new Wid(creds.wid);
    state.deviceId = creds.deviceId;
    state.pushName = creds.pushName;
  }

  async function onLoginOk(f) {
    state.stage = 'main';
    if (f.push_name) state.pushName = f.push_name;
    if (!state.mainReady) {
      ev.emit('conn.main_loaded');
      setStreamMode('MAIN');
      state.mainReady = true;
      ev.emit('conn.main_ready');
    } else {
      setStreamMode('MAIN'); // back from CONFLICT after "Use here"
    }
    setOnline(true);
    resend(true);
    // WhatsApp Web's offline queue: what was written while disconnected goes out now, in order.
    for (const item of state.outbox.values()) send(item.frame);
    render();
  }

  async function onLogout(reason) {
    const wasAuthenticated = state.authenticated;
    const wasReplaced = state.conflict;
    await store.clear();
    Object.assign(state, { creds: null, me: null, deviceId: null, pushName: null, registered: false,
      authenticated: false, mainReady: false, authCode: null, pairingCode: null, stage: 'qr',
      conflict: false, streamMode: 'QR' });
    state.chats.clear();
    state.msgs.clear();
    S.messages.clear();
    for (const item of state.outbox.values()) item.resolve({ messageSendResult: 'ERROR_CANCELLED' });
    state.outbox.clear();
    if (wasAuthenticated) {
      ev.emit('conn.logout');
      ev.emit('conn.logout_reason', reason || 'unknown');
    }
    ev.emit('conn.require_auth');
    setOnline(false);
    // Logged out while replaced (no reconnect pending): back on the network to show a QR.
    if (wasReplaced && !ws) connect();
    else send({ type: 'qr_request' });
    render();
  }

  // -- chats and messages -----------------------------------------------------------------------
  function chatFor(wid, name) {
    let c = state.chats.get(wid._serialized);
    if (!c) {
      c = { id: wid, name: name || `+${wid.user}`, unreadCount: 0, msgs: [], t: 0 };
      state.chats.set(wid._serialized, c);
      ev.emit('chat.new_chat', c);
    }
    return c;
  }
  function addMsg(chat, msg) {
    chat.msgs.push(msg);
    chat.t = msg.t;
    state.msgs.set(msg.id._serialized, msg);
  }

  function onReceipt(f) {
    const chat = S.createWid(f.chat);
    const ids = f.ids.map((id) => new MsgKey({ fromMe: true, remote: chat, id }));
    let changed = false;
    for (const k of ids) {
      const msg = state.msgs.get(k._serialized);
      if (msg && msg.ack < f.ack) { msg.ack = f.ack; changed = true; }
    }
    if (changed || !state.seenFids.has(f.fid)) ev.emit('chat.msg_ack_change', { ack: f.ack, chat, sender: undefined, ids });
    state.seenFids.add(f.fid);
    send({ type: 'got', fid: f.fid });
    render();
  }

  function onSendResult(id, ack, result) {
    const item = [...state.outbox.values()].find((o) => o.msg.id.id === id);
    if (!item) return;
    state.outbox.delete(item.msg.id._serialized);
    item.msg.ack = ack;
    if (ack === ACK.SENT) ev.emit('chat.msg_ack_change', { ack, chat: item.msg.to, ids: [item.msg.id] });
    item.resolve(result);
    render();
  }

  async function findChat(wid) {
    const known = state.chats.get(wid._serialized);
    if (known) return known;
    if (!wid.isUser() && !wid.isLid()) throw new WPPError('chat_not_found', `Chat not found for ${wid}`, { id: wid });
    // A new contact needs the server (a USync query in WhatsApp), so this waits for the network.
    await whenOnline();
    const res = await request({ type: 'exists', wid: wid._serialized }, true);
    if (!res.exists) throw new WPPError('chat_not_found', `Failed to find or create chat for ${wid}`, { id: wid });
    return chatFor(wid);
  }

  function requireAuth() {
    if (!state.authenticated) throw new WPPError('not_authenticated', 'WhatsApp Web is not authenticated');
  }

  /** wa-js' assertGetChat: the chat of an id, or WPPError `chat_not_found`. */
  function knownChat(chatId) {
    const chat = state.chats.get(assertWid(chatId)._serialized);
    if (!chat) throw new WPPError('chat_not_found', `Chat not found for ${chatId}`, { id: chatId });
    return chat;
  }

  // -- the operations behind WPP ------------------------------------------------------------------
  const core = {
    state,
    async getAuthCode() {
      return state.authenticated || state.registered ? null : state.authCode;
    },
    async refreshQR() {
      if (state.authenticated) return null;
      state.stage = 'qr';
      state.pairingCode = null;
      const next = ev.waitFor('conn.auth_code_change');
      send({ type: 'refresh_qr' });
      render();
      return (await next)[0];
    },
    async genLinkDeviceCode(phone) {
      if (!phone || typeof phone !== 'string') {
        throw new WPPError('send_the_phone_number_to_connect', "Can't get code for without phone number param");
      }
      if (state.authenticated) {
        throw new WPPError('cannot_get_code_for_already_authenticated', "Can't get code for already authenticated user");
      }
      const res = await request({ type: 'pair_request', phone }, false);
      Object.assign(state, { stage: 'pairing', authCode: null, pairingCode: res.code, pairingPhone: phone });
      render();
      return res.code;
    },
    async logout() {
      if (!state.authenticated) return true;
      const done = ev.waitFor('conn.logout');
      if (!state.online || !send({ type: 'logout' })) await onLogout('user_logout');
      await done;
      return true;
    },
    sendTextMessage: (chatId, content, options) => S.messages.sendText(chatId, content, options),
    async markIsRead(chatId) {
      const wid = assertWid(chatId);
      const chat = knownChat(chatId);
      const unreadCount = chat.unreadCount;
      chat.unreadCount = 0;
      if (state.online) send({ type: 'read', chat: wid._serialized });
      else whenOnline().then(() => send({ type: 'read', chat: wid._serialized }), () => null);
      render();
      return { wid: chat.id, unreadCount };
    },
    // Presence is not queued like messages: offline, the contact simply sees nothing.
    async markIsComposing(chatId, duration) {
      const chat = knownChat(chatId);
      send({ type: 'presence', chat: chat.id._serialized, state: 'composing', duration: duration || null });
      if (chat.pausedTimerId) { clearTimeout(chat.pausedTimerId); chat.pausedTimerId = null; }
      // As wa-js: with a duration, resolves once it is over and the chat was marked paused.
      if (duration) {
        await new Promise((resolve) => {
          chat.pausedTimerId = setTimeout(() => core.markIsPaused(chatId).then(resolve, resolve), duration);
        });
      }
    },
    async markIsPaused(chatId) {
      const chat = knownChat(chatId);
      send({ type: 'presence', chat: chat.id._serialized, state: 'paused' });
    },
    takeover,
    getStreamData() {
      // StreamInfo as far as the simulator knows it; undefined before a session exists.
      const info = state.conflict ? 'OFFLINE' : state.online ? 'NORMAL' : state.authenticated ? 'CONNECTING' : undefined;
      return { mode: state.streamMode, info };
    },
    getChat(chatId) {
      const wid = S.createWid(chatId);
      return wid ? state.chats.get(wid._serialized) : undefined;
    },
    async getMessageById(id) {
      const msg = state.msgs.get(String(id && id._serialized ? id._serialized : id));
      if (!msg) throw new WPPError('msg_not_found', `Message ${id} not found`, { id });
      return msg;
    },
  };

  /** Put an own message in the outbox; resolves with its SendMsgResult once the server took it (or it failed). */
  function enqueue(msg, frame) {
    return new Promise((resolve) => {
      state.outbox.set(msg.id._serialized, { msg, frame, resolve });
      if (state.online) send(frame);
    });
  }
  S.client = { state, send, request, whenOnline, findChat, chatFor, addMsg, requireAuth, conflictError, render,
    enqueue, markIsRead: (chatId) => core.markIsRead(chatId) };

  // -- boot ---------------------------------------------------------------------------------------
  async function boot() {
    S.core = core;
    S.injected = true;
    ev.emit('loader.injected');
    S.ready = true;
    ev.emit('loader.ready');
    ev.emit('conn.main_init');
    const loaded = await store.load();
    if (loaded.status === 'ok') {
      setCreds(loaded.creds);
      state.stage = 'main';
    } else {
      if (loaded.status !== 'empty') {
        console.warn('[wa_sim] stored session unusable:', loaded.reason);
        await store.clear();
      }
      state.stage = 'qr';
      ev.emit('conn.require_auth');
    }
    S.fullReady = true;
    ev.emit('loader.full_ready');
    S.resolveBooted();
    render();
    connect();
  }

  // Start after DOMContentLoaded listeners ran, so an init script can hook WPP.on(...) from there
  // (with real wa-js injected by add_init_script, WPP exists before WhatsApp's own code runs).
  const start = () => setTimeout(() => boot().catch((e) => console.error('[wa_sim] boot', e)), 0);
  document.readyState === 'loading' ? document.addEventListener('DOMContentLoaded', start) : start();
})();
