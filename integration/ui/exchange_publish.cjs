// Drives the exchanges views in headless Chromium: log in, declare EXCHANGE (direct) with
// the declare form, see a refused redeclare (other type) show the API's reason, open the
// exchange's page, bind it to QUEUE (declared by the Rust test), see the binding in the
// topology view, publish a message with
// headers and delivery mode 2 and see it routed, get it back on the queue's page, unbind,
// and see the next publish answered as not routed.
// Usage: node exchange_publish.cjs <base url> <user> <password> <exchange> <queue> <screenshot dir>
// Exits 0 on success; on failure prints "FAIL <why>" and exits 1.
"use strict";
const { chromium } = require("playwright-core");
const { launchChromium, watch, login, run } = require("./common.cjs");

const [base, user, password, exchange, queue, shots] = process.argv.slice(2);
const STEP_MS = 30000;

async function main() {
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_MS);
    const watched = watch(page, password);
    page.on("dialog", (d) => d.accept());

    await login(page, base, user, password);

    await page.click('#nav a[data-view="exchanges"]');
    await page.waitForURL(/#\/exchanges/);
    await page.locator('#exchanges-table tr[data-exchange="amq.topic"]').waitFor();

    // Declare through the form; the list shows it.
    const form = "#declare-exchange-form";
    await page.fill(`${form} input[name="name"]`, exchange);
    await page.selectOption(`${form} select[name="type"]`, "direct");
    await page.click(`${form} button[type="submit"]`);
    await page.locator(`${form} p.notice`).waitFor({ state: "visible" });
    await page.fill("#exchange-filter", exchange);
    await page.waitForURL(new RegExp(`name=${exchange}`));
    await page.locator(`#exchanges-table tr[data-exchange="${exchange}"]`).waitFor();

    // Redeclaring it as fanout is refused: the form shows the API's reason.
    await page.fill(`${form} input[name="name"]`, exchange);
    await page.selectOption(`${form} select[name="type"]`, "fanout");
    watched.allow4xx = true;
    await page.click(`${form} button[type="submit"]`);
    const refusal = page.locator(`${form} p.error`);
    await refusal.waitFor({ state: "visible" });
    watched.allow4xx = false;
    const reason = (await refusal.textContent()).trim();
    if (!/inequivalent arg 'type'/.test(reason)) throw new Error(`refused redeclare shows: ${reason}`);
    console.log(`refused redeclare: ${reason}`);
    await page.screenshot({ path: `${shots}/exchanges.png`, fullPage: true });

    await page.click(`#exchanges-table tr[data-exchange="${exchange}"] a`);
    await page.waitForURL(new RegExp(`#/exchanges/%2F/${exchange}$`));
    await page.locator("#exchange-name", { hasText: exchange }).waitFor();

    // Bind to the queue with routing key "k".
    await page.fill('#bind-form input[name="destination"]', queue);
    await page.fill('#bind-form input[name="routing_key"]', "k");
    await page.click('#bind-form button[type="submit"]');
    await page.locator(`#bindings-table tr[data-destination="${queue}"]`).waitFor();

    // The topology view draws the binding as an edge; its queue node links to the queue.
    await page.click('#nav a[data-view="topology"]');
    await page.locator(`#topology g.edge[data-source="${exchange}"][data-destination="${queue}"]`).waitFor();
    const queueLink = await page.locator(`#topology a.node.queue[data-queue="${queue}"]`).getAttribute("href");
    if (queueLink !== `#/queues/%2F/${queue}`) throw new Error(`queue node links to ${queueLink}`);
    await page.screenshot({ path: `${shots}/topology.png`, fullPage: true });
    await page.click(`#topology a.node.exchange[data-exchange="${exchange}"]`);
    await page.waitForURL(new RegExp(`#/exchanges/%2F/${exchange}$`));
    await page.locator(`#bindings-table tr[data-destination="${queue}"]`).waitFor();

    // Publish: routed.
    const pub = "#publish-form";
    await page.fill(`${pub} input[name="routing_key"]`, "k");
    await page.selectOption(`${pub} select[name="delivery_mode"]`, "2");
    await page.fill(`${pub} textarea[name="headers"]`, '{"x-from": "ui"}');
    await page.fill(`${pub} textarea[name="payload"]`, "hello from the exchange page");
    await page.click(`${pub} button[type="submit"]`);
    await page.locator('#publish-result[data-routed="true"]').waitFor({ state: "visible" });
    await page.screenshot({ path: `${shots}/exchange.png`, fullPage: true });

    // Broken headers JSON is refused in the form before any request.
    await page.fill(`${pub} textarea[name="headers"]`, "{not json");
    await page.click(`${pub} button[type="submit"]`);
    await page.locator(`${pub} p.error`, { hasText: "Headers must be a JSON object" }).waitFor();
    await page.fill(`${pub} textarea[name="headers"]`, "");

    // The message is on the queue, with its properties.
    await page.goto(`${base}/#/queues/%2F/${queue}`);
    await page.locator("#queue-total", { hasText: "1" }).waitFor();
    await page.selectOption('#get-form select[name="ackmode"]', "ack_requeue_false");
    await page.click('#get-form button[type="submit"]');
    await page.locator("#get-results pre.payload", { hasText: "hello from the exchange page" }).waitFor();
    const props = await page.textContent("#get-results");
    if (!props.includes('"delivery_mode":2') || !props.includes('"x-from":"ui"')) {
      throw new Error(`message properties: ${props}`);
    }
    // The queue page lists the binding from the exchange.
    await page.locator("td", { hasText: exchange }).first().waitFor();

    // Unbind on the exchange page; the next publish is not routed.
    await page.goto(`${base}/#/exchanges/%2F/${exchange}`);
    await page.locator(`#bindings-table tr[data-destination="${queue}"]`).waitFor();
    await page.click(`#bindings-table tr[data-destination="${queue}"] button`);
    await page.locator("#bindings-table td", { hasText: "No bindings" }).waitFor();
    await page.fill(`${pub} input[name="routing_key"]`, "k");
    await page.fill(`${pub} textarea[name="payload"]`, "lost");
    await page.click(`${pub} button[type="submit"]`);
    await page.locator('#publish-result[data-routed="false"]').waitFor({ state: "visible" });

    // Delete it: back on the list, without it.
    await page.click('#delete-exchange-form button[type="submit"]');
    await page.waitForURL(/#\/exchanges$/);
    await page.locator('#exchanges-table tr[data-exchange="amq.topic"]').waitFor();
    if ((await page.locator(`#exchanges-table tr[data-exchange="${exchange}"]`).count()) !== 0) {
      throw new Error(`${exchange} still listed after delete`);
    }

    watched.check();
  } finally {
    await browser.close();
  }
}

run(main);
