// One experiment: its status with start (draft -> running) and stop (running -> stopped), the allocation
// slider, the results (each variant's conversion rate with its 95% Wilson interval, and each difference
// from the control with its interval, drawn in SVG with a table beside them), and its audit log.
import { api } from "../lib/api.js";
import { clear, h } from "../lib/dom.js";
import { confirmAction, formatNumber, showError, toast } from "../lib/ui.js";
import { can, roleNotice } from "../lib/roles.js";
import { auditLog } from "../lib/audit.js";
import { dataTable, intervalChart, niceMax, pct, signedPct } from "../lib/charts.js";
import { rolloutSlider } from "./flag.js";

const NEXT = { draft: ["running", "Start experiment"], running: ["stopped", "Stop experiment"] };

function bound(values, floor) {
  const finite = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  return finite.length ? Math.max(floor, ...finite) : floor;
}

/** The results section: charts of rates and differences, and the numbers as a table. */
export function resultsView(r) {
  const control = r.variants[0];
  const rateRows = r.variants.map((v) => ({ label: v.key, value: v.rate, low: v.rate_interval?.low ?? null,
    high: v.rate_interval?.high ?? null }));
  const top = Math.min(1, niceMax(bound(rateRows.map((x) => x.high), 0.01)));
  const diffRows = r.variants.slice(1).map((v) => ({ label: `${v.key} − ${control.key}`, value: v.vs_control?.rate_difference ?? null,
    low: v.vs_control?.rate_difference_interval?.low ?? null, high: v.vs_control?.rate_difference_interval?.high ?? null }));
  const reach = niceMax(bound(diffRows.flatMap((x) => [Math.abs(x.low ?? 0), Math.abs(x.high ?? 0)]), 0.01));
  const exposed = r.variants.reduce((n, v) => n + v.exposed, 0);
  const rateDesc = r.variants.map((v) => v.rate === null ? `${v.key}: no exposures`
    : `${v.key}: ${pct(v.rate)} (${pct(v.rate_interval.low)} to ${pct(v.rate_interval.high)}) of ${v.exposed} units`).join("; ");
  const diffDesc = diffRows.map((d) => d.value === null ? `${d.label}: not enough data`
    : `${d.label}: ${signedPct(d.value)} (${signedPct(d.low)} to ${signedPct(d.high)})`).join("; ");
  const rows = r.variants.map((v, i) => [v.key, formatNumber(v.exposed), formatNumber(v.converted), pct(v.rate),
    v.rate_interval ? `${pct(v.rate_interval.low)} to ${pct(v.rate_interval.high)}` : "n/a",
    i === 0 ? "control" : signedPct(v.vs_control?.rate_difference),
    i === 0 || !v.vs_control?.rate_difference_interval ? "" :
      `${signedPct(v.vs_control.rate_difference_interval.low)} to ${signedPct(v.vs_control.rate_difference_interval.high)}`,
    i === 0 || v.vs_control?.p_value == null ? "" : v.vs_control.p_value.toFixed(3)]);
  return h("section", { class: "results", "aria-labelledby": "results-h" },
    h("h2", { id: "results-h" }, "Results"),
    h("p", {}, `${formatNumber(exposed)} exposed units; conversion: ${r.conversion_event}; bucket version ${r.bucket_version}; ` +
      `${Math.round(r.confidence * 100)}% intervals; computed ${new Date(r.computed_at).toLocaleString()}.`),
    r.srm.mismatch ? h("p", { class: "warning", role: "alert" },
      `Sample-ratio mismatch (p = ${r.srm.p_value?.toExponential(2)}): exposures do not follow the weights; check the assignment before trusting these results.`)
      : null,
    h("h3", {}, "Conversion rate by variant"),
    intervalChart({ title: "Conversion rate of each variant with its 95% Wilson interval", description: rateDesc,
      rows: rateRows, min: 0, max: top }),
    h("h3", {}, "Difference from the control"),
    diffRows.length ? intervalChart({ title: `Difference of each variant's conversion rate from ${control.key}, with 95% intervals`,
      description: diffDesc, rows: diffRows, min: -reach, max: reach, zero: 0, format: signedPct }) : null,
    dataTable("Results by variant", ["Variant", "Exposed", "Converted", "Rate", "95% interval", "Difference", "Difference 95% interval",
      "p-value"], rows, { id: "results-table" }));
}

