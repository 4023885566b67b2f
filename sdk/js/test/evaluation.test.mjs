// The JS evaluation against the golden vectors the Python SDK and the edge read (sdk/vectors/): same
// buckets (UTF-8 bytes, not UTF-16 code units), same flag answers, same assignments.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { assign, bucket, evaluateFlag, murmur3_32 } from '../index.js';

const vectors = (name) => JSON.parse(readFileSync(new URL(`../../vectors/${name}`, import.meta.url), 'utf8'));
const BUCKET_CASES = vectors('bucketing.json');
const EVAL_CASES = vectors('evaluation.json');

test('the vector files are there and large enough', () => {
  assert.ok(BUCKET_CASES.length >= 60);
  assert.ok(EVAL_CASES.length >= 60);
});

for (const c of BUCKET_CASES) {
  test(`bucket ${JSON.stringify(`${c.salt}:${c.key}:${c.unit_id}`.slice(0, 60))}`, () => {
    assert.equal(bucket(c.salt, c.key, c.unit_id), c.bucket);
  });
}

test('murmur3_32 matches the reference values of the algorithm', () => {
  const bytes = (s) => new TextEncoder().encode(s);
  assert.equal(murmur3_32(bytes('')), 0);
  assert.equal(murmur3_32(bytes(''), 1), 0x514e28b7);
  assert.equal(murmur3_32(bytes('hello')), 0x248bfa47);
  assert.equal(murmur3_32(bytes('The quick brown fox jumps over the lazy dog')), 0x2e4ff723);
});

test('an emoji id is hashed as UTF-8 bytes, not UTF-16 code units', () => {
  const viaCodeUnits = murmur3_32(Uint8Array.from('user😀', (ch) => ch.charCodeAt(0) & 0xff)) % 10_000;
  const expected = BUCKET_CASES.find((c) => c.salt === 'exp' && c.key === 'checkout' && c.unit_id === 'user😀');
  assert.equal(bucket('exp', 'checkout', 'user😀'), expected.bucket);
  assert.notEqual(viaCodeUnits, expected.bucket);
});

for (const c of EVAL_CASES) {
  test(`evaluation: ${c.name}`, () => {
    const detail = c.detail ?? {};
    if (c.flag) {
      const r = evaluateFlag(c.flag, c.context);
      assert.deepEqual({ enabled: r.enabled, value: r.value, reason: r.reason }, c.expected);
      assert.deepEqual([r.variant, r.errorCode], [detail.variant ?? null, detail.error_code ?? null]);
      assert.equal(r.key, c.flag.key);
    } else {
      const r = assign(c.experiment, c.context);
      assert.deepEqual({ variant: r.variant, reason: r.reason }, c.expected);
      assert.equal(r.errorCode, detail.error_code ?? null);
    }
  });
}

test('rollouts are monotone and stickiness survives a weight change', () => {
  const flag = { key: 'checkout', enabled: true, salt: 'a1b2c3d4e5f6', rules: [], values: [] };
  const units = Array.from({ length: 10_000 }, (_, i) => `unit-${i}`);
  const at = (p) => new Set(units.filter((u) => evaluateFlag({ ...flag, rollout: p }, { user_id: u }).enabled));
  const ten = at(10);
  const twenty = at(20);
  for (const u of ten) assert.ok(twenty.has(u), u);
  const exp = { key: 'e', status: 'running', salt: 's', variants: [{ key: 'a', weight: 1 }, { key: 'b', weight: 99 }] };
  assert.deepEqual(assign(exp, { user_id: 'u' }, () => 'a'), { variant: 'a', reason: 'STICKY', errorCode: null });
  assert.equal(assign(exp, { user_id: 'u' }, () => 'gone').reason, 'SPLIT');
});
