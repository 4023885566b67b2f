// Live events: the workspace's events as workers store them (GET .../events/live, server-sent events read
// with fetch by lib/api.js apiStream), newest first, at most MAX_SHOWN in the page; one event's JSON on
// selection. The stream closes when the route changes (ctx.onCleanup) or the filters change.
import { apiStream } from "../lib/api.js";
import { clear, h } from "../lib/dom.js";
import { showError, timeAgo } from "../lib/ui.js";
import { filterForm, jsonView, who } from "../lib/events.js";
import { sendPanel } from "./send.js";

export const MAX_SHOWN = 200;

function eventData(item) {
  // apiStream yields parsed SSE events; `data` may arrive as text or already parsed.
  const data = item.data;
  return typeof data === "string" ? JSON.parse(data) : data;
}

export default {
  path: "/w/:ws/live",
  title: "Live events",
  nav: "workspace",
  async render(ctx) {
    const ws = ctx.workspace.id;
    const status = h("p", { class: "stream-status", role: "status", "aria-live": "polite" }, "Connecting…");
    const error = h("div", { class: "error-slot" });
    const list = h("ol", { class: "live-list", "aria-label": "Events, newest first", reversed: true });
    const count = h("span", { class: "count" }, "0");
    const detail = h("div", { class: "live-detail" }, h("p", {}, "Select an event to see its JSON."));
    const reconnect = h("button", { type: "button", hidden: true, "on:click": () => start(filters) }, "Reconnect");
    let filters = new URLSearchParams();
    let controller = null;
    let shown = 0;

    const form = filterForm({ times: false, submitLabel: "Watch with these filters", onApply: (params) => start(params) });
    clear(ctx.root).append(
      h("h1", {}, "Live events"),
      h("div", { class: "live-layout" },
        h("section", { "aria-labelledby": "live-h" },
          h("h2", { id: "live-h" }, "Arriving now"),
          form, h("div", { class: "toolbar" }, status, reconnect,
            h("button", { type: "button", "on:click": () => { clear(list); shown = 0; count.textContent = "0"; } }, "Clear list")),
          error,
          h("p", {}, "Showing ", count, ` (at most ${MAX_SHOWN}; older ones leave the list).`),
          list),
        h("section", { "aria-label": "Event detail" }, detail),
        sendPanel(ctx)));

    function select(event, button) {
      for (const b of list.querySelectorAll("button[aria-pressed=true]")) b.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", "true");
      clear(detail).append(jsonView(event, `${event.event_type} (${event.message_id})`));
    }

    function add(event) {
      const button = h("button", { type: "button", class: "event-row", "aria-pressed": "false",
        "data-message-id": event.message_id },
      h("strong", {}, event.event_type), " ", h("span", {}, who(event)), " ",
      h("time", { datetime: event.timestamp }, timeAgo(new Date(event.timestamp))));
      button.addEventListener("click", () => select(event, button));
      list.prepend(h("li", {}, button));
      shown += 1;
      while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
      count.textContent = String(Math.min(shown, MAX_SHOWN));
    }

    async function start(params) {
      filters = params;
      if (controller) controller.abort();
      const mine = new AbortController();
      controller = mine;
      reconnect.hidden = true;
      clear(error);
      status.textContent = "Connecting…";
      const query = params.toString();
      try {
        // "Connected" once the server answered: it subscribes before it answers, so from then on no stored
        // event is missed.
        const onOpen = () => {
          if (mine.signal.aborted) return; // a stream the filters replaced
          status.textContent = query ? `Connected, filtered by ${query.replaceAll("&", ", ")}` : "Connected: waiting for events";
        };
        const stream = apiStream(`/workspaces/${ws}/events/live${query ? `?${query}` : ""}`, { signal: mine.signal, onOpen });
        for await (const item of stream) {
          if (item.event === "event") add(eventData(item));
          else if (item.event === "dropped") {
            const why = eventData(item);
            showError(error, { code: why.code, message: why.message });
            break;
          }
        }
        if (!mine.signal.aborted) {
          status.textContent = "Disconnected.";
          reconnect.hidden = false;
        }
      } catch (err) {
        if (mine.signal.aborted) return;
        status.textContent = "Disconnected.";
        showError(error, err);
        reconnect.hidden = false;
      }
    }

    ctx.onCleanup(() => controller && controller.abort());
    start(filters); // runs for as long as the page is shown
  },
};