export default {
  path: "/w/:ws/experiments/:key",
  title: "Experiment",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const path = `/workspaces/${ws}/experiments/${encodeURIComponent(ctx.params.key)}`;
    const error = h("div", { class: "error-slot" });
    const main = h("div", { class: "experiment-body" });
    const results = h("div", { class: "results-slot", "aria-live": "polite" });
    const audit = auditLog(ctx, "experiment", ctx.params.key);
    clear(ctx.root).append(h("p", {}, h("a", { href: `/w/${ctx.params.ws}/experiments` }, "← All experiments")),
      ...[h("h1", {}, `Experiment ${ctx.params.key}`), roleNotice(ctx.workspace, ["experiments:write", "experiments:allocation"]),
        error, main, results, audit].filter(Boolean));

    async function loadResults() {
      try {
        clear(results).append(resultsView(await api("GET", `${path}/results`)));
      } catch (err) {
        clear(results);
        showError(results, err);
      }
    }

    async function write(body, what) {
      clear(error);
      try {
        const exp = await api("PATCH", path, body);
        toast(what);
        draw(exp);
        audit.reload();
        loadResults();
      } catch (err) {
        showError(error, err);
      }
    }

    function draw(exp) {
      const next = NEXT[exp.status];
      const change = next && can(ctx.workspace, "experiments:write") ? h("button", { type: "button", class: "primary", "on:click": async () => {
        const ask = exp.status === "draft" ? `Start ${exp.key}? Its variants are then fixed (weights may still change).`
          : `Stop ${exp.key}? A stopped experiment never runs again.`;
        if (await confirmAction(ask)) write({ status: next[0] }, `Experiment ${next[0] === "running" ? "started" : "stopped"}`);
      } }, next[1]) : null;
      const allocation = rolloutSlider(exp.allocation, "Allocation (share of eligible units in the experiment)");
      const allocationForm = h("form", { class: "allocation", "aria-labelledby": "alloc-h" },
        h("h2", { id: "alloc-h" }, "Allocation"), allocation.element, h("button", { type: "submit" }, "Save allocation"));
      allocationForm.addEventListener("submit", (e) => {
        e.preventDefault();
        write({ allocation: Number(allocation.input.value) }, `Allocation set to ${allocation.input.value}%`);
      });
      clear(main).append(...[
        h("p", { class: "experiment-status", role: "status" }, "Status: ", h("strong", {}, exp.status),
          exp.started_at ? ` (started ${new Date(exp.started_at).toLocaleString()})` : "",
          exp.stopped_at ? `, stopped ${new Date(exp.stopped_at).toLocaleString()}` : ""),
        exp.hypothesis ? h("p", {}, "Hypothesis: ", exp.hypothesis) : null,
        h("p", {}, "Variants: ", exp.variants.map((v) => `${v.key} (${v.weight}%)`).join(", "),
          `; conversion: ${exp.conversion.event_type}.`),
        h("div", { class: "toolbar" }, change, " ", h("button", { type: "button", "on:click": loadResults }, "Refresh results")),
        exp.status === "stopped" || !can(ctx.workspace, "experiments:allocation") ? null : allocationForm,
      ].filter(Boolean)); // Element.append would write a null as the text "null"
    }

    try {
      draw(await api("GET", path));
      await Promise.all([loadResults(), audit.reload()]);
    } catch (err) {
      showError(error, err);
    }
  },
};
