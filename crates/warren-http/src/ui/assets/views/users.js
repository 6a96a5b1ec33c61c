// Users and permissions (#/users): the users with their tags; add or update a user
// (password, tags: PUT /api/users/<name>, a PUT without password keeps it), change a
// password, delete; every user's permissions and topic permissions per vhost, set and
// clear them.
import * as api from "../api.js";
import { h, mount } from "../dom.js";
import { listTable, formCard, deleteButton } from "./forms.js";

const TAGS = ["administrator", "monitoring", "policymaker", "management", "impersonator"];

export async function render(ctx) {
  const { main } = ctx;
  const users = h("div");
  const perms = h("div");
  const topics = h("div");
  const error = h("p.error", { role: "alert", hidden: true });
  const refresh = async () => {
    try {
      const [us, ps, ts] = await Promise.all([api.get("/api/users"), api.get("/api/permissions"), api.get("/api/topic-permissions")]);
      error.hidden = true;
      mount(
        users,
        listTable(
          "users-table",
          ["Name", "Tags", "Password", ""],
          us.map((u) =>
            h(
              "tr",
              { dataset: { key: u.name } },
              h("td", u.name),
              h("td", [].concat(u.tags ?? []).join(", ")),
              h("td", u.password_hash ? "set" : "none"),
              h("td", deleteButton(`user ${u.name}`, async () => {
                await api.del(`/api/users/${api.enc(u.name)}`);
                refresh();
              })),
            ),
          ),
          "No users",
        ),
      );
      mount(
        perms,
        listTable(
          "permissions-table",
          ["User", "Virtual host", "Configure", "Write", "Read", ""],
          ps.map((p) =>
            h(
              "tr",
              { dataset: { key: `${p.user}@${p.vhost}` } },
              h("td", p.user),
              h("td", p.vhost),
              h("td", p.configure),
              h("td", p.write),
              h("td", p.read),
              h("td", deleteButton(`the permissions of ${p.user} in ${p.vhost}`, async () => {
                await api.del(`/api/permissions/${api.enc(p.vhost)}/${api.enc(p.user)}`);
                refresh();
              })),
            ),
          ),
          "No permissions",
        ),
      );
      mount(
        topics,
        listTable(
          "topic-permissions-table",
          ["User", "Virtual host", "Exchange", "Write", "Read", ""],
          ts.map((t) =>
            h(
              "tr",
              { dataset: { key: `${t.user}@${t.vhost}/${t.exchange}` } },
              h("td", t.user),
              h("td", t.vhost),
              h("td", t.exchange),
              h("td", t.write),
              h("td", t.read),
              h("td", deleteButton(`the topic permissions of ${t.user} on ${t.exchange} in ${t.vhost}`, async () => {
                await api.del(`/api/topic-permissions/${api.enc(t.vhost)}/${api.enc(t.user)}?exchange=${api.enc(t.exchange)}`);
                refresh();
              })),
            ),
          ),
          "No topic permissions",
        ),
      );
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  };
  mount(
    main,
    h("h1", "Users"),
    error,
    users,
    h("div.actions", userForm(refresh), passwordForm()),
    h("h2", "Permissions"),
    perms,
    h("div.actions", permissionForm(refresh)),
    h("h2", "Topic permissions"),
    topics,
    h("div.actions", topicPermissionForm(refresh)),
  );
  await refresh();
}

function userForm(refresh) {
  const name = h("input", { name: "name", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password" });
  const tags = h("input", { name: "tags", placeholder: "management, monitoring" });
  const presets = h(
    "span.toolbar",
    TAGS.map((t) =>
      h("button", {
        type: "button",
        onclick: () => {
          const have = tags.value.split(",").map((x) => x.trim()).filter(Boolean);
          if (!have.includes(t)) tags.value = [...have, t].join(", ");
        },
      }, t),
    ),
  );
  return formCard("add-user-form", "Add / update a user", [h("label", "Username", name), h("label", "Password", password), h("label", "Tags", tags), presets], "Add user", async () => {
    const body = { tags: tags.value.split(",").map((x) => x.trim()).filter(Boolean).join(",") };
    // No password: an existing user keeps theirs, a new one can only log in otherwise.
    if (password.value) body.password = password.value;
    await api.put(`/api/users/${api.enc(name.value)}`, body);
    const done = `User ${name.value} saved.`;
    name.value = "";
    password.value = "";
    tags.value = "";
    await refresh();
    return done;
  });
}

function passwordForm() {
  const name = h("input", { name: "name", required: true });
  const password = h("input", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  return formCard("password-form", "Change a password", [h("label", "Username", name), h("label", "New password", password)], "Change password", async () => {
    await api.put(`/api/users/${api.enc(name.value)}`, { password: password.value });
    password.value = "";
    return `Password of ${name.value} changed.`;
  });
}

function permissionForm(refresh) {
  const user = h("input", { name: "user", required: true });
  const vhost = h("input", { name: "vhost", required: true, value: "/" });
  const configure = h("input", { name: "configure", value: ".*" });
  const write = h("input", { name: "write", value: ".*" });
  const read = h("input", { name: "read", value: ".*" });
  return formCard(
    "permission-form",
    "Set permissions",
    [h("label", "User", user), h("label", "Virtual host", vhost), h("label", "Configure regexp", configure), h("label", "Write regexp", write), h("label", "Read regexp", read)],
    "Set permission",
    async () => {
      await api.put(`/api/permissions/${api.enc(vhost.value)}/${api.enc(user.value)}`, {
        configure: configure.value,
        write: write.value,
        read: read.value,
      });
      await refresh();
      return `Permissions of ${user.value} in ${vhost.value} set.`;
    },
  );
}

function topicPermissionForm(refresh) {
  const user = h("input", { name: "user", required: true });
  const vhost = h("input", { name: "vhost", required: true, value: "/" });
  const exchange = h("input", { name: "exchange", required: true, value: "amq.topic" });
  const write = h("input", { name: "write", value: ".*" });
  const read = h("input", { name: "read", value: ".*" });
  return formCard(
    "topic-permission-form",
    "Set topic permissions",
    [h("label", "User", user), h("label", "Virtual host", vhost), h("label", "Exchange", exchange), h("label", "Write regexp", write), h("label", "Read regexp", read)],
    "Set topic permission",
    async () => {
      await api.put(`/api/topic-permissions/${api.enc(vhost.value)}/${api.enc(user.value)}`, {
        exchange: exchange.value,
        write: write.value,
        read: read.value,
      });
      await refresh();
      return `Topic permissions of ${user.value} on ${exchange.value} in ${vhost.value} set.`;
    },
  );
}
