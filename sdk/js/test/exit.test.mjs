import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

import { startEdge } from './helpers/edge.mjs';

const INDEX = new URL('../index.js', import.meta.url).href;

function runNode(code, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ status, out }));
  });
}

test('a process that ends on its own is flushed by beforeExit; one that calls process.exit() says what it lost', async (t) => {
  const edge = await startEdge();
  t.after(() => edge.close());
  const natural = await runNode(`
    import { ExperimentationClient } from ${JSON.stringify(INDEX)};
    const client = new ExperimentationClient({ apiKey: 'ep_live_x', baseUrl: process.env.EDGE });
    client.track('a', { userId: 'u', messageId: 'natural-1' });
  `, { EDGE: edge.url });
  assert.equal(natural.status, 0, natural.out);
  assert.deepEqual(edge.events().map((e) => e.message_id), ['natural-1']);

  const abrupt = await runNode(`
    import { ExperimentationClient } from ${JSON.stringify(INDEX)};
    const client = new ExperimentationClient({ apiKey: 'ep_live_x', baseUrl: process.env.EDGE });
    client.track('a', { userId: 'u' });
    client.track('b', { userId: 'u' });
    process.exit(0);
  `, { EDGE: edge.url });
  assert.equal(abrupt.status, 0);
  assert.match(abrupt.out, /2 events not delivered at exit; call `await client.close\(\)`/);
  assert.equal(edge.requests.length, 1);
});

test('an idle client does not keep a process alive, and an ended one leaves nothing behind', async () => {
  const { status, out } = await runNode(`
    import { ExperimentationClient } from ${JSON.stringify(INDEX)};
    const client = new ExperimentationClient({ apiKey: 'ep_live_x', baseUrl: 'http://127.0.0.1:9' });
    console.log(JSON.stringify(client.stats()));
  `);
  assert.equal(status, 0, out);
  assert.match(out, /"queued":0/);
});
