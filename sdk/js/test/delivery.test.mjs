import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ExperimentationClient } from '../index.js';
import { fastOptions, startEdge } from './helpers/edge.mjs';

test('the quickstart works as written: one gzipped batch with the key header, message_id, timestamp, sent_at', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const client = new ExperimentationClient({ apiKey: 'ep_live_quickstart', baseUrl: edge.url, logger: null, flushOnExit: false });
  const before = new Date();
  await client.track('purchase', { userId: 'user-123', value: 49.99 });
  assert.equal(await client.close(), true);

  assert.equal(edge.requests.length, 1);
  const [request] = edge.requests;
  assert.equal(request.headers['x-api-key'], 'ep_live_quickstart');
  assert.equal(request.headers['content-type'], 'application/json');
  assert.equal(request.gzipped, true);
  assert.equal(request.headers['content-encoding'], 'gzip');
  const [event] = request.body.events;
  assert.equal(event.event_type, 'purchase');
  assert.equal(event.user_id, 'user-123');
  assert.equal(event.value, 49.99);
  assert.match(event.message_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(new Date(event.timestamp) >= new Date(before.getTime() - 1));
  assert.ok(new Date(request.body.sent_at) >= new Date(event.timestamp));
  assert.equal(request.body.client_report, undefined);
  assert.deepEqual(client.stats(), { queued: 0, sent: 1, failed: 0, retries: 0, dropped: {}, pendingReport: false });
});

test('identify sends $identify with the traits as properties; given fields travel as given', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const client = new ExperimentationClient(fastOptions(edge.url, { gzip: false }));
  client.identify('u-1', { plan: 'pro' });
  client.track('signup', { anonymousId: 'a-1', properties: { ref: 'ad' }, timestamp: '2026-01-02T03:04:05Z', messageId: 'm-given' });
  assert.equal(await client.flush(), true);
  const events = edge.events();
  assert.equal(edge.requests[0].gzipped, false);
  assert.deepEqual(events.map((e) => [e.event_type, e.user_id, e.anonymous_id, e.properties]), [
    ['$identify', 'u-1', undefined, { plan: 'pro' }],
    ['signup', undefined, 'a-1', { ref: 'ad' }],
  ]);
  assert.equal(events[1].timestamp, '2026-01-02T03:04:05.000Z');
  assert.equal(events[1].message_id, 'm-given');
  await client.close();
});

test('apiUrl is an alias of baseUrl, and the key may come from EXPERIMENTATION_API_KEY', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  process.env.EXPERIMENTATION_API_KEY = 'ep_live_from_env';
  t.after(() => delete process.env.EXPERIMENTATION_API_KEY);
  const client = new ExperimentationClient({ apiUrl: edge.url, logger: null, flushOnExit: false });
  client.track('x', { userId: 'u' });
  assert.equal(await client.close(), true);
  assert.equal(edge.requests[0].headers['x-api-key'], 'ep_live_from_env');
});

test('misconfiguration and invalid events fail loudly at the call, not later', () => {
  delete process.env.EXPERIMENTATION_API_KEY;
  assert.throws(() => new ExperimentationClient({ baseUrl: 'http://127.0.0.1:1' }), /apiKey is required/);
  assert.throws(() => new ExperimentationClient({ apiKey: 'k' }), /baseUrl is required/);
  assert.throws(() => new ExperimentationClient({ apiKey: 'k', baseUrl: 'http://x', queueFullPolicy: 'wait' }), /queueFullPolicy/);
  assert.throws(() => new ExperimentationClient({ apiKey: 'k', baseUrl: 'http://x', flushAt: 5000 }), /flushAt/);
  const client = new ExperimentationClient({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', logger: null, flushOnExit: false });
  assert.throws(() => client.track('', { userId: 'u' }), /event must be a non-empty string/);
  assert.throws(() => client.track('x', {}), /userId or an anonymousId/);
  assert.throws(() => client.track('x', { userId: 'u', value: Number.NaN }), /finite number/);
  assert.throws(() => client.track('x', { userId: 'u', properties: [1] }), /properties must be an object/);
  assert.throws(() => client.track('x', { userId: 'u', properties: { s: 'a\u0000b' } }), /NUL/);
  assert.throws(() => client.track('x', { userId: 'u', properties: { n: 1n } }), /serialised/);
  assert.throws(() => client.track('x', { userId: 'u', messageId: 'm'.repeat(101) }), /messageId/);
  assert.doesNotThrow(() => client.track('x', { userId: 'u', properties: { s: 'a\\u0000b' } })); // a backslash, not NUL
  assert.equal(client.stats().queued, 1);
  client.close(0);
});
