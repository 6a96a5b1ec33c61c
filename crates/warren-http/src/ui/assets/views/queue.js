// One queue's page (#/queues/<vhost>/<name>): figures, live depth and rate charts
// (sampled while the page is shown), consumers, bindings, and the
// actions: get messages (RabbitMQ's ack modes), purge, delete. Each action's form shows
// the API's `reason` when the broker refuses.
import * as api from "../api.js";
import { poller } from "./poll.js";
import { h, mount, errorLine } from "../dom.js";
import { num, rate, bytes, dig } from "../format.js";
import { features } from "./queues.js";
import { chart, historyQuery, lengthHistory, rateHistory, QUEUED, RATES } from "./chart.js";

// The rates a queue has (no confirms: those are per channel).
const QUEUE_RATES = RATES.filter(([k]) => k !== "confirm");

const ACK_MODES = [
  ["ack_requeue_true", "Nack message requeue true"],
  ["ack_requeue_false", "Automatic ack"],
  ["reject_requeue_true", "Reject requeue true"],
  ["reject_requeue_false", "Reject requeue false"],
];

function row(k, v) {
  return h("tr", h("th", k), h("td", v));
}

function table(headers, rows, empty) {
  return h(
    "div.table-wrap",
    h(
      "table",
      h("thead", h("tr", headers.map((x) => h("th", x)))),
      h("tbody", rows.length ? rows : h("tr", h("td", { colspan: String(headers.length) }, h("span.muted", empty)))),
    ),
  );
}

export async function render(ctx) {
  const { main, args, navigate } = ctx;
  const [vhost, name] = args;
  const base = `/api/queues/${api.enc(vhost)}/${api.enc(name)}`;
  const figures = h("div");
  const ratesEl = h("div.chart", { id: "queue-chart-rates" });
  const depthEl = h("div.chart", { id: "queue-chart-depth" });
  const consumers = h("div");
  const bindings = h("div");
  const error = h("p.error", { role: "alert", hidden: true });
  mount(
    main,
    h("h1", "Queue ", h("span", { id: "queue-name" }, name), h("span.muted", ` in ${vhost}`)),
    error,
    figures,
    h("div.charts", ratesEl, depthEl),
    h("h2", "Consumers"),
    consumers,
    h("h2", "Bindings"),
    bindings,
    h("h2", "Actions"),
    h("div.actions", getForm(base), purgeForm(base, () => refresh()), deleteForm(base, () => navigate("#/queues"))),
  );

  const rates = chart(ratesEl, "Message rates", QUEUE_RATES, rate);
  const depth = chart(depthEl, "Queued messages", QUEUED, num);
  const onResize = () => {
    rates.resize();
    depth.resize();
  };
  window.addEventListener("resize", onResize);

  let seeded = false;
  const refresh = poller(ctx, error, {
    onStop: () => {
      window.removeEventListener("resize", onResize);
    },
    load: () => {
      // The first poll asks for the minute of history the broker keeps per queue.
      const path = seeded ? base : `${base}?${historyQuery(60)}`;
      return Promise.all([api.get(path), api.get(`${base}/bindings`)]);
    },
    show: ([q, b]) => {
      const ms = q.message_stats ?? {};
      const now = Date.now() / 1000;
      if (!seeded) {
        const lengths = lengthHistory(q, QUEUED);
        rates.seed(rateHistory(ms, QUEUE_RATES, lengths));
        depth.seed(lengths);
        seeded = true;
      }
      rates.push(now, QUEUE_RATES.map(([k]) => dig(ms, `${k}_details.rate`) ?? 0));
      depth.push(now, QUEUED.map(([k]) => q[k] ?? 0));
      mount(
        figures,
        h(
          "div.tiles",
          [
            ["Ready", num(q.messages_ready), "queue-ready"],
            ["Unacked", num(q.messages_unacknowledged), "queue-unacked"],
            ["Total", num(q.messages), "queue-total"],
            ["Consumers", num(q.consumers), "queue-consumers"],
            ["Publish", rate(dig(ms, "publish_details.rate") ?? 0)],
            ["Deliver / get", rate(dig(ms, "deliver_get_details.rate") ?? 0)],
            ["Ack", rate(dig(ms, "ack_details.rate") ?? 0)],
          ].map(([k, v, id]) => h("div.tile", h("div.n", { id }, v), h("div.k", k))),
        ),
        h(
          "table.kv",
          h(
            "tbody",
            row("Type", q.type ?? "classic"),
            row("Features", features(q)),
            row("State", q.state ?? ""),
            row("Policy", q.policy ?? ""),
            row("Arguments", JSON.stringify(q.arguments ?? {})),
            row("Message bytes", bytes(q.message_bytes)),
            row("Memory", bytes(q.memory)),
            row("Exclusive owner", q.owner_pid_details?.name ?? ""),
          ),
        ),
      );
      mount(
        consumers,
        table(
          ["Channel", "Consumer tag", "Ack required", "Exclusive", "Prefetch", "Active"],
          (q.consumer_details ?? []).map((c) =>
            h(
              "tr",
              h("td", c.channel_details?.name ?? ""),
              h("td", c.consumer_tag),
              h("td", c.ack_required ? "yes" : "no"),
              h("td", c.exclusive ? "yes" : "no"),
              h("td", num(c.prefetch_count)),
              h("td", c.active === false ? "no" : "yes"),
            ),
          ),
          "No consumers",
        ),
      );
      mount(
        bindings,
        table(
          ["From exchange", "Routing key", "Arguments"],
          (b ?? []).map((x) =>
            h("tr", h("td", x.source === "" ? "(default exchange)" : x.source), h("td", x.routing_key), h("td", JSON.stringify(x.arguments ?? {}))),
          ),
          "No bindings",
        ),
      );
    },
    describe: (e) => (e.status === 404 ? `Queue ${name} does not exist in ${vhost} (${e.message}).` : e.message),
  });
  await refresh();
}

