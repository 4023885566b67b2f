// Pieces the event pages share: one event as JSON (text in <pre><code>, never markup), who an event is
// about, and the filter form of the events API (event_type, user_id, anonymous_id, from, to, property).
import { h, uid } from "./dom.js";

/** One event as indented JSON, as text. */
export function jsonView(event, label = "Selected event") {
  return h("figure", { class: "json-view" },
    h("figcaption", {}, label),
    h("pre", { tabindex: "0", "aria-label": `${label} as JSON` }, h("code", {}, JSON.stringify(event, null, 2))));
}

export function who(event) {
  if (event.user_id) return `user ${event.user_id}`;
  if (event.anonymous_id) return `anonymous ${event.anonymous_id}`;
  return "";
}

function field(name, label, attrs = {}) {
  const id = uid(name);
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name, ...attrs }));
}

/** An RFC 3339 time as a datetime-local value (the browser's local time, to the second); "" when not a time. */
export function localInput(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The filters of a URL's query (as filterForm's `initial`). */
export function initialFilters(query) {
  const out = {};
  for (const name of ["event_type", "user_id", "anonymous_id"]) out[name] = query.get(name) || "";
  out.from = localInput(query.get("from"));
  out.to = localInput(query.get("to"));
  out.property = query.getAll("property").join("\n");
  return out;
}

/** datetime-local (the browser's local time) to RFC 3339 UTC, or "" when empty. */
function utc(local) {
  return local ? new Date(local).toISOString() : "";
}

/**
 * The filter form; `onApply(params)` gets a URLSearchParams of the filters given. With `times`, the
 * from/to fields (the live stream takes them too, but a live view rarely wants them).
 */
export function filterForm({ onApply, times = true, eventTypes = [], submitLabel = "Apply filters", initial = {} }) {
  const listId = uid("types");
  const propsId = uid("props");
  const form = h("form", { class: "filters", "aria-label": "Event filters" },
    field("event_type", "Event type", { list: listId, autocomplete: "off", value: initial.event_type || "" }),
    h("datalist", { id: listId }, eventTypes.map((t) => h("option", { value: t }))),
    field("user_id", "User id", { autocomplete: "off", value: initial.user_id || "" }),
    field("anonymous_id", "Anonymous id", { autocomplete: "off", value: initial.anonymous_id || "" }),
    times ? field("from", "From (your local time)", { type: "datetime-local", step: "1", value: initial.from || "" }) : null,
    times ? field("to", "To (not included)", { type: "datetime-local", step: "1", value: initial.to || "" }) : null,
    h("div", { class: "field" },
      h("label", { for: propsId }, "Properties equal"),
      h("textarea", { id: propsId, name: "property", rows: "2", placeholder: "plan:pro",
        "aria-describedby": `${propsId}-help` }, initial.property || ""),
      h("small", { id: `${propsId}-help` }, "One KEY:VALUE per line (e.g. plan:pro, count:3, beta:true).")),
    h("button", { type: "submit" }, submitLabel));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    onApply(filterParams(form));
  });
  return form;
}

export function filterParams(form) {
  const params = new URLSearchParams();
  for (const name of ["event_type", "user_id", "anonymous_id"]) {
    const v = form.elements[name].value.trim();
    if (v) params.set(name, v);
  }
  for (const name of ["from", "to"]) {
    const el = form.elements[name];
    if (el && el.value) params.set(name, utc(el.value));
  }
  for (const line of form.elements.property.value.split("\n")) {
    if (line.trim()) params.append("property", line.trim());
  }
  return params;
}
