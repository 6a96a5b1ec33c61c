// Drives the admin views in headless Chromium as guest: add a vhost, add a user with a
// tag, give it permissions there (and see a refused permission's reason), change its
// password, set a topic permission and a vhost limit, see a refused policy's reason then
// add a policy and an operator policy (and see the policy on an imported queue), export the definitions (a
// download holding them) and import a file declaring another vhost and a queue; then log
// in as the new user with the new password and see only its vhost.
// Usage: node admin.cjs <base url> <user> <password> <screenshot dir>
// Exits 0 on success; on failure prints "FAIL <why>" and exits 1.
"use strict";
const fs = require("fs");
const { chromium } = require("playwright-core");
const { launchChromium, watch, login, run } = require("./common.cjs");

const [base, user, password, shots] = process.argv.slice(2);
const STEP_MS = 30000;

async function main() {
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page.setDefaultTimeout(STEP_MS);
    const watched = watch(page, password);
    page.on("dialog", (d) => d.accept());
    const refused = async (form) => {
      const line = page.locator(`${form} p.error`);
      await line.waitFor({ state: "visible" });
      const text = (await line.textContent()).trim();
      if (!text) throw new Error(`${form}: refusal without a reason`);
      return text;
    };
    const login = async (name, pass) => {
      await page.fill("#login-username", name);
      await page.fill("#login-password", pass);
      await page.click("#login-submit");
    };

    await page.goto(`${base}/`);
    await login(user, password);
    await page.locator("#shell").waitFor({ state: "visible" });

    // A vhost.
    await page.click('#nav a[data-view="vhosts"]');
    await page.locator('#vhosts-table tr[data-key="/"]').waitFor();
    await page.fill('#add-vhost-form input[name="name"]', "ui-vh");
    await page.fill('#add-vhost-form input[name="description"]', "made in the UI");
    await page.click('#add-vhost-form button[type="submit"]');
    await page.locator('#vhosts-table tr[data-key="ui-vh"]', { hasText: "made in the UI" }).waitFor();

    // A limit on it.
    await page.fill('#vhost-limit-form input[name="vhost"]', "ui-vh");
    await page.selectOption('#vhost-limit-form select[name="limit"]', "max-queues");
    await page.fill('#vhost-limit-form input[name="value"]', "10");
    await page.click('#vhost-limit-form button[type="submit"]');
    await page.locator('#vhost-limits-table tr[data-key="ui-vh/max-queues"]', { hasText: "10" }).waitFor();

    // A user with the management tag, its permissions, a new password.
    await page.click('#nav a[data-view="users"]');
    await page.locator('#users-table tr[data-key="guest"]').waitFor();
    await page.fill('#add-user-form input[name="name"]', "ui-user");
    await page.fill('#add-user-form input[name="password"]', "first-pw");
    await page.click('#add-user-form button:has-text("management")');
    await page.click('#add-user-form button[type="submit"]');
    await page.locator('#users-table tr[data-key="ui-user"]', { hasText: "management" }).waitFor();

    await page.fill('#permission-form input[name="user"]', "ui-user");
    await page.fill('#permission-form input[name="vhost"]', "no-such-vhost");
    watched.allow4xx = true;
    await page.click('#permission-form button[type="submit"]');
    console.log(`refused permission: ${await refused("#permission-form")}`);
    watched.allow4xx = false;
    await page.fill('#permission-form input[name="vhost"]', "ui-vh");
    await page.click('#permission-form button[type="submit"]');
    await page.locator('#permissions-table tr[data-key="ui-user@ui-vh"]').waitFor();

    await page.fill('#topic-permission-form input[name="user"]', "ui-user");
    await page.fill('#topic-permission-form input[name="vhost"]', "ui-vh");
    await page.fill('#topic-permission-form input[name="write"]', "^ui\\.");
    await page.click('#topic-permission-form button[type="submit"]');
    await page.locator('#topic-permissions-table tr[data-key="ui-user@ui-vh/amq.topic"]', { hasText: "^ui\\." }).waitFor();

    await page.fill('#password-form input[name="name"]', "ui-user");
    await page.fill('#password-form input[name="password"]', "second-pw");
    await page.click('#password-form button[type="submit"]');
    await page.locator("#password-form p.notice").waitFor({ state: "visible" });
    await page.screenshot({ path: `${shots}/users.png`, fullPage: true });

    // Policies: a bad definition is refused with the API's reason, a good one listed.
    await page.click('#nav a[data-view="policies"]');
    await page.locator("#policies-table").waitFor();
    const pf = "#add-policy-form";
    await page.fill(`${pf} input[name="vhost"]`, "ui-vh");
    await page.fill(`${pf} input[name="name"]`, "ui-pol");
    await page.fill(`${pf} input[name="pattern"]`, "^q");
    await page.selectOption(`${pf} select[name="apply-to"]`, "queues");
    await page.fill(`${pf} textarea[name="definition"]`, '{"max-length": "lots"}');
    watched.allow4xx = true;
    await page.click(`${pf} button[type="submit"]`);
    console.log(`refused policy: ${await refused(pf)}`);
    watched.allow4xx = false;
    await page.fill(`${pf} textarea[name="definition"]`, '{"max-length": 5}');
    await page.click(`${pf} button[type="submit"]`);
    await page.locator('#policies-table tr[data-key="ui-pol"]', { hasText: "max-length" }).waitFor();
    await page.selectOption(`${pf} select[name="kind"]`, "operator-policies");
    await page.fill(`${pf} input[name="name"]`, "ui-op");
    await page.fill(`${pf} textarea[name="definition"]`, '{"max-length": 50}');
    await page.click(`${pf} button[type="submit"]`);
    await page.locator('#operator-policies-table tr[data-key="ui-op"]').waitFor();
    await page.screenshot({ path: `${shots}/policies.png`, fullPage: true });

    // Definitions: the export is a download holding what was made above.
    await page.click('#nav a[data-view="definitions"]');
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('#export-form button[type="submit"]')]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), "utf8"));
    if (!exported.users.some((u) => u.name === "ui-user")) throw new Error("export lacks ui-user");
    if (!exported.policies.some((p) => p.name === "ui-pol" && p.vhost === "ui-vh")) throw new Error("export lacks ui-pol");
    // A file that is not JSON is refused before any request; a good one is imported.
    await page.setInputFiles('#import-form input[type="file"]', { name: "broken.json", mimeType: "application/json", buffer: Buffer.from("{") });
    await page.click('#import-form button[type="submit"]');
    await page.locator("#import-form p.error", { hasText: "broken.json is not JSON" }).waitFor();
    const defs = {
      vhosts: [{ name: "ui-imported" }],
      queues: [
        { name: "imported-q", vhost: "ui-imported", durable: true, auto_delete: false, arguments: {} },
        { name: "q-policed", vhost: "ui-vh", durable: true, auto_delete: false, arguments: {} },
      ],
    };
    await page.setInputFiles('#import-form input[type="file"]', { name: "defs.json", mimeType: "application/json", buffer: Buffer.from(JSON.stringify(defs)) });
    await page.click('#import-form button[type="submit"]');
    await page.locator("#import-form p.notice", { hasText: "defs.json imported" }).waitFor();
    await page.click('#nav a[data-view="vhosts"]');
    await page.locator('#vhosts-table tr[data-key="ui-imported"]').waitFor();
    // The imported queue in ui-vh matches ^q: its page shows the policy.
    await page.goto(`${base}/#/queues/ui-vh/q-policed`);
    await page.locator("table.kv tr", { hasText: "Policy" }).locator("td", { hasText: "ui-pol" }).waitFor();

    // The new user: the old password is refused, the new one works; it sees only ui-vh.
    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible" });
    watched.allow4xx = true;
    await login("ui-user", "first-pw");
    await page.locator("#login-error").waitFor({ state: "visible" });
    watched.allow4xx = false;
    await login("ui-user", "second-pw");
    await page.locator("#shell").waitFor({ state: "visible" });
    const shown = await page.textContent("#user");
    if (shown !== "ui-user (management)") throw new Error(`top bar shows ${shown}`);
    const options = await page.locator("#vhost-select option").evaluateAll((os) => os.map((o) => o.value));
    if (JSON.stringify(options) !== JSON.stringify(["", "ui-vh"])) throw new Error(`vhost choices: ${options}`);
    // No admin links for it; the users page typed in shows the API's refusal, and the
    // session stays (that 401 is about the page, not the login).
    if (await page.locator('#nav a[data-view="users"]').isVisible()) throw new Error("users link shown to a management user");
    watched.allow4xx = true;
    await page.goto(`${base}/#/users`);
    const pageError = page.locator("#view > p.error").first();
    await pageError.waitFor({ state: "visible" });
    console.log(`refused users page: ${(await pageError.textContent()).trim()}`);
    await page.click('#nav a[data-view="queues"]');
    await page.locator("#queues-table").waitFor();
    watched.allow4xx = false;
    if (!(await page.locator("#shell").isVisible())) throw new Error("logged out by a refused page");
    console.log("LOGGED IN AS ui-user");

    watched.check();
  } finally {
    await browser.close();
  }
}

run(main);
