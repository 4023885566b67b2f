// Usage: events stored per day by type (a stacked column chart with a table beside it), the plan's limits
// and how close the workspace is to each, and what SDKs reported dropping (client_dropped).
import { api } from "../lib/api.js";
import { clear, h, uid } from "../lib/dom.js";
import { formatNumber, showError } from "../lib/ui.js";
import { OTHER_COLOUR, PALETTE, dataTable, legend, stackedColumns } from "../lib/charts.js";

const RANGES = [7, 30, 90];
const SHOWN_TYPES = PALETTE.length - 1; // the busiest types get a colour each; the rest are "other"
const LIMITS = [
  ["members", "max_members", "Members"],
  ["feature_flags", "max_feature_flags", "Feature flags"],
  ["experiments", "max_experiments", "Experiments (draft and running)"],
  ["api_keys", "max_api_keys", "Active API keys"],
];

function plural(n, word) {
  return `${formatNumber(n)} ${word}${n === 1 ? "" : "s"}`;
}

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

/** Every UTC day of [from, to] with its events by type (absent days are zero). */
export function fillDays(usage) {
  const byDay = new Map(usage.days.map((d) => [d.day, d]));
  const out = [];
  for (let t = Date.parse(`${usage.from}T00:00:00Z`); t <= Date.parse(`${usage.to}T00:00:00Z`); t += 86400000) {
    const day = isoDay(new Date(t));
    out.push(byDay.get(day) || { day, events: 0, by_type: {} });
  }
  return out;
}

/** The chart's series: the busiest types, then "other" for the rest. */
export function seriesOf(days) {
  const totals = new Map();
  for (const d of days) for (const [type, n] of Object.entries(d.by_type)) totals.set(type, (totals.get(type) || 0) + n);
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([t]) => t);
  const shown = ranked.length > SHOWN_TYPES + 1 ? ranked.slice(0, SHOWN_TYPES) : ranked;
  const series = shown.map((name, i) => ({ name, colour: PALETTE[i] }));
  const rest = ranked.slice(shown.length);
  if (rest.length) series.push({ name: "other", colour: OTHER_COLOUR, members: rest });
  return series;
}

function partsOf(day, series) {
  return series.map((x) => ({
    series: x.name,
    value: x.members ? x.members.reduce((n, t) => n + (day.by_type[t] || 0), 0) : day.by_type[x.name] || 0,
  }));
}

function chartSection(usage) {
  const days = fillDays(usage);
  const series = seriesOf(days);
  const busiest = days.reduce((a, b) => (b.events > a.events ? b : a), days[0]);
  const description = usage.total
    ? `${plural(usage.total, "event")} from ${usage.from} to ${usage.to}, by type: ${series.map((x) => x.name).join(", ")}. ` +
      `Busiest day ${busiest.day} with ${formatNumber(busiest.events)}.`
    : `No events stored from ${usage.from} to ${usage.to}.`;
  const rows = days.slice().reverse().map((d) => [d.day, ...partsOf(d, series).map((p) => formatNumber(p.value)),
    formatNumber(d.events)]);
  return h("section", { "aria-labelledby": "usage-chart-h" },
    h("h2", { id: "usage-chart-h" }, "Events per day"),
    h("p", { class: "total", "data-total": usage.total }, `${plural(usage.total, "event")} stored in this range.`),
    stackedColumns({ title: `Events per day by type, ${usage.from} to ${usage.to}`, description,
      days: days.map((d) => ({ day: d.day, parts: partsOf(d, series) })), series }),
    series.length ? legend(series) : null,
    h("details", { class: "table-alternative" },
      h("summary", {}, "The same data as a table"),
      dataTable("Events per day and type (UTC days, newest first)", ["Day", ...series.map((x) => x.name), "Total"], rows,
        { id: "usage-table" })));
}

function limitsSection(limits) {
  const items = LIMITS.map(([used, max, label]) => {
    const n = limits.used[used];
    const cap = limits.limits[max];
    const id = uid("limit");
    const share = cap ? Math.round((n / cap) * 100) : 100;
    return h("li", { "data-limit": max },
      h("label", { for: id }, label, ": ", h("strong", {}, `${formatNumber(n)} of ${formatNumber(cap)}`), ` (${share}%)`),
      h("meter", { id, min: 0, max: Math.max(cap, 1), low: cap * 0.7, high: cap * 0.9, optimum: 0, value: Math.min(n, cap) }),
      n >= cap ? h("span", { class: "warning" }, " At the limit: new ones are refused (PLAN_LIMIT).") : null);
  });
  const rate = limits.limits.events_per_second;
  return h("section", { "aria-labelledby": "usage-limits-h" },
    h("h2", { id: "usage-limits-h" }, `Plan: ${limits.plan}`),
    h("p", {}, "Counted across the workspace's organization, as the limits count them."),
    h("ul", { class: "limits" }, items),
    h("p", {}, limits.limits.api_access ? `Ingestion: up to ${formatNumber(rate)} events/s sustained, bursts of ` +
      `${formatNumber(limits.limits.burst)}.` : "This plan has no API access: the workspace's keys are refused."));
}

function droppedSection(usage) {
  const reasons = Object.entries(usage.client_dropped);
  const total = reasons.reduce((n, [, v]) => n + v, 0);
  return h("section", { "aria-labelledby": "usage-dropped-h" },
    h("h2", { id: "usage-dropped-h" }, "Dropped by SDKs before sending"),
    reasons.length
      ? [h("p", {}, `${formatNumber(total)} events SDKs reported dropping in this range (they never reached the server).`),
        dataTable("Events dropped by SDKs, by reason", ["Reason", "Events"], reasons.map(([r, n]) => [r, formatNumber(n)]),
          { id: "dropped-table" })]
      : h("p", { id: "dropped-none" }, "None reported in this range."));
}

export default {
  path: "/w/:ws/usage",
  title: "Usage",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const asked = Number(ctx.query.get("days"));
    const days = RANGES.includes(asked) ? asked : 30;
    const body = h("div", { class: "usage-body", "aria-live": "polite", "aria-busy": "true" });
    const error = h("div", { class: "error-slot" });
    const select = h("select", { id: "usage-range", "on:change": () => {
      history.replaceState(history.state, "", `${location.pathname}?days=${select.value}`); // a reload keeps the range
      load();
    } },
      RANGES.map((n) => h("option", { value: String(n), selected: n === days }, `Last ${n} days`)));
    const refresh = h("button", { type: "button", "on:click": () => load() }, "Refresh");
    clear(ctx.root).append(
      h("h1", {}, "Usage"),
      h("div", { class: "toolbar" }, h("label", { for: "usage-range" }, "Range "), select, " ", refresh),
      error, body);

    async function load() {
      body.setAttribute("aria-busy", "true");
      clear(error);
      const n = Number(select.value);
      const to = new Date();
      const from = new Date(to.getTime() - (n - 1) * 86400000);
      try {
        const [usage, limits] = await Promise.all([
          api("GET", `/workspaces/${ws}/usage?from=${isoDay(from)}&to=${isoDay(to)}`),
          api("GET", `/workspaces/${ws}/limits`),
        ]);
        clear(body).append(chartSection(usage), limitsSection(limits), droppedSection(usage));
      } catch (err) {
        showError(error, err);
      } finally {
        body.setAttribute("aria-busy", "false");
      }
    }
    await load();
  },
};
