// The public client: enqueue at once, send in the background one batch at a time, retry what may succeed,
// and count (and report to the server) every event it gives up on.
import { DeliveryError } from './errors.js';
import { buildEvent, restoreEvent } from './event.js';
import { Flags } from './flags.js';
import { installNodeExit, installPageHide, Persistence } from './lifecycle.js';
import { resolveOptions } from './options.js';
import { EventQueue } from './queue.js';
import { DropLedger } from './report.js';
import { isRetryable, retryDelay } from './retry.js';
import { Transport } from './transport.js';

const ENVELOPE_BYTES = 2_048; // room for `sent_at` and a client_report around the events
const KEEPALIVE_BYTES = 60_000; // browsers refuse keepalive bodies over 64 KB (all in flight together)
const PERSIST_EVERY_MS = 1_000;
const DROP_LOG_EVERY_MS = 1_000; // one log line per reason and second: an overloaded queue must not flood the log
const now = () => globalThis.performance?.now() ?? Date.now(); // monotonic where there is one
const MESSAGES = {
  queue_full: 'queue full: event dropped (policy dropNewest or block timed out)',
  queue_full_oldest: 'queue full: oldest queued event dropped (policy dropOldest)',
  too_large: 'event over the per-event size limit dropped',
  rejected: 'server refused the events; not retried',
  retry_exhausted: 'retry time budget spent; events dropped',
  shutdown: 'client closed before these events were delivered',
};

function unref(timer) {
  timer?.unref?.();
  return timer;
}

function body(items, report, sentAt) {
  let text = `{"events":[${items.map((i) => i.json).join(',')}],"sent_at":"${sentAt}"`;
  if (report !== null) text += `,"client_report":${JSON.stringify(report)}`;
  return `${text}}`;
}

/** Which event of the batch a 400 names (`details.index`, or a field path `events[3]...`), if any. */
function blamed(error) {
  const details = error?.details;
  if (Number.isInteger(details?.index)) return { index: details.index };
  const field = typeof details?.field === 'string' ? details.field : '';
  const m = /^events\[(\d+)\]/.exec(field);
  if (m) return { index: Number(m[1]) };
  if (field.startsWith('client_report')) return { report: true };
  return null;
}

export class ExperimentationClient {
  /** @param {import('../index.js').ClientOptions} options */
  constructor(options) {
    this._opts = resolveOptions(options);
    this._flags = new Flags(this._opts, options, (event, fields) => this.track(event, fields));
    this._queue = new EventQueue(this._opts.maxQueueSize);
    this._ledger = new DropLedger();
    this._transport = new Transport(this._opts);
    this._counts = { sent: 0, failed: 0, retries: 0 };
    this._dropLog = {};
    this._blocked = [];
    this._flushes = [];
    this._timer = null;
    this._sleep = null;
    this._pumping = false;
    this._urgent = false;
    this._pumped = Promise.resolve();
    this._current = null;
    this._closed = false;
    this._abort = new AbortController();
    this._persistence = Persistence.create(this._opts);
    this._persistTimer = null;
    this._restore();
    this._uninstall = [installNodeExit(this, this._opts), installPageHide(() => this._onHide())];
  }

  /**
   * Queue one event and return at once. The promise resolves true when the event is queued, false
   * when it was dropped (counted in stats().dropped and reported to the server); it never rejects.
   * Invalid arguments (a programming error) throw a TypeError synchronously.
   */
  track(event, fields = {}) {
    const item = buildEvent(event, fields);
    return this._enqueue(item);
  }

  /** `identify(userId, traits)`: an event "$identify" with the traits as its properties. */
  identify(userId, traits = {}) {
    return this.track('$identify', { userId, properties: traits });
  }

  /**
   * Send everything queued now. Resolves true when every event queued before and during the flush was
   * delivered and every drop report acknowledged; false on any loss, or when `timeoutMs` passes first
   * (sending goes on in the background).
   */
  flush(timeoutMs) {
    if (this._abort.signal.aborted) return this._closing; // closed: nothing more will be sent
    const before = this._ledger.totalDropped;
    return new Promise((resolve) => {
      const waiter = { before, resolve, timer: null };
      if (timeoutMs !== undefined && timeoutMs !== null) {
        waiter.timer = setTimeout(() => this._finish(waiter, false), Math.max(0, timeoutMs));
      }
      this._flushes.push(waiter);
      this._sleep?.timer?.ref?.(); // someone waits now: a retry's pause must keep Node's loop alive
      this._kick();
      this._settleFlushes(false);
    });
  }

