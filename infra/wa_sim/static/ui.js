/* wa_sim: a minimal WhatsApp Web look (QR screen, chat list, conversation) over window.WPP. */
'use strict';
(function () {
  const S = (window.__waSim = window.__waSim || {});
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const TICKS = { '-1': '!', 0: '🕓', 1: '✓', 2: '✓✓', 3: '<span class="read">✓✓</span>' };
  let selected = null;
  let pending = false;
  let lastQr = null;
  const label = (m) => (S.messages ? S.messages.describe(m) : m.body);

  function render(state) {
    if (pending) return;
    pending = true;
    // Coalesce bursts of state changes into one DOM update.
    setTimeout(() => { pending = false; draw(state); }, 0);
  }

  function draw(st) {
    const linked = st.authenticated;
    $('landing').hidden = linked;
    $('main').hidden = !linked;
    document.body.dataset.stage = st.stage;
    if (!linked) return drawLanding(st);
    $('me').textContent = st.me ? `${st.pushName || ''} +${st.me.user}` : '';
    $('offline').hidden = st.online || st.conflict;
    $('conflict').hidden = !st.conflict;
    const chats = [...st.chats.values()].sort((a, b) => b.t - a.t);
    $('chats').innerHTML = chats.map((c) => {
      const last = c.msgs[c.msgs.length - 1];
      return `<li data-chat="${esc(c.id._serialized)}" class="${c.id._serialized === selected ? 'sel' : ''}">
        <b>${esc(c.name)}</b>${c.unreadCount ? `<span class="badge">${c.unreadCount}</span>` : ''}
        <small>${last ? esc(label(last)).slice(0, 60) : ''}</small></li>`;
    }).join('');
    const chat = selected && st.chats.get(selected);
    $('conv-title').textContent = chat ? chat.name : selected ? `+${selected.split('@')[0]}` : 'Select a chat';
    $('composer').hidden = !selected;
    $('messages').innerHTML = chat ? chat.msgs.map((m) => `<div class="msg ${m.self}" data-id="${esc(m.id._serialized)}">
        <span>${esc(label(m))}</span><time>${new Date(m.t * 1000).toLocaleTimeString()}</time>
        ${m.self === 'out' ? `<i class="ack">${TICKS[m.ack] || ''}</i>` : ''}</div>`).join('') : '';
    $('messages').scrollTop = 1e9;
  }

  function drawLanding(st) {
    const code = st.authCode && st.authCode.fullCode;
    $('qr-box').hidden = st.stage !== 'qr' && st.stage !== 'boot';
    $('idle-box').hidden = st.stage !== 'idle';
    $('pair-box').hidden = st.stage !== 'pairing';
    if (code !== lastQr) {
      lastQr = code;
      $('qr-img').src = code ? `/qr.svg?data=${encodeURIComponent(code)}` : '';
      $('qr-img').hidden = !code;
      $('qr-code').textContent = code || 'Loading…';
    }
    const pc = st.pairingCode || '';
    $('pair-code').textContent = pc.length === 8 ? `${pc.slice(0, 4)}-${pc.slice(4)}` : pc;
  }

  function wire() {
    $('reload-qr').onclick = () => S.core && WPP.conn.refreshQR();
    $('use-qr').onclick = () => S.core && WPP.conn.refreshQR();
    $('pair-form').onsubmit = (e) => {
      e.preventDefault();
      WPP.conn.genLinkDeviceCodeForPhoneNumber($('pair-phone').value.replace(/\D/g, ''))
        .catch((err) => alert(err.message));
    };
    $('logout').onclick = () => WPP.conn.logout();
    $('use-here').onclick = () => S.core && S.core.takeover();
    $('chats').onclick = (e) => {
      const li = e.target.closest('li[data-chat]');
      if (!li) return;
      selected = li.dataset.chat;
      WPP.chat.markIsRead(selected).catch(() => null);
      draw(S.core.state);
    };
    $('new-chat').onsubmit = (e) => {
      e.preventDefault();
      const n = $('new-number').value.replace(/\D/g, '');
      if (!n) return;
      selected = `${n}@c.us`;
      $('new-number').value = '';
      draw(S.core.state);
    };
    $('composer').onsubmit = (e) => {
      e.preventDefault();
      const text = $('text').value;
      if (!text || !selected) return;
      $('text').value = '';
      WPP.chat.sendTextMessage(selected, text, { waitForAck: false }).catch((err) => alert(err.message));
    };
  }

  S.ui = { render };
  document.readyState === 'loading' ? document.addEventListener('DOMContentLoaded', wire) : wire();
})();
