import { api } from "../lib/api.js";
import { h, clear } from "../lib/dom.js";
import { actionButton, confirmAction, field, form, toast } from "../lib/ui.js";
import { can } from "../lib/roles.js";

function slugOf(name) {
  return name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50);
}

function renameForm(ctx, w, done) {
  return form({ class: "inline-form", "aria-label": `Rename ${w.name}` }, [
    field("Name", { name: "name", value: w.name, required: true, maxlength: 100 }),
    field("Slug", { name: "slug", value: w.slug, required: true, maxlength: 50, pattern: "[a-z0-9\\-]+" }),
    h("button", { type: "submit", class: "primary" }, "Save"),
    h("button", { type: "button", class: "secondary", "on:click": done }, "Cancel"),
  ], async ({ name, slug }) => {
    const saved = await api("PATCH", `/workspaces/${w.id}`, { name, slug });
    toast(`Saved: ${saved.name} (${saved.slug})`);
    await ctx.refreshWorkspaces();
    done();
  });
}

function table(ctx, list) {
  const rows = ctx.workspaces.map((w) => {
    const actions = h("td", { class: "actions" });
    const row = h("tr", { dataset: { workspace: w.slug } },
      h("th", { scope: "row" }, w.is_active ? h("a", { href: `/w/${w.id}/keys` }, w.name) : w.name),
      h("td", {}, h("code", {}, w.slug)),
      h("td", {}, w.plan),
      h("td", {}, w.is_active ? "active" : h("span", { class: "badge" }, "archived")),
      actions);
    const editRow = h("tr", { class: "edit-row", hidden: true }, h("td", { colspan: 5 }));
    const closeEdit = () => {
      editRow.hidden = true;
      clear(editRow.firstChild);
    };
    if (!can(w, "workspace:update")) {
      // Renaming, archiving and restoring need workspace:update (ADMIN, OWNER): a plain note, not buttons.
      actions.append(h("span", { class: "muted" }, `You are ${w.role ? `a ${w.role.toLowerCase()}` : "a member"} here`));
      return [row, editRow];
    }
    actions.append(
      h("button", { type: "button", class: "secondary", "aria-label": `Rename ${w.name}`, "on:click": () => {
        clear(editRow.firstChild).append(renameForm(ctx, w, async () => { closeEdit(); await draw(ctx, list); }));
        editRow.hidden = false;
        editRow.querySelector("input").focus();
      } }, "Rename"),
      w.is_active
        ? actionButton("Archive", async () => {
          if (!(await confirmAction(`Archive ${w.name}? Its keys stop working at the edge; its data is kept.`, { confirm: "Archive" }))) return;
          const saved = await api("POST", `/workspaces/${w.id}/archive`);
          toast(`${saved.name} is archived`);
          await ctx.refreshWorkspaces();
          await draw(ctx, list);
        }, { "aria-label": `Archive ${w.name}` })
        : actionButton("Restore", async () => {
          const saved = await api("POST", `/workspaces/${w.id}/restore`);
          toast(`${saved.name} is restored`);
          await ctx.refreshWorkspaces();
          await draw(ctx, list);
        }, { "aria-label": `Restore ${w.name}` }));
    return [row, editRow];
  });
  return h("table", { class: "table" },
    h("caption", { class: "visually-hidden" }, "Your workspaces"),
    h("thead", {}, h("tr", {}, ["Name", "Slug", "Plan", "Status", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows));
}

async function draw(ctx, list) {
  clear(list);
  if (!ctx.workspaces.length) list.append(h("p", { class: "empty" }, "You belong to no workspace yet: create one below."));
  else list.append(table(ctx, list));
}

async function orgsSection() {
  let orgs;
  try {
    orgs = (await api("GET", "/orgs?limit=100")).items;
  } catch {
    return null; // orgs are optional here: the workspaces above are what matters
  }
  if (!orgs.length) return null;
  return h("section", { "aria-labelledby": "orgs-title" }, h("h2", { id: "orgs-title" }, "Organizations"),
    h("p", { class: "muted" }, "Organizations group workspaces under one plan; manage them with the API (docs/api.md)."),
    h("ul", { id: "org-list" }, orgs.map((o) => h("li", { dataset: { org: o.name } }, h("strong", {}, o.name), " · ",
      `plan ${o.plan} · ${o.workspaces} of ${o.max_workspaces} workspaces`))));
}

export default {
  path: "/workspaces",
  title: "Workspaces",
  async render(ctx) {
    const list = h("div", { id: "workspace-list" });
    const create = form({ class: "card", "aria-labelledby": "create-title" }, [
      h("h2", { id: "create-title" }, "Create a workspace"),
      field("Name", { name: "name", required: true, maxlength: 100, "on:input": (e) => {
        const slug = e.target.form.elements.slug;
        if (!slug.dataset.touched) slug.value = slugOf(e.target.value);
      } }),
      field("Slug", { name: "slug", required: true, maxlength: 50, pattern: "[a-z0-9\\-]+", "on:input": (e) => { e.target.dataset.touched = "1"; } },
        { hint: "Lowercase letters, digits and dashes; used in URLs and the CLI." }),
      h("button", { type: "submit", class: "primary" }, "Create workspace"),
    ], async ({ name, slug }, el) => {
      const created = await api("POST", "/workspaces", { name, slug });
      toast(`Workspace ${created.name} created`);
      el.reset();
      await ctx.refreshWorkspaces();
      ctx.navigate(`/w/${created.id}/keys`);
    });
    ctx.root.append(h("h1", {}, "Workspaces"), list, create);
    await draw(ctx, list);
    const orgs = await orgsSection();
    if (orgs) ctx.root.append(orgs);
  },
};
