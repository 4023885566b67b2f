// Explorer: stored events through the filters of GET .../events (event type, user id, anonymous id, time
// range, properties equal), newest first in keyset pages ("Older" follows next_cursor; "Newer" goes back
// through the cursors already seen), one event's JSON on selection, and the export of every matching
// event as NDJSON or CSV (downloaded with the Authorization header by lib/api.js download).
import { api, download } from "../lib/api.js";
import { clear, h } from "../lib/dom.js";
import { formatNumber, showError, timeAgo } from "../lib/ui.js";
import { filterForm, filterParams, initialFilters, jsonView, who } from "../lib/events.js";

const PAGE_SIZE = 50;

export default {
  path: "/w/:ws/events",
  title: "Explorer",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    let types = [];
    try {
      types = (await api("GET", `/workspaces/${ws}/event-types`)).items.map((t) => t.event_type);
    } catch {
      types = []; // suggestions only: the explorer works without them
    }
    const error = h("div", { class: "error-slot" });
    const results = h("div", { class: "explorer-results", "aria-live": "polite", "aria-busy": "false" });
    const detail = h("div", { class: "explorer-detail" });
    const exportStatus = h("span", { role: "status", "aria-live": "polite" });
    let filters = new URLSearchParams();
    let cursors = [null]; // the cursor of each page seen: [first page, second, ...]

    // The filters live in the URL too, so a filtered view can be reloaded, bookmarked and shared.
    const form = filterForm({ eventTypes: types, initial: initialFilters(ctx.query), onApply: (params) => {
      filters = params;
      cursors = [null];
      const q = params.toString();
      history.replaceState(history.state, "", `${location.pathname}${q ? `?${q}` : ""}`);
      load();
    } });
    filters = filterParams(form);
    const exporter = (format) => async () => {
      clear(error);
      exportStatus.textContent = `Exporting ${format.toUpperCase()}…`;
      const q = new URLSearchParams(filters);
      q.set("format", format);
      try {
        await download(`/workspaces/${ws}/events/export?${q}`, `events-${ctx.workspace.slug || ws}.${format}`);
        exportStatus.textContent = `Export ${format.toUpperCase()} downloaded.`;
      } catch (err) {
        exportStatus.textContent = "";
        showError(error, err);
      }
    };
    clear(ctx.root).append(
      h("h1", {}, "Explorer"),
      form,
      h("div", { class: "toolbar", role: "group", "aria-label": "Export" },
        h("button", { type: "button", "on:click": exporter("ndjson") }, "Export NDJSON"), " ",
        h("button", { type: "button", "on:click": exporter("csv") }, "Export CSV"), " ", exportStatus),
      error, h("div", { class: "explorer-layout" }, results, detail));

    function table(items) {
      return h("table", { class: "data events" },
        h("caption", {}, `Events ${filters.toString() ? "matching the filters" : "of this workspace"}, newest first`),
        h("thead", {}, h("tr", {}, ["Time", "Event type", "Who", "Value", ""].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, items.map((e) => h("tr", { "data-message-id": e.message_id },
          h("td", {}, h("time", { datetime: e.timestamp, title: e.timestamp }, timeAgo(new Date(e.timestamp)))),
          h("th", { scope: "row" }, e.event_type),
          h("td", {}, who(e)),
          h("td", {}, e.value === null ? "" : formatNumber(e.value)),
          h("td", {}, h("button", { type: "button", "aria-label": `Show ${e.event_type} ${e.message_id} as JSON`,
            "on:click": () => clear(detail).append(jsonView(e, `${e.event_type} (${e.message_id})`)) }, "JSON"))))));
    }

    async function load() {
      clear(error);
      results.setAttribute("aria-busy", "true");
      const page = cursors.length - 1;
      const q = new URLSearchParams(filters);
      q.set("limit", String(PAGE_SIZE));
      if (cursors[page]) q.set("cursor", cursors[page]);
      try {
        const answer = await api("GET", `/workspaces/${ws}/events?${q}`);
        const older = h("button", { type: "button", disabled: !answer.next_cursor,
          "on:click": () => { cursors.push(answer.next_cursor); load(); } }, "Older (next page)");
        const newer = h("button", { type: "button", disabled: page === 0,
          "on:click": () => { cursors.pop(); load(); } }, "Newer");
        clear(results).append(
          answer.items.length ? table(answer.items) : h("p", { class: "empty" }, "No events match."),
          h("nav", { class: "pager", "aria-label": "Pages" }, newer, ` Page ${page + 1} `, older));
      } catch (err) {
        showError(error, err);
      } finally {
        results.setAttribute("aria-busy", "false");
      }
    }
    await load();
  },
};
