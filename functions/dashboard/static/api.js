// The public REST API of this gateway, with the signed-in API key. Same origin: the dashboard is served by the
// API Gateway stage it calls, so the base is the page's directory (`/` locally, `/v1/` on an execute-api URL).

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

export const API_BASE = new URL(".", window.location.href);

export class ApiClient {
  constructor(key) {
    this.key = key;
  }

  /** JSON (or a Blob with {blob: true}); null for 204. Throws ApiError; status 0 when the gateway is unreachable. */
  async request(method, path, {body, blob = false, params} = {}) {
    const url = new URL(path.replace(/^\//, ""), API_BASE);
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null) url.searchParams.set(k, v);
    const headers = {"X-Api-Key": this.key, Accept: blob ? "image/png" : "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   cache: "no-store", credentials: "omit"});
    } catch (err) {
      throw new ApiError(0, "network", "Cannot reach the gateway. Check your connection; retrying.");
    }
    if (!response.ok) {
      let data = {};
      try { data = await response.json(); } catch { /* not JSON */ }
      throw new ApiError(response.status, data.code || `http_${response.status}`,
                         data.message || response.statusText || "request failed", data.request_id);
    }
    if (response.status === 204) return null;
    if (blob) return response.blob();
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  get(path, options) { return this.request("GET", path, options); }
  post(path, body, options = {}) { return this.request("POST", path, {...options, body: body ?? {}}); }
  delete(path) { return this.request("DELETE", path); }

  /** Every page of a list endpoint (up to `max` items). */
  async all(path, params = {}, max = 500) {
    const items = [];
    let cursor;
    do {
      const page = await this.get(path, {params: {...params, limit: 100, cursor}});
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < max);
    return items;
  }
}

/** A sentence for the user: what went wrong and what to do. */
export function describe(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err && err.message ? err.message : err}`;
  const detail = err.requestId ? ` (request ${err.requestId})` : "";
  switch (err.status) {
    case 0: return err.message;
    case 401: return "This API key was not accepted (401): it is wrong or was revoked. Sign in again.";
    case 403: return `Your API key may not do this (403 ${err.code}): ${err.message}.`;
    case 404: return `Not found (404 ${err.code}): ${err.message}.`;
    case 409: return `Not possible right now (409 ${err.code}): ${err.message}.`;
    case 422: return `Check the form (422): ${err.message}.`;
    case 429: return "Too many requests (429): wait a moment and try again.";
    default:
      if (err.status >= 500) return `The gateway had a problem (${err.status} ${err.code}); try again${detail}.`;
      return `${err.message} (${err.status} ${err.code})${detail}.`;
  }
}
