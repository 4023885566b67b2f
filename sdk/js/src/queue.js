// The bounded queue. Its bound counts events waiting AND events in the batch being sent, so memory is
// bounded by maxQueueSize whatever the server does.

export class EventQueue {
  /** @param {number} capacity */
  constructor(capacity) {
    this.capacity = capacity;
    this._items = [];
    this._head = 0;
    this.inFlight = 0;
  }

  get waiting() {
    return this._items.length - this._head;
  }

  get size() {
    return this.waiting + this.inFlight;
  }

  hasRoom() {
    return this.size < this.capacity;
  }

  push(item) {
    this._items.push(item);
  }

  /** Put items back at the front (restored from storage before anything else was queued). */
  prepend(items) {
    this._items.splice(this._head, 0, ...items);
  }

  /** Remove and return the oldest waiting event (for the dropOldest policy). */
  shift() {
    if (this.waiting === 0) return undefined;
    const item = this._items[this._head];
    this._items[this._head++] = undefined;
    this._compact();
    return item;
  }

  /**
   * Move the next events into flight: at most `maxCount` and, together, at most `maxBytes` of event
   * text (always at least one if any waits; the caller has already refused events over the event limit).
   */
  take(maxCount, maxBytes) {
    const batch = [];
    let bytes = 0;
    while (batch.length < maxCount && this.waiting > 0) {
      const item = this._items[this._head];
      if (batch.length > 0 && bytes + item.bytes + 1 > maxBytes) break;
      batch.push(item);
      bytes += item.bytes + 1;
      this._items[this._head++] = undefined;
    }
    this._compact();
    this.inFlight += batch.length;
    return batch;
  }

  /** `n` in-flight events are done with (delivered or dropped). */
  settle(n) {
    this.inFlight -= n;
  }

  /** The waiting events, oldest first (for persistence and page-hide sends). */
  peek(limit = Infinity) {
    return this._items.slice(this._head, this._head + Math.min(limit, this.waiting));
  }

  /** Empty the queue; returns how many waiting events were removed. */
  clear() {
    const n = this.waiting;
    this._items = [];
    this._head = 0;
    return n;
  }

  _compact() {
    if (this._head > 1024 && this._head * 2 > this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
  }
}
