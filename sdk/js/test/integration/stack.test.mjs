// Against the real edge, run by tests/sdk/js/test_js_sdk.py, which gives EP_EDGE_URL, EP_API_KEY and
// EP_OUT (a directory). Each test writes EP_OUT/<name>.json declaring what Postgres must hold afterwards:
// {"once": [message ids stored exactly once], "absent": [ids never stored], "drops": {reason: n},
//  "fields": {id: {column: value}}, "on_time": [ids whose stored timestamp must be within a minute of
//  their receipt]}; the pytest test checks it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ExperimentationClient } from '../../index.js';
import { startFaultProxy } from '../helpers/proxy.mjs';

const { EP_EDGE_URL: EDGE, EP_API_KEY: KEY, EP_OUT: OUT } = process.env;
const skip = !(EDGE && KEY && OUT) && 'needs the real stack: run tests/sdk/js/test_js_sdk.py';
const RUN = randomUUID().slice(0, 8);
const INDEX = new URL('../../index.js', import.meta.url).href;

function declare(name, { once = [], absent = [], drops = {}, fields = {}, onTime = [] }) {
  writeFileSync(join(OUT, `${name}.json`), JSON.stringify({ once, absent, drops, fields, on_time: onTime }));
}

function client(baseUrl, extra = {}) {
  return new ExperimentationClient({ apiKey: KEY, baseUrl, logger: null, flushOnExit: false, backoffBaseMs: 50, ...extra });
}

const ids = (name, n) => Array.from({ length: n }, (_, i) => `${RUN}-${name}-${i}`);

test('a forced retry (the edge "fails" the first attempt with 503) stores each event once', { skip }, async (t) => {
  const proxy = await startFaultProxy(EDGE, [{ status: 503 }]);
  t.after(() => proxy.close());
  const c = client(proxy.url);
  const mine = ids('retry', 5);
  mine.forEach((messageId, i) => c.track('checkout', { userId: `u-${i}`, value: i + 0.5, properties: { i }, messageId }));
  assert.equal(await c.close(), true);
  assert.deepEqual(proxy.seen.map((s) => s.action), ['answer 503', 'forward']);
  assert.equal(proxy.seen[1].edgeStatus, 202);
  const fields = Object.fromEntries(mine.map((id, i) => [id, { event_type: 'checkout', user_id: `u-${i}`, value: i + 0.5, properties: { i } }]));
  declare('forced_retry', { once: mine, fields });
});

test('a lost response (stored by the edge, answer never received) is retried and still stored once', { skip }, async (t) => {
  const proxy = await startFaultProxy(EDGE, ['lost']);
  t.after(() => proxy.close());
  const c = client(proxy.url);
  const mine = ids('lost', 4);
  for (const messageId of mine) c.track('page_view', { anonymousId: 'anon-1', messageId });
  assert.equal(await c.close(), true);
  assert.deepEqual(proxy.seen.map((s) => [s.action, s.edgeStatus]), [['lost', 202], ['forward', 202]]);
  assert.deepEqual(proxy.seen[1].body.events.map((e) => e.message_id), mine);
  declare('lost_response', { once: mine, fields: { [mine[0]]: { event_type: 'page_view', anonymous_id: 'anon-1', user_id: null } } });
});

test('Retry-After from the server is honoured before the next attempt', { skip }, async (t) => {
  const proxy = await startFaultProxy(EDGE, [{ status: 429, headers: { 'retry-after': '1' } }]);
  t.after(() => proxy.close());
  const c = client(proxy.url);
  const mine = ids('retry_after', 2);
  for (const messageId of mine) c.track('e', { userId: 'u', messageId });
  assert.equal(await c.close(), true);
  assert.equal(proxy.seen.length, 2);
  const gap = proxy.seen[1].at - proxy.seen[0].at;
  assert.ok(gap >= 1_000, `second attempt after ${gap} ms`);
  declare('retry_after', { once: mine });
});