  /**
   * Flush (up to `timeoutMs`, default closeTimeoutMs) and stop. What is still undelivered then is
   * dropped with reason "shutdown" and logged (in a browser it stays stored and is sent by the next page).
   */
  async close(timeoutMs = this._opts.closeTimeoutMs) {
    if (this._closed) return this._closing;
    this._closed = true;
    this._flags.close();
    for (const uninstall of this._uninstall) uninstall();
    this._closing = (async () => {
      const delivered = await this.flush(timeoutMs);
      this._persistNow();
      if (this._persistence) this._persistence.frozen = true;
      this._abort.abort();
      this._wakeSleep();
      await this._pumped;
      const left = this._queue.clear() + this._blocked.length;
      for (const b of this._blocked.splice(0)) {
        clearTimeout(b.timer);
        b.resolve(false);
      }
      if (left > 0 && this._persistence === null) this._drop('shutdown', left, null);
      clearTimeout(this._timer);
      clearTimeout(this._persistTimer);
      return delivered;
    })();
    return this._closing;
  }

  /** Whether the flag is on for this user; `default` (false) on any error. Never rejects. */
  async isEnabled(key, options = {}) {
    const result = await this._flags.flag(key, { ...options, default: options.default ?? false });
    return result.reason === 'ERROR' ? result.value : result.enabled;
  }

  /** The flag's value for this user; `default` on any error. */
  async getValue(key, options = {}) {
    return (await this._flags.flag(key, options)).value;
  }

  /** { key, enabled, value, reason, variant, errorCode }. */
  flagDetails(key, options = {}) {
    return this._flags.flag(key, options);
  }

  /** The experiment's variant for this user, or null when not in it; `default` on any error. */
  async getVariant(key, options = {}) {
    return (await this._flags.variant(key, options)).variant;
  }

  /** { variant, reason, errorCode }. */
  variantDetails(key, options = {}) {
    return this._flags.variant(key, options);
  }

  /** Start following the flag config now; resolves whether the first document came within timeoutMs. */
  waitForFlags(timeoutMs = 5_000) {
    return this._flags.waitReady(timeoutMs);
  }

  /** Counters since the client started. */
  stats() {
    return {
      queued: this._queue.size + this._blocked.length,
      sent: this._counts.sent,
      failed: this._counts.failed,
      retries: this._counts.retries,
      dropped: { ...this._ledger.total },
      pendingReport: this._ledger.hasUnsent,
    };
  }

  /** Whether anything is waiting to be sent (used by the Node exit hook). */
  hasPendingWork() {
    return this._queue.size > 0 || this._blocked.length > 0 || this._ledger.hasUnsent;
  }

  // ---- queueing ----

  _enqueue(item) {
    if (this._closed) {
      this._drop('shutdown', 1, null);
      return Promise.resolve(false);
    }
    if (item.bytes > this._opts.maxEventBytes) {
      this._drop('too_large', 1, { code: 'EVENT_TOO_LARGE', message: `event is ${item.bytes} bytes; the limit is ${this._opts.maxEventBytes}` });
      this._schedule();
      return Promise.resolve(false);
    }
    if (this._queue.hasRoom() && this._blocked.length === 0) {
      this._accept(item);
      return Promise.resolve(true);
    }
    const policy = this._opts.queueFullPolicy;
    if (policy === 'dropOldest' && this._queue.shift() !== undefined) {
      this._drop('queue_full_oldest', 1, { code: 'QUEUE_FULL', message: `queue holds ${this._opts.maxQueueSize} events` });
      this._accept(item);
      return Promise.resolve(true);
    }
    if (policy === 'block' && this._opts.blockTimeoutMs > 0) {
      return new Promise((resolve) => {
        const entry = { item, resolve, timer: null };
        entry.timer = setTimeout(() => {
          this._blocked.splice(this._blocked.indexOf(entry), 1);
          this._drop('queue_full', 1, { code: 'QUEUE_FULL', message: `no room within ${this._opts.blockTimeoutMs} ms` });
          this._schedule();
          resolve(false);
        }, this._opts.blockTimeoutMs);
        this._blocked.push(entry);
      });
    }
    this._drop('queue_full', 1, { code: 'QUEUE_FULL', message: `queue holds ${this._opts.maxQueueSize} events` });
    this._schedule();
    return Promise.resolve(false);
  }

  _accept(item) {
    this._queue.push(item);
    this._persistSoon();
    this._schedule();
  }

  /** Room was made: let blocked callers in, oldest first. */
  _unblock() {
    if (this._abort.signal.aborted) return; // closing: close() releases the blocked calls as shutdown drops
    while (this._blocked.length > 0 && this._queue.hasRoom()) {
      const entry = this._blocked.shift();
      clearTimeout(entry.timer);
      this._accept(entry.item);
      entry.resolve(true);
    }
  }

