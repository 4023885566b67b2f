import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ExperimentationClient } from '../index.js';
import { collectingLogger, fastOptions, startEdge } from './helpers/edge.mjs';

const names = (edge) => edge.events().map((e) => e.event_type);

test('dropNewest: a full queue refuses new events, counts them as queue_full and reports them to the server', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const errors = [];
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 3, onError: (e) => errors.push(e) }));
  const queued = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => client.track(n, { userId: 'u' })));
  assert.deepEqual(queued, [true, true, true, false, false]);
  assert.deepEqual(client.stats().dropped, { queue_full: 2 });
  assert.equal(errors.filter((e) => e.reason === 'queue_full' && e.code === 'QUEUE_FULL').length, 2);
  assert.equal(await client.flush(), true); // all it queued was delivered (the two drops are reported)
  assert.deepEqual(names(edge), ['a', 'b', 'c']);
  assert.deepEqual(edge.requests[0].body.client_report.dropped, { queue_full: 2 });
  assert.match(edge.requests[0].body.client_report.id, /^[0-9a-f-]{36}$/);
  assert.equal(client.stats().pendingReport, false);
  await client.close();
});

test('dropOldest: a full queue drops its oldest waiting event (queue_full_oldest) to take the new one', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 3, queueFullPolicy: 'dropOldest' }));
  for (const n of ['a', 'b', 'c', 'd', 'e']) client.track(n, { userId: 'u' });
  await client.flush();
  assert.deepEqual(names(edge), ['c', 'd', 'e']);
  assert.deepEqual(edge.requests[0].body.client_report.dropped, { queue_full_oldest: 2 });
  await client.close();
});

test('block: track waits for room while a batch is delivered, and drops only after blockTimeoutMs', async (t) => {
  let release;
  const held = new Promise((r) => (release = r));
  const edge = await startEdge();
  t.after(() => edge.close());
  const slowFetch = async (url, init) => {
    await held; // the first request is answered only when the test says so
    return fetch(url, init);
  };
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 2, flushAt: 2, queueFullPolicy: 'block', blockTimeoutMs: 60_000, fetch: slowFetch }));
  client.track('a', { userId: 'u' });
  client.track('b', { userId: 'u' }); // flushAt reached: a and b are in flight, the queue is full
  let third = null;
  const pending = client.track('c', { userId: 'u' }).then((v) => (third = v));
  await new Promise((r) => setImmediate(r));
  assert.equal(third, null, 'track waits while there is no room');
  assert.equal(client.stats().queued, 3);
  release();
  assert.equal(await pending, true);
  assert.equal(await client.flush(), true);
  assert.deepEqual(names(edge), ['a', 'b', 'c']);
  await client.close();

  const stuck = new ExperimentationClient(fastOptions('http://127.0.0.1:9', { maxQueueSize: 1, queueFullPolicy: 'block', blockTimeoutMs: 50, fetch: () => new Promise(() => {}) }));
  stuck.track('a', { userId: 'u' });
  const started = performance.now();
  assert.equal(await stuck.track('b', { userId: 'u' }), false);
  assert.ok(performance.now() - started >= 45);
  assert.deepEqual(stuck.stats().dropped, { queue_full: 1 });
  await stuck.close(0);
});

test('batches hold at most flushAt events', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url));
  for (let i = 0; i < 250; i++) client.track('e', { userId: `u${i}` });
  assert.equal(await client.flush(), true);
  assert.deepEqual(edge.requests.map((r) => r.body.events.length), [100, 100, 50]);
  assert.equal(new Set(edge.events().map((e) => e.message_id)).size, 250);
  await client.close();
});

test('bodies stay within 512,000 bytes before compression; an event over 32 KB is dropped as too_large and logged', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const logger = collectingLogger();
  const client = new ExperimentationClient(fastOptions(edge.url, { logger }));
  const big = 'x'.repeat(30_000);
  for (let i = 0; i < 40; i++) client.track('big', { userId: 'u', properties: { big } });
  assert.equal(await client.track('huge', { userId: 'u', properties: { big: 'y'.repeat(33_000) } }), false);
  assert.equal(await client.flush(), true); // everything queued was delivered
  assert.ok(edge.requests.length >= 3);
  for (const r of edge.requests) assert.ok(r.textBytes <= 512_000, `${r.textBytes} bytes`);
  assert.ok(edge.requests.every((r) => r.rawBytes < r.textBytes / 10), 'bodies are gzipped');
  assert.equal(edge.events().length, 40);
  assert.deepEqual(client.stats().dropped, { too_large: 1 });
  assert.ok(logger.lines.some((l) => l.includes('too_large') && l.includes('EVENT_TOO_LARGE')));
  assert.deepEqual(edge.requests[0].body.client_report.dropped, { too_large: 1 });
  await client.close();
});

