// Run by tests/sdk/js/test_js_flags.py against the real edge (EP_EDGE, EP_KEY): local answers compared
// with the edge's remote ones, one local assignment (its $exposure), then, on a line on stdin ("changed"),
// how long until the change is seen. Prints one JSON line per step.
import { createInterface } from 'node:readline';

import { ExperimentationClient } from '../../../sdk/js/index.js';

const edge = process.env.EP_EDGE;
const key = process.env.EP_KEY;
const units = ['ada', 'José', '用户123', '👩🏽‍💻', 'a:b:c', ...Array.from({ length: 40 }, (_, i) => `u-${i}`)];
const client = new ExperimentationClient({ apiKey: key, baseUrl: edge, logger: null, flushIntervalMs: 20, persist: false });
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const ready = await client.waitForFlags(5_000);
const mismatches = [];
for (const unit of units) {
  for (const plan of ['pro', 'free', null]) {
    const attributes = plan ? { plan } : {};
    const local = await client.flagDetails('checkout', { userId: unit, attributes });
    const response = await fetch(`${edge}/api/v1/feature-flags/checkout/evaluate`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: unit, attributes }),
    });
    const remote = await response.json();
    if (local.enabled !== remote.enabled || local.reason !== remote.reason || local.value !== remote.value) {
      mismatches.push({ unit, plan, local, remote });
    }
  }
}
const variant = await client.getVariant('local-exp', { userId: 'ada' });
await client.getVariant('local-exp', { userId: 'ada' });
say({ step: 'compared', ready, mismatches, variant, flushed: await client.flush(5_000) });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() !== 'changed') continue;
  const started = Date.now();
  while ((await client.flagDetails('checkout', { userId: 'ada' })).reason !== 'DISABLED' && Date.now() - started < 3_000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  say({ step: 'changed', ms: Date.now() - started });
  break;
}
await client.close(2_000);
