// When to retry and how long to wait: exponential backoff with full jitter, or the server's Retry-After
// (clamped, since a proxy's bogus value must not park a client for a day).

/** Network errors, 408, 429 and 5xx are worth another try; any other answer will not change. */
export function isRetryable(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or null when absent or unreadable. */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined || value === '') return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Milliseconds to wait before attempt number `attempt` + 1 (attempt counts failures so far, from 1).
 * With Retry-After: at least that long (clamped to `retryAfterCapMs`), plus up to 10% (at most 1 s)
 * so that many clients told the same value do not come back together.
 */
export function retryDelay(attempt, retryAfterMs, opts, random = Math.random) {
  if (retryAfterMs !== null && retryAfterMs !== undefined) {
    const wait = Math.min(retryAfterMs, opts.retryAfterCapMs);
    return wait + random() * Math.min(1_000, wait * 0.1);
  }
  const ceiling = Math.min(opts.backoffCapMs, opts.backoffBaseMs * 2 ** (attempt - 1));
  return random() * ceiling;
}
