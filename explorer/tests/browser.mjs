// Drives Debian's Chromium through playwright-core over a running devnet's explorer, as a
// person would, and checks what the pages show. Called by the poco-cli test `explorer`, which
// sets the devnet up and passes what it made in the environment:
//   MARKET_URL, DEAL_ID, TASK_ID, BYZANTINE (the byzantine worker), WORKERPOOL, SCREENSHOTS,
//   HOSTILE_APP and HOSTILE_NAME (an app with markup in its name), CLAIMED_TASK (a task
//   claimed past its final deadline), REQUESTER.
// Protocol on stdio: prints `market-open` when the market page is shown; then reads one line,
// the hash of an order just published, and checks it appears within 2 s. Prints one JSON line
// of results last; exits non-zero on the first failed check.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const market = env("MARKET_URL");
const shots = env("SCREENSHOTS");
const axeSource = readFileSync(new URL("../../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const results = { pages: {}, violations: {} };

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** axe-core on the page: the serious and critical violations. */
async function accessibility(page, name) {
  await page.addScriptTag({ content: axeSource });
  const found = await page.evaluate(async () => {
    const report = await window.axe.run(document, { resultTypes: ["violations"] });
    return report.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  results.violations[name] = found;
  const serious = found.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(serious.length === 0, `${name}: serious accessibility violations ${JSON.stringify(serious)}`);
}

async function show(page, path, name, ready) {
  const started = Date.now();
  await page.goto(`${market}/${path}`);
  await page.locator("main:not([aria-busy])").waitFor();
  await ready();
  results.pages[name] = { ms: Date.now() - started };
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  await accessibility(page, name);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  // axe is injected as a script: the page's own policy allows none but its files.
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();

  // The deal of a trust-4 run with a byzantine worker: every task COMPLETED, the byzantine
  // worker's contribution losing, its stake seized.
  const deal = env("DEAL_ID");
  await show(page, `#/deal/${deal}`, "deal", async () => {
    await page.getByRole("heading", { name: /^Deal/ }).waitFor();
  });
  const statuses = await page.locator("table:has(caption:text('Tasks')) tbody tr td:nth-child(3)").allTextContents();
  check(statuses.length > 0 && statuses.every((s) => s === "COMPLETED"), `tasks: ${statuses}`);
  const byzantine = env("BYZANTINE").toLowerCase();
  const losing = page.locator(`tr:has(a[title="${env("BYZANTINE")}" i])`).filter({ hasText: "losing" });
  check((await losing.count()) > 0, `the byzantine worker ${byzantine} is not shown losing`);
  check((await losing.first().textContent()).includes("seized"), "its stake is not shown seized");

  // The workerpool: its deals and its workers' scores.
  await show(page, `#/account/${env("WORKERPOOL")}`, "workerpool", async () => {
    await page.getByRole("heading", { name: /^Workerpool/ }).waitFor();
  });
  check((await page.getByText("30% of the workerpool price").count()) === 1, "the pool's policy is shown");
  const ended = await page.getByText(/^Tasks of its deals:/).textContent();
  const [, completed, failed] = ended.match(/(\d+) completed, (\d+) failed/) ?? [];
  check(Number(completed) >= 3 && Number(failed) >= 1, `the pool's completed and failed tasks: ${ended}`);
  check((await page.locator("table:has(caption:text('Members'))").count()) === 1, "the pool's members are listed");
  const workers = page.locator("table:has(caption:text('Workers'))");
  check((await workers.count()) === 1, "the workerpool page lists its workers");
  const byzantineRow = workers.locator(`tr:has(a[title="${env("BYZANTINE")}" i])`);
  check((await byzantineRow.count()) === 1, "the byzantine worker is among them");
  // The pool's price over time: a chart, told in words too.
  const chart = page.locator("figure.chart:has(figcaption:text('workerpool'))");
  check((await chart.count()) === 1, "the workerpool page charts its price over time");
  check((await chart.locator("canvas").count()) >= 1, "the chart is drawn");
  // Each worker's score, as the chain holds it, and its losing contribution.
  const cells = await byzantineRow.locator("td").allTextContents();
  check(/^\d+$/.test(cells[1]), `the byzantine worker's score is shown: ${cells}`);
  check(Number(cells[3]) >= 1, `its faulty contribution is counted: ${cells}`);
  const scores = await workers.locator("tbody tr td:nth-child(2)").allTextContents();
  check(scores.every((s) => /^\d+$/.test(s)), `every worker has a score: ${scores}`);

  // An app's page: its registry record as its owner wrote it (markup shown as text, never
  // run), its checksum and its open orders.
  await show(page, `#/account/${env("HOSTILE_APP")}`, "app", async () => {
    await page.getByRole("heading", { name: /^App/ }).waitFor();
  });
  const named = page.locator("dt:text-is('name') + dd");
  check((await named.textContent()) === env("HOSTILE_NAME"), `the name is shown as text: ${await named.textContent()}`);
  check((await page.locator("main img").count()) === 0, "the name's markup made no element");
  check((await page.title()) !== "owned", "the name's script did not run");
  const checksum = await page.locator("dt:text-is('checksum (sha256)') + dd").textContent();
  check(/^0x[0-9a-f]{64}$/.test(checksum), `the checksum is shown: ${checksum}`);
  const appOrders = page.locator("table:has(caption:text('Open app orders')) tbody tr a");
  check((await appOrders.count()) >= 1, "the app's open orders are listed");

  // A task claimed past its final deadline: FAILED, the sponsor refunded, the scheduler's
  // stake seized.
  await show(page, `#/task/${env("CLAIMED_TASK")}`, "task-claimed", async () => {
    await page.getByRole("heading", { name: /^Task/ }).waitFor();
  });
  check((await page.locator("h1 .status").textContent()) === "FAILED", "the claimed task is FAILED");
  const claim = await page.locator("p.claim").textContent();
  check(/[\d.]+ RLC refunded to the sponsor/.test(claim) && /stake of [\d.]+ RLC seized/.test(claim), `the claim's amounts: ${claim}`);

  // An account: its free and frozen funds.
  await show(page, `#/account/${env("REQUESTER")}`, "requester", async () => {
    await page.getByRole("heading", { name: /^Account/ }).waitFor();
  });
  for (const fact of ["balance", "frozen"]) {
    const value = await page.locator(`dt:text-is('${fact}') + dd`).textContent();
    check(/^[\d.]+ RLC/.test(value), `the ${fact} is shown: ${value}`);
  }

  // Search: a task by its id.
  await page.goto(`${market}/`);
  await page.locator("main:not([aria-busy]) h1").waitFor();
  await page.getByRole("searchbox", { name: "Search" }).fill(env("TASK_ID"));
  await page.getByRole("button", { name: "Go" }).click();
  await page.waitForURL(`**/#/task/${env("TASK_ID")}`);
  await page.getByRole("heading", { name: /^Task/ }).waitFor();
  await page.screenshot({ path: `${shots}/task.png`, fullPage: true });
  await accessibility(page, "task");

  // The API's documentation, as a page.
  await show(page, "#/api", "api", async () => {
    await page.getByRole("heading", { name: /GET \/deals\/\{dealId\}\/tasks/ }).waitFor();
  });

  // On a phone's width, the deal page fits: nothing wider than the screen but its tables,
  // which scroll in their own box.
  await page.setViewportSize({ width: 375, height: 800 });
  await show(page, `#/deal/${deal}`, "deal-phone", async () => {
    await page.getByRole("heading", { name: /^Deal/ }).waitFor();
  });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `the deal page is ${overflow}px wider than a phone`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // From the keyboard: Tab goes from the home link through the menu to the search box, and on
  // into the page's links.
  const fresh = await context.newPage();
  await fresh.goto(`${market}/#/deal/${deal}`);
  await fresh.locator("main:not([aria-busy]) h1").waitFor();
  const stops = [];
  for (let i = 0; i < 8; i++) {
    await fresh.keyboard.press("Tab");
    stops.push(await fresh.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || ""));
  }
  await fresh.close();
  check(stops[0] === "poco explorer", `the first stop of Tab is the home link, not ${stops[0]}`);
  check(stops.includes("query"), `Tab reaches the search box: ${stops}`);
  check(stops.some((s) => s.startsWith("0x")), `Tab reaches the page's links: ${stops}`);

  // The market page, live: an order published shows within 2 s.
  await show(page, "", "market", async () => {
    await page.getByRole("heading", { name: "Market" }).waitFor();
  });
  console.log("market-open");
  const lines = createInterface({ input: process.stdin });
  const hash = (await lines[Symbol.asyncIterator]().next()).value.trim();
  const published = Date.now();
  await page.locator(`a[title="${hash}"]`).first().waitFor({ timeout: 2000 });
  results.liveUpdateMs = Date.now() - published;
  await page.screenshot({ path: `${shots}/market-updated.png`, fullPage: true });
  lines.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
