// Measures the explorer for the `explorer` benchmark (crates/bench/src/bin/explorer.rs): the
// gzipped size of its files, and for the deal and market views, over RUNS loads each in a new
// page, the time to the first contentful paint and to the view drawn. Prints one JSON object.

import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const market = process.env.MARKET_URL;
const deal = process.env.DEAL_ID;
const runs = Number(process.env.RUNS ?? 5);
const dir = process.env.EXPLORER_DIR;

const assets = ["index.html", "app.js", "app.css"].map((name) => {
  const bytes = readFileSync(`${dir}/${name}`);
  return { name, bytes: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
});

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const views = {};
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const cases = {
    deal: [`#/deal/${deal}`, "table:has(caption:text('Contributions'))"],
    market: ["", "table:has(caption:text('Latest deals')) tbody tr"],
  };
  for (const [name, [path, drawn]] of Object.entries(cases)) {
    const paint = [];
    const shown = [];
    for (let i = 0; i < runs; i++) {
      const page = await context.newPage();
      const started = Date.now();
      await page.goto(`${market}/${path}`);
      await page.locator(drawn).first().waitFor();
      shown.push(Date.now() - started);
      paint.push(
        await page.evaluate(() => {
          const entry = performance.getEntriesByName("first-contentful-paint")[0];
          return entry ? Math.round(entry.startTime) : -1;
        }),
      );
      await page.close();
    }
    views[name] = {
      paintP50: median(paint),
      paintMax: Math.max(...paint),
      drawnP50: median(shown),
      drawnMax: Math.max(...shown),
    };
  }
} finally {
  await browser.close();
}
console.log(
  JSON.stringify({
    browser: `Chromium ${browser.version()}`,
    assets,
    totalBytes: assets.reduce((s, a) => s + a.bytes, 0),
    totalGzipped: assets.reduce((s, a) => s + a.gzipped, 0),
    views,
  }),
);
