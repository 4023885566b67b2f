// Building DOM without HTML strings: text is always a text node, so event data can never become markup.

/**
 * h("button", { class: "primary", "on:click": fn, "aria-label": "Close" }, "Close", child, [more])
 * attrs: `class`, `on:<event>` listeners, boolean `true`/`false`/null (present or absent), `value`/`checked`
 * (set as properties), anything else as an attribute. Children: strings/numbers (text nodes), nodes,
 * arrays of children, and null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on:")) el.addEventListener(name.slice(3), value);
    else if (name === "value" || name === "checked" || name === "selected") {
      el.setAttribute(name, value === true ? "" : String(value)); // the default a form.reset() returns to
      el[name] = value;
    }
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Remove every child of `el`; returns `el`. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** A form's named fields as an object of strings (checkboxes: arrays of the checked values when repeated). */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") {
      if (!Array.isArray(out[el.name])) out[el.name] = [];
      if (el.checked) out[el.name].push(el.value);
    } else if (el.type === "radio") {
      if (el.checked) out[el.name] = el.value;
    } else out[el.name] = el.value;
  }
  return out;
}

let ids = 0;
/** A fresh element id, for label/aria-describedby pairs. */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}