test('a report is carried until a 2xx: a retried batch keeps the same report id; counts clear only after the 2xx', async (t) => {
  const edge = await startEdge([{ status: 503 }, { status: 500 }]);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 1 }));
  client.track('a', { userId: 'u' });
  client.track('b', { userId: 'u' }); // dropped: queue_full
  assert.equal(await client.flush(), true);
  const reports = edge.requests.map((r) => r.body.client_report);
  assert.equal(reports.length, 3);
  assert.deepEqual(reports[0], reports[1]);
  assert.deepEqual(reports[1], reports[2]);
  assert.deepEqual(reports[0].dropped, { queue_full: 1 });
  assert.equal(client.stats().pendingReport, false);
  // A new loss after the acknowledgement makes a new report, with a new id and only the new count.
  client.track('c', { userId: 'u' });
  client.track('d', { userId: 'u' });
  await client.flush();
  const next = edge.requests.at(-1).body.client_report;
  assert.notEqual(next.id, reports[0].id);
  assert.deepEqual(next.dropped, { queue_full: 1 });
  await client.close();
});

test('a report given up with its batch keeps its id in the next body (the server may have counted it)', async (t) => {
  const edge = await startEdge([{ status: 503 }, 'destroy']);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 1, retryBudgetMs: 1 }));
  client.track('a', { userId: 'u' });
  client.track('b', { userId: 'u' });
  assert.equal(await client.flush(), false);
  const first = edge.requests[0].body.client_report;
  assert.deepEqual(first.dropped, { queue_full: 1 });
  // The client keeps the old report (same id, same counts) and counts the new loss for the report after.
  const bodies = edge.requests.map((r) => r.body);
  assert.ok(bodies.slice(1).every((b) => b.client_report.id === first.id));
  edge.script.length = 0;
  client.track('c', { userId: 'u' });
  assert.equal(await client.flush(), true);
  const later = edge.requests.map((r) => r.body.client_report).filter(Boolean);
  const ids = [...new Set(later.map((r) => r.id))];
  assert.equal(ids[0], first.id);
  const totals = {};
  for (const id of ids) for (const [k, v] of Object.entries(later.find((r) => r.id === id).dropped)) totals[k] = (totals[k] ?? 0) + v;
  assert.deepEqual(totals, { queue_full: 1, retry_exhausted: 1 });
  await client.close();
});

test('close() delivers what is queued; what cannot be delivered in time is dropped as shutdown and logged', async (t) => {
  const edge = await startEdge(['hang']);
  t.after(() => edge.close());
  const logger = collectingLogger();
  const client = new ExperimentationClient(fastOptions(edge.url, { logger, requestTimeoutMs: 60_000 }));
  client.track('a', { userId: 'u' });
  assert.equal(await client.close(100), false);
  assert.deepEqual(client.stats().dropped, { shutdown: 1 });
  assert.equal(client.stats().queued, 0);
  assert.ok(logger.lines.some((l) => l.includes('shutdown')));
  assert.equal(await client.track('late', { userId: 'u' }), false);
  assert.deepEqual(client.stats().dropped, { shutdown: 2 });
});

test('after close(), flush() resolves at once with close()\'s answer, and blocked track() calls are released as shutdown drops', async (t) => {
  const edge = await startEdge(['hang']);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 1, queueFullPolicy: 'block', blockTimeoutMs: 60_000, requestTimeoutMs: 60_000 }));
  client.track('a', { userId: 'u' });
  const blocked = client.track('b', { userId: 'u' });
  assert.equal(await client.close(50), false);
  assert.equal(await blocked, false);
  assert.deepEqual(client.stats().dropped, { shutdown: 2 });
  assert.equal(await client.flush(), false); // as close() said
});

async function waitFor(condition, timeoutMs = 5_000) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('events tracked while a batch is in flight wait for the next tick instead of going one request each', async (t) => {
  let release;
  const held = new Promise((r) => (release = r));
  let answeredAt = 0;
  const edge = await startEdge();
  t.after(() => edge.close());
  const slowFirst = async (url, init) => {
    if (edge.requests.length === 0) {
      await held;
      const response = await fetch(url, init);
      answeredAt = performance.now();
      return response;
    }
    return fetch(url, init);
  };
  const client = new ExperimentationClient(fastOptions(edge.url, { flushIntervalMs: 200, fetch: slowFirst }));
  client.track('first', { userId: 'u' });
  await waitFor(() => client.stats().queued === 1 && client._pumping);
  for (const n of ['b', 'c', 'd']) client.track(n, { userId: 'u' });
  release();
  await waitFor(() => edge.requests.length === 2);
  assert.ok(edge.requests[1].at - answeredAt >= 150, `second batch ${edge.requests[1].at - answeredAt} ms after the first answer`);
  assert.deepEqual(edge.requests[1].body.events.map((e) => e.event_type), ['b', 'c', 'd']);
  assert.equal(await client.flush(), true);
  await client.close();
});

test('a flood of queue_full drops logs one line a second, while onError and stats see each one', async () => {
  const logger = collectingLogger();
  const errors = [];
  const client = new ExperimentationClient(fastOptions('http://127.0.0.1:9', { maxQueueSize: 1, logger, onError: (e) => errors.push(e), fetch: () => new Promise(() => {}) }));
  for (let i = 0; i < 1000; i++) client.track('e', { userId: 'u' });
  assert.deepEqual(client.stats().dropped, { queue_full: 999 });
  assert.equal(errors.length, 999);
  assert.equal(logger.lines.filter((l) => l.includes('queue_full')).length, 1);
  await client.close(0);
});
