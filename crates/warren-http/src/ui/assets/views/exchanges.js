// The exchanges list (#/exchanges?name=&page=&size=): one page at a time from the API
// (`page`, `page_size`, `name`), and the declare form (PUT /api/exchanges/<vhost>/<name>)
// that shows the API's `reason` when the broker refuses.
import * as api from "../api.js";
import * as session from "../session.js";
import { h, mount, errorLine } from "../dom.js";
import { num, rate, dig } from "../format.js";

const PAGE_SIZES = [20, 50, 100, 500];
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

export async function render(ctx) {
  const { main, params } = ctx;
  const state = {
    name: params.get("name") ?? "",
    page: Math.max(1, Number(params.get("page")) || 1),
    size: PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : 100,
  };
  const vhost = session.vhost();
  const filter = h("input", { id: "exchange-filter", type: "search", placeholder: "Filter by name", value: state.name });
  const size = h("select", PAGE_SIZES.map((n) => h("option", { value: String(n) }, `${n} per page`)));
  size.value = String(state.size);
  const summary = h("span.muted", { id: "exchange-summary" });
  const pager = h("span.toolbar");
  const error = h("p.error", { role: "alert", hidden: true });
  const table = h("div.table-wrap");
  mount(
    main,
    h("h1", "Exchanges", vhost ? h("span.muted", ` in ${vhost}`) : null),
    h("div.toolbar", filter, size, summary, pager),
    error,
    table,
    h("div.actions", declareForm(vhost, () => load())),
  );

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ page: state.page, page_size: state.size });
    if (state.name) q.set("name", state.name);
    const own = new URLSearchParams();
    if (state.name) own.set("name", state.name);
    if (state.page !== 1) own.set("page", state.page);
    if (state.size !== 100) own.set("size", state.size);
    const hash = `#/exchanges${own.size ? `?${own}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    const path = vhost ? `/api/exchanges/${api.enc(vhost)}` : "/api/exchanges";
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
    summary.textContent = `${num(result.filtered_count)} of ${num(result.total_count)} exchanges`;
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
    const headers = ["Virtual host", "Name", "Type", "Features", "In/s", "Out/s"];
    mount(
      table,
      h(
        "table",
        { id: "exchanges-table" },
        h("thead", h("tr", headers.map((x, i) => h(i >= 4 ? "th.num" : "th", x)))),
        h(
          "tbody",
          items.length === 0
            ? h("tr", h("td", { colspan: String(headers.length) }, h("span.muted", "No exchanges")))
            : items.map((x) =>
                h(
                  "tr",
                  { dataset: { exchange: x.name } },
                  h("td", x.vhost),
                  h("td", h("a", { href: exchangeHref(x.vhost, x.name) }, x.name === "" ? "(AMQP default)" : x.name)),
                  h("td", x.type),
                  h("td", exchangeFeatures(x)),
                  h("td.num", rate(dig(x, "message_stats.publish_in_details.rate") ?? 0)),
                  h("td.num", rate(dig(x, "message_stats.publish_out_details.rate") ?? 0)),
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
  size.addEventListener("change", () => {
    state.size = Number(size.value);
    state.page = 1;
    load();
  });
  const timer = setInterval(load, 5000);
  ctx.stop = () => {
    clearInterval(timer);
    clearTimeout(debounce);
    seq++;
  };
  await load();
}

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
