// Drives Warren's web UI in headless Chromium while the Rust test keeps the broker under
// load: logs in, watches the overview's charts move (more samples, a publish rate above
// zero, queued messages), takes the README's screenshots (overview, queues list, one
// queue, topology), then checks every main view at a phone's width: nothing wider than
// the screen but scrollable tables, the nav reachable.
// Usage: node under_load.cjs <base url> <user> <password> <queue> <settle s> <screenshot dir> <phone dir>
// (<settle s>: how long the charts fill before the screenshots; 0 in the suite.)
// Prints "MOVED <points> <publish rate> <queued>" once the charts moved; exits 0 on success;
// on failure prints "FAIL <why>" and exits 1.
"use strict";
const { chromium } = require("playwright-core");
const { launchChromium, watch, login, run } = require("./common.cjs");

const [base, user, password, queue, settle, shots, phoneShots] = process.argv.slice(2);
const STEP_MS = 60000;

/** The overview's chart element's test attributes: points and newest values. */
async function chartState(page, id) {
  return page.$eval(`#${id}`, (el) => ({
    points: Number(el.dataset.points || 0),
    newest: Number(el.dataset.newest || 0),
    last: JSON.parse(el.dataset.last || "[]"),
  }));
}

async function waitFor(what, f, ms = STEP_MS, describe = async () => "") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${await describe()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main() {
  const browser = await launchChromium(chromium);
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const watched = watch(page, password);

    await login(page, base, user, password);
    await page.locator("#chart-rates canvas").waitFor();

    // The charts move: new samples arrive and show the load.
    const first = await chartState(page, "chart-rates");
    const moved = await waitFor("the overview charts to show the load", async () => {
      const r = await chartState(page, "chart-rates");
      const q = await chartState(page, "chart-queued");
      const publish = r.last[0] ?? 0;
      const queued = q.last[2] ?? 0;
      // Two polls (5 s apart) after the first drawing, showing publishes and a backlog.
      return r.newest >= first.newest + 9 && publish > 0 && queued > 0 ? { points: r.points, publish, queued } : null;
    }, 90000, async () => JSON.stringify([first, await chartState(page, "chart-rates"), await chartState(page, "chart-queued")]));
    console.log(`MOVED ${moved.points} ${moved.publish} ${moved.queued}`);
    const tile = await page.textContent("#total-messages");
    if (tile.trim() === "0" || tile.trim() === "–") throw new Error(`total messages tile shows ${tile}`);
    await page.waitForTimeout(Number(settle) * 1000);
    await page.screenshot({ path: `${shots}/overview.png` });

    await page.click('#nav a[data-view="queues"]');
    await page.locator(`#queues-table tr[data-queue="${queue}"]`).waitFor();
    // Sorting by a column asks the API (largest first for numbers) and goes into the URL.
    await page.click('#queues-table th:text-is("Total")');
    await page.waitForURL(/sort=messages&desc=1/);
    await page.locator("#queues-table th.sorted-desc").waitFor();
    await waitFor("the queues sorted by total, largest first", async () => {
      const totals = await page.$$eval("#queues-table tbody tr", (rows) => rows.map((r) => Number(r.children[7].textContent.replace(/,/g, ""))));
      return totals.length > 1 && totals.every((t, i) => i === 0 || totals[i - 1] >= t);
    });
    await page.screenshot({ path: `${shots}/queues.png` });
    // A regex filter goes to the API's use_regex.
    await page.check('#view label:has-text("Regex") input');
    await page.fill("#queue-filter", "^orders\\.");
    await page.waitForURL(/regex=1/);
    await waitFor("only the orders.* queues listed", async () => {
      const names = await page.$$eval("#queues-table tbody tr", (rows) => rows.map((r) => r.dataset.queue));
      return names.length === 2 && names.every((n) => n.startsWith("orders."));
    });

    await page.click(`#queues-table tr[data-queue="${queue}"] a`);
    await page.locator("#queue-chart-rates canvas").waitFor();
    // The page draws the queue's recent history at once, then keeps sampling.
    await waitFor("the queue's charts to hold history", async () => {
      const r = await chartState(page, "queue-chart-rates");
      return r.points >= 3 && (r.last[0] ?? 0) > 0;
    });
    await page.screenshot({ path: `${shots}/queue.png` });

    await page.goto(`${base}/#/topology/%2F`);
    await page.locator("#topology svg .node.queue").first().waitFor();
    // A fanout exchange's edges carry its publish-out rate once the rates are sampled.
    await waitFor("a rate on a topology edge", async () => {
      const rates = await page.$$eval("#topology .edge[data-rate]", (els) => els.map((e) => Number(e.dataset.rate)));
      return rates.some((r) => r > 0);
    });
    await page.screenshot({ path: `${shots}/topology.png` });

    // A phone's width: each view fits (tables scroll inside their own box) and the nav
    // links stay on screen.
    await page.setViewportSize({ width: 390, height: 844 });
    const views = ["#/", "#/queues", `#/queues/%2F/${encodeURIComponent(queue)}`, "#/exchanges", "#/connections", "#/channels", "#/users", "#/vhosts", "#/policies", "#/definitions", "#/topology/%2F"];
    for (const hash of views) {
      await page.goto(`${base}/${hash}`);
      await page.locator("#view h1").first().waitFor();
      await page.waitForTimeout(300);
      const { scroll, inner } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
      if (scroll > inner + 1) throw new Error(`${hash} is ${scroll}px wide at a ${inner}px screen`);
      const navOk = await page.$$eval("#nav a", (as) => as.filter((a) => a.offsetParent !== null).every((a) => {
        const r = a.getBoundingClientRect();
        return r.left >= 0 && r.right <= window.innerWidth + 1;
      }));
      if (!navOk) throw new Error(`${hash}: a nav link is off screen at phone width`);
      const name = hash.replace(/[^a-z]+/g, "-").replace(/^-|-$/g, "") || "overview";
      await page.screenshot({ path: `${phoneShots}/phone-${name}.png` });
    }

    await page.click("#logout");
    await page.locator("#login-form").waitFor({ state: "visible" });
    watched.check();
  } finally {
    await browser.close();
  }
}

run(main);
