// Bucketing, the one function the edge and both SDKs share (docs/flags.md):
//   bucket(salt, key, unitId) = murmur3_x86_32(utf8(salt + ":" + key + ":" + unitId), seed 0) mod 10000
// Strings are hashed as their UTF-8 bytes (TextEncoder), never as UTF-16 code units (charCodeAt): that is
// how other SDKs came to put a non-ASCII id in different buckets in JS and Python.

export const BUCKETS = 10_000;
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const utf8 = new TextEncoder();

function scramble(k) {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** MurmurHash3 x86_32 of a byte array, unsigned. */
export function murmur3_32(bytes, seed = 0) {
  const length = bytes.length;
  const body = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < body; i += 4) {
    h ^= scramble(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail) {
    let k = bytes[body];
    if (tail > 1) k |= bytes[body + 1] << 8;
    if (tail > 2) k |= bytes[body + 2] << 16;
    h ^= scramble(k);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The unit's bucket, 0..9999, for this salt and key. */
export function bucket(salt, key, unitId) {
  return murmur3_32(utf8.encode(`${salt}:${key}:${unitId}`)) % BUCKETS;
}

/** Buckets below this are in: round(p * 100), halves up, within 0..10000. */
export function threshold(percentage) {
  return Math.min(BUCKETS, Math.max(0, Math.floor(percentage * 100 + 0.5)));
}

/** The exclusive upper bucket of each weight's cumulative range, in order. */
export function ranges(weights) {
  const ends = [];
  let total = 0;
  for (const weight of weights) {
    total += weight;
    ends.push(threshold(total));
  }
  return ends;
}

/** The index of the range holding the bucket; null past the last (weights summing under 100). */
export function pick(bucketNumber, ends) {
  for (let i = 0; i < ends.length; i++) if (bucketNumber < ends[i]) return i;
  return null;
}
