/** What `onError` receives: a failed attempt (willRetry) or events given up on (reason, count). */
export class DeliveryError extends Error {
  constructor({ code, message, status = 0, details = null, reason = null, count = 0, willRetry = false, retryInMs = null }) {
    super(message || code);
    this.name = 'DeliveryError';
    this.code = code;
    this.status = status;
    this.details = details;
    this.reason = reason;
    this.count = count;
    this.willRetry = willRetry;
    this.retryInMs = retryInMs;
  }
}
