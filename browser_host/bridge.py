"""What runs inside the page: WPP events forwarded to Python, and the WPP calls the host makes."""

from __future__ import annotations

import json

BINDING = "__wagate_event"
EVENTS = (
    "conn.auth_code_change", "conn.authenticated", "conn.main_ready", "conn.logout", "conn.logout_reason",
    "conn.qrcode_idle", "conn.online", "chat.new_message", "chat.msg_ack_change", "chat.new_reaction",
    "chat.msg_edited", "chat.msg_revoke",
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
      author: wid(m.author), body: typeof m.body === 'string' && !m.isMedia ? m.body : null,
      t: m.t || 0, notifyName: m.notifyName || null, isGroupMsg: !!m.isGroupMsg,
      caption: m.caption || null, filename: m.filename || null, mimetype: m.mimetype || null,
      size: m.size || null, lat: m.lat ?? null, lng: m.lng ?? null, loc: m.loc || null,
      vcardList: m.vcardList ? m.vcardList.map((v) => ({displayName: v.displayName, vcard: v.vcard})) : null,
      vcardFormattedName: m.vcardFormattedName || null,
      pollName: m.pollName || null, pollOptions: m.pollOptions ? m.pollOptions.map((o) => o.name) : null,
      pollSelectableOptionsCount: m.pollSelectableOptionsCount || null,
      quotedStanzaID: m.quotedStanzaID || null, quotedParticipant: wid(m.quotedParticipant),
    }),
    'chat.msg_ack_change': (e) => ({ack: e.ack, chat: wid(e.chat), ids: (e.ids || []).map(wid)}),
    'chat.new_reaction': (r) => ({id: wid(r.id), msgId: wid(r.msgId), reactionText: r.reactionText || '',
                                  sender: wid(r.sender), timestamp: r.timestamp || 0}),
    // wa-js puts msg.to in `chat`: for a contact's edit that is us, so the chat is taken from the message key.
    'chat.msg_edited': (e) => ({chat: wid(e.msg && e.msg.id ? e.msg.id.remote : e.chat), id: wid(e.id),
                                from: wid(e.msg ? (e.msg.author || e.msg.from) : null),
                                body: e.msg ? (e.msg.body ?? e.msg.caption ?? null) : null,
                                t: e.msg ? (e.msg.latestEditSenderTimestampMs || e.msg.t || 0) : 0}),
    'chat.msg_revoke': (e) => ({id: wid(e.id), refId: wid(e.refId), from: wid(e.from), to: wid(e.to),
                                author: wid(e.author), type: e.type}),
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
# One entry per wa-js send function, with the parameters of its .d.ts (tests/unit/test_wpp_contract.py checks them).
SEND = """async ([call, a]) => {
  const calls = {
    text: ([chat, body, o]) => WPP.chat.sendTextMessage(chat, body, o),
    file: ([chat, content, o]) => WPP.chat.sendFileMessage(chat, content, o),
    location: ([chat, o]) => WPP.chat.sendLocationMessage(chat, o),
    vcard: ([chat, contacts, o]) => WPP.chat.sendVCardContactMessage(chat, contacts, o),
    poll: ([chat, name, choices, o]) => WPP.chat.sendCreatePollMessage(chat, name, choices, o),
  };
  try {
    const r = await calls[call](a);
    return {id: r.id && (r.id._serialized || String(r.id)), ack: r.ack ?? 0};
  } catch (e) {
    return {error: {code: (e && e.code) || null, message: String((e && e.message) || e)}};
  }
}"""
# Acts on an existing message or chat; the target is the message's serialized key.
OPERATE = """async ([call, [a]]) => {
  const ok = (r) => (r && r.sendMsgResult && r.sendMsgResult !== 'OK' && !(r.sendMsgResult.messageSendResult === 'OK'))
    ? {error: {code: 'send_failed', message: JSON.stringify(r.sendMsgResult)}} : {done: true};
  try {
    if (call === 'reaction') return ok(await WPP.chat.sendReactionToMessage(a.target, a.emoji || false));
    if (call === 'edit') {
      const r = await WPP.chat.editMessage(a.target, a.text, {linkPreview: a.linkPreview});
      return {done: true, id: r && r.id && (r.id._serialized || String(r.id))};
    }
    if (call === 'revoke') {
      const r = await WPP.chat.deleteMessage(a.chat, a.target, false, true);
      const one = Array.isArray(r) ? r[0] : r;
      return one && one.isRevoked === false && one.isDeleted === false
        ? {error: {code: 'not_revoked', message: 'WhatsApp Web did not revoke it'}} : {done: true};
    }
    if (call === 'read') {
      await WPP.chat.markIsRead(a.chat);
      // wa-js resolves markIsComposing only when the duration is over (then it marks the chat paused): not awaited.
      if (a.typing) WPP.chat.markIsComposing(a.chat, a.typing).catch(() => null);
      return {done: true};
    }
    return {error: {code: 'unsupported', message: call}};
  } catch (e) {
    return {error: {code: (e && e.code) || null, message: String((e && e.message) || e)}};
  }
}"""
# "typing…" before a paced text; wa-js resolves markIsComposing only when the duration is over: not awaited.
TYPING = """([chat, ms]) => { WPP.chat.markIsComposing(chat, ms).catch(() => null); }"""
# Machine-readable wa-js error codes that retrying cannot fix → our failure codes.
PERMANENT_ERRORS = {"chat_not_found": "invalid_recipient", "invalid_wid": "invalid_recipient",
                    "wid_not_found": "invalid_recipient", "invalid_chat": "invalid_recipient",
                    "msg_not_found": "message_not_found", "edit_not_allowed": "message_not_editable",
                    "edit_message_error": "message_not_editable", "not_revoked": "not_revoked"}
DOWNLOAD_MEDIA = """async (id) => {
  try {
    const blob = await WPP.chat.downloadMedia(id);
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  } catch (e) { return {error: String((e && e.message) || e)}; }
}"""
PN_LID_ENTRY = """async (id) => {
  const e = await WPP.contact.getPnLidEntry(id);
  const w = (x) => (x ? (x._serialized || String(x)) : null);
  return e ? {lid: w(e.lid), phoneNumber: w(e.phoneNumber)} : null;
}"""
QUERY_EXISTS = """async (id) => {
  try {
    const r = await WPP.contact.queryExists(id);
    const w = (x) => (x ? (x._serialized || String(x)) : null);
    return r ? {wid: w(r.wid), lid: w(r.lid), biz: !!r.biz} : null;
  } catch (e) { return {error: String((e && e.message) || e)}; }
}"""

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
