// /invitations/accept?token=…: the link an invitation mail carries. Needs a login (with the invited
// address): the login and sign-up links come back here afterwards.
import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { actionButton } from "../lib/ui.js";

export default {
  path: "/invitations/accept",
  title: "Accept an invitation",
  public: true,
  async render(ctx) {
    const token = ctx.query.get("token");
    ctx.root.append(h("h1", {}, "Accept an invitation"));
    if (!token) return ctx.root.append(h("p", { class: "error" }, "This link has no invitation token: open the link from the mail again."));
    if (!ctx.user) {
      const back = encodeURIComponent(`/invitations/accept?token=${token}`);
      return ctx.root.append(h("p", {}, "Log in (or create an account) with the address the invitation was sent to, then accept it here."),
        h("p", { class: "actions" }, h("a", { href: `/login?next=${back}` }, "Log in"), h("a", { href: `/signup?next=${back}` }, "Create an account")));
    }
    const errorEl = h("div", { class: "error", hidden: true });
    ctx.root.append(h("p", {}, `You are logged in as ${ctx.user.email}.`), errorEl,
      h("div", { class: "actions" }, actionButton("Accept invitation", async () => {
        const accepted = await api("POST", `/workspaces/invites/${encodeURIComponent(token)}/accept`);
        await ctx.refreshWorkspaces();
        ctx.navigate(`/w/${accepted.workspace.id}/keys`, { replace: true }); // the used link leaves the history
      }, { kind: "primary", errorEl })));
  },
};
