// Keeping the config document fresh: the stream pushes each change (the edge sends it within a second);
// while it is down, reconnect with backoff and poll the document with its ETag every pollIntervalMs
// (304 when unchanged). Timers are unref'd: following the config never keeps a Node process alive.
import { openStream } from './sse.js';

const CONFIG_PATH = '/api/v1/sdk/config';
const STREAM_PATH = '/api/v1/sdk/config/stream';
const FETCH_TIMEOUT_MS = 10_000;

const unref = (timer) => {
  timer?.unref?.();
  return timer;
};

/** A document indexed by key, or null when it is not one. */
export function parseDocument(text, etag = null) {
  const doc = JSON.parse(text);
  if (doc === null || typeof doc !== 'object' || !Number.isInteger(doc.version)) return null;
  const byKey = (items) => new Map((Array.isArray(items) ? items : []).filter((i) => typeof i?.key === 'string').map((i) => [i.key, i]));
  return {
    version: doc.version,
    etag: etag ?? (doc.workspace_id !== undefined ? `"${doc.workspace_id}:${doc.version}"` : null),
    flags: byKey(doc.flags),
    experiments: byKey(doc.experiments),
  };
}

export class ConfigSync {
  constructor(opts, { stream, pollIntervalMs, customFetch = false, backoffBaseMs = 500, backoffCapMs = 30_000 }) {
    this._opts = opts;
    this._customFetch = customFetch;
    this._stream = stream;
    this._pollIntervalMs = pollIntervalMs;
    this._backoffBaseMs = backoffBaseMs;
    this._backoffCapMs = backoffCapMs;
    this.current = null;
    this.streaming = false;
    this._waiters = [];
    this._abort = new AbortController();
    this._stopped = false;
    this._lastPoll = -Infinity;
    this._wake = null;
  }

  get headers() {
    return { 'x-api-key': this._opts.apiKey, accept: 'application/json' };
  }

  start() {
    this._loop().catch((error) => this._opts.logger?.warn?.(`flag config: ${error?.message ?? error}`));
  }

  stop() {
    this._stopped = true;
    this._abort.abort();
    this._wake?.();
  }

  /** Resolves true once a document of a version above `newerThan` is held, false after timeoutMs. */
  waitFor(timeoutMs, newerThan = -1) {
    if (this.current !== null && this.current.version > newerThan) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { newerThan, resolve, timer: null };
      // Not unref'd: whoever awaits this wants the process kept alive for the answer.
      waiter.timer = setTimeout(() => {
        this._waiters = this._waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this._waiters.push(waiter);
    });
  }

  offer(snapshot) {
    if (snapshot === null || (this.current !== null && this.current.version >= snapshot.version)) return;
    this.current = snapshot;
    for (const w of this._waiters.filter((w) => snapshot.version > w.newerThan)) {
      clearTimeout(w.timer);
      w.resolve(true);
    }
    this._waiters = this._waiters.filter((w) => !(snapshot.version > w.newerThan));
  }

  async poll() {
    this._lastPoll = Date.now();
    const headers = { ...this.headers };
    if (this.current?.etag) headers['if-none-match'] = this.current.etag;
    const controller = new AbortController();
    const timer = unref(setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS));
    const onStop = () => controller.abort();
    this._abort.signal.addEventListener('abort', onStop);
    try {
      const response = await this._opts.fetch(this._opts.baseUrl + CONFIG_PATH, { headers, signal: controller.signal });
      const text = await response.text();
      if (response.status === 200) this.offer(parseDocument(text, response.headers.get('etag')));
    } catch {
      // down: the next poll or the stream will catch up
    } finally {
      clearTimeout(timer);
      this._abort.signal.removeEventListener('abort', onStop);
    }
  }

  async _loop() {
    let failures = 0;
    while (!this._stopped) {
      if (this._stream) {
        let delivered = false;
        try {
          await openStream(this._opts.baseUrl + STREAM_PATH, { 'x-api-key': this._opts.apiKey, accept: 'text/event-stream' }, {
            signal: this._abort.signal,
            fetchImpl: this._opts.fetch,
            customFetch: this._customFetch,
            onOpen: () => {
              this.streaming = true;
              this.poll(); // subscribed: catch up on changes made before it
            },
            onEvent: (name, data) => {
              if (name !== 'config') return;
              try {
                this.offer(parseDocument(data));
                delivered = true;
              } catch {
                // a malformed event: keep the document held
              }
            },
          });
        } catch {
          // down: back off below
        } finally {
          this.streaming = false;
        }
        failures = delivered ? 0 : failures + 1;
      }
      await this._waitAndPoll(this._stream ? this._backoff(failures) : this._pollIntervalMs);
    }
  }

  async _waitAndPoll(delayMs) {
    const deadline = Date.now() + delayMs;
    while (!this._stopped) {
      const now = Date.now();
      if (now - this._lastPoll >= this._pollIntervalMs) {
        await this.poll();
        continue;
      }
      if (now >= deadline) return;
      await new Promise((resolve) => {
        this._wake = resolve;
        unref(setTimeout(resolve, Math.min(deadline, this._lastPoll + this._pollIntervalMs) - now));
      });
    }
  }

  _backoff(failures) {
    if (failures === 0) return 0;
    const ceiling = Math.min(this._backoffCapMs, this._backoffBaseMs * 2 ** Math.min(failures, 16));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}
