// The topology view (#/topology/<vhost>): one vhost's exchanges, queues and the bindings
// between them drawn as an SVG graph. Exchanges stand in columns by how deep they are in
// exchange-to-exchange bindings, queues in the last column; each edge is labelled with
// its routing key, exchanges with their publish-in rate and queues with their depth.
// An edge also shows its message rate, next to its queue, where the API's figures
// determine it. An exchange's publish-out counts one per queue a message reaches (as in
// RabbitMQ), so an exchange with a single binding sends all of it along that edge, and a
// fanout exchange whose bindings go to distinct queues sends an equal share along each.
// Warren keeps no per-binding counters, so the edges of a direct or topic exchange with
// several bindings, and those into exchanges, carry no rate.
// The default exchange (bound to every queue implicitly) and unbound amq.* exchanges are
// left out. Nodes link to their pages. Redrawn every 5 s while shown.
import * as api from "../api.js";
import { poller } from "./poll.js";
import * as session from "../session.js";
import { h, mount } from "../dom.js";
import { num, rate, dig } from "../format.js";
import { exchangeHref } from "./exchanges.js";
import { queueHref } from "./queues.js";

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 200;
const NODE_H = 30;
const COL_GAP = 140;
const ROW_GAP = 14;
const MAX_NODES = 400;

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k === "dataset") {
      for (const [dk, dv] of Object.entries(v)) if (dv !== undefined && dv !== null) el.dataset[dk] = dv;
    }
    else if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function short(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** Column of each exchange: 0 for one no exchange binds to, else 1 + its deepest source. */
function depths(exchanges, bindings) {
  const into = new Map(exchanges.map((x) => [x.name, []]));
  for (const b of bindings) if (b.destination_type === "exchange" && into.has(b.destination)) into.get(b.destination).push(b.source);
  const depth = new Map();
  const visit = (name, seen) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle: cut it here
    seen.add(name);
    const d = Math.max(-1, ...into.get(name).filter((src) => into.has(src)).map((src) => visit(src, seen))) + 1;
    seen.delete(name);
    depth.set(name, d);
    return d;
  };
  for (const x of exchanges) visit(x.name, new Set());
  return depth;
}

export async function render(ctx) {
  const { main, args } = ctx;
  const vhost = args[0] ?? (session.vhost() || "/");
  const error = h("p.error", { role: "alert", hidden: true });
  const summary = h("span.muted", { id: "topology-summary" });
  const graph = h("div.topology", { id: "topology" });
  mount(main, h("h1", "Topology", h("span.muted", ` of ${vhost}`)), h("div.toolbar", summary), error, graph);

  const refresh = poller(ctx, error, {
    load: () => {
      const v = api.enc(vhost);
      return Promise.all([api.get(`/api/exchanges/${v}`), api.get(`/api/queues/${v}`), api.get(`/api/bindings/${v}`)]);
    },
    show: ([xs, qs, bs]) => {
      draw(xs, qs, bs);
    },
  });

  const draw = (allXs, qs, allBs) => {
    const bs = allBs.filter((b) => b.source !== "");
    const bound = new Set(bs.flatMap((b) => [b.source, b.destination_type === "exchange" ? b.destination : null]));
    const xs = allXs.filter((x) => x.name !== "" && (!x.name.startsWith("amq.") || bound.has(x.name)));
    summary.textContent = `${xs.length} exchanges, ${qs.length} queues, ${bs.length} bindings`;
    if (xs.length + qs.length > MAX_NODES) {
      mount(graph, h("p.muted", `Too many to draw (${xs.length + qs.length} nodes; at most ${MAX_NODES}).`));
      return;
    }
    const depth = depths(xs, bs);
    const queueCol = Math.max(0, ...depth.values()) + 1;
    const columns = [];
    const place = new Map(); // "e:name" / "q:name" -> {x, y}
    const put = (key, col) => {
      columns[col] = (columns[col] ?? 0) + 1;
      place.set(key, { x: col * (NODE_W + COL_GAP), y: (columns[col] - 1) * (NODE_H + ROW_GAP) });
    };
    for (const x of [...xs].sort((a, b) => a.name.localeCompare(b.name))) put(`e:${x.name}`, depth.get(x.name));
    for (const q of [...qs].sort((a, b) => a.name.localeCompare(b.name))) put(`q:${q.name}`, queueCol);
    const width = (queueCol + 1) * (NODE_W + COL_GAP) - COL_GAP + 2;
    const height = Math.max(1, ...columns.map((n) => n ?? 0)) * (NODE_H + ROW_GAP) + 2;

    const byName = new Map(xs.map((x) => [x.name, x]));
    const out = new Map(); // source -> its bindings
    for (const b of bs) out.set(b.source, [...(out.get(b.source) ?? []), b]);
    const edgeRate = (b) => {
      const x = byName.get(b.source);
      const all = out.get(b.source) ?? [];
      const total = dig(x, "message_stats.publish_out_details.rate") ?? 0;
      if (!x || b.destination_type !== "queue") return null;
      if (all.length === 1) return total;
      const toQueues = all.filter((o) => o.destination_type === "queue");
      const distinct = new Set(toQueues.map((o) => o.destination)).size;
      if (x.type === "fanout" && toQueues.length === all.length && distinct === all.length) return total / all.length;
      return null;
    };
    const edges = bs
      .map((b) => {
        const from = place.get(`e:${b.source}`);
        const to = place.get(`${b.destination_type === "exchange" ? "e" : "q"}:${b.destination}`);
        if (!from || !to) return null;
        const x1 = from.x + NODE_W;
        const y1 = from.y + NODE_H / 2;
        const x2 = to.x;
        const y2 = to.y + NODE_H / 2;
        const mx = (x1 + x2) / 2;
        const r = edgeRate(b);
        const title = `${b.source} → ${b.destination} (${b.routing_key || "no routing key"})${r === null ? "" : `, ${rate(r)}`}`;
        const my = (y1 + y2) / 2;
        return s(
          "g",
          { class: "edge", dataset: { source: b.source, destination: b.destination, key: b.routing_key, rate: r === null ? undefined : String(r) } },
          s("title", {}, title),
          s("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }),
          b.routing_key ? s("text", { x: mx, y: my - 4, "text-anchor": "middle" }, short(b.routing_key, 18)) : null,
          r === null ? null : s("text", { x: x2 - 6, y: y2 - 5, "text-anchor": "end", class: "rate" }, rate(r)),
        );
      })
      .filter(Boolean);
    const node = (kind, href, name, sub, p, data) =>
      s(
        "a",
        { href, class: `node ${kind}`, dataset: data },
        s("title", {}, name),
        s("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 4 }),
        s("text", { x: p.x + 8, y: p.y + 19 }, short(name, 20)),
        s("text", { x: p.x + NODE_W - 8, y: p.y + 19, "text-anchor": "end", class: "sub" }, sub),
      );
    const nodes = [
      ...xs.map((x) => node("exchange", exchangeHref(vhost, x.name), x.name, `${x.type} ${rate(dig(x, "message_stats.publish_in_details.rate") ?? 0)}`, place.get(`e:${x.name}`), { exchange: x.name })),
      ...qs.map((q) => node("queue", queueHref(q), q.name, num(q.messages ?? 0), place.get(`q:${q.name}`), { queue: q.name })),
    ];
    mount(graph, s("svg", { width, height, viewBox: `0 0 ${width} ${height}` }, s("g", {}, edges), s("g", {}, nodes)));
  };
  await refresh();
}
