/* wa_sim: messages of every type behind WPP.chat / WPP.contact (send, receive, react, edit, revoke, media). */
'use strict';
(function () {
  const S = window.__waSim;
  const { Wid, MsgKey, MsgModel, WPPError, assertWid, createWid, ev } = S;
  const C = () => S.client; // the client core (app.js): state, socket requests, chats
  const ACK = { FAILED: -1, CLOCK: 0, SENT: 1, RECEIVED: 2, READ: 3 };
  const MEDIA = ['image', 'video', 'audio', 'ptt', 'document', 'sticker'];
  const EDIT_WINDOW_S = 15 * 60;
  // The base64 of a media message travels in one 20 MB WebSocket frame.
  const MAX_MEDIA_BYTES = 14 * 1024 * 1024;
  const EXT = { jpeg: 'jpg', 'svg+xml': 'svg', mpeg: 'mp3', quicktime: 'mov', plain: 'txt', 'x-matroska': 'mkv' };
  const blobs = new Map(); // MsgKey._serialized -> Blob of a media message
  const pnByLid = new Map(); // "…@lid" -> Wid(…@c.us), WhatsApp's lidPnCache
  const lidByPn = new Map();

  // -- bytes ------------------------------------------------------------------------------------
  function toB64(bytes) {
    let text = '';
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }
  const fromB64 = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const sha256b64 = async (bytes) => toB64(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
  const clean = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

  function rememberLid(lidUser, pn) {
    if (!lidUser || !pn) return;
    const lid = new Wid(`${lidUser}@lid`);
    const phone = pn instanceof Wid ? pn : new Wid(`${pn}@c.us`);
    pnByLid.set(lid._serialized, phone);
    lidByPn.set(phone._serialized, lid);
  }

  /** Like wa-js' convertToFile: a File as is, a data URL / base64 / URL / Blob as a named, typed file. */
  async function convertToFile(content, mimetype, filename) {
    if (typeof File !== 'undefined' && content instanceof File) return content;
    let blob;
    if (typeof content === 'string' && /^(https?:|\/)/.test(content)) {
      blob = await (await fetch(content)).blob();
    } else if (typeof content === 'string') {
      const m = /^data:([^;,]*)((?:;[^;,]*)*?),(.*)$/s.exec(content);
      let bytes;
      try {
        if (m) bytes = /;base64/.test(m[2]) ? fromB64(m[3]) : new TextEncoder().encode(decodeURIComponent(m[3]));
        else if (/^[A-Za-z0-9+/]+={0,2}$/.test(content)) bytes = fromB64(content);
      } catch (e) { bytes = undefined; }
      if (!bytes) throw 'invalid_data_url'; // eslint-disable-line no-throw-literal -- wa-js throws this string
      if (!mimetype && m && m[1]) mimetype = m[1];
      blob = new Blob([bytes], { type: mimetype || '' });
    } else if (content instanceof Blob) {
      blob = content;
    } else {
      throw 'invalid_data_url'; // eslint-disable-line no-throw-literal
    }
    mimetype = mimetype || blob.type;
    if (!filename && mimetype) {
      const [major, sub] = mimetype.split(';')[0].split('/');
      filename = `${major}.${EXT[sub] || sub}`;
    }
    return new File([blob], filename || 'unknown', { type: mimetype || 'application/octet-stream' });
  }

  const mediaTypeFor = (mime) => (/^image\//.test(mime) ? 'image' : /^video\//.test(mime) ? 'video'
    : /^audio\//.test(mime) ? 'audio' : 'document');
  const sizeText = (n) => `${(n / 1024 / 1024).toFixed(2)} MB`;

  // -- MsgModel content ---------------------------------------------------------------------------
  /** A message's content fields (WhatsApp Web names) from a frame of the network. */
  async function contentFrom(w) {
    const f = { type: w.type || 'chat', body: w.body || '' };
    let blob = null;
    if (MEDIA.includes(f.type)) {
      const bytes = fromB64(w.media || '');
      blob = new Blob([bytes], { type: w.mimetype || 'application/octet-stream' });
      Object.assign(f, { mimetype: w.mimetype, size: bytes.length, filename: w.filename || undefined,
        caption: w.caption || undefined, filehash: await sha256b64(bytes), isViewOnce: !!w.isViewOnce,
        isMedia: true });
    } else if (f.type === 'location') {
      Object.assign(f, { lat: w.lat, lng: w.lng, loc: locText(w.name, w.address), clientUrl: w.clientUrl || undefined });
    } else if (f.type === 'vcard') {
      f.vcardFormattedName = w.vcardFormattedName;
    } else if (f.type === 'multi_vcard') {
      f.vcardList = w.vcardList || [];
    } else if (f.type === 'poll_creation') {
      Object.assign(f, { pollName: w.pollName, pollOptions: w.pollOptions || [],
        pollSelectableOptionsCount: w.pollSelectableOptionsCount || 0 });
    }
    return { fields: clean(f), blob };
  }
  const locText = (name, address) => (name && address ? `${name}\n${address}` : name || address || '');

  /** What a reply carries about the message it quotes (WhatsApp Web's msgContextInfo). */
  function quoteOf(q) {
    const st = C().state;
    const summary = clean({ type: q.type, body: q.type === 'chat' || q.type === 'vcard' ? q.body : undefined,
      caption: q.caption, filename: q.filename, mimetype: q.mimetype, lat: q.lat, lng: q.lng, loc: q.loc,
      vcardFormattedName: q.vcardFormattedName, pollName: q.pollName, pollOptions: q.pollOptions });
    return { quotedStanzaID: q.id.id, quotedParticipant: q.id.fromMe ? st.me : q.from, quotedMsg: summary };
  }

  async function resolveQuoted(quoted) {
    let q = quoted;
    if (typeof q === 'string') q = MsgKey.fromString(q);
    if (q instanceof MsgKey) q = await getMessageById(q);
    if (!(q instanceof MsgModel)) throw new WPPError('invalid_quoted_msg', 'Invalid quotedMsg', { quotedMsg: quoted });
    if (q.type === 'revoked') throw new WPPError('quoted_msg_can_not_reply', 'QuotedMsg can not reply', { quotedMsg: q });
    return q;
  }

  function getMessageById(id) {
    const st = C().state;
    const one = (k) => {
      const key = String(k && k._serialized ? k._serialized : k);
      const msg = st.msgs.get(key);
      if (!msg) throw new WPPError('msg_not_found', `Message ${key} not found`, { id: key });
      return msg;
    };
    return Array.isArray(id) ? id.map(one) : one(id);
  }

  // -- sending ------------------------------------------------------------------------------------
  /** One send pipeline for every type: chat lookup, quote, mark read, outbox, acks (as sendRawMessage). */
  async function sendMsg(chatId, fields, options, media) {
    const c = C();
    const opts = { createChat: false, detectMentioned: true, linkPreview: true, markIsRead: true, waitForAck: true,
      delay: 0, ...options };
    const wid = assertWid(chatId);
    c.requireAuth();
    if (c.state.conflict) throw c.conflictError();
    const chat = await c.findChat(wid);
    if (opts.delay > 0) await new Promise((r) => setTimeout(r, opts.delay));
    const quoted = opts.quotedMsg ? quoteOf(await resolveQuoted(opts.quotedMsg)) : {};
    let mid = S.newMessageId();
    if (opts.messageId) {
      const raw = String(opts.messageId._serialized || opts.messageId);
      if (raw.includes('_')) {
        const key = MsgKey.fromString(raw);
        if (!key.fromMe) throw new WPPError('message_key_is_not_from_me', 'Message key is not from me', { messageId: raw });
        if (!key.remote.equals(chat.id)) {
          throw new WPPError('message_key_remote_id_is_not_same_of_chat', 'Message key remote ID is not same of chat',
            { messageId: raw });
        }
        mid = key.id;
      } else {
        mid = raw;
      }
    }
    if (opts.markIsRead) await c.markIsRead(chat.id).catch(() => null);
    if (c.state.conflict) throw c.conflictError(); // replaced while waiting above
    const msg = new MsgModel({
      id: new MsgKey({ fromMe: true, remote: chat.id, id: mid }), t: Math.floor(Date.now() / 1000),
      from: c.state.me, to: chat.id, self: 'out', ack: ACK.CLOCK, isNewMsg: true, star: false, broadcast: false,
      isForwarded: false, isGroupMsg: false, hasReaction: false, ...clean(fields.model), ...quoted,
    });
    c.addMsg(chat, msg);
    if (media) blobs.set(msg.id._serialized, media);
    ev.emit('chat.new_message', msg);
    const wire = clean({ id: mid, to: chat.id._serialized, t: msg.t, ...fields.model, ...fields.wire,
      quotedStanzaID: quoted.quotedStanzaID, isMedia: undefined, filehash: undefined });
    const result = c.enqueue(msg, { type: 'send', msg: wire });
    c.render();
    const sendMsgResult = opts.waitForAck ? await result : null;
    return { id: msg.id.toString(), ack: msg.ack, from: msg.from.toString(), to: chat.id.toString(), sendMsgResult };
  }

  const api = {
    sendText: (chatId, content, options) => sendMsg(chatId, { model: { type: 'chat', body: String(content) } }, options),

    async sendFile(chatId, content, options) {
      const opts = { type: 'auto-detect', waveform: true, ...options };
      C().requireAuth();
      await C().findChat(assertWid(chatId));
      const file = await convertToFile(content, opts.mimetype, opts.filename);
      const declared = opts.type && opts.type !== 'auto-detect' ? opts.type : mediaTypeFor(file.type);
      if (!['image', 'video', 'audio', 'document', 'sticker'].includes(declared)) {
        throw new WPPError('invalid_media_type', `Unsupported media type ${declared}`, { type: declared });
      }
      if (file.size > MAX_MEDIA_BYTES) {
        throw new WPPError('file_too_large', `File size ${sizeText(file.size)} exceeds the upload limit of `
          + `${sizeText(MAX_MEDIA_BYTES)} for ${declared} files`, { fileSize: file.size, limit: MAX_MEDIA_BYTES,
          mediaType: declared });
      }
      const type = declared === 'audio' && opts.isPtt ? 'ptt' : declared;
      const viewOnce = ['image', 'video'].includes(declared) || type === 'ptt' ? !!opts.isViewOnce : false;
      const bytes = new Uint8Array(await file.arrayBuffer());
      const blob = new Blob([bytes], { type: file.type });
      const model = { type, body: '', caption: opts.caption, filename: file.name, mimetype: file.type,
        size: bytes.length, filehash: await sha256b64(bytes), isViewOnce: viewOnce, isMedia: true };
      const r = await sendMsg(chatId, { model, wire: { media: toB64(bytes) } }, opts, blob);
      // wa-js' sendFileMessage answers without from/to.
      return { id: r.id, ack: r.ack, sendMsgResult: r.sendMsgResult };
    },

    sendLocation(chatId, options) {
      const opts = { ...options };
      const lat = typeof opts.lat === 'string' ? parseFloat(opts.lat) : opts.lat;
      const lng = typeof opts.lng === 'string' ? parseFloat(opts.lng) : opts.lng;
      const model = { type: 'location', body: '', lat, lng, loc: locText(opts.name, opts.address), clientUrl: opts.url };
      return sendMsg(chatId, { model, wire: { name: opts.name, address: opts.address } }, opts);
    },

    sendVCard(chatId, contacts, options) {
      const st = C().state;
      const cards = (Array.isArray(contacts) ? contacts : [contacts]).map((e) => {
        let id = '';
        let name = '';
        if (e && typeof e === 'object' && 'name' in e) { id = e.id.toString(); name = e.name; } else id = String(e);
        const wid = assertWid(id);
        if (!name && st.me && wid.equals(st.me)) name = st.pushName || '';
        const known = st.chats.get(wid._serialized);
        const displayName = name || (known && known.name) || `+${wid.user}`;
        return { displayName,
          vcard: `BEGIN:VCARD\nVERSION:3.0\nFN:${displayName}\nTEL;type=CELL;waid=${wid.user}:+${wid.user}\nEND:VCARD` };
      });
      const model = cards.length === 1
        ? { type: 'vcard', body: cards[0].vcard, vcardFormattedName: cards[0].displayName }
        : { type: 'multi_vcard', body: '', vcardList: cards };
      return sendMsg(chatId, { model }, options);
    },

    sendPoll(chatId, name, choices, options) {
      const opts = { ...options };
      const model = { type: 'poll_creation', body: '', pollName: name,
        pollOptions: choices.map((n, i) => ({ name: n, localId: i })),
        pollSelectableOptionsCount: opts.selectableCount || 0 };
      return sendMsg(chatId, { model }, opts);
    },

    async sendReaction(messageId, reaction) {
      if (!(messageId instanceof MsgModel) && typeof messageId !== 'string' && messageId
        && typeof messageId.toString === 'function') messageId = messageId.toString();
      const msg = messageId instanceof MsgModel ? messageId : getMessageById(messageId);
      const emoji = reaction || '';
      await C().request({ type: 'react', id: S.newMessageId(), chat: msg.id.remote._serialized, target: msg.id.id,
        emoji }, true);
      msg.hasReaction = !!emoji;
      return { sendMsgResult: 'OK' };
    },

    async edit(msgId, newText) {
      const c = C();
      const msg = getMessageById(msgId);
      const text = String(newText).trim();
      const captioned = ['image', 'video', 'document'].includes(msg.type) && msg.caption !== undefined;
      if (!msg.id.fromMe || !(msg.type === 'chat' || captioned) || Date.now() / 1000 - msg.t > EDIT_WINDOW_S) {
        throw new WPPError('edit_message_error', 'Cannot edit this message');
      }
      const editKey = new MsgKey({ fromMe: true, remote: msg.id.remote, id: S.newMessageId() });
      await c.request({ type: 'edit', id: editKey.id, chat: msg.id.remote._serialized, target: msg.id.id, text }, true);
      applyEdit(msg, text, editKey, Date.now());
      return { id: msg.id.toString(), ack: msg.ack, latestEditMsgKey: editKey, from: msg.from.toString(),
        to: msg.id.remote.toString(), sendMsgResult: null };
    },

    async deleteMessage(chatId, ids, deleteMediaInDevice = false, revoke = false) {
      const c = C();
      const wid = assertWid(chatId);
      const chat = c.state.chats.get(wid._serialized);
      if (!chat) throw new WPPError('chat_not_found', `Chat not found for ${wid}`, { id: wid });
      const single = !Array.isArray(ids);
      const msgs = getMessageById(single ? [ids] : ids);
      const out = [];
      for (const msg of msgs) {
        const isSentByMe = msg.id.fromMe;
        let sendMsgResult = 'OK';
        let isRevoked = false;
        let isDeleted = false;
        if (msg.type === 'revoked' && revoke) {
          sendMsgResult = 'ERROR_UNKNOWN';
          isRevoked = true;
        } else if (revoke && isSentByMe) {
          await c.request({ type: 'revoke', id: S.newMessageId(), chat: chat.id._serialized, target: msg.id.id }, true);
          Object.assign(msg, { type: 'revoked', body: '', caption: undefined, isMedia: false });
          blobs.delete(msg.id._serialized);
          isRevoked = true;
        } else {
          chat.msgs = chat.msgs.filter((m) => m !== msg);
          c.state.msgs.delete(msg.id._serialized);
          if (deleteMediaInDevice) blobs.delete(msg.id._serialized);
          isDeleted = true;
        }
        out.push({ id: msg.id.toString(), sendMsgResult, isRevoked, isDeleted, isSentByMe });
      }
      c.render();
      return single ? out[0] : out;
    },

    async downloadMedia(id) {
      const msg = getMessageById(id);
      const blob = blobs.get(msg.id._serialized);
      if (!blob) throw new WPPError('message_not_contains_media', `Message ${id} not contains media`, { id });
      return blob;
    },

    async queryExists(contactId) {
      const c = C();
      const wid = assertWid(contactId);
      await c.whenOnline();
      const res = await c.request({ type: 'exists', wid: wid._serialized }, true);
      if (!res.exists) return null;
      rememberLid(res.lid, res.phone);
      return { wid, biz: !!res.biz, lid: wid.isLid() ? undefined : new Wid(`${res.lid}@lid`) };
    },

    async getPnLidEntry(contactId) {
      const wid = assertWid(contactId);
      if (wid.server !== 'c.us' && wid.server !== 'lid') {
        throw new WPPError('invalid_wid', `Invalid WID value for ${wid} - getPnLidEntry only supports @c.us and @lid.`,
          { id: contactId });
      }
      let lid;
      let pn;
      if (wid.isLid()) {
        lid = wid;
        pn = pnByLid.get(wid._serialized);
      } else {
        pn = wid;
        lid = lidByPn.get(wid._serialized) || ((await api.queryExists(wid)) || {}).lid;
      }
      const st = C().state;
      const known = [lid, pn].map((w) => w && st.chats.get(w._serialized)).find(Boolean);
      const plain = (w) => (w ? { id: w.user, server: w.server, _serialized: w._serialized } : undefined);
      const contact = known ? { name: known.name, shortName: known.name, pushname: known.pushname, type: 'in' } : undefined;
      return { lid: plain(lid), phoneNumber: plain(pn), contact };
    },

    getMessageById,
  };

  function applyEdit(msg, text, editKey, tMs) {
    if (msg.type === 'chat') msg.body = text; else msg.caption = text;
    msg.latestEditMsgKey = editKey;
    msg.latestEditSenderTimestampMs = tMs;
    // wa-js forwards MsgStore's change:latestEditMsgKey; `chat` is the message's `to`, as there.
    queueMicrotask(() => ev.emit('chat.msg_edited', { chat: msg.to, id: msg.id.toString(), msg }));
    C().render();
  }

  // -- frames from the network ----------------------------------------------------------------------
  async function onMessage(f) {
    const c = C();
    const m = f.msg;
    const chatWid = createWid(m.chat || m.from);
    const key = new MsgKey({ fromMe: false, remote: chatWid, id: m.id });
    rememberLid(m.lid, m.from);
    if (!c.state.seenFids.has(f.fid) && !c.state.msgs.has(key._serialized)) {
      c.state.seenFids.add(f.fid);
      const { fields, blob } = await contentFrom(m);
      const chat = c.chatFor(chatWid, m.notify_name);
      chat.pushname = m.notify_name;
      let quoted = {};
      if (m.quotedStanzaID) {
        const candidates = [chatWid, new Wid(`${m.from}@c.us`), m.lid && new Wid(`${m.lid}@lid`)].filter(Boolean);
        const q = candidates.map((w) => c.state.msgs.get(`${!!m.quotedFromMe}_${w._serialized}_${m.quotedStanzaID}`))
          .find(Boolean);
        quoted = q ? quoteOf(q) : { quotedStanzaID: m.quotedStanzaID,
          quotedParticipant: m.quotedFromMe ? c.state.me : chatWid, quotedMsg: {} };
      }
      const msg = new MsgModel({
        id: key, t: m.t, from: chatWid, to: c.state.me, self: 'in', ack: ACK.SENT, isNewMsg: true,
        notifyName: m.notify_name || '', star: false, broadcast: false, isForwarded: false, isGroupMsg: false,
        hasReaction: false, ...fields, ...quoted,
      });
      c.addMsg(chat, msg);
      if (blob) blobs.set(key._serialized, blob);
      chat.unreadCount += 1;
      ev.emit('chat.new_message', msg);
      c.render();
    }
    c.state.seenFids.add(f.fid);
    c.send({ type: 'got', fid: f.fid });
  }

  /** A contact's reaction, edit, revoke or poll vote about a message of the chat. */
  function onProtocol(f) {
    const c = C();
    const st = c.state;
    if (!st.seenFids.has(f.fid)) {
      st.seenFids.add(f.fid);
      const chat = createWid(f.chat);
      const eventKey = new MsgKey({ fromMe: false, remote: chat, id: f.id });
      const target = new MsgKey({ fromMe: !!f.target_from_me, remote: chat, id: f.target });
      const msg = st.msgs.get(target._serialized);
      if (f.type === 'reaction') {
        if (msg) msg.hasReaction = !!f.emoji;
        ev.emit('chat.new_reaction', { id: eventKey, msgId: target, reactionText: f.emoji || '', read: false,
          sender: chat, orphan: msg ? 0 : 1, orphanReason: null, timestamp: f.t });
      } else if (f.type === 'edit' && msg) {
        applyEdit(msg, f.text, eventKey, f.t);
      } else if (f.type === 'revoke') {
        if (msg) {
          Object.assign(msg, { type: 'revoked', body: '', caption: undefined, isMedia: false });
          blobs.delete(msg.id._serialized);
        }
        ev.emit('chat.msg_revoke', { author: undefined, from: chat, id: eventKey, refId: target, to: st.me,
          type: 'revoke' });
      } else if (f.type === 'vote' && msg) {
        // As wa-js 4.6.0 at runtime: option models indexed by localId (its d.ts says number[]).
        const selectedOptions = [];
        for (const n of f.selected) selectedOptions[n] = msg.pollOptions.filter((o) => o.localId === n)[0];
        ev.emit('chat.poll_response', { msgId: target, chatId: chat, selectedOptions, timestamp: f.t, sender: chat });
      }
      c.render();
    }
    c.send({ type: 'got', fid: f.fid });
  }

  /** A line of text for the page's own chat list and conversation. */
  function describe(m) {
    if (m.type === 'chat') return m.body;
    if (m.type === 'revoked') return '🚫 This message was deleted';
    if (MEDIA.includes(m.type)) return `[${m.type}${m.filename ? ` ${m.filename}` : ''}] ${m.caption || ''}`;
    if (m.type === 'location') return `📍 ${m.loc || `${m.lat}, ${m.lng}`}`;
    if (m.type === 'vcard') return `👤 ${m.vcardFormattedName}`;
    if (m.type === 'multi_vcard') return `👥 ${m.vcardList.map((v) => v.displayName).join(', ')}`;
    if (m.type === 'poll_creation') return `📊 ${m.pollName}: ${m.pollOptions.map((o) => o.name).join(' / ')}`;
    return `[${m.type}]`;
  }

  function clear() {
    blobs.clear();
  }

  S.messages = { ...api, onMessage, onProtocol, describe, clear };
})();
