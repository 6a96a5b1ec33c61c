// Warren's web UI in Firefox (Debian's firefox-esr, driven by Puppeteer over WebDriver
// BiDi): log in, then open every view at a laptop's width and at a phone's, checking each
// renders its heading without an error, that nothing but scrollable tables is wider than
// the screen, and that no script error or failed request happens; see the seeded queue's
// message count and charts; log out.
// Usage: node firefox_views.cjs <base url> <user> <password> <queue> <screenshot dir>
// Prints "VIEWS <n>" (views checked); exits 0 on success, else prints "FAIL <why>", exits 1.
"use strict";
const puppeteer = require("puppeteer-core");
const { watch, run } = require("./common.cjs");

const [base, user, password, queue, shots] = process.argv.slice(2);
const STEP_MS = 30000;

async function main() {
  const browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
    headless: true,
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    await page.setViewport({ width: 1280, height: 860 });
    const watched = watch(page, password);

    await page.goto(`${base}/`);
    await page.waitForSelector("#login-form", { visible: true });
    await page.type("#login-username", user);
    await page.type("#login-password", password);
    await page.click("#login-submit");
    await page.waitForSelector("#shell", { visible: true });
    await page.waitForSelector("#chart-rates canvas");

    const q = `#/queues/%2F/${encodeURIComponent(queue)}`;
    const views = ["#/", "#/queues", q, "#/exchanges", "#/exchanges/%2F/amq.direct", "#/connections", "#/channels", "#/users", "#/vhosts", "#/policies", "#/definitions", "#/topology/%2F"];
    let checked = 0;
    for (const [width, height, label] of [[1280, 860, "laptop"], [390, 844, "phone"]]) {
      await page.setViewport({ width, height });
      for (const view of views.slice(1)) {
        await page.goto(`${base}/${view}`);
        await page.waitForSelector("#view h1");
        if (view === q) {
          await page.waitForFunction(() => document.getElementById("queue-total")?.textContent.trim() === "1");
          await page.waitForSelector("#queue-chart-rates canvas");
          await page.waitForSelector("#queue-chart-depth canvas");
        }
        await new Promise((r) => setTimeout(r, 300));
        const shown = await page.$$eval("#view .error", (es) => es.filter((e) => !e.hidden && e.textContent.trim()).map((e) => e.textContent));
        if (shown.length) throw new Error(`${view} at ${label} width shows an error: ${shown.join("; ")}`);
        const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (over > 1) throw new Error(`${view} is ${over}px wider than a ${width}px screen`);
        checked += 1;
      }
      await page.goto(`${base}/#/`);
      await page.waitForSelector("#total-queues");
      checked += 1;
      await page.screenshot({ path: `${shots}/firefox-${label}-overview.png` });
    }
    await page.setViewport({ width: 1280, height: 860 });
    await page.click("#logout");
    await page.waitForSelector("#login-form", { visible: true });
    const kept = await page.evaluate(() => JSON.stringify(sessionStorage));
    if (kept.includes(btoa(`${user}:${password}`))) throw new Error("credentials kept after log out");
    watched.check();
    console.log(`VIEWS ${checked}`);
  } finally {
    await browser.close();
  }
}

run(main);
