import { login } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { field, form } from "../lib/ui.js";

export default {
  path: "/login",
  title: "Log in",
  public: true,
  async render(ctx) {
    const next = ctx.query.get("next") || "/";
    if (ctx.user) return ctx.navigate(next, { replace: true });
    ctx.root.append(
      h("h1", {}, "Log in to EventPlane"),
      form({ class: "card", "aria-label": "Log in" }, [
        field("Email", { name: "email", type: "email", autocomplete: "username", required: true }),
        field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
        h("button", { type: "submit", class: "primary" }, "Log in"),
      ], async ({ email, password }) => {
        const user = await login(email, password);
        await ctx.startSession(user, next);
      }),
      h("p", {}, "New here? ", h("a", { href: `/signup${location.search}` }, "Create an account"), " · ",
        h("a", { href: "/forgot-password" }, "Forgot your password?")),
    );
  },
};
