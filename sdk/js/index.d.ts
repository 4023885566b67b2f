// Type declarations for @experimentation/sdk (hand-written; the package ships plain ESM, no build step).

export type QueueFullPolicy = 'dropNewest' | 'dropOldest' | 'block';

/** Why events were dropped; the same names travel to the server in `client_report.dropped`. */
export type DropReason = 'queue_full' | 'queue_full_oldest' | 'too_large' | 'rejected' | 'retry_exhausted' | 'shutdown';

export interface Logger {
  warn?(message: string): void;
  error?(message: string): void;
}

export interface ClientOptions {
  /** The workspace key (`ep_live_...`); defaults to env EXPERIMENTATION_API_KEY. */
  apiKey?: string;
  /** Where the edge is, e.g. "https://your-platform.example.com". */
  baseUrl?: string;
  /** Alias of baseUrl. */
  apiUrl?: string;
  /** Most events held (waiting + being sent). Default 10,000. */
  maxQueueSize?: number;
  /** What track() does when the queue is full. Default "dropNewest". */
  queueFullPolicy?: QueueFullPolicy;
  /** With "block": how long track() waits for room before dropping. Default 1,000 ms. */
  blockTimeoutMs?: number;
  /** Events per batch, and the queue length that triggers a send at once. Default 100 (at most 2,500). */
  flushAt?: number;
  /** Longest an event waits before its batch is sent. Default 500 ms. */
  flushIntervalMs?: number;
  /** Largest request body before compression. Default 512,000 bytes (the edge's limit). */
  maxBatchBytes?: number;
  /** Largest event; bigger ones are dropped (reason "too_large"). Default 32,768 bytes (the edge's limit). */
  maxEventBytes?: number;
  /** Gzip bodies where the runtime has CompressionStream. Default true. */
  gzip?: boolean;
  /** Deadline of one HTTP attempt. Default 10,000 ms. */
  requestTimeoutMs?: number;
  /** Total time one batch may spend retrying before it is dropped ("retry_exhausted"). Default 300,000 ms. */
  retryBudgetMs?: number;
  /** Ceiling applied to a server's Retry-After. Default 60,000 ms. */
  retryAfterCapMs?: number;
  /** Backoff base and ceiling (full jitter). Defaults 500 ms and 30,000 ms. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** close()'s default flush deadline. Default 10,000 ms. */
  closeTimeoutMs?: number;
  /** Node: flush on `beforeExit` (best effort, bounded by exitFlushTimeoutMs). Defaults true, 5,000 ms. */
  flushOnExit?: boolean;
  exitFlushTimeoutMs?: number;
  /** Browser: keep unsent events in localStorage across reloads. Defaults true, 1,000 events. */
  persist?: boolean;
  maxPersistedEvents?: number;
  /** Browser: localStorage key prefix. Default "experimentation-sdk". */
  storageKey?: string;
  /** Called for every failed attempt (willRetry) and every drop; exceptions it throws are ignored. */
  onError?: (error: DeliveryError) => void;
  /** Where warnings go. Default console; null silences the SDK. */
  logger?: Logger | null;
  /** A fetch implementation. Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Feature flags: the longest isEnabled/getVariant wait for a remote answer before the default. Default 1,000 ms. */
  flagTimeoutMs?: number;
  /** Follow the config's event stream (changes within a second). Default true. */
  flagStream?: boolean;
  /** ETag polling of the config while the stream is down (or off). Default 30,000 ms. */
  configPollIntervalMs?: number;
}

export interface FlagOptions<T = unknown> {
  userId?: string;
  anonymousId?: string;
  attributes?: Record<string, unknown>;
  /** Answered on any error (unknown flag, no answer within flagTimeoutMs, ...). */
  default?: T;
}

export interface TrackOptions {
  userId?: string;
  anonymousId?: string;
  value?: number;
  properties?: Record<string, unknown>;
  /** When it happened. Default: now, when track() is called. */
  timestamp?: Date | string | number;
  /** Deduplication key (at most 100 characters). Default: a new uuid4. */
  messageId?: string;
}

export interface Stats {
  /** Events waiting or being sent (blocked track() calls included). */
  queued: number;
  /** Events the server acknowledged (2xx). */
  sent: number;
  /** Events given up on after sending: rejected + retry_exhausted (also counted in dropped). */
  failed: number;
  /** Attempts that failed and were retried. */
  retries: number;
  /** Every event lost, by reason. */
  dropped: Partial<Record<DropReason, number>>;
  /** Drop counts not yet acknowledged by the server. */
  pendingReport: boolean;
}

