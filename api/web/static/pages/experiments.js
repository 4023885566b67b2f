// Experiments: the workspace's experiments (status, variants, conversion event) and a form to create one
// (a draft); each links to its page (pages/experiment.js) for start/stop, results and the audit log.
import { api } from "../lib/api.js";
import { clear, h } from "../lib/dom.js";
import { showError, toast } from "../lib/ui.js";
import { can, roleNotice } from "../lib/roles.js";
import { KEY_PATTERN, allPages, labelled } from "./flags.js";

function variantRow(key, weight, list) {
  const k = h("input", { name: "variant_key", value: key, required: true, pattern: KEY_PATTERN, maxlength: "100" });
  const w = h("input", { name: "variant_weight", type: "number", min: "0", max: "100", step: "0.01", value: String(weight),
    required: true });
  const li = h("li", { class: "variant" }, labelled("Variant key", k), labelled("Weight (%)", w),
    h("button", { type: "button", "aria-label": "Remove this variant", "on:click": () => { if (list.children.length > 2) li.remove(); } },
      "Remove"));
  return li;
}

export default {
  path: "/w/:ws/experiments",
  title: "Experiments",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const base = `/w/${ctx.params.ws}/experiments`;
    const error = h("div", { class: "error-slot" });
    const listing = h("div", { "aria-live": "polite" });
    const key = h("input", { name: "key", required: true, pattern: KEY_PATTERN, maxlength: "100", autocomplete: "off" });
    const name = h("input", { name: "name", maxlength: "100" });
    const hypothesis = h("input", { name: "hypothesis", maxlength: "1000" });
    const conversion = h("input", { name: "conversion", required: true, maxlength: "200", placeholder: "purchase" });
    const valueProperty = h("input", { name: "value_property", maxlength: "100", placeholder: "value" });
    const variants = h("ol", { class: "variants" });
    variants.append(variantRow("control", 50, variants), variantRow("treatment", 50, variants));
    const createError = h("div", { class: "error-slot" });
    const form = h("form", { class: "create-experiment", "aria-labelledby": "create-exp-h" },
      h("h2", { id: "create-exp-h" }, "Create an experiment"),
      labelled("Key", key, "Lower-case letters, digits and _ . - (what SDKs ask for)"),
      labelled("Name (optional)", name), labelled("Hypothesis (optional)", hypothesis),
      labelled("Conversion event type", conversion, "A unit converts when it sends this event after its exposure."),
      labelled("Value property (optional)", valueProperty, "A numeric property summed per unit (\"value\": the event's value)."),
      h("fieldset", {}, h("legend", {}, "Variants (the first is the control; weights sum to 100)"), variants,
        h("button", { type: "button", "on:click": () => variants.append(variantRow(`variant-${variants.children.length}`, 0, variants)) },
          "Add variant")),
      h("button", { type: "submit" }, "Create experiment"), createError);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(createError);
      const body = {
        key: key.value.trim(),
        conversion: { event_type: conversion.value.trim(), value_property: valueProperty.value.trim() || null },
        variants: [...variants.children].map((li) => ({ key: li.querySelector("[name=variant_key]").value.trim(),
          weight: Number(li.querySelector("[name=variant_weight]").value) })),
      };
      if (name.value.trim()) body.name = name.value.trim();
      if (hypothesis.value.trim()) body.hypothesis = hypothesis.value.trim();
      try {
        const exp = await api("POST", `/workspaces/${ws}/experiments`, body);
        toast(`Experiment ${exp.key} created as a draft`);
        ctx.navigate(`${base}/${encodeURIComponent(exp.key)}`);
      } catch (err) {
        showError(createError, err);
      }
    });
    clear(ctx.root).append(...[h("h1", {}, "Experiments"), roleNotice(ctx.workspace, ["experiments:write"]), error, listing,
      can(ctx.workspace, "experiments:write") ? form : null].filter(Boolean)); // Element.append would write a null as "null"
    try {
      const items = await allPages(`/workspaces/${ws}/experiments`);
      clear(listing).append(items.length
        ? h("table", { class: "data experiments" },
          h("caption", {}, `${items.length} experiment${items.length === 1 ? "" : "s"}`),
          h("thead", {}, h("tr", {}, ["Key", "Name", "Status", "Variants", "Conversion"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, items.map((x) => h("tr", { "data-key": x.key },
            h("th", { scope: "row" }, h("a", { href: `${base}/${encodeURIComponent(x.key)}` }, x.key)),
            h("td", {}, x.name), h("td", {}, x.status),
            h("td", {}, x.variants.map((v) => `${v.key} ${v.weight}%`).join(", ")),
            h("td", {}, x.conversion.event_type)))))
        : h("p", { class: "empty" }, "No experiments yet."));
    } catch (err) {
      showError(error, err);
    }
  },
};
