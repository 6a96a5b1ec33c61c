// The UI's entry point: login, the top bar (user, vhost selector, log out) and hash
// routing, so every view has a URL (#/, #/queues?..., #/queues/<vhost>/<name>,
// #/exchanges?..., #/exchanges/<vhost>/<name>, #/connections, #/connections/<name>,
// #/channels, #/users, #/vhosts, #/policies, #/definitions, #/topology/<vhost>).
import * as api from "./api.js";
import * as session from "./session.js";
import { h, mount } from "./dom.js";
import * as overview from "./views/overview.js";
import * as queues from "./views/queues.js";
import * as queue from "./views/queue.js";
import * as exchanges from "./views/exchanges.js";
import * as exchange from "./views/exchange.js";
import * as connections from "./views/connections.js";
import * as connection from "./views/connection.js";
import * as channels from "./views/channels.js";
import * as users from "./views/users.js";
import * as vhosts from "./views/vhosts.js";
import * as policies from "./views/policies.js";
import * as definitions from "./views/definitions.js";
import * as topology from "./views/topology.js";

const $ = (id) => document.getElementById(id);

/** The routes: a pattern over the hash path and the view that renders it. */
const ROUTES = [
  { re: /^\/?$/, nav: "overview", view: overview },
  { re: /^\/queues$/, nav: "queues", view: queues },
  { re: /^\/queues\/([^/]+)\/([^/]+)$/, nav: "queues", view: queue },
  { re: /^\/exchanges$/, nav: "exchanges", view: exchanges },
  { re: /^\/exchanges\/([^/]+)\/([^/]+)$/, nav: "exchanges", view: exchange },
  { re: /^\/connections$/, nav: "connections", view: connections },
  { re: /^\/connections\/([^/]+)$/, nav: "connections", view: connection },
  { re: /^\/channels$/, nav: "channels", view: channels },
  { re: /^\/users$/, nav: "users", view: users },
  { re: /^\/vhosts$/, nav: "vhosts", view: vhosts },
  { re: /^\/policies$/, nav: "policies", view: policies },
  { re: /^\/definitions$/, nav: "definitions", view: definitions },
  { re: /^\/topology$/, nav: "topology", view: topology },
  { re: /^\/topology\/([^/]+)$/, nav: "topology", view: topology },
];

let current = null; // { view, ctx } of the view on screen
let me = null; // /api/whoami

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

async function render() {
  if (current?.ctx.stop) current.ctx.stop();
  current = null;
  const { path, params } = parseHash();
  const main = $("view");
  for (const route of ROUTES) {
    const m = path.match(route.re);
    if (!m) continue;
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("active", a.dataset.view === route.nav);
    }
    const args = m.slice(1).map(decodeURIComponent);
    const ctx = { main, params, args, me, stop: null, navigate };
    current = { view: route.view, ctx };
    mount(main, h("p.muted", "Loading…"));
    try {
      await route.view.render(ctx);
    } catch (e) {
      if (current?.ctx === ctx) mount(main, h("p.error", { role: "alert" }, e.message));
    }
    return;
  }
  mount(main, h("h1", "Not found"), h("p", h("a", { href: "#/" }, "Back to the overview")));
}

/** Go to `hash` (e.g. "#/queues?page=2"). */
function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function fillVhosts() {
  const select = $("vhost-select");
  const vhosts = await api.get("/api/vhosts?columns=name");
  const chosen = session.vhost();
  mount(
    select,
    h("option", { value: "" }, "All"),
    vhosts.map((v) => h("option", { value: v.name }, v.name)),
  );
  select.value = vhosts.some((v) => v.name === chosen) ? chosen : "";
}

function showLogin(message) {
  me = null;
  if (current?.ctx.stop) current.ctx.stop();
  current = null;
  $("shell").hidden = true;
  $("login").hidden = false;
  const error = $("login-error");
  error.hidden = !message;
  error.textContent = message ?? "";
  $("login-username").focus();
}

async function showShell() {
  $("login").hidden = true;
  $("shell").hidden = false;
  $("user").textContent = `${me.name}${me.tags?.length ? ` (${[].concat(me.tags).join(", ")})` : ""}`;
  // Admin views only for the tags the API lets in (it still decides: a link is no permission).
  const tags = [].concat(me.tags ?? []);
  for (const a of document.querySelectorAll("#nav a[data-needs]")) {
    a.hidden = !a.dataset.needs.split(" ").some((t) => tags.includes(t));
  }
  try {
    await fillVhosts();
  } catch {
    // A user without vhost access still sees the views the API allows it.
  }
  await render();
}

async function login(event) {
  event.preventDefault();
  const username = $("login-username").value;
  const password = $("login-password").value;
  const error = $("login-error");
  error.hidden = true;
  const button = $("login-submit");
  button.disabled = true;
  try {
    session.save(username, password);
    me = await api.request("GET", "/api/whoami", undefined, session.token());
    $("login-password").value = "";
    await showShell();
  } catch (e) {
    session.clear();
    error.textContent = e.status === 401 ? "Login failed: wrong username or password." : e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

function logout() {
  session.clear();
  showLogin();
}

async function start() {
  api.setUnauthorizedHandler(() => {
    session.clear();
    showLogin("Your session has ended: log in again.");
  });
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("vhost-select").addEventListener("change", (e) => {
    session.setVhost(e.target.value);
    render();
  });
  window.addEventListener("hashchange", () => {
    if (me) render();
  });
  if (!session.token()) return showLogin();
  try {
    me = await api.get("/api/whoami");
    await showShell();
  } catch (e) {
    session.clear();
    showLogin(e.status === 401 ? undefined : e.message);
  }
}

start();
