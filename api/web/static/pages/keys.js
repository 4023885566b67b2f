// API keys: create with a scope picker (the key shown once, with a copy button), rotate with a grace
// period, revoke; last_used_at as "3 minutes ago". The list is always re-read from the server after a change.
import { api } from "../lib/api.js";
import { h, clear } from "../lib/dom.js";
import { actionButton, confirmAction, copyButton, field, form, timeEl, toast } from "../lib/ui.js";
import { atLeast, can, roleNotice } from "../lib/roles.js";

// The scopes of README's table, with what each grants.
const SCOPES = [
  ["track:write", "Send events to the edge"],
  ["flags:read", "Read flags, evaluate them at the edge, the SDK configuration"],
  ["experiments:read", "Read experiments and results, assign them at the edge"],
  ["flags:write", "Change a flag's rollout and enabled (CI/CD rollouts)"],
  ["experiments:write", "Change an experiment's allocation (CI/CD rollouts)"],
  ["workspace:read", "Read this workspace and its usage"],
  ["events:read", "Read stored events: list, export, live stream, event types"],
  ["admin", "Every scope, billing, and creating or deleting flags and experiments"],
];
const GRACE = [["0", "Stop the old key now"], ["3600", "Keep the old key for 1 hour"], ["86400", "Keep the old key for 1 day"],
  ["604800", "Keep the old key for 7 days"]];

// The key last created (or rotated) per workspace, for "Send a test event" (pages/send.js): in this module's
// memory only, gone on reload, and only for a key that may send events.
const justCreated = new Map();
const TRACKS = new Set(["track:write", "write", "admin"]);

export function lastCreatedKey(workspaceId) {
  return justCreated.get(workspaceId) ?? null;
}

function remember(workspaceId, created) {
  if (!(created.scopes || []).some((s) => TRACKS.has(s))) return null;
  justCreated.set(workspaceId, created.key);
  return h("p", {}, h("a", { href: `/w/${workspaceId}/live` }, "Send a test event with it"), " and watch it arrive.");
}

function secretPanel(title, created, note, extra = null) {
  const panel = h("section", { class: "secret", "aria-labelledby": "secret-title", tabindex: "-1" },
    h("h2", { id: "secret-title" }, title),
    h("p", {}, h("strong", {}, "Copy this key now: it is shown only once. "), "Only its hash is stored; if you lose it, rotate the key."),
    h("code", { class: "key-secret", "aria-label": "The new key" }, created.key),
    note ? h("p", {}, note) : null,
    extra,
    h("div", { class: "actions" }, copyButton(created.key, "Copy key"),
      h("button", { type: "button", class: "secondary", "on:click": () => panel.remove() }, "I have saved it")));
  return panel;
}

// Keys with the `admin` scope are created and managed only by an ADMIN or OWNER (README's rules on top of
// the table): a DEVELOPER is not offered them.
const mayManage = (ws, scopes) => can(ws, "api_keys:write") && (atLeast(ws, "ADMIN") || !scopes.includes("admin"));

function scopePicker(ws) {
  return h("fieldset", { class: "checks" }, h("legend", {}, "Scopes"),
    SCOPES.filter(([scope]) => mayManage(ws, [scope])).map(([scope, what]) => h("label", {},
      h("input", { type: "checkbox", name: "scopes", value: scope, checked: scope === "track:write" }), " ",
      h("code", {}, scope), " — ", what)));
}

function rotateForm(ctx, key, done) {
  return form({ class: "inline-form", "aria-label": `Rotate ${key.name}` }, [
    field("Grace period", { tag: "select", name: "grace", options: GRACE, value: "0" }),
    h("button", { type: "submit", class: "primary" }, "Rotate key"),
    h("button", { type: "button", class: "secondary", "on:click": () => done(null) }, "Cancel"),
  ], async ({ grace }) => {
    const rotated = await api("POST", `/workspaces/${ctx.workspace.id}/api-keys/${key.id}/rotate`, { grace_seconds: Number(grace) });
    done(rotated);
  });
}