  _schedule() {
    if (this._queue.waiting >= this._opts.flushAt) {
      this._kick();
    } else if (this._timer === null && !this._pumping) {
      this._timer = unref(setTimeout(() => this._kick(), this._opts.flushIntervalMs));
    }
  }

  _drop(reason, count, error) {
    if (count <= 0) return;
    this._ledger.add(reason, count);
    if (reason === 'rejected' || reason === 'retry_exhausted') this._counts.failed += count;
    this._logDrop(reason, count, error);
    this._report(new DeliveryError({ reason, count, willRetry: false, ...(error ?? {}), code: error?.code ?? reason.toUpperCase() }));
    this._persistSoon();
  }

  _logDrop(reason, count, error) {
    const t = now();
    const last = this._dropLog[reason] ?? { at: -Infinity, held: 0 };
    this._dropLog[reason] = last;
    if (t - last.at < DROP_LOG_EVERY_MS) {
      last.held += count;
      return;
    }
    const total = count + last.held;
    last.at = t;
    last.held = 0;
    const detail = error ? ` (${error.code}${error.message ? `: ${error.message}` : ''})` : '';
    const since = total > count ? ` (${total} since the last line)` : '';
    this._opts.logger?.warn?.(`[experimentation-sdk] dropped ${count} event(s)${since}, reason ${reason}: ${MESSAGES[reason] ?? reason}${detail}`);
  }

  _report(error) {
    if (this._opts.onError === null) return;
    try {
      this._opts.onError(error);
    } catch {
      // a failing callback must not break delivery
    }
  }

  // ---- sending ----

  _kick(keepalive = false) {
    clearTimeout(this._timer);
    this._timer = null;
    if (this._pumping || this._abort.signal.aborted) return;
    this._pumping = true;
    this._pumped = this._pump(keepalive).then((reportFailed) => {
      this._pumping = false;
      this._urgent = false;
      if (this._abort.signal.aborted) return this._settleFlushes(true);
      // Events queued while the last batch was being settled: a waiting flush wants them now.
      if (this._queue.waiting > 0 && this._flushes.length > 0) return this._kick();
      // The rest waits for the next tick; a report left alone goes too, unless sending it alone just failed.
      if (this._queue.waiting > 0 || (this._ledger.hasUnsent && !reportFailed)) this._schedule();
      this._settleFlushes(true);
    });
  }

  /** Another batch now, rather than at the next tick: a full one, or someone is waiting. */
  _due() {
    return this._queue.waiting >= this._opts.flushAt || this._flushes.length > 0 || this._urgent || this._closed;
  }

  /** Send batches one at a time; returns whether a report sent alone failed (then it waits for company). */
  async _pump(keepalive) {
    let reportOnlyFailed = false;
    for (let first = true; !this._abort.signal.aborted; first = false) {
      if (!first && !this._due()) return reportOnlyFailed;
      const limit = keepalive ? KEEPALIVE_BYTES : this._opts.maxBatchBytes;
      const items = this._queue.take(this._opts.flushAt, limit - ENVELOPE_BYTES);
      const report = reportOnlyFailed && items.length === 0 ? null : this._ledger.next();
      if (items.length === 0 && report === null) return reportOnlyFailed;
      this._current = items;
      const delivered = await this._deliver(items, report, keepalive);
      this._current = null;
      keepalive = false;
      if (!delivered && items.length === 0) reportOnlyFailed = true;
      this._settleFlushes(false);
    }
    return reportOnlyFailed;
  }

  /** Send one batch until a 2xx, a refusal or the end of its time budget. Returns whether it was accepted. */
  async _deliver(items, report, keepalive) {
    const started = now();
    let attempt = 0;
    while (!this._abort.signal.aborted) {
      const text = body(items, report, new Date().toISOString());
      const result = await this._transport.postBatch(text, { keepalive, signal: this._abort.signal });
      keepalive = false;
      if (result.ok) {
        this._settle(items);
        this._counts.sent += items.length;
        this._ledger.ack(report);
        this._current = null;
        this._persistNow(); // one storage write per acknowledged batch: the stored copy never outlives the 2xx by much
        return true;
      }
      if (this._abort.signal.aborted) break;
      if (!isRetryable(result.status)) {
        const next = this._refused(items, report, result);
        if (next === null) return false;
        [items, report] = next;
        if (items.length === 0 && report === null) return true;
        continue;
      }
      attempt += 1;
      const delay = retryDelay(attempt, result.retryAfterMs, this._opts);
      if (now() - started + delay > this._opts.retryBudgetMs) {
        this._settle(items);
        this._drop('retry_exhausted', items.length, result.error);
        return false;
      }
      this._counts.retries += 1;
      this._opts.logger?.warn?.(
        `[experimentation-sdk] batch of ${items.length} not accepted (${result.status || result.error.code}` +
          `${result.status ? ` ${result.error.code}` : `: ${result.error.message}`}); retry ${attempt} in ${Math.round(delay)} ms`,
      );
      this._report(new DeliveryError({ ...result.error, status: result.status, count: items.length, willRetry: true, retryInMs: delay }));
      await this._pause(delay);
    }
    this._settle(items); // aborted by close(): close() counts what is left
    this._queue.prepend(items);
    return false;
  }

