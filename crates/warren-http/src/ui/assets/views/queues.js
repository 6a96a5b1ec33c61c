// The queues list (#/queues?name=&regex=1&sort=&desc=1&page=&size=): type, features,
// depths, rates and consumers, one page at a time from the API (sorted, filtered by name
// or regex there), so it stays fast at 10,000 queues; each links to the queue's page.
import * as api from "../api.js";
import { h } from "../dom.js";
import { num, rate, dig } from "../format.js";
import { renderPaged } from "./paged.js";

// RabbitMQ's UI abbreviations (its KNOWN_ARGS), in its order.
const FEATURE_ARGS = [
  ["x-message-ttl", "TTL"],
  ["x-expires", "Exp"],
  ["x-max-length", "Lim"],
  ["x-max-length-bytes", "Lim B"],
  ["x-delivery-limit", "DlL"],
  ["x-overflow", "Ovfl"],
  ["x-dead-letter-exchange", "DLX"],
  ["x-dead-letter-routing-key", "DLK"],
  ["x-queue-master-locator", "ML"],
  ["x-max-priority", "Pri"],
  ["x-single-active-consumer", "SAC"],
];

export function features(q) {
  const f = [];
  if (q.durable) f.push(["D", "durable"]);
  if (q.auto_delete) f.push(["AD", "auto-delete"]);
  if (q.exclusive) f.push(["Excl", "exclusive"]);
  for (const [arg, short] of FEATURE_ARGS) {
    if (q.arguments && arg in q.arguments) f.push([short, `${arg}: ${JSON.stringify(q.arguments[arg])}`]);
  }
  if (q.policy) f.push([`Pol ${q.policy}`, `policy: ${q.policy}`]);
  return f.map(([s, title]) => h("span.feature", { title }, s));
}

export function queueHref(q) {
  return `#/queues/${encodeURIComponent(q.vhost)}/${encodeURIComponent(q.name)}`;
}

export const render = (ctx) =>
  renderPaged(ctx, {
    route: "queues",
    title: "Queues",
    noun: "queues",
    all: "/api/queues",
    inVhost: (v) => `/api/queues/${api.enc(v)}`,
    id: "queues-table",
    filterId: "queue-filter",
    summaryId: "queue-summary",
    regex: true,
    rowData: (q) => ({ queue: q.name }),
    columns: [
      { label: "Virtual host", sort: "vhost", cell: (q) => q.vhost },
      { label: "Name", sort: "name", cell: (q) => h("a", { href: queueHref(q) }, q.name) },
      { label: "Type", sort: "type", cell: (q) => q.type ?? "classic" },
      { label: "Features", cell: features },
      { label: "State", sort: "state", cell: (q) => q.state ?? "" },
      { label: "Ready", num: true, sort: "messages_ready", cell: (q) => num(q.messages_ready) },
      { label: "Unacked", num: true, sort: "messages_unacknowledged", cell: (q) => num(q.messages_unacknowledged) },
      { label: "Total", num: true, sort: "messages", cell: (q) => num(q.messages) },
      { label: "In/s", num: true, sort: "message_stats.publish_details.rate", cell: (q) => rate(dig(q, "message_stats.publish_details.rate") ?? 0) },
      { label: "Out/s", num: true, sort: "message_stats.deliver_get_details.rate", cell: (q) => rate(dig(q, "message_stats.deliver_get_details.rate") ?? 0) },
      { label: "Consumers", num: true, sort: "consumers", cell: (q) => num(q.consumers) },
    ],
  });
