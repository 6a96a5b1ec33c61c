// Scenario runner shared by the Node client programs: one line per scenario
// (`PASS name`, `FAIL name: reason`, `SKIP name: why (API lacks it)`), exit 1 on any FAIL.
"use strict";

const crypto = require("node:crypto");

class Skip extends Error {}

const url = () => process.env.AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/%2f";
const unique = (prefix) => `${prefix}-${crypto.randomBytes(6).toString("hex")}`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function eventually(fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value || Date.now() > deadline) return value;
    await sleep(50);
  }
}

// Wait until `items` has `want` entries (5 s at most), then 300 ms more.
async function settle(items, want) {
  for (let i = 0; i < 100 && items.length < want; i++) await sleep(50);
  await sleep(300);
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const NESTED_HEADERS = {
  str: "hello",
  int: 42,
  neg: -7,
  bool: true,
  table: { inner: "x", num: 1, deeper: { leaf: "y" } },
  array: [1, "two", { k: "v" }],
};

async function run(scenarios) {
  let failed = 0;
  for (const [name, fn] of scenarios) {
    try {
      await withTimeout(fn(), 30000);
      console.log(`PASS ${name}`);
    } catch (e) {
      if (e instanceof Skip) {
        console.log(`SKIP ${name}: ${e.message} (API lacks it)`);
      } else {
        failed += 1;
        console.log(`FAIL ${name}: ${String((e && e.message) || e).replace(/\n/g, " ")}`);
        if (process.env.CLIENT_DEBUG) console.error(e && e.stack);
      }
    }
  }
  process.exit(failed ? 1 : 0);
}

module.exports = { Skip, url, unique, sleep, settle, check, eventually, run, NESTED_HEADERS };
