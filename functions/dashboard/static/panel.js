// One number's panel: how to link it (QR or pairing code), its actions, status history, a test message, recent
// messages with live statuses and media, and its webhook deliveries.
import {API_BASE} from "./api.js";
import {$, badge, bytes, h, time, timeEl} from "./dom.js";

const LINKING = new Set(["STARTING", "SCAN_QR_CODE"]);

export class Panel {
  /** ctx: {api, can: {operate, admin}, onAccount(account), onDeleted(id), onError(err)} */
  constructor(dialog, ctx) {
    this.dialog = dialog;
    this.ctx = ctx;
    this.account = null;
    this.qrUrl = null;
    this.qrTimer = null;
    this.pairingTimer = null;
    this.pairing = null;
    this.debounce = {};
    dialog.addEventListener("close", () => this.closed());
  }

  get id() { return this.account ? this.account.account_id : null; }

  isOpenFor(id) { return this.dialog.open && this.id === id; }

  async open(account, {pairing = null} = {}) {
    this.account = account;
    this.pairing = pairing;
    this.build();
    if (!this.dialog.open) this.dialog.showModal();
    $("#panel-close", this.dialog).focus();
    await this.refresh();
  }

  close() { if (this.dialog.open) this.dialog.close(); }

  closed() {
    clearTimeout(this.qrTimer);
    clearTimeout(this.pairingTimer);
    if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
    this.qrUrl = null;
    this.account = null;
    this.pairing = null;
    this.ctx.onClosed?.();
  }

  build() {
    const a = this.account;
    const {operate, admin} = this.ctx.can;
    const action = (name, label, confirmText, cls = "secondary") =>
      h("button", {type: "button", class: cls, dataset: {action: name},
                   onclick: () => this.act(name, confirmText)}, label);
    this.dialog.replaceChildren(
      h("div", {class: "panel-head"},
        h("div", {},
          h("h2", {id: "panel-title"}, a.account_name),
          h("p", {class: "muted", id: "panel-meta"})),
        h("span", {id: "panel-status"}),
        h("button", {type: "button", id: "panel-close", class: "secondary", "aria-label": "Close panel",
                     onclick: () => this.close()}, "Close")),
      operate ? h("div", {class: "actions", role: "group", "aria-label": "Number actions"},
        action("start", "Start", null, "primary"),
        action("stop", "Stop", "Stop this number? Messages wait until it is started again."),
        action("restart", "Restart", "Restart this number's WhatsApp Web page?"),
        action("logout", "Log out", "Log this number out? The phone unlinks the device; linking again needs a new QR scan."),
        admin ? action("delete", "Delete", "Delete this number for good? Its pending messages fail.", "danger") : null,
      ) : h("p", {class: "muted", id: "readonly-note"}, "Your key can view this number but not change it."),
      h("section", {id: "panel-link", "aria-labelledby": "link-title", "aria-live": "polite"}),
      operate ? h("section", {"aria-labelledby": "send-title"},
        h("h3", {id: "send-title"}, "Send a test message"),
        h("form", {id: "send-form", class: "inline-form", onsubmit: (e) => { e.preventDefault(); this.send(); }},
          h("div", {}, h("label", {for: "send-to"}, "To (phone number)"),
            h("input", {id: "send-to", required: true, inputmode: "tel", autocomplete: "off", placeholder: "15550001111"})),
          h("div", {class: "grow"}, h("label", {for: "send-text"}, "Text"),
            h("input", {id: "send-text", required: true, maxlength: 4096, value: "Hello from wagate"})),
          h("button", {type: "submit"}, "Send"))) : null,
      h("section", {"aria-labelledby": "messages-title"},
        h("h3", {id: "messages-title"}, "Recent messages"),
        h("ul", {id: "messages", class: "messages"})),
      h("section", {"aria-labelledby": "history-title"},
        h("h3", {id: "history-title"}, "Status history"),
        h("ol", {id: "history", class: "history", reversed: true})),
      h("section", {"aria-labelledby": "deliveries-title"},
        h("h3", {id: "deliveries-title"}, "Webhook deliveries"),
        h("div", {class: "table-wrap"}, h("table", {id: "deliveries"},
          h("thead", {}, h("tr", {}, ...["Event", "Target", "State", "Attempts", "Last answer", "When", ""].map(
            (t) => h("th", {scope: "col"}, t || h("span", {class: "visually-hidden"}, "Actions"))))),
          h("tbody", {})))),
    );
    this.renderAccount();
  }

  /** Everything again (on open, in polling mode, after a resync). */
  async refresh() {
    const id = this.id;
    if (!id) return;
    try {
      const account = await this.ctx.api.get(`/accounts/${id}`);
      if (this.id !== id) return;
      this.setAccount(account);
      await Promise.all([this.loadMessages(), this.loadDeliveries(), this.loadLink()]);
    } catch (err) {
      this.ctx.onError(err);
    }
  }