  /**
   * A 4xx. Returns what to send next ([items, report]) when the answer blames one part of the body,
   * else drops the batch (reason "rejected") and returns null.
   */
  _refused(items, report, result) {
    const blame = result.status === 400 ? blamed(result.error) : null;
    if (blame?.report && report !== null) {
      this._opts.logger?.warn?.(`[experimentation-sdk] server refused the drop report: ${result.error.message}`);
      this._ledger.discard(report);
      return [items, null];
    }
    if (blame && blame.index !== undefined && blame.index < items.length && items.length > 1) {
      const [bad] = items.splice(blame.index, 1);
      this._settle([bad]);
      this._drop('rejected', 1, result.error);
      return [items, report];
    }
    if (result.status === 413 && items.length > 1) {
      const rest = items.splice(Math.ceil(items.length / 2));
      this._settle(rest);
      this._queue.prepend(rest); // the second half goes in the next batch
      return [items, report];
    }
    this._settle(items);
    this._drop('rejected', items.length, { ...result.error, status: result.status });
    return null;
  }

  _settle(items) {
    this._queue.settle(items.length);
    this._unblock();
  }

  _pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._sleep = null;
        resolve();
      }, ms);
      if (this._flushes.length === 0) unref(timer);
      this._sleep = { timer, resolve };
    });
  }

  _wakeSleep() {
    if (this._sleep === null) return;
    clearTimeout(this._sleep.timer);
    this._sleep.resolve();
    this._sleep = null;
  }

  _settleFlushes(idle) {
    if (this._flushes.length === 0) return;
    const done = this._queue.size === 0 && this._blocked.length === 0 && !this._ledger.hasUnsent;
    if (!done && !(idle && !this._pumping)) return;
    for (const waiter of [...this._flushes]) this._finish(waiter, done && this._ledger.totalDropped === waiter.before);
  }

  _finish(waiter, value) {
    const i = this._flushes.indexOf(waiter);
    if (i < 0) return;
    this._flushes.splice(i, 1);
    clearTimeout(waiter.timer);
    waiter.resolve(value);
  }

  // ---- browser persistence ----

  _restore() {
    if (this._persistence === null) return;
    const found = this._persistence.adopt();
    const seen = new Set();
    const items = [];
    for (const json of found.events) {
      try {
        const item = restoreEvent(json);
        if (item !== null && !seen.has(item.id) && items.length < this._opts.maxQueueSize) {
          seen.add(item.id);
          items.push(item);
        }
      } catch {
        // unreadable entry: skip
      }
    }
    for (const report of found.reports) this._ledger.restore(report);
    if (items.length > 0) {
      this._queue.prepend(items);
      this._schedule();
    } else if (this._ledger.hasUnsent) {
      this._schedule();
    }
    this._persistNow();
  }

  _persistSoon() {
    if (this._persistence === null || this._persistTimer !== null) return;
    this._persistTimer = setTimeout(() => this._persistNow(), PERSIST_EVERY_MS);
  }

  _persistNow() {
    if (this._persistence === null) return;
    clearTimeout(this._persistTimer);
    this._persistTimer = null;
    this._persistence.save(this._inFlightAndWaiting(), this._ledger);
  }

  _inFlightAndWaiting() {
    return [...(this._current ?? []), ...this._queue.peek(this._opts.maxPersistedEvents)];
  }

  /** The page is hidden or going away: store everything, then send what fits in a keepalive request. */
  _onHide() {
    this._persistNow();
    if (this._queue.waiting === 0 && !this._ledger.hasUnsent) return;
    if (!this._pumping) {
      this._urgent = true;
      this._kick(true);
      return;
    }
    // A batch is in flight and will die with the page; its events are stored. Send the waiting ones too.
    const items = [];
    let bytes = ENVELOPE_BYTES;
    for (const item of this._queue.peek(this._opts.flushAt)) {
      if (bytes + item.bytes + 1 > KEEPALIVE_BYTES) break;
      items.push(item);
      bytes += item.bytes + 1;
    }
    if (items.length > 0) this._transport.beacon(body(items, null, new Date().toISOString()));
  }
}