function keyRow(ctx, key, redraw, showSecret) {
  const actions = h("td", { class: "actions" });
  const row = h("tr", { dataset: { key: key.name } },
    h("th", { scope: "row" }, key.name),
    h("td", {}, h("code", {}, `${key.key_prefix}…`)),
    h("td", {}, key.scopes.join(", ")),
    h("td", {}, timeEl(key.created_at)),
    h("td", { class: "last-used" }, timeEl(key.last_used_at)),
    h("td", {}, key.is_active ? "active" : h("span", { class: "badge" }, "revoked")),
    can(ctx.workspace, "api_keys:write") ? actions : null); // a reader's table has no Actions column
  const editRow = h("tr", { class: "edit-row", hidden: true }, h("td", { colspan: 7 }));
  if (key.is_active && mayManage(ctx.workspace, key.scopes)) {
    actions.append(
      h("button", { type: "button", class: "secondary", "aria-label": `Rotate ${key.name}`, "on:click": () => {
        clear(editRow.firstChild).append(rotateForm(ctx, key, async (rotated) => {
          editRow.hidden = true;
          if (!rotated) return;
          const stops = new Date(rotated.replaced_key_expires_at);
          const note = stops <= new Date(Date.now() + 5000) ? "The old key has stopped working." : `The old key works until ${stops.toLocaleString()}.`;
          toast(`${key.name} rotated`);
          await redraw();
          showSecret(secretPanel(`New key for ${rotated.name}`, rotated, note, remember(ctx.workspace.id, rotated)));
        }));
        editRow.hidden = false;
        editRow.querySelector("select").focus();
      } }, "Rotate"),
      actionButton("Revoke", async () => {
        if (!(await confirmAction(`Revoke ${key.name}? Every edge refuses it within a second. This cannot be undone.`, { confirm: "Revoke" }))) return;
        await api("DELETE", `/workspaces/${ctx.workspace.id}/api-keys/${key.id}`);
        toast(`${key.name} revoked`);
        await redraw();
      }, { kind: "danger", "aria-label": `Revoke ${key.name}` }));
  }
  return [row, editRow];
}

async function loadKeys(ctx) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", `/workspaces/${ctx.workspace.id}/api-keys?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export default {
  path: "/w/:ws/keys",
  title: "API keys",
  nav: "workspace",
  async render(ctx) {
    const secretSlot = h("div", { id: "secret-slot" });
    const list = h("div", { id: "key-list" });
    const showSecret = (panel) => {
      clear(secretSlot).append(panel);
      panel.focus();
    };
    const redraw = async () => {
      const keys = await loadKeys(ctx);
      clear(list);
      if (!keys.length) return list.append(h("p", { class: "empty" }, writer ? "No keys yet: create one below." : "No keys yet."));
      list.append(h("table", { class: "table" },
        h("caption", { class: "visually-hidden" }, "API keys of this workspace"),
        h("thead", {}, h("tr", {}, ["Name", "Key", "Scopes", "Created", "Last used", "Status", writer ? "Actions" : null].filter(Boolean).map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, keys.map((k) => keyRow(ctx, k, redraw, showSecret)))));
    };
    const writer = can(ctx.workspace, "api_keys:write");
    const create = writer && form({ class: "card", "aria-labelledby": "new-key-title" }, [
      h("h2", { id: "new-key-title" }, "Create a key"),
      field("Key name", { name: "name", required: true, maxlength: 100, placeholder: "backend" }),
      scopePicker(ctx.workspace),
      h("button", { type: "submit", class: "primary" }, "Create key"),
    ], async ({ name, scopes }, el) => {
      if (!scopes.length) throw Object.assign(new Error("Pick at least one scope"), { code: "VALIDATION_ERROR" });
      const created = await api("POST", `/workspaces/${ctx.workspace.id}/api-keys`, { name, scopes });
      el.reset();
      toast(`Key ${created.name} created`);
      await redraw();
      showSecret(secretPanel(`New key ${created.name}`, created, `Scopes: ${created.scopes.join(", ")}`,
        remember(ctx.workspace.id, created)));
    });
    ctx.root.append(...[h("h1", {}, "API keys"), roleNotice(ctx.workspace, ["api_keys:write"]),
      h("p", { class: "muted" }, `Keys let SDKs and scripts act for ${ctx.workspace.name}, each within its scopes.`),
      secretSlot, list, create].filter(Boolean)); // Element.append would write a null as the text "null"
    await redraw();
  },
};
