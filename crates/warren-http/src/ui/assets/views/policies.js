// Policies and operator policies (#/policies): both lists (in the selected vhost or all),
// add or update one (PUT /api/policies|operator-policies/<vhost>/<name>: pattern,
// apply-to, priority, definition) and delete.
import * as api from "../api.js";
import * as session from "../session.js";
import { h, mount } from "../dom.js";
import { listTable, formCard, deleteButton } from "./forms.js";
import { parseObject } from "./exchanges.js";

const KINDS = [
  { path: "policies", id: "policies-table", what: "policy", empty: "No policies" },
  { path: "operator-policies", id: "operator-policies-table", what: "operator policy", empty: "No operator policies" },
];

export async function render(ctx) {
  const { main } = ctx;
  const vhost = session.vhost();
  const lists = KINDS.map(() => h("div"));
  const error = h("p.error", { role: "alert", hidden: true });
  const refresh = async () => {
    try {
      const all = await Promise.all(KINDS.map((k) => api.get(vhost ? `/api/${k.path}/${api.enc(vhost)}` : `/api/${k.path}`)));
      error.hidden = true;
      KINDS.forEach((k, i) =>
        mount(
          lists[i],
          listTable(
            k.id,
            ["Virtual host", "Name", "Pattern", "Apply to", "Definition", "Priority", ""],
            all[i].map((p) =>
              h(
                "tr",
                { dataset: { key: p.name } },
                h("td", p.vhost),
                h("td", p.name),
                h("td", p.pattern),
                h("td", p["apply-to"]),
                h("td", JSON.stringify(p.definition ?? {})),
                h("td.num", String(p.priority)),
                h("td", deleteButton(`${k.what} ${p.name}`, async () => {
                  await api.del(`/api/${k.path}/${api.enc(p.vhost)}/${api.enc(p.name)}`);
                  refresh();
                })),
              ),
            ),
            k.empty,
          ),
        ),
      );
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  };
  const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k.path }, k.what)));
  const vh = h("input", { name: "vhost", required: true, value: vhost || "/" });
  const name = h("input", { name: "name", required: true });
  const pattern = h("input", { name: "pattern", required: true, placeholder: "^amq\\." });
  const applyTo = h("select", { name: "apply-to" }, ["all", "queues", "exchanges"].map((x) => h("option", { value: x }, x)));
  const priority = h("input", { name: "priority", type: "number", value: "0" });
  const definition = h("textarea", { name: "definition", rows: "3", required: true, placeholder: '{"max-length": 1000}' });
  mount(
    main,
    h("h1", "Policies", vhost ? h("span.muted", ` in ${vhost}`) : null),
    error,
    lists[0],
    h("h2", "Operator policies"),
    lists[1],
    h(
      "div.actions",
      formCard(
        "add-policy-form",
        "Add / update a policy",
        [
          h("label", "Kind", kind),
          h("label", "Virtual host", vh),
          h("label", "Name", name),
          h("label", "Pattern", pattern),
          h("label", "Apply to", applyTo),
          h("label", "Priority", priority),
          h("label", "Definition (JSON)", definition),
        ],
        "Add / update policy",
        async () => {
          await api.put(`/api/${kind.value}/${api.enc(vh.value)}/${api.enc(name.value)}`, {
            pattern: pattern.value,
            "apply-to": applyTo.value,
            priority: Number(priority.value),
            definition: parseObject(definition.value, "Definition"),
          });
          await refresh();
          return `${kind.value === "policies" ? "Policy" : "Operator policy"} ${name.value} saved.`;
        },
      ),
    ),
  );
  await refresh();
}
