// Virtual hosts (#/vhosts): the list with message counts, add (name, description, tags:
// PUT /api/vhosts/<name>) and delete; their limits (max-connections, max-queues: PUT and
// DELETE /api/vhost-limits/<vhost>/<name>).
import * as api from "../api.js";
import { h, mount } from "../dom.js";
import { num } from "../format.js";
import { listTable, formCard, deleteButton } from "./forms.js";

export async function render(ctx) {
  const { main } = ctx;
  const list = h("div");
  const limits = h("div");
  const error = h("p.error", { role: "alert", hidden: true });
  const refresh = async () => {
    try {
      const [vs, ls] = await Promise.all([api.get("/api/vhosts"), api.get("/api/vhost-limits")]);
      error.hidden = true;
      mount(
        list,
        listTable(
          "vhosts-table",
          ["Name", "Description", "Tags", "Ready", "Unacked", "Total", ""],
          vs.map((v) =>
            h(
              "tr",
              { dataset: { key: v.name } },
              h("td", v.name),
              h("td", v.description ?? ""),
              h("td", [].concat(v.tags ?? []).join(", ")),
              h("td.num", num(v.messages_ready)),
              h("td.num", num(v.messages_unacknowledged)),
              h("td.num", num(v.messages)),
              h("td", deleteButton(`virtual host ${v.name} and everything in it`, async () => {
                await api.del(`/api/vhosts/${api.enc(v.name)}`);
                refresh();
              })),
            ),
          ),
          "No virtual hosts",
        ),
      );
      const limitRows = [];
      for (const l of ls) {
        for (const [k, v] of Object.entries(l.value ?? {})) {
          limitRows.push(
            h(
              "tr",
              { dataset: { key: `${l.vhost}/${k}` } },
              h("td", l.vhost),
              h("td", k),
              h("td.num", num(v)),
              h("td", deleteButton(`the ${k} limit of ${l.vhost}`, async () => {
                await api.del(`/api/vhost-limits/${api.enc(l.vhost)}/${api.enc(k)}`);
                refresh();
              })),
            ),
          );
        }
      }
      mount(limits, listTable("vhost-limits-table", ["Virtual host", "Limit", "Value", ""], limitRows, "No limits"));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  };
  const name = h("input", { name: "name", required: true });
  const description = h("input", { name: "description" });
  const tags = h("input", { name: "tags" });
  mount(
    main,
    h("h1", "Virtual hosts"),
    error,
    list,
    h(
      "div.actions",
      formCard("add-vhost-form", "Add a virtual host", [h("label", "Name", name), h("label", "Description", description), h("label", "Tags", tags)], "Add virtual host", async () => {
        await api.put(`/api/vhosts/${api.enc(name.value)}`, { description: description.value, tags: tags.value });
        const done = `Virtual host ${name.value} added.`;
        name.value = "";
        await refresh();
        return done;
      }),
    ),
    h("h2", "Limits"),
    limits,
    h("div.actions", limitForm(refresh)),
  );
  await refresh();
}

function limitForm(refresh) {
  const vhost = h("input", { name: "vhost", required: true, value: "/" });
  const name = h("select", { name: "limit" }, ["max-connections", "max-queues"].map((x) => h("option", { value: x }, x)));
  const value = h("input", { name: "value", type: "number", required: true });
  return formCard("vhost-limit-form", "Set a limit", [h("label", "Virtual host", vhost), h("label", "Limit", name), h("label", "Value", value)], "Set limit", async () => {
    await api.put(`/api/vhost-limits/${api.enc(vhost.value)}/${api.enc(name.value)}`, { value: Number(value.value) });
    await refresh();
    return `${name.value} of ${vhost.value} set.`;
  });
}
