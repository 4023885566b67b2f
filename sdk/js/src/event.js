// One event, validated and serialised once, when it is tracked: its size is known before it is queued,
// and a retry sends the very same text (same message_id, same timestamp).
import { uuid4 } from './uuid.js';

const NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;

/** UTF-8 length of a string without allocating (the edge measures events in bytes). */
export function utf8Length(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function codePoints(text) {
  return text.length <= 100 ? text.length : [...text].length;
}

function checkString(name, value, max) {
  if (typeof value !== 'string' || value.length === 0 || codePoints(value) > max) {
    throw new TypeError(`${name} must be a non-empty string of at most ${max} characters`);
  }
  return value;
}

function optionalId(name, value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  return checkString(name, value, 255);
}

function isoTime(value) {
  if (value === undefined || value === null) return new Date().toISOString();
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new TypeError(`timestamp is not a valid time: ${String(value)}`);
  return date.toISOString();
}

/**
 * Validate one event and serialise it for the wire.
 * @returns {{ id: string, json: string, bytes: number }}
 */
export function buildEvent(eventType, fields = {}) {
  checkString('event', eventType, 200);
  if (fields === null || typeof fields !== 'object') throw new TypeError('track options must be an object');
  const userId = optionalId('userId', fields.userId);
  const anonymousId = optionalId('anonymousId', fields.anonymousId);
  if (userId === undefined && anonymousId === undefined) {
    throw new TypeError(`track('${eventType}'): give a userId or an anonymousId`);
  }
  const { value, properties } = fields;
  if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isFinite(value))) {
    throw new TypeError(`track('${eventType}'): value must be a finite number`);
  }
  if (properties !== undefined && properties !== null && (typeof properties !== 'object' || Array.isArray(properties))) {
    throw new TypeError(`track('${eventType}'): properties must be an object`);
  }
  const id = fields.messageId === undefined || fields.messageId === null ? uuid4() : checkString('messageId', fields.messageId, 100);
  const wire = {
    event_type: eventType,
    user_id: userId,
    anonymous_id: anonymousId,
    value: value ?? undefined,
    properties: properties ?? undefined,
    timestamp: isoTime(fields.timestamp),
    message_id: id,
  };
  let json;
  try {
    json = JSON.stringify(wire);
  } catch (error) {
    throw new TypeError(`track('${eventType}'): properties cannot be serialised as JSON (${error.message})`);
  }
  // The server refuses a whole batch holding NUL (Postgres cannot store it): refuse the one event here.
  if (json.includes('\\u0000') && NUL.test(json)) {
    throw new TypeError(`track('${eventType}'): strings may not contain NUL (\\u0000)`);
  }
  return { id, json, bytes: utf8Length(json) };
}

/** An event restored from storage: its text as it was queued. */
export function restoreEvent(json) {
  const parsed = JSON.parse(json);
  if (typeof parsed?.message_id !== 'string') return null;
  return { id: parsed.message_id, json, bytes: utf8Length(json) };
}
