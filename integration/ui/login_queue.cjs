// Drives Warren's web UI in headless Chromium (Playwright over the system browser):
// log in through the form, open the queues list, print READY (the Rust test then
// declares QUEUE over AMQP and publishes one message to it), wait for QUEUE to appear
// in the list, open its page, get the message, see a refused delete's reason, take
// screenshots, log out and check the session's credentials are gone.
// Usage: node login_queue.cjs <base url> <user> <password> <queue> <screenshot dir>
// Exits 0 on success; on failure prints "FAIL <why>" and exits 1.
"use strict";
const { chromium } = require("playwright-core");
const { launchChromium, watch, login, run } = require("./common.cjs");

const [base, user, password, queue, shots] = process.argv.slice(2);
const STEP_MS = 30000;

async function main() {
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(STEP_MS);
    // Every request succeeds, but for the one wrong login and the refused delete below.
    const watched = watch(page, password);

    await page.goto(`${base}/`);
    await page.locator("#login-form").waitFor({ state: "visible" });

    // A wrong password is refused with a message, and the form stays.
    await page.fill("#login-username", user);
    await page.fill("#login-password", `${password}-wrong`);
    watched.allow401 = true;
    await page.click("#login-submit");
    await page.locator("#login-error").waitFor({ state: "visible" });
    const refused = await page.textContent("#login-error");
    if (!/wrong username or password/.test(refused)) throw new Error(`login error text: ${refused}`);

    watched.allow401 = false;
    await page.fill("#login-password", password);
    await page.click("#login-submit");
    await page.locator("#shell").waitFor({ state: "visible" });
    const shown = await page.textContent("#user");
    if (!shown.includes(user)) throw new Error(`top bar shows ${shown}`);
    // The overview renders its figures and both charts.
    await page.locator("#total-queues").waitFor();
    await page.locator("#chart-rates canvas").waitFor();
    await page.locator("#chart-queued canvas").waitFor();
    await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });

    await page.click('#nav a[data-view="queues"]');
    await page.waitForURL(/#\/queues/);
    await page.locator("#queues-table").waitFor();
    if ((await page.locator(`#queues-table tr[data-queue="${queue}"]`).count()) !== 0) {
      throw new Error(`${queue} listed before it was declared`);
    }
    console.log("READY");

    // The list refreshes itself: the queue appears without a reload.
    await page.locator(`#queues-table tr[data-queue="${queue}"]`).waitFor();
    // Filtering goes through the API's `name` parameter and into the URL.
    await page.fill("#queue-filter", queue);
    await page.waitForURL(new RegExp(`name=${queue}`));
    await page.locator(`#queues-table tr[data-queue="${queue}"]`).waitFor();
    await page.screenshot({ path: `${shots}/queues.png`, fullPage: true });

    await page.click(`#queues-table tr[data-queue="${queue}"] a`);
    await page.waitForURL(new RegExp(`#/queues/%2F/${queue}$`));
    await page.locator("#queue-name", { hasText: queue }).waitFor();
    await page.locator("#queue-ready").waitFor();
    // Its live depth and rate charts render.
    await page.locator("#queue-chart-rates canvas").waitFor();
    await page.locator("#queue-chart-depth canvas").waitFor();
    // The test published one message ("hello from lapin"): get it back, requeued.
    await page.locator("#queue-total", { hasText: "1" }).waitFor();
    await page.selectOption('#get-form select[name="ackmode"]', "ack_requeue_true");
    await page.click('#get-form button[type="submit"]');
    await page.locator("#get-results pre.payload", { hasText: "hello from lapin" }).waitFor();
    await page.screenshot({ path: `${shots}/queue.png`, fullPage: true });
    // A refused delete (only if empty, and it is not) shows the API's reason; the queue stays.
    page.on("dialog", (d) => d.accept());
    await page.check("#delete-form input[type=checkbox] >> nth=0");
    watched.allow4xx = true;
    await page.click('#delete-form button[type="submit"]');
    const refusal = page.locator("#delete-form p.error");
    await refusal.waitFor({ state: "visible" });
    watched.allow4xx = false;
    const reason = (await refusal.textContent()).trim();
    if (!reason) throw new Error("the refused delete shows no reason");
    console.log(`refused delete: ${reason}`);
    if (!page.url().includes(`#/queues/%2F/${queue}`)) throw new Error(`left the queue page: ${page.url()}`);

    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible" });
    const left = await page.evaluate(() => JSON.stringify(sessionStorage));
    if (left !== "{}") throw new Error(`sessionStorage after logout: ${left}`);
    // A reload after logout asks for the login again.
    await page.reload();
    await page.locator("#login-form").waitFor({ state: "visible" });

    watched.check();
  } finally {
    await browser.close();
  }
}

run(main);
