// One feature flag: switch it on or off, set its rollout (a range slider), edit its details and targeting
// rules (the conditions editor), delete it; below, its audit log. Every change is a PATCH whose answer
// redraws the page (nothing is shown as saved before the server says so).
import { api } from "../lib/api.js";
import { clear, h, uid } from "../lib/dom.js";
import { confirmAction, showError, toast } from "../lib/ui.js";
import { can, roleNotice } from "../lib/roles.js";
import { auditLog } from "../lib/audit.js";
import { conditionsEditor } from "../lib/conditions.js";
import { labelled } from "./flags.js";

/** A range slider (0-100 %, 1 % steps) with its label and the value shown beside it. */
export function rolloutSlider(initial, label) {
  const id = uid("rollout");
  const output = h("output", { for: id, class: "rollout-value" }, `${initial}%`);
  const input = h("input", { id, type: "range", name: "rollout", min: "0", max: "100", step: "1", value: String(initial),
    "aria-valuetext": `${initial}%` });
  input.addEventListener("input", () => {
    output.textContent = `${input.value}%`;
    input.setAttribute("aria-valuetext", `${input.value}%`);
  });
  return { input, element: h("div", { class: "field slider" }, h("label", { for: id }, label), input, " ", output) };
}

function ruleEditor(rule, index, onRemove) {
  const match = h("select", { name: "match" },
    ["all", "any"].map((m) => h("option", { value: m, selected: (rule.match || "all") === m }, m === "all" ? "all conditions" : "any condition")));
  const slider = rolloutSlider(rule.rollout ?? 100, "Rollout of this rule");
  const conditions = conditionsEditor(rule.conditions || [], { label: "Conditions" });
  const box = h("fieldset", { class: "rule" },
    h("legend", {}, `Rule ${index + 1}${rule.id ? ` (${rule.id})` : ""}`),
    labelled("Match when", match), conditions, slider.element,
    h("button", { type: "button", "on:click": () => onRemove(box) }, `Remove rule ${index + 1}`));
  box.value = () => {
    const out = { match: match.value, conditions: conditions.value(), rollout: Number(slider.input.value) };
    if (rule.id) out.id = rule.id;
    if ("value" in rule) out.value = rule.value; // a rule's own value is kept as it was
    return out;
  };
  return box;
}

export default {
  path: "/w/:ws/flags/:key",
  title: "Feature flag",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const path = `/workspaces/${ws}/feature-flags/${encodeURIComponent(ctx.params.key)}`;
    const error = h("div", { class: "error-slot" });
    const main = h("div", { class: "flag-body" });
    const audit = auditLog(ctx, "feature_flag", ctx.params.key);
    clear(ctx.root).append(h("p", {}, h("a", { href: `/w/${ctx.params.ws}/flags` }, "← All flags")),
      ...[h("h1", {}, `Flag ${ctx.params.key}`), roleNotice(ctx.workspace, ["flags:write", "flags:rollout"]), error, main, audit]
        .filter(Boolean));

    async function write(body, what) {
      clear(error);
      try {
        const flag = await api("PATCH", path, body);
        toast(what);
        draw(flag);
        audit.reload();
      } catch (err) {
        showError(error, err);
      }
    }

    function draw(flag) {
      const state = h("p", { class: "flag-state", role: "status" }, "This flag is ", h("strong", {}, flag.enabled ? "on" : "off"),
        `, served to ${flag.rollout}% of the units its rules let through.`);
      const toggle = h("button", { type: "button", class: flag.enabled ? "" : "primary",
        "on:click": () => write({ enabled: !flag.enabled }, flag.enabled ? "Flag switched off" : "Flag switched on") },
      flag.enabled ? "Disable" : "Enable");
      const rollout = rolloutSlider(flag.rollout, "Rollout (share of units that get the flag)");
      const rolloutForm = h("form", { class: "rollout", "aria-labelledby": "rollout-h" },
        h("h2", { id: "rollout-h" }, "Rollout"), rollout.element, h("button", { type: "submit" }, "Save rollout"));
      rolloutForm.addEventListener("submit", (e) => {
        e.preventDefault();
        write({ rollout: Number(rollout.input.value) }, `Rollout set to ${rollout.input.value}%`);
      });

      const name = h("input", { name: "name", value: flag.name, required: true, maxlength: "100" });
      const description = h("textarea", { name: "description", rows: "2", maxlength: "1000" }, flag.description || "");
      const rules = h("div", { class: "rules" });
      const removeRule = (box) => { box.remove(); renumber(); };
      const renumber = () => [...rules.children].forEach((box, i) => { box.querySelector("legend").textContent = `Rule ${i + 1}`; });
      flag.rules.forEach((r, i) => rules.append(ruleEditor(r, i, removeRule)));
      const edit = h("form", { class: "flag-edit", "aria-labelledby": "edit-h" },
        h("h2", { id: "edit-h" }, "Details and targeting rules"),
        labelled("Name", name), labelled("Description", description),
        h("p", {}, "Rules are tried in order; a unit matching none gets the default value. Without rules, every unit is in."),
        rules,
        h("button", { type: "button", "on:click": () => rules.append(ruleEditor({ match: "all", conditions: [], rollout: 100 },
          rules.children.length, removeRule)) }, "Add rule"),
        " ", h("button", { type: "submit", class: "primary" }, "Save details and rules"));
      edit.addEventListener("submit", (e) => {
        e.preventDefault();
        write({ name: name.value.trim(), description: description.value.trim() || null,
          rules: [...rules.children].map((box) => box.value()) }, "Flag saved");
      });
      const remove = h("button", { type: "button", class: "danger", "on:click": async () => {
        if (!(await confirmAction(`Delete the flag ${flag.key}? SDKs then get its default value.`))) return;
        try {
          await api("DELETE", path);
          toast(`Flag ${flag.key} deleted`);
          ctx.navigate(`/w/${ctx.params.ws}/flags`);
        } catch (err) {
          showError(error, err);
        }
      } }, "Delete flag");
      // Switch and rollout need flags:rollout; details, rules and deleting need flags:write (api/permissions.py).
      const rolls = can(ctx.workspace, "flags:rollout");
      const writes = can(ctx.workspace, "flags:write");
      clear(main).append(...[state, rolls ? h("div", { class: "toolbar" }, toggle) : null, rolls ? rolloutForm : null,
        writes ? edit : null,
        h("dl", { class: "facts" }, h("dt", {}, "Type"), h("dd", {}, flag.value_type),
          h("dt", {}, "Default value"), h("dd", {}, h("code", {}, JSON.stringify(flag.default_value))),
          h("dt", {}, "Value when on"), h("dd", {}, h("code", {}, JSON.stringify(flag.on_value)))),
        writes ? remove : null].filter(Boolean));
    }

    try {
      draw(await api("GET", path));
      await audit.reload();
    } catch (err) {
      showError(error, err);
    }
  },
};
