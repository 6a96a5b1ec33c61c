// A list view paged through the API (`page`, `page_size`, `name`, `use_regex`, `sort`,
// `sort_reverse`): the browser only ever holds the page on screen, even at 10,000
// queues. The filter, sort, page and page size live in the URL
// (#/<route>?name=&regex=1&sort=&desc=1&page=&size=), and the page refreshes every 5 s, as
// RabbitMQ's UI does. Used by the queues, exchanges, connections and channels lists.
import * as api from "../api.js";
import * as session from "../session.js";
import { h, mount } from "../dom.js";
import { num } from "../format.js";

const PAGE_SIZES = [20, 50, 100, 500];

/**
 * Render the list into `ctx.main`. `spec`:
 * - `route` ("queues"), `title`, `noun` ("queues"), `id` (the table's id);
 * - `all` (API path over every vhost), `inVhost(vhost)` (API path in one vhost);
 * - `columns`: [{ label, num, cell(item), sort (the API's sort key; makes it sortable) }];
 * - `rowData(item)`: the row's `data-*` attributes;
 * - optional: `filterId`, `summaryId` (element ids), `regex` (offer "Regex"), `after(reload)`
 *   (nodes shown below the table, e.g. a declare form that reloads the list).
 */
export async function renderPaged(ctx, spec) {
  const { main, params } = ctx;
  const state = {
    name: params.get("name") ?? "",
    regex: spec.regex === true && params.get("regex") === "1",
    sort: params.get("sort") ?? "",
    desc: params.get("desc") === "1",
    page: Math.max(1, Number(params.get("page")) || 1),
    size: PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : 100,
  };
  const vhost = session.vhost();
  const filter = h("input", { id: spec.filterId ?? `${spec.id}-filter`, type: "search", placeholder: "Filter by name", value: state.name });
  const regex = spec.regex ? h("input", { type: "checkbox", checked: state.regex }) : null;
  const size = h("select", PAGE_SIZES.map((n) => h("option", { value: String(n) }, `${n} per page`)));
  size.value = String(state.size);
  const summary = h("span.muted", { id: spec.summaryId });
  const pager = h("span.toolbar");
  const error = h("p.error", { role: "alert", hidden: true });
  const table = h("div.table-wrap");

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ page: state.page, page_size: state.size });
    if (state.name) q.set("name", state.name);
    if (state.regex) q.set("use_regex", "true");
    if (state.sort) q.set("sort", state.sort);
    if (state.sort && state.desc) q.set("sort_reverse", "true");
    const own = new URLSearchParams();
    if (state.name) own.set("name", state.name);
    if (state.regex) own.set("regex", "1");
    if (state.sort) own.set("sort", state.sort);
    if (state.desc) own.set("desc", "1");
    if (state.page !== 1) own.set("page", state.page);
    if (state.size !== 100) own.set("size", state.size);
    const hash = `#/${spec.route}${own.size ? `?${own}` : ""}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
    try {
      const result = await api.get(`${vhost ? spec.inVhost(vhost) : spec.all}?${q}`);
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

  const header = (c) => {
    const sorted = c.sort && state.sort === c.sort ? (state.desc ? "sorted-desc" : "sorted-asc") : "";
    const cls = [c.num ? "num" : "", c.sort ? "sortable" : "", sorted].filter(Boolean).join(" ");
    const onclick = c.sort
      ? () => {
          if (state.sort === c.sort) state.desc = !state.desc;
          else {
            state.sort = c.sort;
            state.desc = !!c.num; // numbers: largest first
          }
          load();
        }
      : null;
    return h("th", { class: cls || null, onclick }, c.label);
  };

  const draw = (result) => {
    const items = result.items ?? [];
    summary.textContent = `${num(result.filtered_count)} of ${num(result.total_count)} ${spec.noun}`;
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
    mount(
      table,
      h(
        "table",
        { id: spec.id },
        h("thead", h("tr", spec.columns.map(header))),
        h(
          "tbody",
          items.length === 0
            ? h("tr", h("td", { colspan: String(spec.columns.length) }, h("span.muted", `No ${spec.noun}`)))
            : items.map((item) => h("tr", { dataset: spec.rowData(item) }, spec.columns.map((c) => h(c.num ? "td.num" : "td", c.cell(item))))),
        ),
      ),
    );
  };

  mount(
    main,
    h("h1", spec.title, vhost ? h("span.muted", ` in ${vhost}`) : null),
    h("div.toolbar", filter, regex ? h("label", regex, "Regex") : null, size, summary, pager),
    error,
    table,
    spec.after ? spec.after(() => load()) : null,
  );

  let debounce = null;
  const restart = () => {
    state.page = 1;
    load();
  };
  filter.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.name = filter.value;
      restart();
    }, 250);
  });
  regex?.addEventListener("change", () => {
    state.regex = regex.checked;
    restart();
  });
  size.addEventListener("change", () => {
    state.size = Number(size.value);
    restart();
  });
  const timer = setInterval(load, 5000);
  ctx.stop = () => {
    clearInterval(timer);
    clearTimeout(debounce);
    seq++;
  };
  await load();
}