  setAccount(account) {
    const before = this.account && this.account.connection_status;
    this.account = account;
    this.ctx.onAccount(account);
    this.renderAccount();
    if (before !== account.connection_status) this.loadLink().catch((err) => this.ctx.onError(err));
  }

  renderAccount() {
    const a = this.account;
    $("#panel-status", this.dialog).replaceChildren(badge(a.connection_status, a.status_reason));
    $("#panel-meta", this.dialog).textContent =
      [a.phone_number || "not linked yet", `provider ${a.provider}`, a.host_id ? `host ${a.host_id}` : "no host"]
        .join(" · ");
    $("#history", this.dialog).replaceChildren(...[...(a.status_history || [])].reverse().map((c) =>
      h("li", {}, timeEl(c.at), " ", c.from ? `${c.from} → ` : "", h("strong", {}, c.to),
        c.reason ? h("span", {class: "muted"}, ` (${c.reason})`) : null)));
    const status = a.connection_status;
    for (const button of this.dialog.querySelectorAll("[data-action]")) {
      const name = button.dataset.action;
      button.hidden = name === "logout" && a.provider === "cloud";  // no linked device to log out
      button.disabled = (name === "start" && (status === "WORKING" || LINKING.has(status)) && a.desired_state === "running")
        || (name === "stop" && status === "STOPPED" && a.desired_state !== "running");
    }
  }

  /** The QR code (as PNG from the API) or the pairing code, while the number is being linked. */
  async loadLink() {
    clearTimeout(this.qrTimer);
    const section = $("#panel-link", this.dialog);
    if (!section || !this.account) return;
    const a = this.account;
    if (a.provider === "cloud" && a.cloud) return this.renderCloud(section, a);
    if (!LINKING.has(a.connection_status)) {
      this.pairing = null;
      section.replaceChildren();
      if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
      this.qrUrl = null;
      return;
    }
    if (!this.ctx.can.operate) {  // the API keeps QR and pairing codes from viewers: whoever has one links a phone
      section.replaceChildren(h("h3", {id: "link-title"}, "Waiting to be linked"),
        h("p", {class: "muted", id: "link-viewer-note"},
          "An operator or admin can show the QR code or pairing code that links this number."));
      return;
    }
    if (this.pairing === null) {
      try {
        this.pairing = await this.ctx.api.get(`/accounts/${a.account_id}/pairing-code`);
      } catch (err) {
        if (err.status !== 409) throw err;  // pairing_not_requested: link by QR
        this.pairing = false;
      }
    }
    if (this.pairing) return this.renderPairing(section);
    return this.loadQr(section);
  }

