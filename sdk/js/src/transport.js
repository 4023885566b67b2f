// HTTP to the edge with fetch: gzip via CompressionStream where the runtime has it, a deadline per
// request, and an answer reduced to what the sender decides on. The feature-flag config fetcher will
// reuse `request`.
import { parseRetryAfter } from './retry.js';

export const VERSION = '0.1.0';
const IS_NODE = typeof globalThis.process?.versions?.node === 'string';

export async function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function errorOf(status, text) {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) {
      const { code, message, details } = parsed.error;
      return { code: String(code ?? `HTTP_${status}`), message: String(message ?? ''), details: details ?? null };
    }
  } catch {
    // not our error shape (a proxy's HTML page, say)
  }
  return { code: `HTTP_${status}`, message: text.slice(0, 200), details: null };
}

export class Transport {
  constructor(opts) {
    this._opts = opts;
    this.canGzip = opts.gzip && typeof globalThis.CompressionStream === 'function';
  }

  headers(gzipped) {
    const headers = { 'content-type': 'application/json', 'x-api-key': this._opts.apiKey };
    if (gzipped) headers['content-encoding'] = 'gzip';
    if (IS_NODE) headers['user-agent'] = `experimentation-sdk-js/${VERSION}`;
    return headers;
  }

  /**
   * POST a batch body. Never throws: the result says what happened.
   * `keepalive`: the page may be going away (the body is sent uncompressed, since compressing is async
   * and the request must start inside the event handler; browsers cap keepalive bodies at 64 KB).
   * @returns {Promise<{ok: boolean, status: number, retryAfterMs: number|null, error: {code: string, message: string, details: any}|null}>}
   */
  async postBatch(text, { keepalive = false, signal = null } = {}) {
    const gzipped = this.canGzip && !keepalive;
    if (!gzipped) return this.request(this._opts.batchUrl, text, false, keepalive, signal);
    let body;
    try {
      body = await gzip(text);
    } catch {
      return this.request(this._opts.batchUrl, text, false, keepalive, signal);
    }
    return this.request(this._opts.batchUrl, body, true, keepalive, signal);
  }

  async request(url, body, gzipped, keepalive, signal) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this._opts.requestTimeoutMs);
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort);
    try {
      // Raced against the signal too: a fetch implementation that ignores it must not hang close().
      const aborted = new Promise((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(new Error('aborted')));
      });
      aborted.catch(() => {});
      const response = await Promise.race([
        this._opts.fetch(url, { method: 'POST', headers: this.headers(gzipped), body, keepalive, signal: controller.signal }),
        aborted,
      ]);
      const text = await Promise.race([response.text(), aborted]);
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status, retryAfterMs, error: null };
      return { ok: false, status: response.status, retryAfterMs, error: errorOf(response.status, text) };
    } catch (error) {
      const timedOut = controller.signal.aborted && !signal?.aborted;
      const code = timedOut ? 'TIMEOUT' : signal?.aborted ? 'ABORTED' : 'NETWORK_ERROR';
      const cause = error?.cause?.code ?? error?.cause?.message ?? error?.message ?? String(error);
      const message = timedOut ? `no answer within ${this._opts.requestTimeoutMs} ms` : String(cause);
      return { ok: false, status: 0, retryAfterMs: null, error: { code, message, details: null } };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Fire-and-forget send while the page unloads; the events stay stored until a 2xx is seen. */
  beacon(text) {
    try {
      const p = this._opts.fetch(this._opts.batchUrl, { method: 'POST', headers: this.headers(false), body: text, keepalive: true });
      p?.catch?.(() => {});
      return true;
    } catch {
      return false;
    }
  }
}