export declare class DeliveryError extends Error {
  readonly name: 'DeliveryError';
  /** The server's error code (e.g. "VALIDATION_ERROR", "QUEUE_FULL"), or NETWORK_ERROR / TIMEOUT / the drop reason upper-cased. */
  readonly code: string;
  /** HTTP status; 0 when there was no answer or the drop happened in the client. */
  readonly status: number;
  readonly details: unknown;
  /** Set when events were dropped. */
  readonly reason: DropReason | null;
  /** Events concerned. */
  readonly count: number;
  readonly willRetry: boolean;
  readonly retryInMs: number | null;
}

export declare class ExperimentationClient {
  constructor(options: ClientOptions);
  /** Queue an event; resolves true when queued, false when dropped (counted and reported). Never rejects. */
  track(event: string, options?: TrackOptions): Promise<boolean>;
  /** Sends "$identify" with the traits as properties. */
  identify(userId: string, traits?: Record<string, unknown>): Promise<boolean>;
  /** Resolves true when everything queued was delivered (and drop reports acknowledged). */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Flush within timeoutMs (default closeTimeoutMs), then stop; what is left is dropped as "shutdown". */
  close(timeoutMs?: number): Promise<boolean>;
  stats(): Stats;
  hasPendingWork(): boolean;
  /** Whether the flag is on for this user; `default` (false) on any error. Never rejects. */
  isEnabled(key: string, options?: FlagOptions<boolean>): Promise<boolean>;
  /** The flag's value (multivariate value, rule value, on_value, or the flag's default_value when off). */
  getValue<T = unknown>(key: string, options?: FlagOptions<T>): Promise<T>;
  flagDetails(key: string, options?: FlagOptions): Promise<FlagResult>;
  /** The experiment's variant, or null when not in it; a local assignment is tracked once as "$exposure". */
  getVariant(key: string, options?: FlagOptions<string | null>): Promise<string | null>;
  variantDetails(key: string, options?: FlagOptions<string | null>): Promise<Assignment>;
  /** Start following the config now; whether the first document came within timeoutMs (default 5,000). */
  waitForFlags(timeoutMs?: number): Promise<boolean>;
}

export declare const DEFAULTS: Readonly<Required<Omit<ClientOptions, 'apiKey' | 'baseUrl' | 'apiUrl' | 'onError' | 'logger' | 'fetch'>>>;
export declare const VERSION: string;

// ---- Feature flags: the pure evaluation functions (src/bucketing.js, src/evaluation.js; docs/flags.md) ----

/** The evaluation context, in the config document's names. */
export interface EvaluationContext {
  user_id?: string | null;
  anonymous_id?: string | null;
  attributes?: Record<string, unknown>;
}

export type FlagReason = 'DISABLED' | 'TARGETING_MATCH' | 'SPLIT' | 'DEFAULT' | 'ERROR';
export type AssignReason = 'NOT_RUNNING' | 'STICKY' | 'TARGETING_MISS' | 'NAMESPACE_MISS' | 'NOT_ALLOCATED' | 'SPLIT' | 'ERROR';

export interface FlagResult {
  key: string;
  enabled: boolean;
  value: unknown;
  reason: FlagReason;
  /** The multivariate value's key, when one was picked. */
  variant: string | null;
  /** "TARGETING_KEY_MISSING" (no unit where a bucket decides), "FLAG_NOT_FOUND", ... */
  errorCode: string | null;
}

export interface Assignment {
  variant: string | null;
  reason: AssignReason;
  errorCode: string | null;
}

/** A flag or experiment definition as in GET /api/v1/sdk/config. */
export type FlagDefinition = Record<string, unknown> & { key: string };
export type ExperimentDefinition = Record<string, unknown> & { key: string };

/** murmur3_x86_32(utf8(salt + ":" + key + ":" + unitId), seed 0) mod 10000. */
export declare function bucket(salt: string, key: string, unitId: string): number;
export declare function murmur3_32(bytes: Uint8Array, seed?: number): number;
/** "exp:<key>:<bucket_version>:<unit>", or "exp:" + SHA-256 hex past 100 characters. */
export declare function exposureMessageId(experimentKey: string, bucketVersion: number, unit: string): Promise<string>;
export declare function evaluateFlag(flag: FlagDefinition, context: EvaluationContext): FlagResult;
export declare function assign(
  experiment: ExperimentDefinition,
  context: EvaluationContext,
  stickyLookup?: ((experiment: ExperimentDefinition, unit: string) => string | null | undefined) | null,
): Assignment;
