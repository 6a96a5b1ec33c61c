// Building blocks the admin views share: a plain table, and a form card that runs an
// API call on submit and shows the API's `reason` (or a notice) under its button.
import { h, errorLine } from "../dom.js";

/** A table with `headers`, `rows` (tr elements) and a muted `empty` line when none. */
export function listTable(id, headers, rows, empty) {
  return h(
    "div.table-wrap",
    h(
      "table",
      { id },
      h("thead", h("tr", headers.map((x) => h("th", x)))),
      h("tbody", rows.length ? rows : h("tr", h("td", { colspan: String(headers.length) }, h("span.muted", empty)))),
    ),
  );
}

/**
 * A form card: `fields` (labels, inputs), a submit button, the error line and a notice.
 * `submit()` does the work and resolves to the notice text (or nothing); a throw shows
 * its message (the API's reason) in the error line.
 */
export function formCard(id, title, fields, button, submit, danger = false) {
  const err = errorLine();
  const ok = h("p.notice", { hidden: true });
  const form = h("form.card", { id }, h("h2", title), fields, h(danger ? "button.danger" : "button.primary", { type: "submit" }, button), err.el, ok);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    ok.hidden = true;
    try {
      const notice = await submit();
      if (notice) {
        ok.textContent = notice;
        ok.hidden = false;
      }
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}

/** A row's delete button: confirm, call `del()`, show a refusal's reason beside it. */
export function deleteButton(what, del) {
  const err = errorLine();
  const button = h("button.danger", {
    type: "button",
    onclick: async () => {
      err.clear();
      if (!confirm(`Delete ${what}?`)) return;
      try {
        await del();
      } catch (x) {
        err.show(x);
      }
    },
  }, "Delete");
  return h("span", button, err.el);
}