function getForm(base) {
  const mode = h("select", { name: "ackmode" }, ACK_MODES.map(([v, label]) => h("option", { value: v }, label)));
  const encoding = h("select", { name: "encoding" }, h("option", { value: "auto" }, "Auto string / base64"), h("option", { value: "base64" }, "base64"));
  const count = h("input", { name: "count", type: "number", min: "1", value: "1" });
  const truncate = h("input", { name: "truncate", type: "number", min: "1", value: "50000" });
  const err = errorLine();
  const out = h("div", { id: "get-results" });
  const form = h(
    "form.card",
    { id: "get-form" },
    h("h2", "Get messages"),
    h("p.muted", "Getting messages is destructive unless they are requeued."),
    h("label", "Ack mode", mode),
    h("label", "Encoding", encoding),
    h("label", "Messages", count),
    h("label", "Truncate at (bytes)", truncate),
    h("button.primary", { type: "submit" }, "Get message(s)"),
    err.el,
    out,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    try {
      const messages = await api.post(`${base}/get`, {
        count: Number(count.value),
        ackmode: mode.value,
        encoding: encoding.value,
        truncate: Number(truncate.value),
      });
      mount(
        out,
        messages.length === 0
          ? h("p.muted", "Queue is empty")
          : messages.map((m, i) =>
              h(
                "div.card.message",
                h("p", `Message ${i + 1} · exchange "${m.exchange}" · routing key "${m.routing_key}" · redelivered ${m.redelivered} · ${m.message_count} remaining`),
                h("p.muted", `Properties: ${JSON.stringify(m.properties ?? {})}`),
                h("p.muted", `Payload: ${m.payload_bytes} bytes, encoding ${m.payload_encoding}`),
                h("pre.payload", m.payload),
              ),
            ),
      );
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}

function purgeForm(base, done) {
  const err = errorLine();
  const ok = h("p.notice", { hidden: true });
  const form = h("form.card", { id: "purge-form" }, h("h2", "Purge"), h("button.danger", { type: "submit" }, "Purge messages"), err.el, ok);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    ok.hidden = true;
    if (!confirm("Purge all ready messages from this queue?")) return;
    try {
      await api.del(`${base}/contents`);
      ok.textContent = "Queue purged.";
      ok.hidden = false;
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}

function deleteForm(base, done) {
  const err = errorLine();
  const ifEmpty = h("input", { type: "checkbox" });
  const ifUnused = h("input", { type: "checkbox" });
  const form = h(
    "form.card",
    { id: "delete-form" },
    h("h2", "Delete"),
    h("label", ifEmpty, "Only if empty"),
    h("label", ifUnused, "Only if unused"),
    h("button.danger", { type: "submit" }, "Delete queue"),
    err.el,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    if (!confirm("Delete this queue?")) return;
    const q = new URLSearchParams();
    if (ifEmpty.checked) q.set("if-empty", "true");
    if (ifUnused.checked) q.set("if-unused", "true");
    try {
      await api.del(`${base}${q.size ? `?${q}` : ""}`);
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}
