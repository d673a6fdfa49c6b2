// The console's client of /api/v1: JSON requests with the session cookie and the CSRF
// header, API errors as exceptions with code and field, and WebSocket streams that
// reconnect with backoff.

let csrf = null;

/** The close code of a stream whose console session ended (logout or expiry). */
const SESSION_ENDED = 4401;

/** An error response of the API: `{ error: { code, message, field } }`. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || { code: 'internal', message: `HTTP ${status}` };
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.field = error.field || null;
  }
}

/** Remembers the session's CSRF value (kept in memory only). */
export function setCsrf(value) {
  csrf = value;
}

/** A fresh Idempotency-Key: 128 random bits in hex (works on plain HTTP too). */
export function newIdempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Whether a failed call may be retried with the same Idempotency-Key: the node did not
 * answer, or was busy. A failure replayed from the key is the node's final word on it.
 */
export function isTransient(err) {
  return err instanceof ApiError && !err.replayed && [0, 502, 503, 504].includes(err.status);
}

/**
 * POSTs with an Idempotency-Key and retries on transient failures (unreachable node,
 * timeout) with the same key: the node acts once and replays its answer to retries.
 */
export async function postOnce(path, body, key = newIdempotencyKey(), attempts = 3) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await api('POST', path, body, { 'Idempotency-Key': key });
    } catch (err) {
      if (!isTransient(err) || attempt >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

/** Sends a request to /api/v1; resolves with the JSON body or throws ApiError. */
export async function api(method, path, body = undefined, extraHeaders = {}) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-Qubix-CSRF'] = csrf;
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'unavailable', message: 'The node is not reachable; is it running?' } });
  }
  if (response.status === 204) return null;
  const json = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, json);
    error.replayed = response.headers.get('Idempotent-Replayed') === 'true';
    if (response.status === 401 && path !== '/login') window.dispatchEvent(new CustomEvent('qubix:logged-out'));
    throw error;
  }
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/**
 * Opens a WebSocket on /api/v1`path` and calls onMessage with each JSON message. Reconnects
 * with backoff until closed. onStatus receives 'live', 'reconnecting' or 'closed'.
 */
export function stream(path, onMessage, onStatus = () => {}) {
  let socket = null;
  let closed = false;
  let delay = 500;
  let timer = null;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1${path}`;
  const connect = () => {
    socket = new WebSocket(url);
    socket.onopen = () => { delay = 500; onStatus('live'); };
    socket.onmessage = (m) => {
      try { onMessage(JSON.parse(m.data)); } catch (e) { console.warn('bad stream message', e); }
    };
    socket.onclose = (e) => {
      if (closed) return;
      if (e.code === 1000) { onStatus('ended'); return; }
      if (e.code === SESSION_ENDED) {
        // The session that opened the stream was logged out or expired: reconnecting
        // would be refused, so ask for a login instead.
        onStatus('closed');
        window.dispatchEvent(new CustomEvent('qubix:logged-out'));
        return;
      }
      onStatus('reconnecting');
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (socket) socket.close(1000);
      onStatus('closed');
    },
  };
}

const listeners = new Set();
let events = null;

/** Starts the shared events stream (once, after login). */
export function startEvents(onStatus) {
  if (events) return;
  events = stream('/events', (event) => {
    for (const listener of listeners) listener(event);
  }, onStatus);
}

/** Stops the shared events stream (logout). */
export function stopEvents() {
  if (events) events.close();
  events = null;
}

/** Calls fn with every event; returns the unsubscribe function. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
