// Drives the connections and channels views in headless Chromium: log in, find the
// connection the Rust test opened (client property connection_name CLIENT) in the
// connections list with its user, open its page (client properties, its channel), see the
// channel in the channels list, then close the connection with a reason from its page.
// Usage: node connection_close.cjs <base url> <user> <password> <client name> <reason> <screenshot dir>
// Exits 0 on success; on failure prints "FAIL <why>" and exits 1.
"use strict";
const { chromium } = require("playwright-core");
const { launchChromium, watch, login, run } = require("./common.cjs");

const [base, user, password, clientName, reason, shots] = process.argv.slice(2);
const STEP_MS = 30000;

async function main() {
  const browser = await launchChromium(chromium);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_MS);
    const watched = watch(page, password);
    page.on("dialog", (d) => d.accept());

    await login(page, base, user, password);

    await page.click('#nav a[data-view="connections"]');
    await page.waitForURL(/#\/connections$/);
    const row = page.locator("#connections-table tbody tr", { hasText: clientName });
    await row.waitFor();
    const cells = await row.locator("td").allTextContents();
    if (cells[1] !== "/" || cells[2] !== user || cells[5] !== "running") {
      throw new Error(`connection row: ${JSON.stringify(cells)}`);
    }
    await page.screenshot({ path: `${shots}/connections.png`, fullPage: true });

    await page.click('#nav a[data-view="channels"]');
    await page.waitForURL(/#\/channels$/);
    await page.locator("#channels-table tbody tr a", { hasText: "(1)" }).waitFor();

    await page.click('#nav a[data-view="connections"]');
    await row.locator("a").click();
    await page.waitForURL(/#\/connections\/.+/);
    await page.locator("#connection-details", { hasText: clientName }).waitFor();
    await page.locator("#connection-channels tbody tr a", { hasText: "(1)" }).waitFor();
    await page.screenshot({ path: `${shots}/connection.png`, fullPage: true });

    await page.fill('#close-connection-form input[name="reason"]', reason);
    await page.click('#close-connection-form button[type="submit"]');
    await page.waitForURL(/#\/connections$/);
    console.log("CLOSED");
    await page.locator("#connections-table tbody tr", { hasText: clientName }).waitFor({ state: "detached" });

    watched.check();
  } finally {
    await browser.close();
  }
}

run(main);
