/* wa_sim phone page: a person's phone over the /sim/ control API. */
'use strict';
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const digits = (s) => String(s || '').replace(/\D/g, '');

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.message || `${res.status}`);
  return data;
}

function show(el, text, ok) { el.textContent = text; el.style.color = ok ? '#008069' : '#d33'; }

async function link(code) {
  const phone = digits($('link-phone').value);
  const clean = code.trim();
  // A QR code carries "2@..." refs and commas; anything else is an 8-character pairing code.
  const body = clean.includes('@') || clean.includes(',') ? { qr: clean } : { pairing_code: clean };
  try {
    const r = await api('POST', '/sim/link', { ...body, phone_number: phone });
    show($('link-result'), `linked ${r.wid} as device ${r.device_id}`, true);
    $('business').value = phone;
  } catch (e) { show($('link-result'), e.message, false); }
  refresh();
}

async function refreshPending() {
  const { pages } = await api('GET', '/sim/pending');
  $('pending').innerHTML = pages.map((p) => `<li>${p.pairing_code
    ? `pairing code <b>${esc(p.pairing_code)}</b> for +${esc(p.pairing_phone_number)}`
    : `QR <code>${esc((p.full_code || p.ref || '').slice(0, 40))}…</code> <button data-qr="${esc(p.full_code || p.ref)}">Scan</button>`}</li>`).join('')
    || '<li><i>none</i></li>';
}

async function refreshAccounts() {
  const { accounts } = await api('GET', '/sim/accounts');
  $('accounts').tBodies[0].innerHTML = accounts.map((a) => `<tr><td>+${esc(a.phone_number)} <small>${a.online ? 'online' : 'offline'}</small></td>
    <td>${a.devices.map((d) => `#${d.device_id}${d.online ? ' online' : ''}`).join(', ')}</td>
    <td><select data-net="${esc(a.phone_number)}">${['up', 'slow', 'down'].map((s) =>
      `<option${s === a.network ? ' selected' : ''}>${s}</option>`).join('')}</select></td>
    <td><button data-unlink="${esc(a.phone_number)}" class="danger">Unlink</button></td></tr>`).join('');
  $('business-list').innerHTML = accounts.map((a) => `<option value="${esc(a.phone_number)}">`).join('');
}

async function refreshConversation() {
  const contact = digits($('contact').value);
  if (!contact) { $('conversation').innerHTML = ''; return; }
  const business = digits($('business').value);
  const [{ messages }, { typing }] = await Promise.all([api('GET', `/sim/contacts/${contact}/messages?direction=all`),
    api('GET', `/sim/contacts/${contact}/typing`)]);
  $('conversation').innerHTML = messages.filter((m) => !business || m.from === business || m.to === business)
    .map((m) => `<div class="msg ${m.direction}"><span>${esc(m.body)}</span>
      <span class="status">${m.direction === 'received' ? `from +${esc(m.from)}` : 'you'} · ${esc(m.status)}</span>
      ${m.direction === 'received' && m.status !== 'read' ? `${m.status === 'sent'
        ? `<button data-ack="delivered" data-id="${esc(m.id)}">Delivered</button>` : ''}
        <button data-ack="read" data-id="${esc(m.id)}">Read</button>` : ''}</div>`).join('')
    + typing.filter((t) => !business || t.account === business)
      .map((t) => `<div class="typing">+${esc(t.account)} is typing…</div>`).join('');
}

async function refresh() {
  try { await Promise.all([refreshPending(), refreshAccounts(), refreshConversation()]); } catch (e) { console.warn(e); }
}

$('link-form').onsubmit = (e) => { e.preventDefault(); link($('link-code').value); };
$('pending').onclick = (e) => { const b = e.target.closest('[data-qr]'); if (b) link(b.dataset.qr); };
$('accounts').onclick = async (e) => {
  const b = e.target.closest('[data-unlink]');
  if (b) { await api('POST', '/sim/unlink', { phone_number: b.dataset.unlink }).catch(alert); refresh(); }
};
$('accounts').onchange = async (e) => {
  const s = e.target.closest('[data-net]');
  if (s) { await api('POST', '/sim/network', { phone_number: s.dataset.net, state: s.value }).catch(alert); refresh(); }
};
$('conversation').onclick = async (e) => {
  const b = e.target.closest('[data-ack]');
  if (!b) return;
  await api('POST', `/sim/contacts/${digits($('contact').value)}/ack`, { message_id: b.dataset.id, ack: b.dataset.ack })
    .catch((err) => alert(err.message));
  refresh();
};
$('send-form').onsubmit = async (e) => {
  e.preventDefault();
  const text = $('send-text').value;
  try {
    await api('POST', `/sim/contacts/${digits($('contact').value)}/send`, { to: digits($('business').value), text });
    $('send-text').value = '';
    show($('send-result'), 'sent', true);
  } catch (err) { show($('send-result'), err.message, false); }
  refresh();
};
$('contact').oninput = $('business').oninput = refreshConversation;
$('reset').onclick = async () => { if (confirm('Forget every account and message?')) { await api('POST', '/sim/reset'); refresh(); } };
refresh();
setInterval(refresh, 1500);
