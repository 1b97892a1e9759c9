// One Server-Sent Events connection per VM (/api/stream), shared by the pages. The browser's
// EventSource resumes with Last-Event-ID by itself; when the server closes the stream for good
// (e.g. restarted, 401) we open a new one after a pause. Status changes go to the badge.

import { getToken } from "./api.js";

export class Stream {
  /** Opens the stream for `vmId`; `onStatus(state)` gets "connecting" | "live" | "reconnecting". */
  constructor(vmId, onStatus) {
    this.vmId = vmId;
    this.onStatus = onStatus;
    this.handlers = { rates: new Set(), registration: new Set() };
    this.lastEventId = null;
    this.closed = false;
    this.retryTimer = null;
    this.open();
  }

  open() {
    const params = new URLSearchParams({ vm_id: String(this.vmId) });
    const token = getToken();
    // EventSource can't send headers: the API accepts ?token= on this endpoint only.
    if (token) params.set("token", token);
    // A fresh EventSource forgets the last id; the query parameter carries it across.
    if (this.lastEventId) params.set("last_event_id", this.lastEventId);
    this.setStatus("connecting");
    const es = new EventSource(`/api/stream?${params}`);
    this.es = es;
    es.onopen = () => this.setStatus("live");
    es.onerror = () => {
      if (this.closed) return;
      this.setStatus("reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => !this.closed && this.open(), 2000);
      }
    };
    for (const name of Object.keys(this.handlers)) {
      es.addEventListener(name, (ev) => this.dispatch(name, ev));
    }
  }

  dispatch(name, ev) {
    if (ev.lastEventId) this.lastEventId = ev.lastEventId;
    if (this.status !== "live") this.setStatus("live");
    const data = JSON.parse(ev.data);
    this.handlers[name].forEach((fn) => fn(data));
  }

  setStatus(state) {
    this.status = state;
    this.onStatus(state);
  }

  /**
   * Subscribes to "rates" events (app/api/stream/ticks.py: {t, registrations, exits}) or
   * "registration" events (a registration as GET .../ioeventfds gives it); returns the unsubscribe.
   */
  on(name, fn) {
    this.handlers[name].add(fn);
    return () => this.handlers[name].delete(fn);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.es) this.es.close();
  }
}

