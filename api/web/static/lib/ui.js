// Small UI pieces every page uses: toasts, errors, an accessible confirm dialog, times and numbers,
// labelled form fields and forms that wait for the server's answer.
import { h, clear, uid, formValues } from "./dom.js";

/** A short message in the polite live region (read out by screen readers), gone after a few seconds. */
export function toast(msg, { kind = "info", ms = 8000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = h("div", { class: `toast toast-${kind}` }, msg);
  box.appendChild(item);
  setTimeout(() => item.remove(), ms);
}

/** Show `err` in `el` (an element, typically a form's error slot): the server's message and code. */
export function showError(el, err) {
  clear(el);
  if (!err) {
    el.hidden = true;
    return;
  }
  const message = err.message || String(err);
  const code = err.code ? h("code", { class: "error-code" }, err.code) : null;
  el.appendChild(h("p", {}, message, code ? " " : null, code));
  const details = err.details && typeof err.details === "object" ? err.details : null;
  if (details && Array.isArray(details.errors)) {
    el.appendChild(h("ul", {}, details.errors.map((d) => h("li", {}, [d.field || d.path, d.message].filter(Boolean).join(": ")))));
  }
  el.hidden = false;
  el.setAttribute("role", "alert");
}

/** An element to hold a form's error: hidden until showError fills it. */
export function errorSlot() {
  return h("div", { class: "error", hidden: true });
}

/**
 * Ask before doing something: a modal <dialog> (focus moves into it, Escape cancels, focus returns to
 * the opener). Resolves true when confirmed.
 */
export function confirmAction(text, { confirm = "Confirm", cancel = "Cancel", danger = true } = {}) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = uid("dlg");
    const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId },
      h("p", { id: titleId }, text),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", "on:click": () => dialog.close("cancel") }, cancel),
        h("button", { type: "button", class: danger ? "danger" : "primary", "on:click": () => dialog.close("ok") }, confirm)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.focus) opener.focus();
      resolve(dialog.returnValue === "ok");
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    dialog.querySelector("button.secondary").focus();
  });
}

const UNITS = [["year", 365 * 86400], ["month", 30 * 86400], ["week", 7 * 86400], ["day", 86400], ["hour", 3600], ["minute", 60]];

/** "3 minutes ago", "in 2 hours", "just now"; "never" for null. */
export function timeAgo(date, now = Date.now()) {
  if (date === null || date === undefined) return "never";
  const then = date instanceof Date ? date.getTime() : Date.parse(date);
  if (Number.isNaN(then)) return String(date);
  const seconds = Math.round((now - then) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  for (const [unit, size] of UNITS) {
    if (abs >= size || unit === "minute") {
      const n = Math.max(1, Math.round(abs / size));
      const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return seconds >= 0 ? `${words} ago` : `in ${words}`;
    }
  }
  return "just now";
}

/** A <time> element showing timeAgo(date), with the exact time as its title and datetime. */
export function timeEl(date) {
  if (!date) return h("span", {}, "never");
  const d = new Date(date);
  return h("time", { datetime: d.toISOString(), title: d.toLocaleString() }, timeAgo(d));
}

const numbers = new Intl.NumberFormat("en-US");
/** 1234567 → "1,234,567". */
export function formatNumber(n) {
  return n === null || n === undefined ? "–" : numbers.format(n);
}

/** A labelled input: field("Email", { name: "email", type: "email", required: true }). Pass `hint` for
 * help text tied to the input with aria-describedby. */
export function field(label, attrs = {}, { hint } = {}) {
  const id = attrs.id || uid("in");
  const hintId = hint ? `${id}-hint` : null;
  const tag = attrs.tag || "input";
  const { tag: _t, options, ...rest } = attrs;
  const control = tag === "select"
    ? h("select", { id, "aria-describedby": hintId, ...rest }, (options || []).map(([value, text]) => h("option", { value, selected: value === attrs.value }, text)))
    : h(tag, { id, "aria-describedby": hintId, ...rest });
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

/**
 * A form whose submit calls `onSubmit(values, form)` and waits for it: the submit button is disabled
 * meanwhile, an error is shown in the form's error slot. Nothing is changed before the server answers.
 */
export function form(attrs, children, onSubmit) {
  const error = errorSlot();
  const el = h("form", { novalidate: false, ...attrs }, error, children);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = el.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    el.setAttribute("aria-busy", "true");
    showError(error, null);
    try {
      await onSubmit(formValues(el), el);
    } catch (err) {
      showError(error, err);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
      el.removeAttribute("aria-busy");
    }
  });
  return el;
}

/** A button that runs `action()` and shows a failure as a toast and in `errorEl` when given. */
export function actionButton(label, action, { kind = "secondary", errorEl = null, ...attrs } = {}) {
  const button = h("button", { type: "button", class: kind, ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await action();
    } catch (err) {
      if (errorEl) showError(errorEl, err);
      else toast(`${err.message}${err.code ? ` (${err.code})` : ""}`, { kind: "error" });
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A copy-to-clipboard button for `text`; says "Copied" once done. */
export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "secondary copy" }, label);
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
      toast("Copied to the clipboard");
    } catch {
      toast("The browser refused the clipboard: select the text and copy it", { kind: "error" });
    }
  });
  return button;
}
