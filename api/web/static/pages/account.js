// /account: who I am (and whether my email is verified), change password, change email, my sessions.
import { api } from "../lib/api.js";
import { h, clear } from "../lib/dom.js";
import { actionButton, confirmAction, field, form, timeEl, toast } from "../lib/ui.js";

function sessionsTable(ctx, sessions, redraw) {
  return h("table", { class: "table" }, h("caption", { class: "visually-hidden" }, "My sessions"),
    h("thead", {}, h("tr", {}, ["Browser or client", "Logged in", "Last used", "Ends", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, sessions.map((s) => h("tr", {},
      h("th", { scope: "row" }, s.client || "unknown client", s.current ? h("span", { class: "badge" }, "this session") : null),
      h("td", {}, timeEl(s.created_at)), h("td", {}, timeEl(s.last_used_at)), h("td", {}, timeEl(s.expires_at)),
      h("td", {}, s.current ? "" : actionButton("End session", async () => {
        await api("DELETE", `/me/sessions/${s.id}`);
        toast("Session ended");
        await redraw();
      }, { "aria-label": `End the session from ${s.client || "unknown client"}` }))))));
}

export default {
  path: "/account",
  title: "Account",
  async render(ctx) {
    const user = await api("GET", "/me");
    ctx.setUser(user);
    const sessions = h("div", { id: "session-list" });
    const redraw = async () => {
      const list = await api("GET", "/me/sessions");
      clear(sessions).append(sessionsTable(ctx, list, redraw));
    };
    const verified = user.email_verified
      ? h("span", { class: "badge" }, "verified")
      : [h("span", { class: "badge" }, "not verified"), " ", actionButton("Mail me a verification link", async () => {
        await api("POST", "/me/verify-email/resend");
        toast(`Verification link mailed to ${user.email}`);
      })];
    ctx.root.append(
      h("h1", {}, "Account"),
      h("p", {}, user.name ? `${user.name} · ` : "", user.email, " ", verified),
      form({ class: "card", "aria-labelledby": "pw-title" }, [
        h("h2", { id: "pw-title" }, "Change password"),
        field("Current password", { name: "current_password", type: "password", autocomplete: "current-password", required: true }),
        field("New password", { name: "new_password", type: "password", autocomplete: "new-password", required: true, minlength: 8 },
          { hint: "At least 8 characters. Your other sessions end; this one goes on." }),
        h("button", { type: "submit", class: "primary" }, "Change password"),
      ], async (values, el) => {
        await api("POST", "/me/password", values);
        el.reset();
        toast("Password changed; your other sessions have ended");
        await redraw();
      }),
      form({ class: "card", "aria-labelledby": "email-title" }, [
        h("h2", { id: "email-title" }, "Change email"),
        field("New email", { name: "email", type: "email", autocomplete: "email", required: true }),
        field("Your password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
        h("button", { type: "submit", class: "primary" }, "Mail a confirmation link"),
      ], async (values, el) => {
        await api("POST", "/me/email", values);
        el.reset();
        toast(`A confirmation link is on its way to ${values.email}`);
      }),
      h("section", { "aria-labelledby": "sessions-title" },
        h("h2", { id: "sessions-title" }, "My sessions"), sessions,
        actionButton("End all other sessions", async () => {
          if (!(await confirmAction("End every session of your account but this one?", { confirm: "End them" }))) return;
          await api("DELETE", "/me/sessions");
          toast("Every other session has ended");
          await redraw();
        }, { kind: "danger" })));
    await redraw();
  },
};
