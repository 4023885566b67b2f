import { h } from "../lib/dom.js";

export default {
  path: "/w/:ws/keys",
  title: "API keys",
  nav: "workspace",
  async render(ctx) {
    ctx.root.append(h("h1", {}, "API keys"), h("p", {}, `Keys of ${ctx.workspace.name}.`));
  },
};
