// The one client of the JSON API (/api/v1): the access token lives only in this module's memory; the
// refresh token is an httpOnly cookie the page cannot read (api/auth_cookie.py). A reload refreshes.

const BASE = "/api/v1";
const CSRF = { "X-EventPlane-CSRF": "1" };
let accessToken = null;
let refreshing = null; // one refresh at a time in this tab (a refresh token works once)
const endedListeners = new Set();

/** Any non-2xx answer: the server's stable `code`, its `message`, and `details`. */
export class ApiError extends Error {
  constructor(status, code, message, details = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page): fall through
  }
  const e = body && body.error;
  if (e && typeof e.code === "string") return new ApiError(response.status, e.code, e.message || e.code, e.details ?? null);
  return new ApiError(response.status, "HTTP_" + response.status, `The server answered ${response.status} ${response.statusText}`.trim());
}

function networkError(err) {
  return new ApiError(0, "NETWORK_ERROR", "Could not reach the server: " + (err && err.message ? err.message : err));
}

async function send(method, path, body, extra = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined && body !== null) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(BASE + path, init);
  } catch (err) {
    throw networkError(err);
  }
}

async function parse(response) {
  if (!response.ok) throw await errorOf(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Trade the session cookie for a fresh access token; true when the session goes on. Serialised across
 * tabs with a Web Lock, so two tabs never present the same (single-use) refresh token. */
export function refreshSession() {
  if (!refreshing) {
    const run = async () => {
      let response;
      try {
        response = await fetch(BASE + "/auth/refresh", { method: "POST", headers: { ...CSRF }, credentials: "same-origin" });
      } catch {
        return false; // offline: the session may still be fine
      }
      if (!response.ok) {
        accessToken = null;
        return false;
      }
      accessToken = (await response.json()).access_token;
      return true;
    };
    const locked = navigator.locks ? navigator.locks.request("eventplane-refresh", run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * Call the API: `api("GET", "/workspaces")`. Resolves to the parsed JSON (null for 204); throws ApiError
 * for any non-2xx, after one silent refresh-and-retry on a 401.
 */
export async function api(method, path, body) {
  let response = await send(method, path, body);
  if (response.status === 401 && !path.startsWith("/auth/")) {
    if (await refreshSession()) response = await send(method, path, body);
    if (response.status === 401) sessionEnded();
  }
  return parse(response);
}

/** Log in; the refresh token goes into the httpOnly cookie. Resolves to the user (GET /me). */
export async function login(email, password) {
  const response = await send("POST", "/auth/login", { email, password, cookie: true }, CSRF);
  accessToken = (await parse(response)).access_token;
  return api("GET", "/me");
}

/** End this session on the server (and its cookie); forgets the access token either way. */
export async function logout() {
  try {
    await parse(await send("POST", "/auth/logout", null, CSRF));
  } finally {
    accessToken = null;
  }
}

/** The user of the session the cookie holds, or null when there is none (the page's first call). */
export async function restoreSession() {
  if (!accessToken && !(await refreshSession())) return null;
  try {
    return await api("GET", "/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export function isLoggedIn() {
  return accessToken !== null;
}

/** `fn()` runs when the server refuses the session (expired, logged out elsewhere). Returns an unsubscribe. */
export function onSessionEnded(fn) {
  endedListeners.add(fn);
  return () => endedListeners.delete(fn);
}

function sessionEnded() {
  accessToken = null;
  for (const fn of endedListeners) fn();
}

async function authorizedFetch(path, init) {
  const call = () => {
    const headers = { ...(init.headers || {}) };
    if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
    return fetch(BASE + path, { ...init, headers, credentials: "same-origin" }).catch((err) => {
      if (err && err.name === "AbortError") throw err;
      throw networkError(err);
    });
  };
  let response = await call();
  if (response.status === 401 && (await refreshSession())) response = await call();
  if (response.status === 401) sessionEnded();
  if (!response.ok) throw await errorOf(response);
  return response;
}

/**
 * Server-sent events from `path` as an async iterator of `{ event, data, id }` (`data` parsed as JSON
 * when it is JSON). A fetch() stream, since EventSource cannot send the Authorization header. Stops when
 * `signal` aborts (the iterator then just ends) or the server closes; throws ApiError on a non-2xx.
 * `onOpen()` runs once the server has answered 2xx (the stream is open, before any event).
 */
export async function* apiStream(path, { signal, onOpen } = {}) {
  let response;
  try {
    response = await authorizedFetch(path, { headers: { Accept: "text/event-stream" }, signal });
  } catch (err) {
    if (err && err.name === "AbortError") return;
    throw err;
  }
  if (onOpen) onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "message", data: [], id: null };
  try {
    while (true) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal && signal.aborted) return;
        throw networkError(err);
      }
      if (chunk.done) return;
      buffer += chunk.value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (message.data.length) yield finish(message);
          message = { event: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue; // a comment (keep-alive)
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") message.event = value;
        else if (field === "data") message.data.push(value);
        else if (field === "id") message.id = value;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function finish(message) {
  const text = message.data.join("\n");
  let data = text;
  try {
    data = JSON.parse(text);
  } catch {
    // plain text data
  }
  return { event: message.event, data, id: message.id };
}

/** Fetch `path` with the session and save the answer as `filename` (a download the browser offers). */
export async function download(path, filename) {
  const response = await authorizedFetch(path, {});
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The edge's public base URL (where SDKs send events), from the page's config. */
export function edgeUrl() {
  const meta = document.querySelector('meta[name="eventplane-edge-url"]');
  return (meta && meta.content) || "http://127.0.0.1:8000";
}
