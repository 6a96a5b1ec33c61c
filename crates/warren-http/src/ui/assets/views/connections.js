// The connections list (#/connections): user, vhost, client, state, channels and byte
// rates per connection, paged through the API; each links to its page.
import * as api from "../api.js";
import { h } from "../dom.js";
import { num, bytes, dig } from "../format.js";
import { renderPaged } from "./paged.js";

export function connectionHref(name) {
  return `#/connections/${encodeURIComponent(name)}`;
}

/** "product version" of a client from its client properties. */
export function client(c) {
  const p = c.client_properties ?? {};
  return [p.product, p.version].filter(Boolean).join(" ") || "–";
}

export function byteRate(n) {
  return n === undefined || n === null ? "–" : `${bytes(n)}/s`;
}

export const render = (ctx) =>
  renderPaged(ctx, {
    route: "connections",
    title: "Connections",
    noun: "connections",
    all: "/api/connections",
    inVhost: (v) => `/api/vhosts/${api.enc(v)}/connections`,
    id: "connections-table",
    rowData: (c) => ({ key: c.name }),
    columns: [
      { label: "Name", cell: (c) => h("a", { href: connectionHref(c.name) }, c.user_provided_name ? `${c.name} (${c.user_provided_name})` : c.name) },
      { label: "Virtual host", cell: (c) => c.vhost },
      { label: "User", cell: (c) => c.user },
      { label: "Client", cell: client },
      { label: "Protocol", cell: (c) => `${c.protocol ?? ""}${c.ssl ? " TLS" : ""}` },
      { label: "State", cell: (c) => c.state },
      { label: "Channels", num: true, cell: (c) => num(c.channels) },
      { label: "From client", num: true, cell: (c) => byteRate(dig(c, "recv_oct_details.rate") ?? 0) },
      { label: "To client", num: true, cell: (c) => byteRate(dig(c, "send_oct_details.rate") ?? 0) },
    ],
  });

