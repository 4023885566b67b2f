// The conditions editor of flag rules and experiment targeting: rows of attribute, operator and value.
// Values are typed as the api checks them (api/flag_rules.py): lists for in/not_in (comma-separated),
// numbers for gt/gte/lt/lte, versions for semver_*, and for eq/neq/contains a number or true/false when
// the text is one (write it in double quotes to keep it a string).
import { h, uid } from "./dom.js";

export const OPERATORS = ["eq", "neq", "in", "not_in", "contains", "not_contains", "gt", "gte", "lt", "lte",
  "semver_eq", "semver_gt", "semver_gte", "semver_lt", "semver_lte"];

function scalar(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1);
  return t;
}

/** The text of a condition's input as the value the api expects for its operator. */
export function parseValue(operator, text) {
  if (operator === "in" || operator === "not_in") return text.split(",").map((x) => x.trim()).filter(Boolean).map(scalar);
  if (["gt", "gte", "lt", "lte"].includes(operator)) return text.trim() === "" ? text : Number(text);
  if (operator.startsWith("semver_")) return text.trim();
  return scalar(text);
}

/** A condition's value back as the text to edit. */
export function formatValue(value) {
  if (Array.isArray(value)) return value.map(formatValue).join(", ");
  if (typeof value === "string" && (value === "true" || value === "false" || (value.trim() !== "" && !Number.isNaN(Number(value))))) {
    return `"${value}"`;
  }
  return String(value ?? "");
}

/** An editor of a list of conditions; `.value()` reads them back. */
export function conditionsEditor(initial = [], { label = "Conditions" } = {}) {
  const rows = h("ol", { class: "conditions" });
  const root = h("fieldset", { class: "conditions-editor" }, h("legend", {}, label), rows);
  const addButton = h("button", { type: "button", "on:click": () => { add({}); rows.lastElementChild.querySelector("input").focus(); } },
    "Add condition");
  root.append(addButton);

  function add(c) {
    const ids = [uid("attr"), uid("op"), uid("val")];
    const attribute = h("input", { id: ids[0], name: "attribute", value: c.attribute || "", required: true, maxlength: "100",
      placeholder: "plan" });
    const operator = h("select", { id: ids[1], name: "operator" },
      OPERATORS.map((op) => h("option", { value: op, selected: op === (c.operator || "eq") }, op)));
    const value = h("input", { id: ids[2], name: "value", value: c.value === undefined ? "" : formatValue(c.value),
      placeholder: "pro" });
    const li = h("li", { class: "condition" },
      h("label", { for: ids[0] }, "Attribute"), attribute,
      h("label", { for: ids[1] }, "Operator"), operator,
      h("label", { for: ids[2] }, "Value"), value,
      h("button", { type: "button", "aria-label": "Remove this condition", "on:click": () => { li.remove(); addButton.focus(); } },
        "Remove"));
    rows.append(li);
  }
  for (const c of initial) add(c);

  root.value = () => [...rows.children].map((li) => {
    const op = li.querySelector("[name=operator]").value;
    return { attribute: li.querySelector("[name=attribute]").value.trim(), operator: op,
      value: parseValue(op, li.querySelector("[name=value]").value) };
  });
  return root;
}
