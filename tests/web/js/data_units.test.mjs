// Pure parts of the data pages, in Node (tests/web/test_data_units.py copies api/web/static beside this
// file with a package.json of "type": "module", and runs it): condition values typed as the api checks
// them, axis bounds, the usage chart's days and series, the audit log's changed fields.
import assert from "node:assert/strict";
import { test } from "node:test";

import { formatValue, parseValue } from "./static/lib/conditions.js";
import { niceMax } from "./static/lib/charts.js";
import { changedFields } from "./static/lib/audit.js";
import { fillDays, seriesOf } from "./static/pages/usage.js";

test("condition values take the type their operator needs", () => {
  assert.deepEqual(parseValue("in", "pro, enterprise,, 3, true"), ["pro", "enterprise", 3, true]);
  assert.deepEqual(parseValue("not_in", ""), []);
  assert.equal(parseValue("eq", "pro"), "pro");
  assert.equal(parseValue("eq", "3"), 3);
  assert.equal(parseValue("eq", '"3"'), "3"); // quoted: stays a string
  assert.equal(parseValue("neq", "false"), false);
  assert.equal(parseValue("gte", "2.5"), 2.5);
  assert.equal(parseValue("gt", ""), ""); // left for the api to refuse with its message
  assert.equal(parseValue("semver_gte", " 1.4.0 "), "1.4.0");
  assert.equal(parseValue("contains", " beta "), "beta");
});

test("a stored value comes back as the text that parses to it again", () => {
  for (const [op, value] of [["eq", "3"], ["eq", 3], ["eq", "true"], ["eq", true], ["in", ["a", 2, "2"]],
    ["semver_lt", "2.0.0-rc.1"], ["lt", 10]]) {
    assert.deepEqual(parseValue(op, formatValue(value)), value, `${op} ${JSON.stringify(value)}`);
  }
});

test("axis tops are 1, 2, 2.5 or 5 times a power of ten, at or above the maximum", () => {
  assert.deepEqual([0, 1, 7, 11, 0.648, 0.03, 2400, -1].map(niceMax), [1, 1, 10, 20, 1, 0.05, 2500, 1]);
});

test("the usage chart has every day of the range, zeros included", () => {
  const days = fillDays({ from: "2026-02-27", to: "2026-03-02", days: [{ day: "2026-02-28", events: 4, by_type: { a: 4 } }] });
  assert.deepEqual(days.map((d) => [d.day, d.events]), [["2026-02-27", 0], ["2026-02-28", 4], ["2026-03-01", 0], ["2026-03-02", 0]]);
});

test("the busiest seven types get a colour each; the rest are summed as other", () => {
  const byType = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`t${i}`, 100 - i]));
  const series = seriesOf([{ day: "2026-01-01", events: 0, by_type: byType }]);
  assert.deepEqual(series.map((s) => s.name), ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "other"]);
  assert.deepEqual(series.at(-1).members, ["t7", "t8"]);
  const eight = seriesOf([{ day: "2026-01-01", events: 0, by_type: Object.fromEntries(Object.entries(byType).slice(0, 8)) }]);
  assert.equal(eight.length, 8); // eight types fit: no "other" holding one
  assert.ok(!eight.some((s) => s.name === "other"));
});

test("an audit entry names the fields that changed, not its timestamps", () => {
  const before = { enabled: false, rollout: 100, rules: [], updated_at: "a" };
  const after = { enabled: false, rollout: 35, rules: [{ match: "all" }], updated_at: "b" };
  assert.deepEqual(changedFields(before, after), ["rollout", "rules"]);
  assert.deepEqual(changedFields(null, { key: "x" }), ["key"]);
});
