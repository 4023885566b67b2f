// The SDK's flags against a local flag edge on a real socket: local answers equal the golden vectors, a
// change reaches a connected client within a second, ETag polling without the stream, remote evaluation
// before the first document and for remote-sticky experiments, the caller's default on any error within
// flagTimeoutMs, one $exposure per unit, and an open stream that never keeps Node alive.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { ExperimentationClient } from '../index.js';
import { startFlagServer, until } from './helpers/flagServer.mjs';

const EVAL_CASES = JSON.parse(readFileSync(new URL('../../vectors/evaluation.json', import.meta.url), 'utf8'));
const FLAG = { key: 'checkout', enabled: true, salt: 'a1b2c3d4e5f6', rollout: 100, rules: [], value_type: 'boolean',
  default_value: false, on_value: true, values: [] };
const EXPERIMENT = { key: 'new-checkout', status: 'running', salt: '0f1e2d3c4b5a', bucket_version: 3, allocation: 100,
  targeting: {}, namespace: null, sticky: 'local', variants: [{ key: 'control', weight: 50 }, { key: 'treatment', weight: 50 }] };

async function setup(t, options = {}) {
  const server = await startFlagServer();
  const client = new ExperimentationClient({ apiKey: 'ep_live_test', baseUrl: server.url, flushIntervalMs: 20, logger: null,
    flushOnExit: false, persist: false, ...options });
  t.after(async () => {
    await client.close(1_000);
    await server.close();
  });
  return { server, client };
}

const optionsOf = (context) => ({ userId: context.user_id, anonymousId: context.anonymous_id, attributes: context.attributes });

test('local answers equal the golden vectors (each document pushed on the stream)', async (t) => {
  const { server, client } = await setup(t);
  server.publish([FLAG]);
  assert.equal(await client.waitForFlags(5_000), true);
  for (const c of EVAL_CASES) {
    if (c.flag) {
      const version = server.publish([c.flag]);
      assert.equal(await client._flags.sync.waitFor(2_000, version - 1), true);
      const got = await client.flagDetails(c.flag.key, { ...optionsOf(c.context), default: 'caller' });
      const expected = { ...c.expected, ...(c.expected.reason === 'ERROR' ? { value: 'caller' } : {}) };
      assert.deepEqual({ enabled: got.enabled, value: got.value, reason: got.reason }, expected, c.name);
    } else {
      const version = server.publish([], [c.experiment]);
      assert.equal(await client._flags.sync.waitFor(2_000, version - 1), true);
      const expected = c.expected.reason === 'ERROR' ? 'dflt' : c.expected.variant;
      assert.equal(await client.getVariant(c.experiment.key, { ...optionsOf(c.context), default: 'dflt' }), expected, c.name);
    }
  }
  assert.deepEqual(server.paths().filter((p) => p.endsWith('/evaluate') || p.endsWith('/assign')), []);
});

test('a change reaches a connected client within a second; a dropped stream reconnects', async (t) => {
  const { server, client } = await setup(t);
  server.publish([FLAG]);
  assert.equal(await client.waitForFlags(5_000), true);
  assert.equal(await until(() => client._flags.sync.streaming), true);
  server.publish([{ ...FLAG, enabled: false }]);
  const changed = Date.now();
  assert.equal(await until(async () => !(await client.isEnabled('checkout', { userId: 'u1' })), 1_000), true);
  assert.ok(Date.now() - changed < 1_000);
  server.dropStreams();
  assert.equal(await until(() => server.state.streamConnections === 2), true, 'reconnected');
  server.publish([FLAG]);
  assert.equal(await until(() => client.isEnabled('checkout', { userId: 'u1' }), 2_000), true);
});

test('without the stream the document is polled with its ETag (304 when unchanged)', async (t) => {
  const { server, client } = await setup(t, { flagStream: false, configPollIntervalMs: 100 });
  server.publish([FLAG]);
  assert.equal(await client.waitForFlags(5_000), true);
  assert.equal(await until(() => server.state.configAnswers.filter((s) => s === 304).length >= 2), true);
  const conditional = server.state.requests.filter((r) => r.path === '/api/v1/sdk/config' && r.headers['if-none-match']);
  assert.ok(conditional.length >= 2 && conditional.every((r) => r.headers['if-none-match'] === server.etag()));
  server.publish([{ ...FLAG, enabled: false }]);
  assert.equal(await until(async () => !(await client.isEnabled('checkout', { userId: 'u1' })), 2_000), true);
});

test('before the first document flags are evaluated remotely', async (t) => {
  const { server, client } = await setup(t);
  server.state.behaviour.configStatus = 503;
  server.state.behaviour.flagAnswers.checkout = { key: 'checkout', enabled: true, value: 'blue', reason: 'SPLIT' };
  assert.equal(await client.isEnabled('checkout', { userId: 'u1', attributes: { plan: 'pro' } }), true);
  assert.equal(await client.getValue('checkout', { anonymousId: 'a1', default: 'none' }), 'blue');
  const bodies = server.state.requests.filter((r) => r.path === '/api/v1/feature-flags/checkout/evaluate').map((r) => r.body);
  assert.deepEqual(bodies, [
    { user_id: 'u1', anonymous_id: null, attributes: { plan: 'pro' } },
    { user_id: null, anonymous_id: 'a1', attributes: {} },
  ]);
  assert.equal(await client.isEnabled('unknown', { userId: 'u1' }), false);
  assert.equal(await client.isEnabled('unknown', { userId: 'u1', default: true }), true);
});

