// uuid4 for message and report ids. crypto.randomUUID exists only in secure contexts (https) in
// browsers and from Node 19 on; getRandomValues exists everywhere we run, and Node 18 has it on webcrypto.
const cryptoImpl = globalThis.crypto ?? (await import(/* webpackIgnore: true */ 'node:crypto')).webcrypto;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** @returns {string} a random (version 4) UUID */
export function uuid4() {
  if (typeof cryptoImpl.randomUUID === 'function') return cryptoImpl.randomUUID();
  const b = cryptoImpl.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => HEX[x]);
  return `${h.slice(0, 4).join('')}-${h.slice(4, 6).join('')}-${h.slice(6, 8).join('')}-${h.slice(8, 10).join('')}-${h.slice(10).join('')}`;
}
