// The account pages reached from mailed links or the login page: verify an email, confirm a new email,
// forgot password, reset password. Each uses its token once and says what happened.
import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form, showError } from "../lib/ui.js";

// A used token leaves the address bar and the history (it no longer works, but need not linger).
function dropToken() {
  history.replaceState(null, "", location.pathname);
}

function noToken(ctx) {
  ctx.root.append(h("p", { class: "error" }, "This link has no token: open the link from the mail again."));
}

function tokenPage(path, title, apiPath, done) {
  return {
    path,
    title,
    public: true,
    async render(ctx) {
      ctx.root.append(h("h1", {}, title));
      const token = ctx.query.get("token");
      if (!token) return noToken(ctx);
      const status = h("div", { role: "status" }, h("p", {}, "Checking the link…"));
      ctx.root.append(status);
      try {
        const user = await api("POST", apiPath, { token });
        dropToken();
        if (ctx.user) ctx.setUser(user);
        status.replaceChildren(h("p", { class: "ok" }, done(user)),
          h("p", {}, h("a", { href: ctx.user ? "/workspaces" : "/login" }, ctx.user ? "Go to your workspaces" : "Log in")));
      } catch (err) {
        const slot = h("div", { class: "error" });
        status.replaceChildren(slot);
        showError(slot, err);
      }
    },
  };
}

export const verifyEmail = tokenPage("/verify-email", "Verify your email", "/auth/verify-email",
  (user) => `Thank you: ${user.email} is verified.`);

export const confirmEmail = tokenPage("/confirm-email", "Confirm your new email", "/auth/confirm-email",
  (user) => `Your account's email is now ${user.email}.`);

export const forgotPassword = {
  path: "/forgot-password",
  title: "Forgot your password?",
  public: true,
  async render(ctx) {
    const done = h("div", { role: "status" });
    ctx.root.append(h("h1", {}, "Forgot your password?"),
      h("p", {}, "Enter your account's email: we mail you a link to choose a new password."),
      form({ class: "card", "aria-label": "Forgot password" }, [
        field("Email", { name: "email", type: "email", autocomplete: "email", required: true }),
        h("button", { type: "submit", class: "primary" }, "Mail me a link"),
      ], async ({ email }) => {
        await api("POST", "/auth/forgot-password", { email });
        done.replaceChildren(h("p", { class: "ok" }, `If ${email} has an account, a link is on its way. It works for an hour.`));
      }), done, h("p", {}, h("a", { href: "/login" }, "Back to log in")));
  },
};

export const resetPassword = {
  path: "/reset-password",
  title: "Choose a new password",
  public: true,
  async render(ctx) {
    ctx.root.append(h("h1", {}, "Choose a new password"));
    const token = ctx.query.get("token");
    if (!token) return noToken(ctx);
    const done = h("div", { role: "status" });
    ctx.root.append(form({ class: "card", "aria-label": "Reset password" }, [
      field("New password", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 },
        { hint: "At least 8 characters. Every session of your account ends: log in again afterwards." }),
      h("button", { type: "submit", class: "primary" }, "Set password"),
    ], async ({ password }, el) => {
      await api("POST", "/auth/reset-password", { token, password });
      dropToken();
      el.remove();
      done.replaceChildren(h("p", { class: "ok" }, "Your password is changed. "), h("p", {}, h("a", { href: "/login" }, "Log in")));
    }), done);
  },
};