test('a slow edge gives the default within flagTimeoutMs; errors give the default, never a rejection', async (t) => {
  const { server, client } = await setup(t, { flagTimeoutMs: 200 });
  server.state.behaviour.configStatus = 503;
  server.state.behaviour.remoteDelayMs = 3_000;
  server.state.behaviour.flagAnswers.checkout = { key: 'checkout', enabled: true, value: true, reason: 'SPLIT' };
  const started = Date.now();
  assert.equal(await client.isEnabled('checkout', { userId: 'u1', default: true }), true);
  assert.equal(await client.getVariant('new-checkout', { userId: 'u1', default: 'control' }), 'control');
  assert.ok(Date.now() - started < 2 * 200 + 300, `${Date.now() - started} ms`);
  server.state.behaviour.remoteDelayMs = 0;
  server.state.behaviour.remoteStatus = 500;
  const details = await client.flagDetails('checkout', { userId: 'u1', default: 7 });
  assert.deepEqual([details.value, details.reason, details.errorCode], [7, 'ERROR', 'BOOM']);
  const dead = new ExperimentationClient({ apiKey: 'k', baseUrl: 'http://127.0.0.1:9', flagTimeoutMs: 300, logger: null, flushOnExit: false });
  assert.equal(await dead.isEnabled('checkout', { userId: 'u1', default: true }), true);
  await dead.close(100);
});

test('a broken definition gives the default; the others still answer', async (t) => {
  const { server, client } = await setup(t);
  server.publish([{ key: 'broken', enabled: true, rollout: 50, rules: [{ conditions: 'oops', rollout: 'x' }] }, FLAG]);
  assert.equal(await client.waitForFlags(5_000), true);
  assert.equal(await client.isEnabled('broken', { userId: 'u1', default: true }), true);
  assert.equal((await client.flagDetails('missing', { userId: 'u1' })).errorCode, 'FLAG_NOT_FOUND');
  assert.equal(await client.isEnabled('checkout', { userId: 'u1' }), true);
});

test('a local assignment is exposed once per unit and experiment', async (t) => {
  const { server, client } = await setup(t);
  server.publish([], [EXPERIMENT]);
  assert.equal(await client.waitForFlags(5_000), true);
  const first = await client.getVariant('new-checkout', { userId: 'ada' });
  assert.ok(['control', 'treatment'].includes(first));
  for (let i = 0; i < 3; i++) assert.equal(await client.getVariant('new-checkout', { userId: 'ada' }), first);
  await client.getVariant('new-checkout', { anonymousId: 'anon-1' });
  await client.getVariant('new-checkout', { userId: 'u'.repeat(200) });
  assert.equal(await client.flush(5_000), true);
  const exposures = server.state.events.filter((e) => e.event_type === '$exposure');
  assert.deepEqual(exposures.slice(0, 2).map((e) => [e.message_id, e.user_id ?? null, e.anonymous_id ?? null]), [
    ['exp:new-checkout:3:ada', 'ada', null],
    ['exp:new-checkout:3:anon-1', null, 'anon-1'],
  ]);
  assert.deepEqual(exposures[0].properties, { experiment: 'new-checkout', variant: first, bucket_version: 3 });
  assert.equal(exposures.length, 3);
  assert.match(exposures[2].message_id, /^exp:[0-9a-f]{64}$/);
  assert.deepEqual(server.paths().filter((p) => p.endsWith('/assign')), []);
});

test('a remote-sticky experiment is assigned by the edge, which records the exposure', async (t) => {
  const { server, client } = await setup(t);
  server.publish([], [{ ...EXPERIMENT, sticky: 'remote' }]);
  server.state.behaviour.assignAnswers['new-checkout'] = { variant: 'treatment', reason: 'STICKY' };
  assert.equal(await client.waitForFlags(5_000), true);
  assert.deepEqual(await client.variantDetails('new-checkout', { userId: 'ada' }), { variant: 'treatment', reason: 'STICKY', errorCode: null });
  assert.equal(server.paths().filter((p) => p === '/api/v1/experiments/new-checkout/assign').length, 1);
  assert.equal(await client.flush(5_000), true);
  assert.deepEqual(server.state.events.filter((e) => e.event_type === '$exposure'), []);
});

test('an open stream does not keep a Node process alive', async (t) => {
  const server = await startFlagServer();
  t.after(() => server.close());
  server.publish([FLAG]);
  const script = `
    import { ExperimentationClient } from ${JSON.stringify(new URL('../index.js', import.meta.url).href)};
    const client = new ExperimentationClient({ apiKey: 'k', baseUrl: ${JSON.stringify(server.url)}, logger: null });
    await client.waitForFlags(5000);
    console.log(await client.isEnabled('checkout', { userId: 'u1' }));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 5_000);
    child.on('exit', () => { clearTimeout(timer); resolve(true); });
  });
  if (!exited) child.kill();
  assert.equal(exited, true, 'the process exited by itself');
  assert.equal(out.trim(), 'true');
  assert.equal(await until(() => server.state.streamConnections === 1), true, 'it was streaming');
});
