// Members and invitations: list, invite (the link is mailed), resend or cancel an invitation, change a
// role, remove a member (or leave). Every change is shown from the server's answer and a fresh list.
import { api } from "../lib/api.js";
import { h, clear } from "../lib/dom.js";
import { actionButton, confirmAction, field, form, timeEl, toast } from "../lib/ui.js";
import { atLeast, can, roleLabel, roleNotice } from "../lib/roles.js";

export const ROLES = ["OWNER", "ADMIN", "DEVELOPER", "VIEWER"];
const roleOptions = ROLES.map((r) => [r, roleLabel(r)]);
// The server's rules on top of the table (README): nobody grants a role above their own, an ADMIN edits and
// removes only members at or below ADMIN, nobody changes their own role; anyone may leave.
const grantable = (ws) => roleOptions.filter(([r]) => atLeast(ws, r));

async function all(path) {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", `${path}?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

function memberRow(ctx, m, redraw) {
  const ws = ctx.workspace.id;
  const me = m.user_id === ctx.user.id;
  const label = m.name ? `${m.name} (${m.email})` : m.email;
  const above = !atLeast(ctx.workspace, m.role);
  const mayEdit = !me && !above && can(ctx.workspace, "members:update_roles");
  const mayRemove = me || (!above && can(ctx.workspace, "members:remove"));
  const role = mayEdit
    ? h("select", { "aria-label": `Role of ${label}` }, grantable(ctx.workspace).map(([v, t]) => h("option", { value: v, selected: v === m.role }, t)))
    : h("span", { class: "role" }, roleLabel(m.role));
  const save = mayEdit && actionButton("Change role", async () => {
    const saved = await api("PATCH", `/workspaces/${ws}/members/${m.id}`, { role: role.value });
    toast(`${saved.email} is now ${roleLabel(saved.role)}`);
    await redraw();
  }, { "aria-label": `Change role of ${label}` });
  const remove = mayRemove && actionButton(me ? "Leave" : "Remove", async () => {
    const text = me ? `Leave ${ctx.workspace.name}? You lose access to it.` : `Remove ${label} from ${ctx.workspace.name}?`;
    if (!(await confirmAction(text, { confirm: me ? "Leave" : "Remove" }))) return;
    await api("DELETE", `/workspaces/${ws}/members/${m.id}`);
    toast(me ? `You left ${ctx.workspace.name}` : `${m.email} removed`);
    if (me) {
      await ctx.refreshWorkspaces();
      return ctx.navigate("/workspaces");
    }
    await redraw();
  }, { kind: "danger", "aria-label": `${me ? "Leave" : "Remove"} ${me ? ctx.workspace.name : label}` });
  return h("tr", { dataset: { member: m.email } },
    h("th", { scope: "row" }, m.name || m.email, me ? h("span", { class: "badge" }, "you") : null),
    h("td", {}, m.email),
    h("td", {}, role),
    h("td", {}, timeEl(m.joined_at)),
    h("td", { class: "actions" }, save, remove));
}

function inviteRow(ctx, inv, redraw) {
  return h("tr", { dataset: { invitation: inv.email } },
    h("th", { scope: "row" }, inv.email),
    h("td", {}, roleLabel(inv.role)),
    h("td", {}, inv.invited_by ? inv.invited_by.email : "–"),
    h("td", {}, timeEl(inv.expires_at)),
    can(ctx.workspace, "members:invite") && h("td", { class: "actions" },
      actionButton("Resend", async () => {
        const sent = await api("POST", `/workspaces/${ctx.workspace.id}/invites/${inv.id}/resend`);
        toast(`Invitation mailed again to ${sent.email} (the previous link no longer works)`);
        await redraw();
      }, { "aria-label": `Resend the invitation to ${inv.email}` }),
      actionButton("Cancel invitation", async () => {
        if (!(await confirmAction(`Cancel the invitation to ${inv.email}? Its link stops working.`, { confirm: "Cancel invitation", cancel: "Keep it" }))) return;
        await api("DELETE", `/workspaces/invitations/${inv.id}`);
        toast(`Invitation to ${inv.email} cancelled`);
        await redraw();
      }, { kind: "danger", "aria-label": `Cancel the invitation to ${inv.email}` })));
}

function table(caption, heads, rows) {
  return h("table", { class: "table" }, h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows));
}

export default {
  path: "/w/:ws/members",
  title: "Members",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const members = h("div", { id: "member-list" });
    const invites = h("div", { id: "invitation-list" });
    const redraw = async () => {
      const [ms, invs] = await Promise.all([all(`/workspaces/${ws}/members`), all(`/workspaces/${ws}/invites`)]);
      clear(members).append(table("Members", ["Name", "Email", "Role", "Joined", "Actions"], ms.map((m) => memberRow(ctx, m, redraw))));
      clear(invites).append(invs.length
        ? table("Pending invitations", ["Email", "Role", "Invited by", "Expires", inviter && "Actions"].filter(Boolean), invs.map((i) => inviteRow(ctx, i, redraw)))
        : h("p", { class: "empty" }, "No pending invitations."));
    };
    const inviter = can(ctx.workspace, "members:invite");
    const invite = inviter && form({ class: "card inline-form", "aria-labelledby": "invite-title" }, [
      h("h2", { id: "invite-title", class: "full" }, "Invite someone"),
      field("Email address", { name: "email", type: "email", required: true, autocomplete: "off" }),
      field("Role", { tag: "select", name: "role", options: grantable(ctx.workspace), value: "DEVELOPER" }),
      h("button", { type: "submit", class: "primary" }, "Send invitation"),
    ], async ({ email, role }, el) => {
      const sent = await api("POST", `/workspaces/${ws}/invites`, { email, role });
      el.reset();
      toast(`Invitation mailed to ${sent.email} as ${roleLabel(sent.role)}`);
      await redraw();
    });
    ctx.root.append(...[h("h1", {}, "Members"), roleNotice(ctx.workspace, ["members:invite", "members:update_roles", "members:remove"]),
      members, h("h2", {}, "Pending invitations"), invites, invite].filter(Boolean));
    await redraw();
  },
};
