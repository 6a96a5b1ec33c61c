// Definitions (#/definitions): export the broker's definitions (GET /api/definitions) as
// a JSON file download, and import a file (POST /api/definitions), showing the API's
// reason when it refuses.
import * as api from "../api.js";
import { h, mount } from "../dom.js";
import { formCard } from "./forms.js";

export async function render(ctx) {
  const { main } = ctx;
  const file = h("input", { name: "file", type: "file", accept: "application/json,.json", required: true });
  mount(
    main,
    h("h1", "Definitions"),
    h("p.muted", "Users, virtual hosts, permissions, policies, queues, exchanges and bindings, as RabbitMQ's definitions JSON."),
    h(
      "div.actions",
      formCard("export-form", "Export definitions", [], "Download definitions", async () => {
        const defs = await api.get("/api/definitions");
        const blob = new Blob([JSON.stringify(defs, null, 2)], { type: "application/json" });
        const url = URL.createObjectURL(blob);
        const a = h("a", { href: url, download: `warren-definitions-${new Date().toISOString().slice(0, 10)}.json` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
        return "Definitions downloaded.";
      }),
      formCard("import-form", "Import definitions", [h("label", "Definitions file", file)], "Upload definitions", async () => {
        const chosen = file.files?.[0];
        if (!chosen) throw new Error("Choose a definitions file first.");
        const text = await chosen.text();
        let body;
        try {
          body = JSON.parse(text);
        } catch (e) {
          throw new Error(`${chosen.name} is not JSON: ${e.message}`);
        }
        await api.post("/api/definitions", body);
        return `Definitions from ${chosen.name} imported.`;
      }),
    ),
  );
}
