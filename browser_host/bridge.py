"""What runs inside the page: WPP events forwarded to Python, and the WPP calls the host makes."""

from __future__ import annotations

import json

BINDING = "__wagate_event"
EVENTS = (
    "conn.auth_code_change", "conn.authenticated", "conn.main_ready", "conn.logout", "conn.logout_reason",
    "conn.qrcode_idle", "conn.online", "chat.new_message", "chat.msg_ack_change",
)

# Registered from an init script: wa-js (injected first) defines WPP before it runs; a page that
# provides WPP itself (wa_sim) defines it in its first script and boots after DOMContentLoaded.
# Payloads are reduced to plain JSON here: WhatsApp's models are large and circular.
EVENT_BRIDGE = """
(() => {
  const EVENTS = __EVENTS__;
  const wid = (w) => (w == null ? null : (w._serialized || String(w)));
  const shape = {
    'conn.auth_code_change': (c) => (c ? {fullCode: c.fullCode, type: c.type} : null),
    'chat.new_message': (m) => ({
      id: wid(m.id), fromMe: !!(m.id && m.id.fromMe), from: wid(m.from), to: wid(m.to), type: m.type,
      body: m.body === undefined ? null : m.body, t: m.t || 0, notifyName: m.notifyName || null,
      isGroupMsg: !!m.isGroupMsg,
    }),
    'chat.msg_ack_change': (e) => ({ack: e.ack, chat: wid(e.chat), ids: (e.ids || []).map(wid)}),
  };
  let attached = false;
  const attach = () => {
    if (attached || !window.WPP || typeof window.WPP.on !== 'function') return attached;
    attached = true;
    for (const name of EVENTS) {
      window.WPP.on(name, (arg) => {
        let payload = null;
        try { payload = shape[name] ? shape[name](arg) : (arg === undefined ? null : JSON.parse(JSON.stringify(arg))); }
        catch (e) { payload = {error: String(e)}; }
        try { window.__BINDING__(name, payload); } catch (e) { /* page closing */ }
      });
    }
    return true;
  };
  if (!attach()) {
    document.addEventListener('DOMContentLoaded', attach);
    const timer = setInterval(() => { if (attach()) clearInterval(timer); }, 25);
  }
})();
""".replace("__EVENTS__", json.dumps(list(EVENTS))).replace("__BINDING__", BINDING)

READY = "() => !!(window.WPP && window.WPP.isReady)"
STATE = """async () => ({
  authenticated: WPP.conn.isAuthenticated(),
  mainReady: WPP.conn.isMainReady(),
  code: WPP.conn.isAuthenticated() ? null : await WPP.conn.getAuthCode().then(c => c && c.fullCode, () => null),
  me: (() => { const w = WPP.conn.getMyUserId(); return w ? (w._serialized || String(w)) : null; })(),
})"""
HEARTBEAT = "() => [WPP.conn.isAuthenticated(), WPP.conn.isMainReady()]"
PAIRING_CODE = "(phone) => WPP.conn.genLinkDeviceCodeForPhoneNumber(phone)"
LOGOUT = "() => WPP.conn.logout()"
FIND_MESSAGE = """async (id) => {
  try { const m = await WPP.chat.getMessageById(id); return m ? {ack: m.ack ?? 0} : null; }
  catch (e) { return null; }
}"""
# wa-js rejects with a WPPError carrying a machine-readable `code`: return it instead of a message to parse.
SEND_TEXT = """async ([chat, body, messageId, linkPreview]) => {
  try {
    const r = await WPP.chat.sendTextMessage(chat, body, {messageId, waitForAck: false, createChat: true,
                                                          linkPreview});
    return {id: r.id && (r.id._serialized || String(r.id)), ack: r.ack ?? 0};
  } catch (e) {
    return {error: {code: (e && e.code) || null, message: String((e && e.message) || e)}};
  }
}"""
PERMANENT_ERRORS = frozenset({"chat_not_found", "invalid_wid", "wid_not_found", "invalid_chat"})

# Resolves with the ack once WhatsApp's server has the message (ack >= 1) or it failed (-1); null on timeout.
WAIT_FOR_ACK = """async ([id, timeoutMs]) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const m = await WPP.chat.getMessageById(id);
      if (m && (m.ack >= 1 || m.ack < 0)) return m.ack;
    } catch (e) { /* not there (yet) */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
}"""
