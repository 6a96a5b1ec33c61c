// One exchange's page (#/exchanges/<vhost>/<name>, the default exchange as `amq.default`):
// its details, the bindings it is the source of (add, remove by `properties_key`), a
// publish-message form showing the API's `{"routed": ...}` answer, and delete. Every form
// shows the API's `reason` when the broker refuses.
import * as api from "../api.js";
import { poller } from "./poll.js";
import { h, mount, errorLine } from "../dom.js";
import { rate, dig } from "../format.js";
import { exchangeFeatures, parseObject, pathName } from "./exchanges.js";

function row(k, v) {
  return h("tr", h("th", k), h("td", v));
}

export async function render(ctx) {
  const { main, args, navigate } = ctx;
  const [vhost, raw] = args;
  const name = raw === "amq.default" ? "" : raw;
  const base = `/api/exchanges/${api.enc(vhost)}/${api.enc(pathName(name))}`;
  const details = h("div");
  const bindings = h("div", { id: "exchange-bindings" });
  const error = h("p.error", { role: "alert", hidden: true });
  const isDefault = name === "";
  mount(
    main,
    h("h1", "Exchange ", h("span", { id: "exchange-name" }, isDefault ? "(AMQP default)" : name), h("span.muted", ` in ${vhost}`)),
    error,
    details,
    h("h2", "Bindings from this exchange"),
    bindings,
    h(
      "div.actions",
      isDefault ? null : bindForm(vhost, name, () => refresh()),
      publishForm(base),
      isDefault ? null : deleteForm(base, () => navigate("#/exchanges")),
    ),
  );

  const refresh = poller(ctx, error, {
    load: () => Promise.all([api.get(base), isDefault ? [] : api.get(`${base}/bindings/source`)]),
    show: ([x, b]) => {
      const ms = x.message_stats ?? {};
      mount(
        details,
        h(
          "table.kv",
          h(
            "tbody",
            row("Type", x.type),
            row("Features", exchangeFeatures(x)),
            row("Policy", x.policy ?? ""),
            row("Arguments", JSON.stringify(x.arguments ?? {})),
            row("Publish in", rate(dig(ms, "publish_in_details.rate") ?? 0)),
            row("Publish out", rate(dig(ms, "publish_out_details.rate") ?? 0)),
          ),
        ),
      );
      const unbind = async (bd, err) => {
        err.clear();
        const kind = bd.destination_type === "exchange" ? "e" : "q";
        try {
          await api.del(
            `/api/bindings/${api.enc(vhost)}/e/${api.enc(name)}/${kind}/${api.enc(bd.destination)}/${api.enc(bd.properties_key)}`,
          );
          refresh();
        } catch (x2) {
          err.show(x2);
        }
      };
      mount(
        bindings,
        isDefault
          ? h("p.muted", "The default exchange is bound to every queue by its name; those bindings cannot be changed.")
          : h(
              "div.table-wrap",
              h(
                "table",
                { id: "bindings-table" },
                h("thead", h("tr", ["To", "Type", "Routing key", "Arguments", ""].map((t) => h("th", t)))),
                h(
                  "tbody",
                  b.length === 0
                    ? h("tr", h("td", { colspan: "5" }, h("span.muted", "No bindings")))
                    : b.map((bd) => {
                        const err = errorLine();
                        const dest =
                          bd.destination_type === "queue"
                            ? h("a", { href: `#/queues/${encodeURIComponent(vhost)}/${encodeURIComponent(bd.destination)}` }, bd.destination)
                            : h("a", { href: `#/exchanges/${encodeURIComponent(vhost)}/${encodeURIComponent(bd.destination)}` }, bd.destination);
                        return h(
                          "tr",
                          { dataset: { destination: bd.destination, key: bd.properties_key } },
                          h("td", dest),
                          h("td", bd.destination_type),
                          h("td", bd.routing_key),
                          h("td", JSON.stringify(bd.arguments ?? {})),
                          h("td", h("button.danger", { type: "button", onclick: () => unbind(bd, err) }, "Unbind"), err.el),
                        );
                      }),
                ),
              ),
            ),
      );
    },
    describe: (e) => (e.status === 404 ? `Exchange ${name} does not exist in ${vhost} (${e.message}).` : e.message),
  });
  await refresh();
}

function bindForm(vhost, source, done) {
  const kind = h("select", { name: "destination_type" }, h("option", { value: "q" }, "To queue"), h("option", { value: "e" }, "To exchange"));
  const dest = h("input", { name: "destination", required: true });
  const key = h("input", { name: "routing_key" });
  const args = h("textarea", { name: "arguments", rows: "2", placeholder: "{}" });
  const err = errorLine();
  const form = h(
    "form.card",
    { id: "bind-form" },
    h("h2", "Add binding from this exchange"),
    h("label", "Destination", kind, dest),
    h("label", "Routing key", key),
    h("label", "Arguments (JSON)", args),
    h("button.primary", { type: "submit" }, "Bind"),
    err.el,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    try {
      const body = { routing_key: key.value, arguments: parseObject(args.value, "Arguments") };
      await api.post(`/api/bindings/${api.enc(vhost)}/e/${api.enc(source)}/${kind.value}/${api.enc(dest.value)}`, body);
      dest.value = "";
      key.value = "";
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}

function publishForm(base) {
  const key = h("input", { name: "routing_key" });
  const mode = h("select", { name: "delivery_mode" }, h("option", { value: "1" }, "1 - Non-persistent"), h("option", { value: "2" }, "2 - Persistent"));
  const headers = h("textarea", { name: "headers", rows: "2", placeholder: '{"x-trace": "abc"}' });
  const props = h("textarea", { name: "properties", rows: "2", placeholder: '{"content_type": "text/plain", "priority": 1}' });
  const payload = h("textarea", { name: "payload", rows: "4" });
  const err = errorLine();
  const out = h("p.notice", { id: "publish-result", hidden: true });
  const form = h(
    "form.card",
    { id: "publish-form" },
    h("h2", "Publish message"),
    h("label", "Routing key", key),
    h("label", "Delivery mode", mode),
    h("label", "Headers (JSON)", headers),
    h("label", "Other properties (JSON)", props),
    h("label", "Payload", payload),
    h("button.primary", { type: "submit" }, "Publish message"),
    err.el,
    out,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    out.hidden = true;
    try {
      const properties = parseObject(props.value, "Properties");
      properties.delivery_mode = Number(mode.value);
      const hdrs = parseObject(headers.value, "Headers");
      if (Object.keys(hdrs).length) properties.headers = hdrs;
      const answer = await api.post(`${base}/publish`, {
        routing_key: key.value,
        properties,
        payload: payload.value,
        payload_encoding: "string",
      });
      out.textContent = answer.routed ? "Message published and routed." : "Message published, but not routed to any queue.";
      out.dataset.routed = String(answer.routed);
      out.hidden = false;
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}

function deleteForm(base, done) {
  const err = errorLine();
  const ifUnused = h("input", { type: "checkbox" });
  const form = h(
    "form.card",
    { id: "delete-exchange-form" },
    h("h2", "Delete"),
    h("label", ifUnused, "Only if unused"),
    h("button.danger", { type: "submit" }, "Delete exchange"),
    err.el,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.clear();
    if (!confirm("Delete this exchange?")) return;
    try {
      await api.del(`${base}${ifUnused.checked ? "?if-unused=true" : ""}`);
      done();
    } catch (x) {
      err.show(x);
    }
  });
  return form;
}
