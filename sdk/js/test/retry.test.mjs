import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ExperimentationClient } from '../index.js';
import { parseRetryAfter, retryDelay } from '../src/retry.js';
import { collectingLogger, fastOptions, startEdge } from './helpers/edge.mjs';

const ids = (request) => request.body.events.map((e) => e.message_id);

test('a 503 is retried with the same events (same message_id and timestamp) and a new sent_at', async (t) => {
  const edge = await startEdge([{ status: 503, body: { error: { code: 'QUEUE_FULL', message: 'busy', details: null } } }]);
  t.after(() => edge.close());
  const errors = [];
  const client = new ExperimentationClient(fastOptions(edge.url, { onError: (e) => errors.push(e) }));
  for (let i = 0; i < 3; i++) client.track('e', { userId: `u${i}` });
  assert.equal(await client.flush(), true);
  assert.equal(edge.requests.length, 2);
  const [first, second] = edge.requests;
  assert.deepEqual(ids(second), ids(first));
  assert.deepEqual(second.body.events, first.body.events);
  assert.notEqual(second.body.sent_at, first.body.sent_at);
  assert.deepEqual(client.stats(), { queued: 0, sent: 3, failed: 0, retries: 1, dropped: {}, pendingReport: false });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'QUEUE_FULL');
  assert.equal(errors[0].status, 503);
  assert.equal(errors[0].willRetry, true);
  await client.close();
});

test('network errors, 408, 429 and 500 are retried; a request with no answer times out and is retried', async (t) => {
  const edge = await startEdge(['destroy', { status: 408 }, { status: 429 }, { status: 500 }, 'hang']);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { requestTimeoutMs: 200 }));
  client.track('e', { userId: 'u' });
  assert.equal(await client.flush(), true);
  assert.equal(edge.requests.length, 6);
  assert.equal(new Set(edge.requests.map((r) => ids(r)[0])).size, 1);
  assert.equal(client.stats().retries, 5);
  await client.close();
});

test('Retry-After is honoured: the next attempt comes no sooner than the server asked', async (t) => {
  const edge = await startEdge([{ status: 429, headers: { 'retry-after': '1' } }]);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url));
  client.track('e', { userId: 'u' });
  assert.equal(await client.flush(), true);
  assert.equal(edge.requests.length, 2);
  assert.ok(edge.requests[1].at - edge.requests[0].at >= 1_000, `waited ${edge.requests[1].at - edge.requests[0].at} ms`);
  await client.close();
});

test('Retry-After parsing and clamping; backoff is full jitter under an exponential ceiling', () => {
  assert.equal(parseRetryAfter('5'), 5_000);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter('soon'), null);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  const opts = { retryAfterCapMs: 60_000, backoffBaseMs: 500, backoffCapMs: 30_000 };
  assert.equal(retryDelay(1, 3_600_000, opts, () => 0), 60_000);
  assert.equal(retryDelay(1, 2_000, opts, () => 0), 2_000);
  assert.equal(retryDelay(3, null, opts, () => 0.999999) < 2_000, true);
  assert.equal(retryDelay(20, null, opts, () => 1), 30_000);
  assert.equal(retryDelay(1, null, opts, () => 0), 0);
});

test('a 4xx is not retried: the events are dropped as rejected, with the server code in onError and the log', async (t) => {
  const refusal = { error: { code: 'INSUFFICIENT_SCOPE', message: 'API key lacks the scope', details: { required_scope: 'track:write' } } };
  const edge = await startEdge([{ status: 403, body: refusal }]);
  t.after(() => edge.close());
  const errors = [];
  const logger = collectingLogger();
  const client = new ExperimentationClient(fastOptions(edge.url, { onError: (e) => errors.push(e), logger }));
  client.track('a', { userId: 'u' });
  client.track('b', { userId: 'u' });
  assert.equal(await client.flush(), false);
  assert.equal(edge.requests[0].body.events.length, 2);
  const stats = client.stats();
  assert.deepEqual(stats.dropped, { rejected: 2 });
  assert.equal(stats.failed, 2);
  assert.equal(errors.at(-1).code, 'INSUFFICIENT_SCOPE');
  assert.equal(errors.at(-1).reason, 'rejected');
  assert.equal(errors.at(-1).count, 2);
  assert.ok(logger.lines.some((l) => l.includes('INSUFFICIENT_SCOPE') && l.includes('rejected')), logger.lines.join('\n'));
  // The server is told about the loss (a report alone, the queue being empty), and nothing else is lost.
  const report = edge.requests[1].body;
  assert.deepEqual(report.events, []);
  assert.deepEqual(report.client_report.dropped, { rejected: 2 });
  client.track('c', { userId: 'u' });
  assert.equal(await client.flush(), true);
  assert.equal(edge.requests.at(-1).body.client_report, undefined);
  await client.close();
});

