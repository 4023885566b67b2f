// "/": the last workspace used (its first page), else the list of workspaces.
export default {
  path: "/",
  title: "EventPlane",
  async render(ctx) {
    const last = ctx.lastWorkspace() || ctx.workspaces.find((w) => w.is_active);
    return ctx.navigate(last ? `/w/${last.id}/keys` : "/workspaces", { replace: true });
  },
};
