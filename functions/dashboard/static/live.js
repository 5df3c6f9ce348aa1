// Live updates: the WebSocket API (a one-time ticket from POST /realtime/tickets, then subscribe), reconnecting
// with backoff and resuming from the last event seen. When no socket can be had (the stack has no WebSocket API,
// or it keeps failing), the page polls instead and says so.

const POLL_MS = 4000;
const MAX_BACKOFF_MS = 30000;
const FALLBACK_AFTER = 3;         // failed connection attempts in a row before polling meanwhile
const SOCKET_RETRY_WHEN_POLLING_MS = 60000;

export class Live {
  /**
   * @param api ApiClient
   * @param handlers {onEvent(event), onState(state, text), onResync(), poll()}
   */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.lastEventId = null;
    this.failures = 0;
    this.socket = null;
    this.timer = null;
    this.pollTimer = null;
    this.stopped = false;
    this.state = "connecting";
  }

  start() {
    this.stopped = false;
    this.setState("connecting", "Connecting…");
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.stopPolling();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
      this.socket = null;
    }
  }

  setState(state, text) {
    this.state = state;
    this.handlers.onState(state, text);
  }

  async connect() {
    if (this.stopped) return;
    let ticket;
    try {
      ticket = await this.api.post("/realtime/tickets", {});
    } catch (err) {
      if (err.status === 401) { this.handlers.onUnauthorized?.(err); return; }
      // 404/405/501: this stack has no WebSocket API. Other errors: try again later, poll meanwhile.
      const missing = [403, 404, 405, 501].includes(err.status);
      this.failed(missing ? "Live updates are not available on this gateway" : "Cannot open live updates");
      return;
    }
    let socket;
    try {
      socket = new WebSocket(ticket.url);  // the URL carries the one-time ticket
    } catch (err) {
      this.failed("Cannot open live updates");
      return;
    }
    this.socket = socket;
    let subscribed = false;
    socket.onopen = () => {
      socket.send(JSON.stringify({action: "subscribe", account_ids: null, events: null,
                                  ...(this.lastEventId ? {since: this.lastEventId} : {})}));
    };
    socket.onmessage = (message) => {
      let data;
      try { data = JSON.parse(message.data); } catch { return; }
      if (data.type === "subscribed") {
        subscribed = true;
        const resumed = this.failures > 0 || this.state === "polling";
        this.failures = 0;
        this.stopPolling();
        this.setState("live", "Live");
        if (resumed) this.handlers.onResync();  // what happened while the socket was down
      } else if (data.type === "replay_incomplete") {
        this.handlers.onResync();
      } else if (data.type === "error") {
        this.handlers.onError?.(`Live updates: ${data.message || data.code}`);
      } else if (data.id && data.type && data.account_id !== undefined) {
        this.lastEventId = data.id;
        this.handlers.onEvent(data);
      }
    };
    socket.onclose = () => {
      this.socket = null;
      if (this.stopped) return;
      this.failed(subscribed ? "Connection lost" : "Cannot open live updates");
    };
  }

  failed(why) {
    this.failures += 1;
    const missing = why.includes("not available");
    if (missing || this.failures >= FALLBACK_AFTER) {
      this.startPolling(missing ? `${why}: refreshing every ${POLL_MS / 1000} s` :
                        `${why}: refreshing every ${POLL_MS / 1000} s while reconnecting`);
      this.schedule(missing ? SOCKET_RETRY_WHEN_POLLING_MS : this.backoff());
      return;
    }
    const delay = this.backoff();
    this.setState("reconnecting", `${why}. Reconnecting… (in ${Math.round(delay / 1000)} s)`);
    this.schedule(delay);
  }

  backoff() {
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, this.failures - 1));
    return Math.round(base / 2 + Math.random() * base / 2);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  startPolling(text) {
    this.setState("polling", text);
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => this.handlers.poll(), POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