test('queue-full drops are counted and reported to the server; the dropped events are never stored', { skip }, async () => {
  const newest = client(EDGE, { maxQueueSize: 3 });
  const kept = ids('full_kept', 3);
  const lost = ids('full_lost', 5);
  for (const messageId of [...kept, ...lost]) newest.track('e', { userId: 'u', messageId });
  assert.deepEqual(newest.stats().dropped, { queue_full: 5 });
  assert.equal(await newest.close(), true);

  const oldest = client(EDGE, { maxQueueSize: 2, queueFullPolicy: 'dropOldest' });
  const [o1, o2, o3, o4] = ids('oldest', 4);
  for (const messageId of [o1, o2, o3, o4]) oldest.track('e', { userId: 'u', messageId });
  assert.equal(await oldest.close(), true);
  assert.equal(oldest.stats().pendingReport, false);
  declare('queue_full', { once: [...kept, o3, o4], absent: [...lost, o1, o2], drops: { queue_full: 5, queue_full_oldest: 2 } });
});

test('an event of exactly 32,768 bytes is accepted by the edge; one byte more is dropped as too_large and reported', { skip }, async () => {
  const c = client(EDGE);
  const [fits, over] = ids('size', 2);
  const sized = (messageId, bytes) => {
    const probe = JSON.stringify({ event_type: 'big', user_id: 'u', properties: { pad: '' }, timestamp: new Date().toISOString(), message_id: messageId });
    return { userId: 'u', properties: { pad: 'x'.repeat(bytes - probe.length) }, messageId };
  };
  assert.equal(await c.track('big', sized(fits, 32_768)), true);
  assert.equal(await c.track('big', sized(over, 32_769)), false);
  assert.equal(await c.close(), true);
  assert.equal(c.stats().sent, 1);
  declare('too_large', { once: [fits], absent: [over], drops: { too_large: 1 } });
});

function runNode(code) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ status, out }));
  });
}

test('a process that tracks and then awaits close() has its events stored', { skip }, async () => {
  const mine = ids('close', 3);
  const { status, out } = await runNode(`
    import { ExperimentationClient } from ${JSON.stringify(INDEX)};
    const client = new ExperimentationClient({ apiKey: process.env.EP_API_KEY, baseUrl: process.env.EP_EDGE_URL });
    for (const messageId of ${JSON.stringify(mine)}) client.track('exit', { userId: 'u', messageId });
    await client.close();
  `);
  assert.equal(status, 0, out);
  declare('close_at_exit', { once: mine });
});

test('a process that tracks and just ends is flushed by the beforeExit hook (best effort)', { skip }, async () => {
  const mine = ids('before_exit', 2);
  const { status, out } = await runNode(`
    import { ExperimentationClient } from ${JSON.stringify(INDEX)};
    const client = new ExperimentationClient({ apiKey: process.env.EP_API_KEY, baseUrl: process.env.EP_EDGE_URL });
    for (const messageId of ${JSON.stringify(mine)}) client.track('exit', { userId: 'u', messageId });
  `);
  assert.equal(status, 0, out);
  assert.equal(out, '', 'nothing reported as lost');
  declare('before_exit', { once: mine });
});

test('a client whose clock is two hours fast has its events stored at the true time (sent_at on every attempt)', { skip }, async (t) => {
  const proxy = await startFaultProxy(EDGE, [{ status: 503 }]);
  t.after(() => proxy.close());
  const mine = ids('skew', 2);
  const { status, out } = await runNode(`
    const RealDate = Date;
    const skew = 2 * 3600 * 1000;
    globalThis.Date = class extends RealDate {
      constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
      static now() { return RealDate.now() + skew; }
    };
    const { ExperimentationClient } = await import(${JSON.stringify(INDEX)});
    const client = new ExperimentationClient({ apiKey: process.env.EP_API_KEY, baseUrl: ${JSON.stringify(proxy.url)}, backoffBaseMs: 50 });
    for (const messageId of ${JSON.stringify(mine)}) client.track('skewed', { userId: 'u', messageId });
    if (!(await client.close())) process.exit(3);
  `);
  assert.equal(status, 0, out);
  assert.equal(proxy.seen.length, 2, 'the retry carried its own sent_at');
  assert.notEqual(proxy.seen[0].body.sent_at, proxy.seen[1].body.sent_at);
  declare('clock_skew', { once: mine, onTime: mine });
});
