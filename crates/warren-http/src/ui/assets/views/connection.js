// One connection's page (#/connections/<name>): what it negotiated, its client
// properties, its channels, and the close form (DELETE /api/connections/<name> with the
// reason in `X-Reason`; the client gets connection.close 320 CONNECTION_FORCED - reason).
import * as api from "../api.js";
import { poller } from "./poll.js";
import { h, mount, errorLine } from "../dom.js";
import { num } from "../format.js";
import { byteRate, client } from "./connections.js";
import { CHANNEL_COLUMNS } from "./channels.js";

function row(k, v) {
  return h("tr", h("th", k), h("td", v));
}

export async function render(ctx) {
  const { main, args, navigate } = ctx;
  const [name] = args;
  const base = `/api/connections/${api.enc(name)}`;
  const details = h("div");
  const channels = h("div");
  const error = h("p.error", { role: "alert", hidden: true });
  mount(
    main,
    h("h1", "Connection ", h("span", { id: "connection-name" }, name)),
    error,
    details,
    h("h2", "Channels"),
    channels,
    h("div.actions", closeForm(base, () => navigate("#/connections"))),
  );

  const refresh = poller(ctx, error, {
    load: () => Promise.all([api.get(base), api.get(`${base}/channels`)]),
    show: ([c, chs]) => {
      mount(
        details,
        h(
          "table.kv",
          { id: "connection-details" },
          h(
            "tbody",
            row("User", c.user),
            row("Virtual host", c.vhost),
            row("State", c.state),
            row("Client", client(c)),
            row("Client properties", h("pre.payload", JSON.stringify(c.client_properties ?? {}, null, 2))),
            row("Peer", `${c.peer_host}:${c.peer_port}`),
            row("Protocol", `${c.protocol}${c.ssl ? ` over ${c.ssl_protocol}` : ""}`),
            row("Authentication", c.auth_mechanism),
            row("Heartbeat", `${c.timeout} s`),
            row("Frame max", num(c.frame_max)),
            row("Channel max", num(c.channel_max)),
            row("From client", byteRate(c.recv_oct_details?.rate ?? 0)),
            row("To client", byteRate(c.send_oct_details?.rate ?? 0)),
          ),
        ),
      );
      const list = chs ?? [];
      mount(
        channels,
        h(
          "div.table-wrap",
          h(
            "table",
            { id: "connection-channels" },
            h("thead", h("tr", CHANNEL_COLUMNS.map((col) => h(col.num ? "th.num" : "th", col.label)))),
            h(
              "tbody",
              list.length === 0
                ? h("tr", h("td", { colspan: String(CHANNEL_COLUMNS.length) }, h("span.muted", "No channels")))
                : list.map((ch) => h("tr", CHANNEL_COLUMNS.map((col) => h(col.num ? "td.num" : "td", col.cell(ch))))),
            ),
          ),
        ),
      );
    },
    describe: (e) => (e.status === 404 ? `Connection ${name} is closed (${e.message}).` : e.message),
  });
  await refresh();
}

function closeForm(base, done) {
  const reason = h("input", { name: "reason", value: "Closed via management plugin", size: "40" });
  const err = errorLine();
  const form = h(
    "form.card",
    { id: "close-connection-form" },
    h("h2", "Close this connection"),
    h("label", "Reason", reason),
    h("button.danger", { type: "submit" }, "Force close"),
    err.el,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    if (!confirm("Close this connection?")) return;
    try {
      await api.del(base, reason.value ? { "X-Reason": reason.value } : {});
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}
