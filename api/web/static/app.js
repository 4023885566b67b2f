// The dashboard's shell: the history-API router, the layout (banner, nav, main) and the context each
// page's render(ctx) receives. Pages are listed in pages/index.js.
import { api, ApiError, logout, onSessionEnded, restoreSession } from "./lib/api.js";
import { h, clear } from "./lib/dom.js";
import { showError, toast } from "./lib/ui.js";
import pages from "./pages/index.js";

const state = { user: null, workspaces: [], cleanups: [], renderId: 0 };
const LAST_WORKSPACE = "eventplane.lastWorkspace"; // an id, not a credential

function compile(path) {
  const names = [];
  const pattern = path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  return { regex: new RegExp(`^${pattern}/?$`), names };
}

const routes = pages.map((page) => ({ page, ...compile(page.path) }));

function match(pathname) {
  for (const route of routes) {
    const m = route.regex.exec(pathname);
    if (m) return { page: route.page, params: Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

/** The URL of a page path with its params filled in: pathFor("/w/:ws/keys", { ws: id }). */
function pathFor(path, params) {
  return path.replace(/:(\w+)/g, (_, name) => encodeURIComponent(params[name]));
}

function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return render();
}

async function loadWorkspaces() {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", `/workspaces?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  state.workspaces = items;
  return items;
}

/** The workspace read again on each of its pages: its `role` and `permissions` (what the page shows) are
 * the server's now, not the list's from login. null when the person is no longer a member. */
async function freshWorkspace(workspace) {
  let fresh;
  try {
    fresh = await api("GET", `/workspaces/${workspace.id}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      state.workspaces = state.workspaces.filter((w) => w.id !== workspace.id);
      return null;
    }
    return workspace; // offline or a server error: the list's answer, and the server still checks each write
  }
  state.workspaces = state.workspaces.map((w) => (w.id === fresh.id ? fresh : w));
  return fresh;
}

function runCleanups() {
  const fns = state.cleanups;
  state.cleanups = [];
  for (const fn of fns) {
    try {
      fn();
    } catch (err) {
      console.error("cleanup failed", err);
    }
  }
}

function workspaceOf(params) {
  if (!params.ws) return null;
  return state.workspaces.find((w) => w.id === params.ws || w.slug === params.ws) || null;
}

function banner(workspace) {
  const user = state.user;
  const children = [h("a", { class: "brand", href: "/" }, "EventPlane")];
  if (user) {
    const active = state.workspaces.filter((w) => w.is_active || (workspace && w.id === workspace.id));
    if (active.length) {
      const select = h("select", { id: "workspace-switcher", "aria-label": "Switch workspace" },
        workspace ? null : h("option", { value: "" }, "Choose a workspace"),
        active.map((w) => h("option", { value: w.id, selected: workspace && w.id === workspace.id }, w.name)));
      select.addEventListener("change", () => {
        if (select.value) navigate(workspaceHome(select.value));
      });
      children.push(h("div", { class: "switcher" }, select));
    }
    children.push(h("nav", { class: "user-nav", "aria-label": "Account" },
      h("a", { href: "/workspaces" }, "Workspaces"),
      h("a", { href: "/account" }, user.email),
      h("button", { type: "button", class: "link", "on:click": onLogout }, "Log out")));
  }
  return h("header", { class: "banner" }, children);
}

function workspaceHome(id) {
  const first = pages.find((p) => p.nav === "workspace");
  return first ? pathFor(first.path, { ws: id }) : "/workspaces";
}

function sideNav(workspace, current) {
  if (!workspace) return null;
  const links = pages.filter((p) => p.nav === "workspace").map((p) => {
    const href = pathFor(p.path, { ws: workspace.id });
    return h("li", {}, h("a", { href, "aria-current": p === current ? "page" : null }, p.title));
  });
  return h("nav", { class: "side-nav", "aria-label": "Workspace" },
    h("p", { class: "side-title" }, workspace.name, workspace.is_active ? null : h("span", { class: "badge" }, "archived")),
    h("ul", {}, links));
}

async function onLogout() {
  try {
    await logout();
  } catch (err) {
    toast(`Logging out failed: ${err.message}`, { kind: "error" });
  }
  state.user = null;
  state.workspaces = [];
  navigate("/login", { replace: true });
}

async function render() {
  const id = ++state.renderId;
  runCleanups();
  const url = new URL(location.href);
  const found = match(url.pathname);
  const app = document.getElementById("app");
  if (!found) return layout(app, null, null, notFound("No such page"));
  const { page, params } = found;
  if (!page.public && !state.user) {
    const next = url.pathname + url.search;
    return navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
  }
  let workspace = workspaceOf(params);
  if (workspace) workspace = await freshWorkspace(workspace);
  if (id !== state.renderId) return;
  if (params.ws && !workspace) return layout(app, page, null, notFound("No such workspace, or you are not a member of it"));
  if (workspace) localStorage.setItem(LAST_WORKSPACE, workspace.id);
  const main = layout(app, page, workspace, null);
  const ctx = {
    root: main,
    params,
    query: url.searchParams,
    user: state.user,
    workspace,
    workspaces: state.workspaces,
    navigate: (path, opts) => navigate(path, opts),
    refreshWorkspaces: async () => {
      await loadWorkspaces();
      ctx.workspaces = state.workspaces;
      ctx.workspace = workspaceOf(params);
      refreshChrome(page, ctx.workspace);
      return state.workspaces;
    },
    setUser: (user) => {
      state.user = user;
      ctx.user = user;
    },
    onCleanup: (fn) => state.cleanups.push(fn),
    startSession,
    lastWorkspace,
  };
  try {
    await page.render(ctx);
  } catch (err) {
    if (id !== state.renderId) return;
    clear(main);
    main.appendChild(h("h1", {}, page.title));
    const slot = h("div", { class: "error" });
    main.appendChild(slot);
    showError(slot, err);
  }
  if (id === state.renderId) {
    const heading = main.querySelector("h1");
    if (heading && state.focusOnRender) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
    state.focusOnRender = true;
  }
}

function refreshChrome(page, workspace) {
  const app = document.getElementById("app");
  const old = app.querySelector("header.banner");
  if (old) old.replaceWith(banner(workspace));
  const oldNav = app.querySelector("nav.side-nav");
  const nav = sideNav(workspace, page);
  if (oldNav && nav) oldNav.replaceWith(nav);
  else if (oldNav) oldNav.remove();
  else if (nav) app.querySelector(".body").prepend(nav);
}

function layout(app, page, workspace, content) {
  clear(app);
  document.title = page ? `${page.title} · EventPlane` : "EventPlane";
  const main = h("main", { id: "main", class: page && page.public ? "narrow" : null, tabindex: "-1" }, content);
  app.append(banner(workspace), h("div", { class: "body" }, sideNav(workspace, page), main));
  return main;
}

function notFound(message) {
  return [h("h1", {}, "Not found"), h("p", {}, message), h("p", {}, h("a", { href: "/workspaces" }, "Go to your workspaces"))];
}

// Same-origin links go through the router (no reload), except downloads, new tabs and modified clicks.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest && event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/static/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search + url.hash);
});
window.addEventListener("popstate", () => render());

onSessionEnded(() => {
  if (!state.user) return;
  state.user = null;
  state.workspaces = [];
  toast("Your session has ended: log in again", { kind: "error" });
  navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
});

/** Called by the login page once logged in: loads the user's workspaces, then goes to `next`. */
async function startSession(user, next) {
  state.user = user;
  await loadWorkspaces();
  return navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
}

function lastWorkspace() {
  const id = localStorage.getItem(LAST_WORKSPACE);
  return state.workspaces.find((w) => w.id === id && w.is_active) || null;
}

async function boot() {
  try {
    state.user = await restoreSession();
    if (state.user) await loadWorkspaces();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    state.user = null;
  }
  await render();
  document.documentElement.dataset.ready = "true";
  performance.mark("eventplane-ready"); // the first page is usable (tests/web print it)
}

boot();
