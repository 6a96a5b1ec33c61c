// Measures the queues list's page load in headless Chromium (issue 13: under 2 s at
// 10,000 queues; measured and reported, not a timed test). Against a running broker whose
// API is at <base url>, e.g. one loaded with 10,000 queues by a definitions import:
//   NODE_PATH=$CARGO_TARGET_DIR/node-ui/node_modules node measure_queues.cjs http://127.0.0.1:15672 guest guest
// Prints, per run, the time from navigation to the first page's rows on screen, and the
// time of a re-sort by total messages.
"use strict";
const { chromium } = require("playwright-core");

const [base, user, password, runs = "4"] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${base}/`);
    await page.fill("#login-username", user);
    await page.fill("#login-password", password);
    await page.click("#login-submit");
    await page.locator("#shell").waitFor({ state: "visible" });
    for (let i = 0; i < Number(runs); i++) {
      await page.goto("about:blank");
      const t0 = Date.now();
      await page.goto(`${base}/#/queues`);
      await page.locator("#queues-table tbody tr[data-queue]").first().waitFor();
      const t1 = Date.now();
      await page.click("#queues-table th:nth-child(8)");
      await page.locator("#queues-table th.sorted-desc").waitFor();
      const t2 = Date.now();
      const summary = await page.textContent("#queue-summary");
      console.log(`queues list (${summary}): load ${t1 - t0} ms, re-sort ${t2 - t1} ms`);
    }
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
