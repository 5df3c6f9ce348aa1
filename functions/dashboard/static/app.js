// "WhatsApp Numbers": sign in with an API key, then the tenant's numbers with live connection status, a panel per
// number and (for admins) API keys. Only the public REST API and the WebSocket API are used.
import {ApiClient, ApiError, describe} from "./api.js";
import {$, badge, h, timeEl} from "./dom.js";
import {Live} from "./live.js";
import {Panel} from "./panel.js";

const KEY_STORAGE = "wagate.apiKey";
const state = {api: null, me: null, can: {operate: false, admin: false, create: false}, accounts: new Map(),
               live: null, panel: null};

// --- messages to the user -------------------------------------------------------------------------------------

function showAlert(text, kind = "error") {
  const box = $("#alert");
  box.replaceChildren(h("span", {}, text),
    h("button", {type: "button", class: "link", "aria-label": "Dismiss message", onclick: clearAlert}, "Dismiss"));
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearAlert() { $("#alert").hidden = true; }

function onError(err) {
  if (err instanceof ApiError && err.status === 401) return signOut(describe(err));
  showAlert(describe(err));
  if (err instanceof ApiError && err.status === 0) setLive("offline", "Offline: cannot reach the gateway");
}

function setLive(stateName, text) {
  const el = $("#live");
  el.hidden = false;
  el.dataset.state = stateName;
  el.textContent = text;
}

// --- sign in / out --------------------------------------------------------------------------------------------

async function signIn(key) {
  const api = new ApiClient(key);
  let me;
  try {
    me = await api.get("/me");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    // An older stack without /me: the key works if it can list numbers; show it read-only to be safe.
    await api.get("/accounts", {params: {limit: 1}});
    me = {role: "viewer", tenant_id: "?", key_id: "?", account_ids: []};
  }
  state.api = api;
  state.me = me;
  state.can = {operate: me.role !== "viewer", admin: me.role === "admin",
               create: me.role !== "viewer" && !(me.account_ids || []).length};
  sessionStorage.setItem(KEY_STORAGE, key);
  await enter();
}

async function enter() {
  $("#signin").hidden = true;
  $("#numbers").hidden = false;
  $("#sign-out").hidden = false;
  $("#add-number").hidden = !state.can.create;
  const who = $("#whoami");
  who.hidden = false;
  who.textContent = `${state.me.tenant_id} · ${state.me.role}`;
  who.title = `API key ${state.me.key_id}`;
  state.panel = new Panel($("#panel"), {api: state.api, can: state.can, onError,
    onAccount: (a) => upsertAccount(a), onDeleted: (id) => removeAccount(id)});
  $("#keys").hidden = !state.can.admin;
  await loadAccounts();
  if (state.can.admin) await loadKeys();
  state.live = new Live(state.api, {
    onEvent: applyEvent, onState: setLive, onResync: resync, poll: resync, onError: (t) => showAlert(t),
    onUnauthorized: (err) => signOut(describe(err)),
  });
  state.live.start();
  $("#main").focus();
}

function signOut(message) {
  state.live?.stop();
  state.panel?.close();
  sessionStorage.removeItem(KEY_STORAGE);
  Object.assign(state, {api: null, me: null, live: null, panel: null, accounts: new Map()});
  $("#accounts-table tbody").replaceChildren();
  $("#keys-table tbody").replaceChildren();
  $("#key-created").hidden = true;
  for (const id of ["#numbers", "#keys", "#sign-out", "#whoami", "#live"]) $(id).hidden = true;
  $("#signin").hidden = false;
  $("#api-key").value = "";
  if (message) showAlert(message); else clearAlert();
  $("#api-key").focus();
}

// --- numbers --------------------------------------------------------------------------------------------------

async function loadAccounts() {
  const items = await state.api.all("/accounts");
  const seen = new Set(items.map((a) => a.account_id));
  for (const id of [...state.accounts.keys()]) if (!seen.has(id)) removeAccount(id);
  for (const a of items.reverse()) upsertAccount(a);
}

function upsertAccount(a) {
  state.accounts.set(a.account_id, a);
  const body = $("#accounts-table tbody");
  let row = body.querySelector(`tr[data-account-id="${CSS.escape(a.account_id)}"]`);
  if (!row) {
    row = h("tr", {dataset: {accountId: a.account_id}},
      h("th", {scope: "row", "data-label": "Name"}, h("button", {type: "button", class: "link name",
        onclick: () => openPanel(a.account_id)})),
      h("td", {"data-label": "Phone", class: "phone"}), h("td", {"data-label": "Provider", class: "provider"}),
      h("td", {"data-label": "Connection Status", class: "status"}), h("td", {"data-label": "Host", class: "host"}));
    body.prepend(row);
  }
  $(".name", row).textContent = a.account_name;
  $(".name", row).setAttribute("aria-label", `Open ${a.account_name}`);
  $(".phone", row).textContent = a.phone_number || "—";
  $(".provider", row).textContent = a.provider;
  $(".status", row).replaceChildren(badge(a.connection_status, a.status_reason));
  $(".host", row).textContent = a.host_id || "—";
  $("#accounts-empty").hidden = state.accounts.size > 0;
}

function removeAccount(id) {
  state.accounts.delete(id);
  $(`#accounts-table tr[data-account-id="${CSS.escape(id)}"]`)?.remove();
  $("#accounts-empty").hidden = state.accounts.size > 0;
}

function openPanel(id, options) {
  const account = state.accounts.get(id);
  if (account) state.panel.open(account, options).catch(onError);
}

function applyEvent(ev) {
  const account = state.accounts.get(ev.account_id);
  if (ev.type === "account.status" && account) {
    upsertAccount({...account, connection_status: ev.data.status, status_reason: ev.data.reason ?? null});
  } else if (!account && ev.account_id) {
    loadAccounts().catch(onError);  // a number created elsewhere
  }
  if (state.panel.isOpenFor(ev.account_id)) state.panel.onEvent(ev);
}

async function resync() {
  if (!state.api) return;
  try {
    await loadAccounts();
    if (state.panel.id) await state.panel.refresh();
    if (state.live?.state === "polling" && $("#live").dataset.state === "offline") setLive("polling", "Back online");
  } catch (err) { onError(err); }
}

// --- add a number ---------------------------------------------------------------------------------------------

function openAdd() {
  $("#add-form").reset();
  showAddFields();
  $("#add-error").textContent = "";
  $("#add-dialog").showModal();
  $("#add-name").focus();
}

function showAddFields() {
  const cloud = $("#add-form").elements.link.value === "cloud";
  $("#add-web").hidden = cloud;
  $("#add-cloud").hidden = !cloud;
}

/** The `cloud` object of a Cloud API number from the form (empty optional fields left out). */
function cloudFields() {
  const fields = {phone_number_id: $("#add-pnid").value.trim(), access_token: $("#add-token").value.trim(),
                  app_secret: $("#add-app-secret").value.trim(), verify_token: $("#add-verify-token").value.trim()};
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v));
}

