// The queues list: one page at a time from the API (`page`, `page_size`, `name`, `sort`,
// `sort_reverse`), so the browser only ever holds one page, even at 10,000 queues. The
// filter, sort and page are kept in the URL (#/queues?name=&sort=&desc=&page=).
import * as api from "../api.js";
import * as session from "../session.js";
import { h, mount } from "../dom.js";
import { num, rate, dig } from "../format.js";

const PAGE_SIZES = [20, 50, 100, 500];

const COLUMNS = [
  { key: "vhost", label: "Virtual host" },
  { key: "name", label: "Name" },
  { key: "type", label: "Type" },
  { key: null, label: "Features" },
  { key: "state", label: "State" },
  { key: "messages_ready", label: "Ready", num: true },
  { key: "messages_unacknowledged", label: "Unacked", num: true },
  { key: "messages", label: "Total", num: true },
  { key: "message_stats.publish_details.rate", label: "In/s", num: true },
  { key: "message_stats.deliver_get_details.rate", label: "Out/s", num: true },
  { key: "consumers", label: "Consumers", num: true },
];

const FEATURE_ARGS = [
  ["x-message-ttl", "TTL"],
  ["x-expires", "Exp"],
  ["x-max-length", "Lim"],
  ["x-max-length-bytes", "Lim B"],
  ["x-dead-letter-exchange", "DLX"],
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

export async function render(ctx) {
  const { main, params } = ctx;
  const state = {
    name: params.get("name") ?? "",
    regex: params.get("regex") === "1",
    sort: params.get("sort") ?? "",
    desc: params.get("desc") === "1",
    page: Math.max(1, Number(params.get("page")) || 1),
    size: PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : 100,
  };
  const vhost = session.vhost();
  const filter = h("input", { id: "queue-filter", type: "search", placeholder: "Filter by name", value: state.name });
  const regex = h("input", { type: "checkbox", checked: state.regex });
  const size = h("select", PAGE_SIZES.map((n) => h("option", { value: String(n) }, `${n} per page`)));
  size.value = String(state.size);
  const summary = h("span.muted", { id: "queue-summary" });
  const pager = h("span.toolbar");
  const error = h("p.error", { role: "alert", hidden: true });
  const table = h("div.table-wrap");
  mount(
    main,
    h("h1", "Queues", vhost ? h("span.muted", ` in ${vhost}`) : null),
    h("div.toolbar", filter, h("label", regex, "Regex"), size, summary, pager),
    error,
    table,
  );

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ page: state.page, page_size: state.size });
    if (state.name) q.set("name", state.name);
    if (state.regex) q.set("use_regex", "true");
    if (state.sort) q.set("sort", state.sort);
    if (state.sort && state.desc) q.set("sort_reverse", "true");
    const path = vhost ? `/api/queues/${api.enc(vhost)}` : "/api/queues";
    const own = new URLSearchParams();
    for (const k of ["name", "sort", "page"]) if (state[k] && !(k === "page" && state.page === 1)) own.set(k, state[k]);
    if (state.regex) own.set("regex", "1");
    if (state.desc) own.set("desc", "1");
    if (state.size !== 100) own.set("size", state.size);
    const hash = `#/queues${own.size ? `?${own}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    try {
      const result = await api.get(`${path}?${q}`);
      if (mine !== seq) return;
      error.hidden = true;
      if (result.page_count > 0 && state.page > result.page_count) {
        state.page = result.page_count;
        return load();
      }
      draw(result);
    } catch (e) {
      if (mine !== seq) return;
      error.textContent = e.message;
      error.hidden = false;
    }
  };

  const draw = (result) => {
    const items = result.items ?? [];
    summary.textContent = `${num(result.filtered_count)} of ${num(result.total_count)} queues`;
    const go = (p) => {
      state.page = p;
      load();
    };
    mount(
      pager,
      h("button", { type: "button", disabled: state.page <= 1, onclick: () => go(state.page - 1) }, "‹ Prev"),
      h("span", `Page ${result.page} of ${Math.max(1, result.page_count)}`),
      h("button", { type: "button", disabled: state.page >= result.page_count, onclick: () => go(state.page + 1) }, "Next ›"),
    );
    const head = COLUMNS.map((c) => {
      const cls = [c.num ? "num" : "", c.key ? "sortable" : "", state.sort === c.key ? (state.desc ? "sorted-desc" : "sorted-asc") : ""]
        .filter(Boolean)
        .join(" ");
      return h("th", {
        class: cls || null,
        onclick: c.key
          ? () => {
              if (state.sort === c.key) state.desc = !state.desc;
              else {
                state.sort = c.key;
                state.desc = !!c.num;
              }
              load();
            }
          : null,
      }, c.label);
    });
    mount(
      table,
      h(
        "table",
        { id: "queues-table" },
        h("thead", h("tr", head)),
        h(
          "tbody",
          items.length === 0
            ? h("tr", h("td", { colspan: String(COLUMNS.length) }, h("span.muted", "No queues")))
            : items.map((q) =>
                h(
                  "tr",
                  { dataset: { queue: q.name } },
                  h("td", q.vhost),
                  h("td", h("a", { href: queueHref(q) }, q.name)),
                  h("td", q.type ?? "classic"),
                  h("td", features(q)),
                  h("td", q.state ?? ""),
                  h("td.num", num(q.messages_ready)),
                  h("td.num", num(q.messages_unacknowledged)),
                  h("td.num", num(q.messages)),
                  h("td.num", rate(dig(q, "message_stats.publish_details.rate") ?? 0)),
                  h("td.num", rate(dig(q, "message_stats.deliver_get_details.rate") ?? 0)),
                  h("td.num", num(q.consumers)),
                ),
              ),
        ),
      ),
    );
  };

  let debounce = null;
  filter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.name = filter.value;
      state.page = 1;
      load();
    }, 250);
  });
  regex.addEventListener("change", () => {
    state.regex = regex.checked;
    state.page = 1;
    load();
  });
  size.addEventListener("change", () => {
    state.size = Number(size.value);
    state.page = 1;
    load();
  });
  // Refresh the page on screen every 5 s, as RabbitMQ's UI does.
  const timer = setInterval(load, 5000);
  ctx.stop = () => {
    clearInterval(timer);
    clearTimeout(debounce);
    seq++;
  };
  await load();
}
