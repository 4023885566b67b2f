// Feature flags and experiments in the client: evaluated locally from the config document (kept fresh by
// ConfigSync), remotely at the edge until the first document arrives or when an experiment's assignments
// must come from the edge ("sticky": "remote"), and the caller's default on any error. Never rejects,
// never waits longer than flagTimeoutMs.
import { ConfigSync } from './configSync.js';
import { assign, evaluateFlag, exposureMessageId } from './evaluation.js';

export const FLAG_DEFAULTS = Object.freeze({ flagTimeoutMs: 1_000, configPollIntervalMs: 30_000, flagStream: true });
const EXPOSURE = '$exposure';
const MAX_REMEMBERED_EXPOSURES = 100_000; // past this the memory is cleared; the message id still dedupes

function contextOf({ userId, anonymousId, attributes } = {}) {
  const context = { attributes: attributes && typeof attributes === 'object' ? { ...attributes } : {} };
  if (userId !== undefined && userId !== null) context.user_id = userId;
  if (anonymousId !== undefined && anonymousId !== null) context.anonymous_id = anonymousId;
  return context;
}

function flagError(key, value, errorCode) {
  return { key, enabled: false, value, reason: 'ERROR', variant: null, errorCode };
}

function errorCodeOf(status, body) {
  if (status === 404) return 'FLAG_NOT_FOUND';
  const code = body?.error_code ?? body?.error?.code;
  return typeof code === 'string' ? code : `HTTP_${status}`;
}

export class Flags {
  constructor(opts, input, track) {
    const pick = (name) => (input?.[name] !== undefined ? input[name] : FLAG_DEFAULTS[name]);
    this._opts = opts;
    this._timeoutMs = pick('flagTimeoutMs');
    if (typeof this._timeoutMs !== 'number' || !(this._timeoutMs > 0)) {
      throw new TypeError(`ExperimentationClient: option flagTimeoutMs must be a positive number, got ${this._timeoutMs}`);
    }
    this._syncOptions = {
      stream: pick('flagStream') !== false,
      pollIntervalMs: pick('configPollIntervalMs'),
      customFetch: input?.fetch !== undefined,
    };
    this._track = track;
    this._exposed = new Set();
    this.sync = null;
    this._closed = false;
  }

  start() {
    if (this.sync === null && !this._closed) {
      this.sync = new ConfigSync(this._opts, this._syncOptions);
      this.sync.start();
    }
    return this.sync;
  }

  waitReady(timeoutMs) {
    const sync = this.start();
    return sync === null ? Promise.resolve(false) : sync.waitFor(timeoutMs);
  }

  close() {
    this._closed = true;
    this.sync?.stop();
  }

  async flag(key, options = {}) {
    const fallback = options.default;
    let result;
    try {
      const context = contextOf(options);
      const snapshot = this.start()?.current ?? null;
      if (snapshot === null) result = await this._remoteFlag(key, context, fallback);
      else if (!snapshot.flags.has(key)) result = flagError(key, fallback, 'FLAG_NOT_FOUND');
      else result = evaluateFlag(snapshot.flags.get(key), context);
    } catch (error) {
      this._opts.logger?.warn?.(`flag ${key}: evaluation failed (${error?.message ?? error}); answering the default`);
      result = flagError(key, fallback, 'GENERAL');
    }
    return result.reason === 'ERROR' ? flagError(key, fallback, result.errorCode ?? 'GENERAL') : result;
  }

  async variant(key, options = {}) {
    const fallback = options.default ?? null;
    let answer;
    try {
      const context = contextOf(options);
      const snapshot = this.start()?.current ?? null;
      const experiment = snapshot?.experiments.get(key);
      if (snapshot === null || experiment?.sticky === 'remote') answer = await this._remoteAssign(key, context);
      else if (experiment === undefined) answer = { variant: null, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' };
      else {
        answer = assign(experiment, context);
        if (answer.variant !== null) await this._expose(experiment, context, answer.variant);
      }
    } catch (error) {
      this._opts.logger?.warn?.(`experiment ${key}: assignment failed (${error?.message ?? error}); answering the default`);
      answer = { variant: null, reason: 'ERROR', errorCode: 'GENERAL' };
    }
    return answer.reason === 'ERROR' ? { variant: fallback, reason: 'ERROR', errorCode: answer.errorCode ?? 'GENERAL' } : answer;
  }

  /** A local assignment is an exposure: tracked once per unit and experiment by this client, with the
   * deterministic message id, so the server stores it once whoever sends it. */
  async _expose(experiment, context, variant) {
    const unit = context.user_id || context.anonymous_id;
    const version = Number.isInteger(experiment.bucket_version) ? experiment.bucket_version : 1;
    const seen = JSON.stringify([experiment.key, version, unit]);
    if (this._exposed.has(seen)) return;
    if (this._exposed.size >= MAX_REMEMBERED_EXPOSURES) this._exposed.clear();
    this._exposed.add(seen);
    const messageId = await exposureMessageId(experiment.key, version, unit);
    this._track(EXPOSURE, {
      userId: context.user_id,
      anonymousId: context.anonymous_id,
      properties: { experiment: experiment.key, variant, bucket_version: version },
      messageId,
    });
  }

  async _remoteFlag(key, context, fallback) {
    const { status, body } = await this._remote(`/api/v1/feature-flags/${encodeURIComponent(key)}/evaluate`, context);
    if (status === 200 && typeof body?.reason === 'string') {
      return { key, enabled: Boolean(body.enabled), value: body.value ?? null, reason: body.reason,
        variant: body.variant ?? null, errorCode: body.error_code ?? null };
    }
    return flagError(key, fallback, errorCodeOf(status, body));
  }

  async _remoteAssign(key, context) {
    const { status, body } = await this._remote(`/api/v1/experiments/${encodeURIComponent(key)}/assign`, context);
    if (status === 200 && typeof body?.reason === 'string') {
      return { variant: typeof body.variant === 'string' ? body.variant : null, reason: body.reason, errorCode: body.error_code ?? null };
    }
    return { variant: null, reason: 'ERROR', errorCode: errorCodeOf(status, body) };
  }

  /** POST within flagTimeoutMs in all (raced, so a fetch that ignores its signal cannot hold the caller). */
  async _remote(path, context) {
    const controller = new AbortController();
    let timer;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve({ status: 0, body: { error_code: 'TIMEOUT' } });
      }, this._timeoutMs);
    });
    const call = (async () => {
      const response = await this._opts.fetch(this._opts.baseUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': this._opts.apiKey },
        body: JSON.stringify({ user_id: context.user_id ?? null, anonymous_id: context.anonymous_id ?? null, attributes: context.attributes }),
        signal: controller.signal,
      });
      const text = await response.text();
      let body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        // not JSON: the status decides
      }
      return { status: response.status, body };
    })().catch(() => ({ status: 0, body: { error_code: controller.signal.aborted ? 'TIMEOUT' : 'NETWORK_ERROR' } }));
    try {
      return await Promise.race([call, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