  /** A Cloud API number: what it is at Meta and where Meta must send its webhooks (secrets only as set / not set). */
  renderCloud(section, a) {
    const c = a.cloud;
    const callback = new URL(c.webhook_path.replace(/^\//, ""), API_BASE).href;
    const setOrNot = (flag) => (flag ? "set" : "not set");
    section.replaceChildren(
      h("h3", {id: "link-title"}, "Meta Cloud API"),
      h("dl", {class: "cloud-facts"},
        h("dt", {}, "Phone number ID"), h("dd", {}, h("code", {}, c.phone_number_id || "—")),
        h("dt", {}, "Verified name"), h("dd", {}, c.verified_name || "—"),
        h("dt", {}, "Webhook callback URL"), h("dd", {}, h("code", {id: "cloud-callback"}, callback)),
        h("dt", {}, "Access token"), h("dd", {}, setOrNot(c.has_access_token)),
        h("dt", {}, "App secret"), h("dd", {}, setOrNot(c.has_app_secret)),
        h("dt", {}, "Verify token"), h("dd", {}, setOrNot(c.has_verify_token))),
      h("p", {class: "muted"}, "In Meta's App Dashboard → WhatsApp → Configuration, enter this callback URL and the " +
        "verify token, and subscribe to the messages field. A new token: Start checks it again."));
  }

  async loadQr(section) {
    const id = this.id;
    let raw;
    try {
      raw = await this.ctx.api.get(`/accounts/${id}/qr`, {params: {format: "raw"}});
    } catch (err) {
      if (err.status !== 409) throw err;
      section.replaceChildren(h("h3", {id: "link-title"}, "Link this number"),
        h("p", {class: "waiting"}, "Waiting for the QR code… (the browser host is opening WhatsApp Web)"));
      return;
    }
    const png = await this.ctx.api.get(`/accounts/${id}/qr`, {blob: true});
    if (this.id !== id) return;
    if (this.qrUrl) URL.revokeObjectURL(this.qrUrl);
    this.qrUrl = URL.createObjectURL(png);
    const canPair = this.ctx.can.operate;
    section.replaceChildren(
      h("h3", {id: "link-title"}, "Scan this QR code"),
      h("div", {class: "qr-box"},
        h("img", {id: "qr", src: this.qrUrl, width: 264, height: 264, dataset: {value: raw.value},
                  alt: "QR code to link this number. On the phone: WhatsApp, Linked devices, Link a device."}),
        h("ol", {class: "steps"},
          h("li", {}, "Open WhatsApp on the phone of this number."),
          h("li", {}, "Go to Settings → Linked devices → Link a device."),
          h("li", {}, "Point the phone at this code. It changes every few seconds; this page follows it."),
          raw.expires_at ? h("li", {class: "muted"}, `This code expires at ${time(raw.expires_at)}.`) : null)),
      h("details", {}, h("summary", {}, "Show the code as text"), h("code", {class: "qr-text"}, raw.value)),
      canPair ? h("button", {type: "button", class: "secondary", onclick: () => this.askPairing()},
        "Link with a pairing code instead") : null,
    );
    // A safety net for rotations when no account.qr event arrives (events refresh it at once).
    const expires = raw.expires_at ? Date.parse(raw.expires_at) - Date.now() : NaN;
    if (expires > 0) this.qrTimer = setTimeout(() => this.loadLink().catch((e) => this.ctx.onError(e)), expires + 500);
  }

  renderPairing(section) {
    clearTimeout(this.pairingTimer);
    const p = this.pairing;
    const code = p.code ? `${p.code.slice(0, 4)}-${p.code.slice(4)}` : null;
    section.replaceChildren(
      h("h3", {id: "link-title"}, "Enter this pairing code on the phone"),
      code ? h("p", {class: "pairing-code", id: "pairing-code", "aria-label": `Pairing code ${code.split("").join(" ")}`}, code)
        : h("p", {class: "waiting"}, "Asking WhatsApp for a pairing code…"),
      h("ol", {class: "steps"},
        h("li", {}, `On the phone of ${p.phone_number}: WhatsApp → Settings → Linked devices → Link a device.`),
        h("li", {}, "Choose “Link with phone number instead” and type the code.")),
    );
    if (!p.code) {  // the host answers within seconds; there is no event for it
      this.pairingTimer = setTimeout(async () => {
        try {
          this.pairing = await this.ctx.api.get(`/accounts/${this.id}/pairing-code`);
          if (this.pairing) this.renderPairing(section);
        } catch (err) { this.ctx.onError(err); }
      }, 1500);
    }
  }

  async askPairing() {
    const phone = window.prompt("Phone number of this WhatsApp account (with country code):",
                                this.account.phone_number || "");
    if (!phone) return;
    try {
      this.pairing = await this.ctx.api.post(`/accounts/${this.id}/pairing-code`, {phone_number: phone});
      this.renderPairing($("#panel-link", this.dialog));
    } catch (err) { this.ctx.onError(err); }
  }

  async act(name, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return;
    const id = this.id;
    try {
      if (name === "delete") {
        await this.ctx.api.delete(`/accounts/${id}`);
        this.close();
        this.ctx.onDeleted(id);
        return;
      }
      await this.ctx.api.post(`/accounts/${id}/${name}`);
      this.pairing = name === "start" || name === "restart" ? null : this.pairing;
      this.setAccount(await this.ctx.api.get(`/accounts/${id}`));
    } catch (err) { this.ctx.onError(err); }
  }

  async send() {
    const to = $("#send-to", this.dialog).value.trim();
    const body = $("#send-text", this.dialog).value;
    if (!to || !body) return;
    try {
      await this.ctx.api.post(`/accounts/${this.id}/messages`, {to, type: "text", text: {body}});
      await this.loadMessages();
    } catch (err) { this.ctx.onError(err); }
  }

  async loadMessages() {
    const id = this.id;
    const page = await this.ctx.api.get(`/accounts/${id}/messages`, {params: {limit: 20}});
    if (this.id !== id) return;
    const list = $("#messages", this.dialog);
    list.replaceChildren(...page.items.map((m) => messageItem(m)));
    if (!page.items.length) list.append(h("li", {class: "muted"}, "No messages yet."));
  }

  async loadDeliveries() {
    const id = this.id;
    const page = await this.ctx.api.get(`/accounts/${id}/webhook-deliveries`, {params: {limit: 10}});
    if (this.id !== id) return;
    const rows = page.items.map((d) => h("tr", {dataset: {deliveryId: d.delivery_id}},
      h("td", {"data-label": "Event"}, d.event_type),
      h("td", {"data-label": "Target"}, d.target === "account" ? "account webhook" : d.target),
      h("td", {"data-label": "State"}, h("span", {class: `chip chip-${d.state}`}, d.state)),
      h("td", {"data-label": "Attempts"}, String(d.attempts)),
      h("td", {"data-label": "Last answer"}, d.last_status_code ? String(d.last_status_code) : d.last_error || ""),
      h("td", {"data-label": "When"}, timeEl(d.updated_at)),
      h("td", {}, this.ctx.can.operate ? h("button", {type: "button", class: "secondary small",
        "aria-label": `Redeliver ${d.event_type} to ${d.url}`, onclick: () => this.redeliver(d.delivery_id)},
        "Redeliver") : null)));
    const body = $("#deliveries tbody", this.dialog);
    body.replaceChildren(...rows);
    if (!rows.length) body.append(h("tr", {}, h("td", {colspan: 7, class: "muted"}, "No webhook deliveries.")));
  }

  async redeliver(deliveryId) {
    try {
      await this.ctx.api.post(`/accounts/${this.id}/webhook-deliveries/${deliveryId}/redeliver`);
      await this.loadDeliveries();
    } catch (err) { this.ctx.onError(err); }
  }

  /** A live event of this number. */
  onEvent(ev) {
    const data = ev.data || {};
    if (ev.type === "account.status") {
      this.later("account", 0, async () => this.setAccount(await this.ctx.api.get(`/accounts/${this.id}`)));
    } else if (ev.type === "account.qr") {
      this.later("link", 0, () => this.loadLink());
    } else if (ev.type === "message.status") {
      const item = this.dialog.querySelector(`[data-message-id="${CSS.escape(data.message_id || "")}"]`);
      if (item) setStatus(item, data.status, data.error);
      else this.later("messages", 200, () => this.loadMessages());
    } else if (ev.type.startsWith("message.")) {
      this.later("messages", 200, () => this.loadMessages());
    }
    this.later("deliveries", 1500, () => this.loadDeliveries());
  }

  later(name, ms, fn) {
    clearTimeout(this.debounce[name]);
    this.debounce[name] = setTimeout(() => {
      if (this.account) Promise.resolve(fn()).catch((err) => this.ctx.onError(err));
    }, ms);
  }
}

function messageItem(m) {
  const inbound = m.direction === "inbound";
  const who = inbound ? `From ${m.from || m.from_lid || "?"}` : `To ${m.to}`;
  const item = h("li", {class: `message ${inbound ? "in" : "out"}`, dataset: {messageId: m.message_id}},
    h("div", {class: "message-head"},
      h("span", {class: "direction"}, inbound ? "← " : "→ ", who),
      h("span", {class: "status-chip"}),
      timeEl(m.created_at)),
    h("div", {class: "message-body"}, ...content(m)));
  setStatus(item, m.status, m.error);
  return item;
}

function setStatus(item, status, error) {
  const chip = item.querySelector(".status-chip");
  chip.className = `status-chip chip chip-${status}`;
  chip.dataset.status = status;
  chip.textContent = status === "failed" && error ? `failed: ${error.code || error}` : status;
}

function content(m) {
  const c = m.content || {};
  const type = c.type || m.type;
  if (m.revoked) return [h("em", {}, "deleted for everyone")];
  const parts = [];
  const text = c.text && c.text.body;
  if (text) parts.push(h("p", {}, m.edits && m.edits.length ? m.edits[m.edits.length - 1].body : text));
  const media = c.media || null;
  const body = c[type] || {};
  if (media && media.url) {
    const mime = media.mime_type || "";
    const label = `${type} (${mime}, ${bytes(media.size_bytes)})`;
    if (mime.startsWith("image/")) parts.push(h("img", {class: "media", src: media.url, alt: body.caption || label, loading: "lazy"}));
    else if (mime.startsWith("audio/")) parts.push(h("audio", {controls: true, src: media.url, "aria-label": label}));
    else if (mime.startsWith("video/")) parts.push(h("video", {controls: true, src: media.url, class: "media", "aria-label": label}));
    parts.push(h("a", {href: media.url, target: "_blank", rel: "noopener noreferrer"}, `Open ${label}`));
  } else if (type && type !== "text") {
    parts.push(h("p", {class: "muted"}, `[${type}]`));
  }
  if (body.caption) parts.push(h("p", {}, body.caption));
  if (type === "location" && body.latitude !== undefined) parts.push(h("p", {}, `📍 ${body.name || ""} ${body.latitude}, ${body.longitude}`));
  const reactions = Object.entries(m.reactions || {});
  if (reactions.length) parts.push(h("p", {class: "reactions"}, reactions.map(([who, e]) => `${e} ${who}`).join("  ")));
  return parts;
}
