// The exchanges list (#/exchanges?name=&regex=1&sort=&desc=1&page=&size=): one page at a
// time from the API (see paged.js), and the declare form (PUT /api/exchanges/<vhost>/<name>)
// that shows the API's `reason` when the broker refuses.
import * as api from "../api.js";
import * as session from "../session.js";
import { h, errorLine } from "../dom.js";
import { rate, dig } from "../format.js";
import { renderPaged } from "./paged.js";

const TYPES = ["direct", "fanout", "topic", "headers"];

/** The path segment naming an exchange: the default exchange ("") is `amq.default`. */
export function pathName(name) {
  return name === "" ? "amq.default" : name;
}

export function exchangeHref(vhost, name) {
  return `#/exchanges/${encodeURIComponent(vhost)}/${encodeURIComponent(pathName(name))}`;
}

export function exchangeFeatures(x) {
  const f = [];
  if (x.durable) f.push(["D", "durable"]);
  if (x.auto_delete) f.push(["AD", "auto-delete"]);
  if (x.internal) f.push(["I", "internal"]);
  for (const [k, v] of Object.entries(x.arguments ?? {})) f.push([k, `${k}: ${JSON.stringify(v)}`]);
  // A delayed exchange's held messages (RabbitMQ's UI: "DM", messages delayed).
  if (x.messages_delayed != null) f.push([`DM ${x.messages_delayed}`, `messages delayed: ${x.messages_delayed}`]);
  if (x.policy) f.push([`Pol ${x.policy}`, `policy: ${x.policy}`]);
  return f.map(([s, title]) => h("span.feature", { title }, s));
}

/** A JSON object typed into a textarea ("" is {}), or an Error saying why it is not one. */
export function parseObject(text, what) {
  if (!text.trim()) return {};
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} must be a JSON object: ${e.message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v;
}

export const render = (ctx) =>
  renderPaged(ctx, {
    route: "exchanges",
    title: "Exchanges",
    noun: "exchanges",
    all: "/api/exchanges",
    inVhost: (v) => `/api/exchanges/${api.enc(v)}`,
    id: "exchanges-table",
    filterId: "exchange-filter",
    summaryId: "exchange-summary",
    regex: true,
    rowData: (x) => ({ exchange: x.name }),
    columns: [
      { label: "Virtual host", sort: "vhost", cell: (x) => x.vhost },
      { label: "Name", sort: "name", cell: (x) => h("a", { href: exchangeHref(x.vhost, x.name) }, x.name === "" ? "(AMQP default)" : x.name) },
      { label: "Type", sort: "type", cell: (x) => x.type },
      { label: "Features", cell: exchangeFeatures },
      { label: "In/s", num: true, sort: "message_stats.publish_in_details.rate", cell: (x) => rate(dig(x, "message_stats.publish_in_details.rate") ?? 0) },
      { label: "Out/s", num: true, sort: "message_stats.publish_out_details.rate", cell: (x) => rate(dig(x, "message_stats.publish_out_details.rate") ?? 0) },
    ],
    after: (reload) => h("div.actions", declareForm(session.vhost(), reload)),
  });

function declareForm(vhost, done) {
  const vh = h("input", { name: "vhost", value: vhost || "/", required: true });
  const name = h("input", { name: "name", required: true });
  const type = h("select", { name: "type" }, TYPES.map((t) => h("option", { value: t }, t)));
  const durable = h("input", { name: "durable", type: "checkbox", checked: true });
  const autoDelete = h("input", { name: "auto_delete", type: "checkbox" });
  const internal = h("input", { name: "internal", type: "checkbox" });
  const args = h("textarea", { name: "arguments", rows: "2", placeholder: '{"alternate-exchange": "my-ae"}' });
  const err = errorLine();
  const ok = h("p.notice", { hidden: true });
  const form = h(
    "form.card",
    { id: "declare-exchange-form" },
    h("h2", "Add a new exchange"),
    h("label", "Virtual host", vh),
    h("label", "Name", name),
    h("label", "Type", type),
    h("label", durable, "Durable"),
    h("label", autoDelete, "Auto delete"),
    h("label", internal, "Internal"),
    h("label", "Arguments (JSON)", args),
    h("button.primary", { type: "submit" }, "Add exchange"),
    err.el,
    ok,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    ok.hidden = true;
    try {
      const body = {
        type: type.value,
        durable: durable.checked,
        auto_delete: autoDelete.checked,
        internal: internal.checked,
        arguments: parseObject(args.value, "Arguments"),
      };
      await api.put(`/api/exchanges/${api.enc(vh.value)}/${api.enc(name.value)}`, body);
      ok.textContent = `Exchange ${name.value} declared.`;
      ok.hidden = false;
      name.value = "";
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}
