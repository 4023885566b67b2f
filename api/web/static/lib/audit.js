// The audit log of one flag or experiment (GET .../audit-log?entity_type=&entity_key=), newest first:
// what changed, when and by whom, with the fields that differ between before and after.
import { api } from "./api.js";
import { clear, h } from "./dom.js";
import { showError, timeAgo } from "./ui.js";

const SKIP = new Set(["updated_at", "created_at", "id"]);

/** The top-level fields whose JSON differs between two snapshots. */
export function changedFields(before, after) {
  const keys = new Set([...Object.keys(before || {}), ...Object.keys(after || {})]);
  return [...keys].filter((k) => !SKIP.has(k) && JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k])).sort();
}

function actor(entry, members) {
  if (entry.actor_key_id) return `API key ${entry.actor_key_id.slice(0, 8)}`;
  return members.get(entry.actor_user_id) || (entry.actor_user_id ? `user ${entry.actor_user_id.slice(0, 8)}` : "someone");
}

/** A section listing the entries; reload it with `.reload()` after a change. */
export function auditLog(ctx, entityType, key) {
  const list = h("ol", { class: "audit", "aria-label": "Changes, newest first" });
  const error = h("div", { class: "error-slot" });
  const section = h("section", { "aria-labelledby": "audit-h" }, h("h2", { id: "audit-h" }, "Audit log"), error, list);
  let members = null;
  section.reload = async () => {
    clear(error);
    try {
      if (members === null) {
        members = new Map();
        try {
          const page = await api("GET", `/workspaces/${ctx.workspace.id}/members?limit=200`);
          for (const m of page.items) members.set(m.user_id, m.name || m.email);
        } catch { /* names are a nicety: ids are shown without them */ }
      }
      const q = new URLSearchParams({ entity_type: entityType, entity_key: key, limit: "50" });
      const page = await api("GET", `/workspaces/${ctx.workspace.id}/audit-log?${q}`);
      clear(list).append(...page.items.map((e) => {
        const fields = e.action === "update" || e.action === "status" ? changedFields(e.before, e.after) : [];
        const status = e.action === "status" ? ` ${e.before?.status} → ${e.after?.status}` : "";
        return h("li", { "data-action": e.action },
          h("strong", {}, `${e.action}${status}`), " by ", actor(e, members), " ",
          h("time", { datetime: e.at, title: e.at }, timeAgo(new Date(e.at))),
          fields.length ? h("span", {}, ` (changed: ${fields.join(", ")})`) : null);
      }));
      if (!page.items.length) list.append(h("li", {}, "No changes recorded."));
    } catch (err) {
      showError(error, err);
    }
  };
  return section;
}