test('a 400 naming one event drops only that one; its batch-mates are sent again and delivered', async (t) => {
  const bad = { error: { code: 'VALIDATION_ERROR', message: 'events[1].timestamp: out of range', details: { field: 'events[1].timestamp' } } };
  const edge = await startEdge([{ status: 400, body: bad }]);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url));
  for (const name of ['a', 'b', 'c']) client.track(name, { userId: 'u' });
  assert.equal(await client.flush(), false);
  assert.deepEqual(edge.requests[1].body.events.map((e) => e.event_type), ['a', 'c']);
  assert.equal(client.stats().sent, 2);
  assert.deepEqual(client.stats().dropped, { rejected: 1 });
  await client.close();
});

test('a 413 splits the batch instead of dropping it', async (t) => {
  const edge = await startEdge([{ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE', message: 'too big', details: null } } }]);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url));
  for (let i = 0; i < 10; i++) client.track('e', { userId: `u${i}` });
  assert.equal(await client.flush(), true);
  assert.deepEqual(edge.requests.map((r) => r.body.events.length), [10, 5, 5]);
  assert.equal(client.stats().sent, 10);
  await client.close();
});

test('a batch that cannot be delivered within its time budget is dropped as retry_exhausted and reported later', async (t) => {
  const unavailable = { status: 503, headers: { 'retry-after': '0' } };
  const edge = await startEdge(Array.from({ length: 1000 }, () => unavailable));
  t.after(() => edge.close());
  const errors = [];
  const client = new ExperimentationClient(fastOptions(edge.url, { retryBudgetMs: 150, onError: (e) => errors.push(e) }));
  client.track('e', { userId: 'u' });
  assert.equal(await client.flush(), false);
  assert.deepEqual(client.stats().dropped, { retry_exhausted: 1 });
  assert.ok(errors.some((e) => e.reason === 'retry_exhausted' && e.code === 'X'));
  // The server is back: the drop report travels alone (no events) and is acknowledged.
  edge.script.length = 0;
  assert.equal(await client.flush(), true);
  const last = edge.requests.at(-1).body;
  assert.deepEqual(last.events, []);
  assert.deepEqual(last.client_report.dropped, { retry_exhausted: 1 });
  assert.equal(client.stats().pendingReport, false);
  await client.close();
});

test('a 400 naming the drop report discards the report and still delivers the events', async (t) => {
  const bad = { error: { code: 'VALIDATION_ERROR', message: 'client_report.dropped: bad', details: { field: 'client_report.dropped' } } };
  const edge = await startEdge([{ status: 400, body: bad }]);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { maxQueueSize: 1 }));
  client.track('a', { userId: 'u' });
  client.track('b', { userId: 'u' }); // queue_full: the first body carries a report
  assert.equal(await client.flush(), true);
  assert.ok(edge.requests[0].body.client_report);
  assert.equal(edge.requests[1].body.client_report, undefined);
  assert.deepEqual(edge.requests[1].body.events.map((e) => e.event_type), ['a']);
  assert.equal(client.stats().pendingReport, false);
  await client.close();
});

test('flush(timeoutMs) resolves false at its deadline while sending goes on; a throwing onError changes nothing', async (t) => {
  const edge = await startEdge(['hang']);
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { requestTimeoutMs: 300, onError: () => { throw new Error('boom'); } }));
  client.track('e', { userId: 'u' });
  assert.equal(await client.flush(50), false);
  assert.equal(client.stats().queued, 1, 'in flight, counted as queued');
  assert.equal(await client.flush(), true); // the hung attempt times out, the retry is answered
  assert.equal(edge.requests.length, 2);
  assert.equal(client.stats().sent, 1);
  await client.close();
});
