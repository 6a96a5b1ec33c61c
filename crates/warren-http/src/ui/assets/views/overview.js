// The overview: totals, live charts of message rates and queued messages (from
// /api/overview, polled), node memory and disk against their alarm thresholds
// (/api/nodes), and listeners.
import * as api from "../api.js";
import { poller } from "./poll.js";
import { h, mount } from "../dom.js";
import { bytes, num, rate, dig } from "../format.js";
import { chart, historyQuery, lengthHistory, rateHistory, POINTS, POLL_MS, QUEUED, RATES } from "./chart.js";

function tile(key, value, id) {
  return h("div.tile", h("div.n", { id }, value), h("div.k", key));
}

function usage(used, limit, alarm, label) {
  const pct = limit ? Math.min(100, (used / limit) * 100) : 0;
  const bar = h(`div.bar${alarm ? ".alarm" : ""}`, h("span"));
  bar.firstChild.style.width = `${pct}%`; // CSSOM, allowed by the CSP (no inline style attribute)
  return [bar, h(alarm ? "span.alarm" : "span", label)];
}

export async function render(ctx) {
  const { main } = ctx;
  const totals = h("div.tiles");
  const rateTiles = h("div.tiles");
  const ratesEl = h("div.chart", { id: "chart-rates" });
  const queuedEl = h("div.chart", { id: "chart-queued" });
  const nodesEl = h("div.table-wrap");
  const listenersEl = h("div.table-wrap");
  const error = h("p.error", { role: "alert", hidden: true });
  mount(
    main,
    h("h1", "Overview"),
    error,
    totals,
    h("h2", "Message rates"),
    rateTiles,
    h("div.charts", ratesEl, queuedEl),
    h("h2", "Nodes"),
    nodesEl,
    h("h2", "Listeners"),
    listenersEl,
  );
  const rates = chart(ratesEl, "Message rates", RATES, rate);
  const queued = chart(queuedEl, "Queued messages", QUEUED, num);
  const onResize = () => {
    rates.resize();
    queued.resize();
  };
  window.addEventListener("resize", onResize);

  let seeded = false;
  const tick = poller(ctx, error, {
    onStop: () => {
      window.removeEventListener("resize", onResize);
    },
    load: () => {
      // The first poll asks for the node's last ten minutes and draws them at once.
      const path = seeded ? "/api/overview" : `/api/overview?${historyQuery((POINTS * POLL_MS) / 1000)}`;
      return Promise.all([api.get(path), api.get("/api/nodes")]);
    },
    show: ([o, nodes]) => {
      const t = Date.now() / 1000;
      const ms = o.message_stats ?? {};
      const qt = o.queue_totals ?? {};
      const ot = o.object_totals ?? {};
      if (!seeded) {
        const uptime = nodes[0]?.uptime;
        const since = uptime != null ? t - uptime / 1000 : 0;
        const lengths = lengthHistory(qt, QUEUED);
        rates.seed(rateHistory(ms, RATES, lengths), since);
        queued.seed(lengths, since);
        seeded = true;
      }
      rates.push(t, RATES.map(([k]) => dig(ms, `${k}_details.rate`) ?? 0));
      queued.push(t, QUEUED.map(([k]) => qt[k] ?? 0));
      mount(
        totals,
        tile("Connections", num(ot.connections), "total-connections"),
        tile("Channels", num(ot.channels), "total-channels"),
        tile("Exchanges", num(ot.exchanges), "total-exchanges"),
        tile("Queues", num(ot.queues), "total-queues"),
        tile("Consumers", num(ot.consumers), "total-consumers"),
        tile("Ready", num(qt.messages_ready), "total-ready"),
        tile("Unacked", num(qt.messages_unacknowledged), "total-unacked"),
        tile("Total messages", num(qt.messages), "total-messages"),
      );
      mount(rateTiles, RATES.map(([k, label]) => tile(label, rate(dig(ms, `${k}_details.rate`) ?? 0))));
      mount(
        nodesEl,
        h(
          "table",
          h("thead", h("tr", h("th", "Node"), h("th", "Memory"), h("th", "Disk free"), h("th", "Uptime"))),
          h(
            "tbody",
            nodes.map((n) =>
              h(
                "tr",
                h("td", n.name),
                h(
                  "td",
                  usage(n.mem_used, n.mem_limit, n.mem_alarm, ` ${bytes(n.mem_used)} of ${bytes(n.mem_limit)} high watermark${n.mem_alarm ? " — ALARM" : ""}`),
                ),
                h(
                  "td",
                  h(
                    n.disk_free_alarm ? "span.alarm" : "span",
                    `${bytes(n.disk_free)} (limit ${bytes(n.disk_free_limit)})${n.disk_free_alarm ? " — ALARM" : ""}`,
                  ),
                ),
                h("td", n.uptime != null ? `${Math.floor(n.uptime / 60000)} min` : "–"),
              ),
            ),
          ),
        ),
      );
      mount(
        listenersEl,
        h(
          "table",
          h("thead", h("tr", h("th", "Protocol"), h("th", "Bound to"), h("th.num", "Port"))),
          h(
            "tbody",
            (o.listeners ?? []).map((l) => h("tr", h("td", l.protocol), h("td", l.ip_address), h("td.num", l.port))),
          ),
        ),
        h("p.muted", `Warren ${o.product_version ?? o.rabbitmq_version ?? ""} · management ${o.management_version ?? ""}`),
      );
    },
  });
  await tick();
}
