// Evaluating a flag and assigning an experiment from their definitions (docs/flags.md): pure, no I/O, and
// the same answers as the Python SDK's evaluation.py (which the edge runs), proved by sdk/vectors/.
// The context is { user_id, anonymous_id, attributes } (the config document's names). The unit is user_id,
// else anonymous_id; it is needed only where a bucket decides, else the answer is ERROR/TARGETING_KEY_MISSING.
import { BUCKETS, bucket, pick, ranges, threshold } from './bucketing.js';
import { allOrAny } from './conditions.js';

export const TARGETING_KEY_MISSING = 'TARGETING_KEY_MISSING';
const NO_UNIT = Symbol('no unit');
const has = (o, name) => Object.prototype.hasOwnProperty.call(o, name);
const get = (o, name, fallback) => (has(o, name) ? o[name] : fallback);

/** The unit a bucket is computed for: user_id when given (non-empty), else anonymous_id. */
export function unitOf(context) {
  for (const name of ['user_id', 'anonymous_id']) {
    const unit = context[name];
    if (typeof unit === 'string' && unit !== '') return unit;
  }
  return null;
}

function result(flag, enabled, value, reason, extra = {}) {
  return { key: flag.key, enabled, value, reason, variant: null, errorCode: null, ...extra };
}

function inRollout(flag, percentage, unit, cache) {
  const limit = threshold(percentage);
  if (limit <= 0 || limit >= BUCKETS) return limit >= BUCKETS;
  if (cache.bucket === undefined) {
    if (unit === null) throw NO_UNIT;
    cache.bucket = bucket(flag.salt, flag.key, unit);
  }
  return cache.bucket < limit;
}

function on(flag, unit, reason) {
  const values = flag.values;
  if (Array.isArray(values) && values.length > 0) {
    if (unit === null) throw NO_UNIT;
    const index = pick(bucket(`${flag.salt}.value`, flag.key, unit), ranges(values.map((v) => v.weight)));
    if (index !== null) {
      const chosen = values[index];
      return result(flag, true, chosen.value ?? null, reason, { variant: chosen.key ?? null });
    }
  }
  return result(flag, true, get(flag, 'on_value', true), reason);
}

/** The flag's answer: { key, enabled, value, reason, variant, errorCode }; the first matching rule decides,
 * else the flag's rollout. */
export function evaluateFlag(flag, context) {
  const multivariate = Array.isArray(flag.values) && flag.values.length > 0;
  const fallback = get(flag, 'default_value', multivariate ? null : false);
  if (!flag.enabled) return result(flag, false, fallback, 'DISABLED');
  const unit = unitOf(context);
  const cache = {};
  try {
    for (const rule of flag.rules ?? []) {
      if (!allOrAny(rule, context)) continue;
      if (!inRollout(flag, get(rule, 'rollout', 100), unit, cache)) return result(flag, false, fallback, 'TARGETING_MATCH');
      if (rule.value !== undefined && rule.value !== null) return result(flag, true, rule.value, 'TARGETING_MATCH');
      return on(flag, unit, 'TARGETING_MATCH');
    }
    if (inRollout(flag, get(flag, 'rollout', 0), unit, cache)) return on(flag, unit, 'SPLIT');
  } catch (error) {
    if (error !== NO_UNIT) throw error;
    return result(flag, false, fallback, 'ERROR', { errorCode: TARGETING_KEY_MISSING });
  }
  return result(flag, false, fallback, 'DEFAULT');
}

/** The unit's variant, or null with the reason: { variant, reason, errorCode }. `stickyLookup(experiment,
 * unit)` answers a variant already recorded for the current bucket_version; one the experiment no longer
 * lists is ignored. */
export function assign(experiment, context, stickyLookup = null) {
  const answer = (variant, reason, errorCode = null) => ({ variant, reason, errorCode });
  if (experiment.status !== 'running') return answer(null, 'NOT_RUNNING');
  const unit = unitOf(context);
  if (unit === null) return answer(null, 'ERROR', TARGETING_KEY_MISSING);
  const variants = experiment.variants ?? [];
  if (stickyLookup !== null) {
    const recorded = stickyLookup(experiment, unit);
    if (recorded != null && variants.some((v) => v.key === recorded)) return answer(recorded, 'STICKY');
  }
  if (!allOrAny(experiment.targeting ?? {}, context)) return answer(null, 'TARGETING_MISS');
  const ns = experiment.namespace;
  if (ns && Object.keys(ns).length > 0) {
    const b = bucket(ns.name, 'namespace', unit);
    if (!(ns.start <= b && b < ns.end)) return answer(null, 'NAMESPACE_MISS');
  }
  const { salt, key } = experiment;
  if (bucket(`${salt}.alloc`, key, unit) >= threshold(get(experiment, 'allocation', 100))) {
    return answer(null, 'NOT_ALLOCATED');
  }
  const index = pick(bucket(salt, key, unit), ranges(variants.map((v) => v.weight)));
  return index === null ? answer(null, 'NOT_ALLOCATED') : answer(variants[index].key, 'SPLIT');
}

const MAX_MESSAGE_ID = 100; // the edge's limit

/** The `$exposure` event's deterministic message id: "exp:<key>:<bucket_version>:<unit>", or, past the
 * edge's 100 characters, "exp:" + its SHA-256 in hex (as the Python SDK and the edge). */
export async function exposureMessageId(experimentKey, bucketVersion, unit) {
  const id = `exp:${experimentKey}:${bucketVersion}:${unit}`;
  if ([...id].length <= MAX_MESSAGE_ID) return id; // code points, as the edge counts
  const subtle = globalThis.crypto?.subtle ?? (await import('node:crypto')).webcrypto.subtle; // Node 18: no global crypto
  const digest = new Uint8Array(await subtle.digest('SHA-256', new TextEncoder().encode(id)));
  return `exp:${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}
