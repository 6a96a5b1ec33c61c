// A list view paged through the API (`page`, `page_size`, `name`): the filter, page and
// page size live in the URL (#/<route>?name=&page=&size=), the page on screen refreshes
// every 5 s, and only one page is ever held. Used by the connections and channels lists.
import * as api from "../api.js";
import * as session from "../session.js";
import { h, mount } from "../dom.js";
import { num } from "../format.js";

const PAGE_SIZES = [20, 50, 100, 500];

/**
 * Render the list into `ctx.main`. `spec`: { route ("connections"), title, noun, all
 * (API path over every vhost), inVhost(vhost) (API path in one vhost), id (table id),
 * columns: [{ label, num, cell(item) }], key(item) (the row's data-key) }.
 */
export async function renderPaged(ctx, spec) {
  const { main, params } = ctx;
  const state = {
    name: params.get("name") ?? "",
    page: Math.max(1, Number(params.get("page")) || 1),
    size: PAGE_SIZES.includes(Number(params.get("size"))) ? Number(params.get("size")) : 100,
  };
  const vhost = session.vhost();
  const filter = h("input", { id: `${spec.id}-filter`, type: "search", placeholder: "Filter by name", value: state.name });
  const size = h("select", PAGE_SIZES.map((n) => h("option", { value: String(n) }, `${n} per page`)));
  size.value = String(state.size);
  const summary = h("span.muted");
  const pager = h("span.toolbar");
  const error = h("p.error", { role: "alert", hidden: true });
  const table = h("div.table-wrap");
  mount(main, h("h1", spec.title, vhost ? h("span.muted", ` in ${vhost}`) : null), h("div.toolbar", filter, size, summary, pager), error, table);

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ page: state.page, page_size: state.size });
    if (state.name) q.set("name", state.name);
    const own = new URLSearchParams();
    if (state.name) own.set("name", state.name);
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
        h("thead", h("tr", spec.columns.map((c) => h(c.num ? "th.num" : "th", c.label)))),
        h(
          "tbody",
          items.length === 0
            ? h("tr", h("td", { colspan: String(spec.columns.length) }, h("span.muted", `No ${spec.noun}`)))
            : items.map((item) => h("tr", { dataset: { key: spec.key(item) } }, spec.columns.map((c) => h(c.num ? "td.num" : "td", c.cell(item))))),
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
