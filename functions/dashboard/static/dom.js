// Small DOM helpers: elements are built with textContent only (never innerHTML), so nothing the API returns can
// inject markup.

/** h("button", {type: "button", onclick: fn, class: "x"}, "text", child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function time(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                                         second: "2-digit"});
}

export function timeEl(iso) {
  return h("time", {datetime: iso || ""}, time(iso));
}

/** The connection status badge: the status word, plus the reason for FAILED. */
export function badge(status, reason) {
  const text = status === "FAILED" && reason ? `FAILED: ${reason}` : status;
  return h("span", {class: `badge badge-${String(status).toLowerCase()}`, dataset: {status}}, text);
}

export function bytes(n) {
  if (n === undefined || n === null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
