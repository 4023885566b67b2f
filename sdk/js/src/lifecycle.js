// Where the runtime can take the queue away from us: a Node process exiting, a browser page being hidden
// or unloaded. Browsers keep unsent events in localStorage (bounded) until a 2xx is seen for them, so a
// reload or a send that never got its answer loses nothing; the server deduplicates by message_id.

const IS_BROWSER = typeof window !== 'undefined' && typeof document !== 'undefined';
let instances = 0; // clients of one page store under keys of their own

/** Node: a best-effort flush when the event loop empties (`beforeExit`); `await client.close()` is the reliable path. */
export function installNodeExit(client, opts) {
  const proc = globalThis.process;
  if (IS_BROWSER || !opts.flushOnExit || typeof proc?.on !== 'function') return () => {};
  let started = false;
  const onBeforeExit = () => {
    if (started || !client.hasPendingWork()) return;
    started = true;
    client.close(opts.exitFlushTimeoutMs).catch(() => {});
  };
  const onExit = () => {
    const left = client.stats().queued;
    if (left > 0) {
      opts.logger?.error?.(`[experimentation-sdk] ${left} events not delivered at exit; call \`await client.close()\` before exiting`);
    }
  };
  proc.on('beforeExit', onBeforeExit);
  proc.on('exit', onExit);
  return () => {
    proc.off('beforeExit', onBeforeExit);
    proc.off('exit', onExit);
  };
}

/** Browser: visibilitychange → hidden and pagehide call `onHide` (persist, then send with keepalive). */
export function installPageHide(onHide) {
  if (!IS_BROWSER || typeof window.addEventListener !== 'function') return () => {};
  const onVisibility = () => {
    if (document.visibilityState === 'hidden') onHide();
  };
  document.addEventListener('visibilitychange', onVisibility);
  window.addEventListener('pagehide', onHide);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    window.removeEventListener('pagehide', onHide);
  };
}

function storageOf(name) {
  try {
    const s = globalThis[name];
    const probe = '__experimentation_sdk_probe__';
    s.setItem(probe, '1');
    s.removeItem(probe);
    return s;
  } catch {
    return null; // absent, disabled or full (Safari private mode): no persistence
  }
}

/**
 * The queue's copy in localStorage, one entry per client of a tab (the tab's id kept in sessionStorage,
 * which survives a reload). A client starting adopts every entry under its prefix, its own and other tabs': an entry of
 * a tab still open is then sent twice, which the server's deduplication makes harmless.
 */
export class Persistence {
  static create(opts) {
    if (!IS_BROWSER || !opts.persist) return null;
    const local = storageOf('localStorage');
    return local ? new Persistence(local, storageOf('sessionStorage'), opts) : null;
  }

  constructor(local, session, opts) {
    this._local = local;
    this._max = opts.maxPersistedEvents;
    this._prefix = `${opts.storageKey}:${opts.apiKey.slice(-6)}:`;
    const tabKey = `${opts.storageKey}:tab`;
    let tab = session?.getItem(tabKey);
    if (!tab) {
      tab = Math.random().toString(36).slice(2, 10);
      session?.setItem(tabKey, tab);
    }
    this._key = `${this._prefix}${tab}:${instances++}`;
    this.frozen = false;
  }

  /** Every stored entry under our prefix, removed from storage (they are ours now). */
  adopt() {
    const found = { events: [], reports: [] };
    const names = [];
    for (let i = 0; i < this._local.length; i++) {
      const name = this._local.key(i);
      if (name?.startsWith(this._prefix)) names.push(name);
    }
    for (const name of names) {
      try {
        const saved = JSON.parse(this._local.getItem(name) ?? 'null');
        if (Array.isArray(saved?.events)) found.events.push(...saved.events.filter((e) => typeof e === 'string'));
        if (saved?.report) found.reports.push(saved.report);
      } catch {
        // a corrupt entry is dropped, not fatal
      }
      if (name !== this._key) this._local.removeItem(name);
    }
    found.events = found.events.slice(0, this._max);
    return found;
  }

  /** Store `items` (the oldest first, at most maxPersistedEvents) and the unacknowledged drop counts. */
  save(items, ledger) {
    if (this.frozen) return;
    try {
      if (items.length === 0 && !ledger.hasUnsent) {
        this._local.removeItem(this._key);
        return;
      }
      const events = items.slice(0, this._max).map((item) => item.json);
      this._local.setItem(this._key, JSON.stringify({ v: 1, events, report: ledger.toJSON() }));
    } catch {
      // storage full: the events stay in memory and are still sent
    }
  }
}
