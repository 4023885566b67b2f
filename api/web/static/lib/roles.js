// What the signed-in person may do in a workspace, as the api says: `role` and `permissions` come with a
// session's workspace reads (api/permissions.py, the table the server's checks use). Pages hide the controls
// of writes the role does not allow; the server still refuses them, and a page left open while the role is
// lowered shows the server's 403 as any failed write does.
import { h } from "./dom.js";

/** True when the workspace's answer grants `permission` (no answer, no permission: hidden). */
export function can(workspace, permission) {
  return Boolean(workspace && Array.isArray(workspace.permissions) && workspace.permissions.includes(permission));
}

const RANK = { VIEWER: 0, DEVELOPER: 1, ADMIN: 2, OWNER: 3 };

/** True when the person's role is at or above `role` (api/permissions.py's ranks). */
export function atLeast(workspace, role) {
  return Boolean(workspace && workspace.role in RANK && RANK[workspace.role] >= RANK[role]);
}

export const roleLabel = (r) => r[0] + r.slice(1).toLowerCase();

const WHAT = {
  VIEWER: "you can look, not change.",
  DEVELOPER: "you can work on keys, flags and experiments, not on members or the workspace itself.",
  ADMIN: "you can change everything here but delete the workspace or hand over its ownership.",
};

/**
 * The one sentence a page shows when it hides some of its controls: the person's role and that an admin
 * can change it. `writes`: the permissions of the page's controls; null when the role allows them all.
 */
export function roleNotice(workspace, writes) {
  if (!workspace || !workspace.role || writes.every((p) => can(workspace, p))) return null;
  const role = workspace.role;
  const who = role === "ADMIN" ? "an owner" : "an admin or owner of the workspace";
  return h("p", { class: "role-notice", dataset: { role } },
    `You are ${role === "ADMIN" ? "an" : "a"} ${roleLabel(role)} in this workspace: ${WHAT[role] || "some changes are not yours to make."} `,
    `Ask ${who} if you need another role.`);
}
