// Virtual hosts (#/vhosts): the list with message counts, add (name, description, tags:
// PUT /api/vhosts/<name>) and delete.
import * as api from "../api.js";
import { h, mount } from "../dom.js";
import { num } from "../format.js";
import { listTable, formCard, deleteButton } from "./forms.js";

export async function render(ctx) {
  const { main } = ctx;
  const list = h("div");
  const error = h("p.error", { role: "alert", hidden: true });
  const refresh = async () => {
    try {
      const vs = await api.get("/api/vhosts");
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
  );
  await refresh();
}