async function submitAdd(event) {
  event.preventDefault();
  const name = $("#add-name").value.trim();
  const phone = $("#add-phone").value.trim();
  const link = $("#add-form").elements.link.value;
  const pairing = link === "pairing";
  const error = $("#add-error");
  if (!name) { error.textContent = "Give the number a name."; $("#add-name").focus(); return; }
  if (pairing && !phone) { error.textContent = "A pairing code needs the phone number."; $("#add-phone").focus(); return; }
  const cloud = link === "cloud" ? cloudFields() : null;
  if (cloud && (!cloud.phone_number_id || !cloud.access_token)) {
    error.textContent = "A Cloud API number needs its phone number ID and an access token.";
    $(cloud.phone_number_id ? "#add-token" : "#add-pnid").focus();
    return;
  }
  $("#add-submit").disabled = true;
  try {
    const body = cloud ? {account_name: name, provider: "cloud", cloud}
      : {account_name: name, ...(phone ? {phone_number: phone} : {})};
    const account = await state.api.post("/accounts", body);
    let pairingCode = null;
    if (pairing) pairingCode = await state.api.post(`/accounts/${account.account_id}/pairing-code`, {phone_number: phone});
    else if (!cloud) await state.api.post(`/accounts/${account.account_id}/start`);  // cloud: checked at creation
    upsertAccount(await state.api.get(`/accounts/${account.account_id}`));
    $("#add-dialog").close();
    openPanel(account.account_id, {pairing: pairingCode});
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return onError(err);
    error.textContent = describe(err);
  } finally {
    $("#add-submit").disabled = false;
  }
}

