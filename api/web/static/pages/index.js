// Every page of the dashboard, in nav order. A page module:
//   export default { path: "/w/:ws/usage", title: "Usage", nav: "workspace", public?: true, async render(ctx) }
// ctx = { root, params, query, user, workspace, workspaces, navigate(path, {replace}), refreshWorkspaces(),
//         onCleanup(fn), startSession(user, next), lastWorkspace(), setUser(user) }
// nav: "workspace" pages are listed in the side nav of the current workspace (the first one is its home).
// public: true pages need no login.
import account from "./account.js";
import { confirmEmail, forgotPassword, resetPassword, verifyEmail } from "./account_links.js";
import home from "./home.js";
import invitation from "./invitation.js";
import keys from "./keys.js";
import login from "./login.js";
import members from "./members.js";
import signup from "./signup.js";
import workspaces from "./workspaces.js";
import usage from "./usage.js";
import live from "./live.js";
import explorer from "./explorer.js";
import send from "./send.js";
import flags from "./flags.js";
import flag from "./flag.js";
import experiments from "./experiments.js";
import experiment from "./experiment.js";

export default [
  home, login, signup, forgotPassword, resetPassword, verifyEmail, confirmEmail, invitation, account, workspaces,
  // The workspace's pages (side nav), in order:
  keys, members,
  // the data pages (docs/dashboard-data.md)
  usage, live, explorer, send, flags, flag, experiments, experiment,
];
