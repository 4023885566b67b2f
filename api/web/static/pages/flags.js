// Feature flags: the workspace's flags (key, state, rollout) and a form to create one; each links to its
// page (pages/flag.js) for rules, rollout and the audit log.
import { api } from "../lib/api.js";
import { clear, h, uid } from "../lib/dom.js";
import { showError, timeAgo, toast } from "../lib/ui.js";
import { can, roleNotice } from "../lib/roles.js";

export async function allPages(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", `${path}?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export function labelled(label, input, help) {
  const id = input.id || uid("f");
  input.id = id;
  if (help) input.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("small", { id: `${id}-help` }, help) : null);
}

export const KEY_PATTERN = "[a-z0-9][a-z0-9_.\\-]{0,99}";

export default {
  path: "/w/:ws/flags",
  title: "Feature flags",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const base = `/w/${ctx.params.ws}/flags`;
    const error = h("div", { class: "error-slot" });
    const listing = h("div", { "aria-live": "polite" });
    const key = h("input", { name: "key", required: true, pattern: KEY_PATTERN, maxlength: "100", autocomplete: "off" });
    const name = h("input", { name: "name", maxlength: "100" });
    const description = h("input", { name: "description", maxlength: "1000" });
    const enabled = h("input", { type: "checkbox", name: "enabled" });
    const createError = h("div", { class: "error-slot" });
    const form = h("form", { class: "create-flag", "aria-labelledby": "create-flag-h" },
      h("h2", { id: "create-flag-h" }, "Create a flag"),
      labelled("Key", key, "Lower-case letters, digits and _ . - (what SDKs ask for, e.g. new-checkout)"),
      labelled("Name (optional)", name), labelled("Description (optional)", description),
      h("div", { class: "field checkbox" }, enabled, h("label", { for: enabled.id = uid("enabled") }, "Enabled from the start")),
      h("button", { type: "submit" }, "Create flag"), createError);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(createError);
      const body = { key: key.value.trim(), enabled: enabled.checked };
      if (name.value.trim()) body.name = name.value.trim();
      if (description.value.trim()) body.description = description.value.trim();
      try {
        const flag = await api("POST", `/workspaces/${ws}/feature-flags`, body);
        toast(`Flag ${flag.key} created`);
        ctx.navigate(`${base}/${encodeURIComponent(flag.key)}`);
      } catch (err) {
        showError(createError, err);
      }
    });
    clear(ctx.root).append(...[h("h1", {}, "Feature flags"), roleNotice(ctx.workspace, ["flags:write"]), error, listing,
      can(ctx.workspace, "flags:write") ? form : null].filter(Boolean)); // Element.append would write a null as "null"
    try {
      const flags = await allPages(`/workspaces/${ws}/feature-flags`);
      clear(listing).append(flags.length
        ? h("table", { class: "data flags" },
          h("caption", {}, `${flags.length} flag${flags.length === 1 ? "" : "s"}`),
          h("thead", {}, h("tr", {}, ["Key", "Name", "State", "Rollout", "Rules", "Changed"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, flags.map((f) => h("tr", { "data-key": f.key },
            h("th", { scope: "row" }, h("a", { href: `${base}/${encodeURIComponent(f.key)}` }, f.key)),
            h("td", {}, f.name), h("td", {}, f.enabled ? "On" : "Off"), h("td", {}, `${f.rollout}%`),
            h("td", {}, String(f.rules.length)),
            h("td", {}, h("time", { datetime: f.updated_at }, timeAgo(new Date(f.updated_at))))))))
        : h("p", { class: "empty" }, "No flags yet."));
    } catch (err) {
      showError(error, err);
    }
  },
};
