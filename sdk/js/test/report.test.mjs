import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DropLedger } from '../src/report.js';

test('reports adopted from several stored entries each keep their id and go one after another', () => {
  const ledger = new DropLedger();
  ledger.restore({ pending: [{ id: 'r-1', dropped: { queue_full: 2 } }], unreported: { too_large: 1 } });
  ledger.restore({ pending: [{ id: 'r-2', dropped: { rejected: 3 } }, { id: 'r-1', dropped: { queue_full: 2 } }], unreported: {} });
  const first = ledger.next();
  assert.deepEqual(first, { id: 'r-1', dropped: { queue_full: 2 } });
  assert.equal(ledger.next(), first, 'unacknowledged: the same report again');
  ledger.ack(first);
  assert.deepEqual(ledger.next(), { id: 'r-2', dropped: { rejected: 3 } });
  ledger.ack(ledger.next());
  const fresh = ledger.next();
  assert.notEqual(fresh.id, 'r-1');
  assert.deepEqual(fresh.dropped, { too_large: 1 });
  ledger.ack(fresh);
  assert.equal(ledger.hasUnsent, false);
  assert.equal(ledger.next(), null);
});

test('counts past the server bound per report are carried to the next report', () => {
  const ledger = new DropLedger();
  ledger.add('queue_full', 1_500_000_000);
  const first = ledger.next();
  assert.deepEqual(first.dropped, { queue_full: 1_000_000_000 });
  ledger.ack(first);
  assert.deepEqual(ledger.next().dropped, { queue_full: 500_000_000 });
});

test('saved and restored, a pending report keeps its id', () => {
  const a = new DropLedger();
  a.add('queue_full', 4);
  const sent = a.next();
  a.add('too_large', 1);
  const b = new DropLedger();
  b.restore(JSON.parse(JSON.stringify(a)));
  const again = b.next();
  assert.deepEqual(again, sent);
  b.ack(again);
  assert.deepEqual(b.next().dropped, { too_large: 1 });
});