// --- API keys (admins) ----------------------------------------------------------------------------------------

async function loadKeys() {
  const {items} = await state.api.get("/api-keys");
  $("#keys-table tbody").replaceChildren(...items.map((k) => h("tr", {dataset: {keyId: k.key_id}},
    h("td", {"data-label": "Name"}, k.name), h("td", {"data-label": "Role"}, k.role),
    h("td", {"data-label": "Key id"}, h("code", {}, k.key_id)),
    h("td", {"data-label": "Numbers"}, (k.account_ids || []).length ? k.account_ids.join(", ") : "all"),
    h("td", {"data-label": "Created"}, timeEl(k.created_at)),
    h("td", {}, k.key_id === state.me.key_id ? h("span", {class: "muted"}, "this key") :
      h("button", {type: "button", class: "danger small", "aria-label": `Revoke key ${k.name}`,
                   onclick: () => revokeKey(k)}, "Revoke")))));
}

async function createKey(event) {
  event.preventDefault();
  const name = $("#key-name").value.trim();
  if (!name) { $("#key-name").focus(); return; }
  try {
    const created = await state.api.post("/api-keys", {name, role: $("#key-role").value});
    const box = $("#key-created");
    const copy = h("button", {type: "button", class: "secondary small", onclick: async () => {
      try { await navigator.clipboard.writeText(created.api_key); copy.textContent = "Copied"; }
      catch { copy.textContent = "Select the key and copy it"; }
    }}, "Copy");
    box.replaceChildren(h("p", {}, h("strong", {}, `Key “${created.name}” (${created.role}) created. `),
      "Copy it now: it is shown only once."), h("code", {id: "new-key", class: "secret"}, created.api_key), copy);
    box.hidden = false;
    $("#key-form").reset();
    await loadKeys();
  } catch (err) { onError(err); }
}

async function revokeKey(k) {
  if (!window.confirm(`Revoke the key “${k.name}” (${k.role})? Clients using it stop working at once.`)) return;
  try {
    await state.api.delete(`/api-keys/${k.key_id}`);
    await loadKeys();
  } catch (err) { onError(err); }
}

// --- start ----------------------------------------------------------------------------------------------------

function init() {
  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("#api-key").value.trim();
    const error = $("#signin-error");
    error.textContent = "";
    if (!key) { error.textContent = "Enter an API key."; return; }
    try {
      await signIn(key);
      clearAlert();
    } catch (err) {
      error.textContent = describe(err);
      $("#api-key").focus();
    }
  });
  $("#sign-out").addEventListener("click", () => signOut(null));
  $("#add-number").addEventListener("click", openAdd);
  $("#add-cancel").addEventListener("click", () => $("#add-dialog").close());
  $("#add-form").addEventListener("submit", submitAdd);
  $("#add-form").addEventListener("change", showAddFields);
  $("#key-form").addEventListener("submit", createKey);
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    signIn(saved).catch((err) => signOut(describe(err)));
  } else {
    $("#signin").hidden = false;
    $("#api-key").focus();
  }
}

init();
