// The channels list (#/channels): per channel its connection, user, vhost, mode (confirm,
// transactional), state, prefetch, unacked and message rates, paged through the API.
import * as api from "../api.js";
import { h } from "../dom.js";
import { num, rate, dig } from "../format.js";
import { renderPaged } from "./paged.js";
import { connectionHref } from "./connections.js";

/** The channel columns, shared with the connection page's channel table. */
export const CHANNEL_COLUMNS = [
  { label: "Channel", cell: (c) => h("a", { href: connectionHref(c.connection_details?.name ?? "") }, c.name) },
  { label: "Virtual host", cell: (c) => c.vhost },
  { label: "User", cell: (c) => c.user },
  { label: "Mode", cell: (c) => [c.confirm ? "C" : "", c.transactional ? "T" : ""].join("") || "–" },
  { label: "State", cell: (c) => c.state },
  { label: "Consumers", num: true, cell: (c) => num(c.consumer_count) },
  { label: "Prefetch", num: true, cell: (c) => num(c.prefetch_count) },
  { label: "Unacked", num: true, cell: (c) => num(c.messages_unacknowledged) },
  { label: "Publish", num: true, cell: (c) => rate(dig(c, "message_stats.publish_details.rate") ?? 0) },
  { label: "Deliver / get", num: true, cell: (c) => rate(dig(c, "message_stats.deliver_get_details.rate") ?? 0) },
  { label: "Ack", num: true, cell: (c) => rate(dig(c, "message_stats.ack_details.rate") ?? 0) },
];

export const render = (ctx) =>
  renderPaged(ctx, {
    route: "channels",
    title: "Channels",
    noun: "channels",
    all: "/api/channels",
    inVhost: (v) => `/api/vhosts/${api.enc(v)}/channels`,
    id: "channels-table",
    rowData: (c) => ({ key: c.name }),
    columns: CHANNEL_COLUMNS,
  });
