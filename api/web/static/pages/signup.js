import { api, login } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form, toast } from "../lib/ui.js";

export default {
  path: "/signup",
  title: "Sign up",
  public: true,
  async render(ctx) {
    const next = ctx.query.get("next") || "/workspaces";
    if (ctx.user) return ctx.navigate(next, { replace: true });
    ctx.root.append(
      h("h1", {}, "Create your EventPlane account"),
      form({ class: "card", "aria-label": "Sign up" }, [
        field("Your name", { name: "name", autocomplete: "name" }),
        field("Email", { name: "email", type: "email", autocomplete: "email", required: true }),
        field("Password", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 },
          { hint: "At least 8 characters; a passphrase is best." }),
        h("button", { type: "submit", class: "primary" }, "Create account"),
      ], async ({ name, email, password }) => {
        await api("POST", "/auth/signup", { name, email, password });
        const user = await login(email, password);
        toast(`Welcome! We mailed a verification link to ${user.email}.`);
        await ctx.startSession(user, next);
      }),
      h("p", {}, "Have an account? ", h("a", { href: `/login${location.search}` }, "Log in")),
    );
  },
};
