// Targeting conditions (docs/flags.md), the same semantics as the Python SDK's conditions.py: values are
// compared as JSON values with their types (a string never equals a number, a boolean is not a number); a
// missing attribute (absent or null) matches only the negated operators; an unknown operator or a
// malformed value never matches.

const NEGATED = new Set(['neq', 'not_in', 'not_contains']);
const NUM = '0|[1-9][0-9]*';
const PRE_ID = `(?:${NUM}|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)`;
const SEMVER = new RegExp(
  `^(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+[0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*)?$`,
);

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number';
const has = (o, name) => Object.prototype.hasOwnProperty.call(o, name);

/** The attribute's value in the evaluation context; undefined when it is missing. */
export function lookup(context, attribute) {
  if (attribute === 'user_id' || attribute === 'anonymous_id') return context[attribute] ?? undefined;
  const attributes = context.attributes;
  if (!isObject(attributes) || typeof attribute !== 'string' || !has(attributes, attribute)) return undefined;
  return attributes[attribute] ?? undefined;
}

function same(a, b) {
  if (typeof a === 'string' || typeof a === 'boolean' || typeof a === 'number') return typeof a === typeof b && a === b;
  return false;
}

const inList = (actual, expected) => Array.isArray(expected) && expected.some((item) => same(actual, item));

function contains(actual, expected) {
  if (typeof actual === 'string') return typeof expected === 'string' && actual.includes(expected);
  return Array.isArray(actual) && actual.some((item) => same(item, expected));
}

function notContains(actual, expected) {
  if (typeof actual === 'string') return typeof expected === 'string' && !actual.includes(expected);
  return Array.isArray(actual) && !actual.some((item) => same(item, expected));
}

const numeric = (compare) => (a, b) => isNumber(a) && isNumber(b) && compare(a, b);

// Numeric identifiers have no leading zeros, so comparing length then text is exact at any size.
const compareDigits = (a, b) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);

function parseSemver(version) {
  if (typeof version !== 'string') return null;
  const m = SEMVER.exec(version);
  return m === null ? null : { core: [m[1], m[2], m[3]], pre: m[4] === undefined ? null : m[4].split('.') };
}

function compareIds(a, b) {
  const aNum = /^[0-9]+$/.test(a);
  const bNum = /^[0-9]+$/.test(b);
  if (aNum && bNum) return compareDigits(a, b);
  if (aNum !== bNum) return aNum ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareSemver(a, b) {
  for (let i = 0; i < 3; i++) {
    const order = compareDigits(a.core[i], b.core[i]);
    if (order !== 0) return order;
  }
  if (a.pre === null || b.pre === null) return a.pre === b.pre ? 0 : a.pre === null ? 1 : -1;
  for (let i = 0; i < Math.min(a.pre.length, b.pre.length); i++) {
    const order = compareIds(a.pre[i], b.pre[i]);
    if (order !== 0) return order;
  }
  return a.pre.length - b.pre.length;
}

function semver(test) {
  return (actual, expected) => {
    const a = parseSemver(actual);
    const b = parseSemver(expected);
    return a !== null && b !== null && test(compareSemver(a, b));
  };
}

const OPERATORS = new Map([
  ['eq', same],
  ['neq', (a, b) => !same(a, b)],
  ['in', inList],
  ['not_in', (a, b) => Array.isArray(b) && !inList(a, b)],
  ['contains', contains],
  ['not_contains', notContains],
  ['gt', numeric((a, b) => a > b)],
  ['gte', numeric((a, b) => a >= b)],
  ['lt', numeric((a, b) => a < b)],
  ['lte', numeric((a, b) => a <= b)],
  ['semver_eq', semver((o) => o === 0)],
  ['semver_gt', semver((o) => o > 0)],
  ['semver_gte', semver((o) => o >= 0)],
  ['semver_lt', semver((o) => o < 0)],
  ['semver_lte', semver((o) => o <= 0)],
]);

export function matches(condition, context) {
  const operator = condition.operator;
  const actual = lookup(context, condition.attribute);
  if (actual === undefined) return NEGATED.has(operator);
  const test = OPERATORS.get(operator);
  return test !== undefined && test(actual, condition.value);
}

/** A rule's or a targeting block's conditions, combined by its `match` ("all" when absent); no conditions
 * match everyone, conditions that are not a list nobody. */
export function allOrAny(block, context) {
  const conditions = block.conditions;
  if (!Array.isArray(conditions)) return conditions === undefined || conditions === null;
  if (conditions.length === 0) return true;
  const match = has(block, 'match') ? block.match : 'all';
  if (match === 'all') return conditions.every((c) => matches(c, context));
  if (match === 'any') return conditions.some((c) => matches(c, context));
  return false;
}
