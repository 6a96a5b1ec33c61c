// What the browser scripts share: launching Debian's Chromium, a watch on a page that
// records every problem (a script error, a console error, a failed request that was not
// expected, a password in a URL), logging in through the form, and the exit convention
// (exit 0, or print "FAIL <why>" and exit 1, which the Rust tests read). The watch works
// on Playwright's and Puppeteer's pages alike (both emit these events).
"use strict";

/** Debian's Chromium through Playwright (`chromium` is playwright-core's). */
function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * Watch `page`. The returned object collects `problems`; set `allow4xx` (any 4xx) or
 * `allow401` while a step expects the API to refuse; `check()` throws with every problem.
 */
function watch(page, password) {
  const w = {
    problems: [],
    allow4xx: false,
    allow401: false,
    check() {
      if (w.problems.length) throw new Error(w.problems.join("; "));
    },
  };
  page.on("pageerror", (e) => w.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // A refused request also logs "Failed to load resource"; the response check decides.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      w.problems.push(`console error: ${m.text()}`);
    }
  });
  page.on("response", (r) => {
    const status = r.status();
    if (status === 401 && w.allow401) return;
    if (status >= 400 && status < 500 && w.allow4xx) return;
    if (status >= 400) w.problems.push(`${status} for ${r.url()}`);
  });
  if (password) {
    page.on("request", (r) => {
      if (r.url().includes(password)) w.problems.push(`password in a URL: ${r.url()}`);
    });
  }
  return w;
}

/** Log in through the form (a Playwright page) and wait for the app's shell. */
async function login(page, base, user, password) {
  await page.goto(`${base}/`);
  await page.fill("#login-username", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.locator("#shell").waitFor({ state: "visible" });
}

/** Run `main` and exit: 0 when it resolves, else print "FAIL <why's first line>" (the
 * whole error on stderr) and exit 1. */
function run(main) {
  main().then(
    () => process.exit(0),
    (e) => {
      console.log(`FAIL ${String(e.message).split("\n")[0]}`);
      console.error(e);
      process.exit(1);
    },
  );
}

module.exports = { launchChromium, watch, login, run };
