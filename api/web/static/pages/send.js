// "Send a test event": the JavaScript SDK itself, loaded in the page from /static/sdk/, sends one event to
// the edge with a key the user pastes (or the key they just created, which the shell keeps in memory only).
// The SDK runs with persist: false (nothing of the event or key goes to localStorage) and is closed after
// the send, so the key lives only as long as the form holds it.
import { edgeUrl } from "../lib/api.js";
import { clear, h, uid } from "../lib/dom.js";
import { showError } from "../lib/ui.js";
import * as keysPage from "./keys.js"; // its just-created key, if it keeps one (memory only)

const SEND_TIMEOUT_MS = 8000;

function field(label, input, help) {
  const id = input.id || uid("send");
  input.id = id;
  const helpId = help ? `${id}-help` : null;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, help ? h("small", { id: helpId }, help) : null);
}

class SendError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** Track one event with the SDK and wait for the edge's answer; resolves the message id, or throws. */
export async function sendWithSdk({ apiKey, eventType, userId, properties }) {
  const { ExperimentationClient } = await import("../sdk/index.js");
  let failure = null;
  const client = new ExperimentationClient({
    apiKey, baseUrl: edgeUrl(), persist: false, flushIntervalMs: 20, logger: null, retryBudgetMs: 3000,
    onError: (err) => { failure = failure || err; },
  });
  const messageId = crypto.randomUUID();
  try {
    const queued = await client.track(eventType, { userId, properties, messageId });
    const delivered = queued && (await client.flush(SEND_TIMEOUT_MS));
    if (!delivered) {
      const err = failure || { code: "NOT_SENT", message: "The SDK could not deliver the event in time" };
      throw new SendError(err.code || "NOT_SENT", err.message || String(err));
    }
    return messageId;
  } finally {
    await client.close(1000);
  }
}

/** The form, for this page and for the live events page (send here, watch it arrive there). */
export function sendPanel(ctx, { headingLevel = "h2" } = {}) {
  const remembered = typeof keysPage.lastCreatedKey === "function" ? keysPage.lastCreatedKey(ctx.workspace.id) : null;
  const key = h("input", { type: "password", name: "api_key", autocomplete: "off", spellcheck: "false", required: true,
    value: remembered || "", placeholder: "ep_live_..." });
  const type = h("input", { name: "event_type", value: "dashboard_test", required: true, maxlength: "200" });
  const user = h("input", { name: "user_id", value: `dashboard-${ctx.user?.id?.slice(0, 8) || "user"}`, required: true,
    maxlength: "255" });
  const props = h("textarea", { name: "properties", rows: "3" }, '{"source": "dashboard"}');
  const result = h("div", { class: "send-result", role: "status", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Send test event");
  const form = h("form", { class: "send-event", "aria-labelledby": "send-h" },
    h(headingLevel, { id: "send-h" }, "Send a test event"),
    h("p", {}, `The JavaScript SDK in this page sends it to the edge at ${edgeUrl()}.`),
    field("API key (scope track:write)", key, remembered ? "The key you just created, kept in this page's memory only."
      : "Paste a key of this workspace; it is not stored."),
    field("Event type", type), field("User id", user),
    field("Properties (JSON object)", props),
    button, result);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(result);
    let properties;
    try {
      properties = props.value.trim() ? JSON.parse(props.value) : {};
      if (properties === null || typeof properties !== "object" || Array.isArray(properties)) throw new Error("not an object");
    } catch {
      showError(result, { code: "INVALID_JSON", message: "Properties must be a JSON object, e.g. {\"plan\": \"pro\"}" });
      return;
    }
    button.disabled = true;
    result.append("Sending…");
    try {
      const messageId = await sendWithSdk({ apiKey: key.value.trim(), eventType: type.value.trim(), userId: user.value.trim(),
        properties });
      clear(result).append(h("p", { class: "success" }, "Accepted by the edge: ", h("code", {}, type.value.trim()),
        " with message id ", h("code", { class: "message-id" }, messageId), ". It appears in live events once stored."));
    } catch (err) {
      clear(result);
      showError(result, err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export default {
  path: "/w/:ws/send-event",
  title: "Send a test event",
  nav: "workspace",
  async render(ctx) {
    clear(ctx.root).append(sendPanel(ctx, { headingLevel: "h1" }));
  },
};
