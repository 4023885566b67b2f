// Losses told to the server: counts of events this client dropped, by reason, carried in a batch's
// `client_report` until a 2xx acknowledges them. A report keeps its id until acknowledged, so a retried
// or repeated report is counted once by the server.
import { uuid4 } from './uuid.js';

const MAX_COUNT = 1_000_000_000; // the server's bound per reason and report

export class DropLedger {
  constructor() {
    this.unreported = {};
    this.pending = null;
    this._restored = []; // reports adopted from storage, each keeping its id, sent one after another
    this.total = {};
  }

  add(reason, n = 1) {
    if (n <= 0) return;
    this.unreported[reason] = (this.unreported[reason] ?? 0) + n;
    this.total[reason] = (this.total[reason] ?? 0) + n;
  }

  get totalDropped() {
    return Object.values(this.total).reduce((a, b) => a + b, 0);
  }

  get hasUnsent() {
    return this.pending !== null || this._restored.length > 0 || Object.keys(this.unreported).length > 0;
  }

  /** The report the next batch carries: the unacknowledged one, or a new one from the counts since. */
  next() {
    if (this.pending === null && this._restored.length > 0) this.pending = this._restored.shift();
    if (this.pending === null && Object.keys(this.unreported).length > 0) {
      const dropped = {};
      for (const [reason, count] of Object.entries(this.unreported)) {
        dropped[reason] = Math.min(count, MAX_COUNT);
        if (count > MAX_COUNT) this.unreported[reason] = count - MAX_COUNT;
        else delete this.unreported[reason];
      }
      this.pending = { id: uuid4(), dropped };
    }
    return this.pending;
  }

  /** The server answered 2xx to a body carrying `report`. */
  ack(report) {
    if (report !== null && this.pending === report) this.pending = null;
  }

  /** The server refused the report itself (400 naming client_report): resending it would fail forever. */
  discard(report) {
    if (report !== null && this.pending === report) this.pending = null;
  }

  toJSON() {
    const pending = this.pending === null ? this._restored : [this.pending, ...this._restored];
    return { pending, unreported: this.unreported };
  }

  /** Merge counts saved by an earlier page (a pending report keeps its id: it may have been counted). */
  restore(saved) {
    if (!saved || typeof saved !== 'object') return;
    const { pending, unreported } = saved;
    const known = new Set([this.pending, ...this._restored].filter(Boolean).map((r) => r.id));
    for (const report of Array.isArray(pending) ? pending : [pending]) {
      if (report && typeof report.id === 'string' && report.dropped && typeof report.dropped === 'object' && !known.has(report.id)) {
        known.add(report.id);
        this._restored.push({ id: report.id, dropped: { ...report.dropped } });
      }
    }
    for (const [reason, count] of Object.entries(unreported ?? {})) {
      if (Number.isInteger(count) && count > 0) this.unreported[reason] = (this.unreported[reason] ?? 0) + count;
    }
  }
}
