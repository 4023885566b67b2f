// The client's configuration: defaults, aliases, the env fallback for the key, and checks at construction
// (a misconfigured client fails in the constructor, never later on a hot path).

export const DEFAULTS = Object.freeze({
  maxQueueSize: 10_000,
  queueFullPolicy: 'dropNewest',
  blockTimeoutMs: 1_000,
  flushAt: 100,
  flushIntervalMs: 500,
  maxBatchBytes: 512_000,
  maxEventBytes: 32_768,
  gzip: true,
  requestTimeoutMs: 10_000,
  retryBudgetMs: 300_000,
  retryAfterCapMs: 60_000,
  backoffBaseMs: 500,
  backoffCapMs: 30_000,
  closeTimeoutMs: 10_000,
  exitFlushTimeoutMs: 5_000,
  flushOnExit: true,
  persist: true,
  maxPersistedEvents: 1_000,
  storageKey: 'experimentation-sdk',
});

const POLICIES = new Set(['dropNewest', 'dropOldest', 'block']);
const BATCH_PATH = '/api/v1/tracking/batch';
const MAX_BATCH_EVENTS = 2_500;

function envKey() {
  const env = globalThis.process?.env;
  return env ? env.EXPERIMENTATION_API_KEY : undefined;
}

function positive(name, value, { allowZero = false } = {}) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new TypeError(`ExperimentationClient: option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}

/**
 * @param {Record<string, unknown>} input the constructor's argument
 * @returns {Readonly<Record<string, any>>} resolved options
 */
export function resolveOptions(input = {}) {
  if (input === null || typeof input !== 'object') {
    throw new TypeError('ExperimentationClient: pass an options object, e.g. { apiKey, baseUrl }');
  }
  const apiKey = input.apiKey ?? envKey();
  if (typeof apiKey !== 'string' || apiKey.trim() === '') {
    throw new TypeError('ExperimentationClient: apiKey is required (or set EXPERIMENTATION_API_KEY)');
  }
  const baseUrl = input.baseUrl ?? input.apiUrl;
  if (typeof baseUrl !== 'string' || !/^https?:\/\//i.test(baseUrl)) {
    throw new TypeError('ExperimentationClient: baseUrl is required, e.g. "https://your-platform.example.com"');
  }
  const merged = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS)) {
    if (input[name] !== undefined) merged[name] = input[name];
  }
  for (const name of ['maxQueueSize', 'flushAt', 'flushIntervalMs', 'maxBatchBytes', 'maxEventBytes', 'requestTimeoutMs',
    'retryBudgetMs', 'backoffBaseMs', 'backoffCapMs', 'maxPersistedEvents']) {
    positive(name, merged[name]);
  }
  for (const name of ['blockTimeoutMs', 'retryAfterCapMs', 'closeTimeoutMs', 'exitFlushTimeoutMs']) {
    positive(name, merged[name], { allowZero: true });
  }
  if (merged.flushAt > MAX_BATCH_EVENTS) {
    throw new TypeError(`ExperimentationClient: flushAt is at most ${MAX_BATCH_EVENTS} (the server's batch limit)`);
  }
  if (!POLICIES.has(merged.queueFullPolicy)) {
    throw new TypeError(`ExperimentationClient: queueFullPolicy must be one of ${[...POLICIES].join(', ')}, got ${merged.queueFullPolicy}`);
  }
  if (typeof (input.fetch ?? globalThis.fetch) !== 'function') {
    throw new TypeError('ExperimentationClient: no fetch in this runtime (Node 18+ has one); pass options.fetch');
  }
  if (input.onError !== undefined && typeof input.onError !== 'function') {
    throw new TypeError('ExperimentationClient: onError must be a function');
  }
  const logger = input.logger === undefined ? globalThis.console : input.logger;
  return Object.freeze({
    ...merged,
    apiKey: apiKey.trim(),
    baseUrl: baseUrl.replace(/\/+$/, ''),
    batchUrl: baseUrl.replace(/\/+$/, '') + BATCH_PATH,
    // Called as a plain function: browsers throw "Illegal invocation" for window.fetch called on another `this`.
    fetch: input.fetch ?? ((url, init) => globalThis.fetch(url, init)),
    onError: input.onError ?? null,
    logger: logger ?? null,
  });
}
