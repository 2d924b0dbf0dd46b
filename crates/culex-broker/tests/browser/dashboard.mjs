// Drives the broker's dashboard in Debian's headless chromium: the client
// list shows the paho client and kicks it, a JSON payload shows in the
// topic tree and its chart, a retained message is deleted. Run by
// tests/it/admin_page.rs:
//
//   node dashboard.mjs URL ARTIFACT_DIR [README_SCREENSHOT]
//
// Prints one JSON line of what it saw; exits non-zero on failure (with a
// screenshot of the moment in ARTIFACT_DIR).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, artifacts, readmeShot] = process.argv.slice(2);
if (!url || !artifacts) {
  console.error("usage: node dashboard.mjs URL ARTIFACT_DIR [README_SCREENSHOT]");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "culex-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1400, height: 860 },
  deviceScaleFactor: 1,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = {};
let page;
let failed = null;
try {
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(8000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("#status.ok");

  // The client list shows the paho client; its detail kicks it.
  await page.click('nav a[data-tab="clients"]');
  const row = page.locator('tr[data-client-id="paho-dash"]');
  await row.waitFor();
  result.client_state = await row.locator("td").nth(1).textContent();
  await row.click();
  const kick = page.locator("#kick");
  await kick.click();
  await kick.click();
  await page.waitForFunction(() => {
    const r = document.querySelector('tr[data-client-id="paho-dash"]');
    return !r || r.children[1].textContent === "offline";
  });
  result.kicked = true;

  // The topic tree fills; the JSON topic shows its payload and chart.
  await page.click('nav a[data-tab="topics"]');
  await page.locator('[data-topic="dash"]').click();
  await page.locator('[data-topic="dash/room"]').click();
  await page.locator('[data-topic="dash/room/climate"]').click();
  await page.waitForFunction(() => {
    const chart = document.querySelector("#topic-chart");
    return chart && Number(chart.dataset.points) >= 6;
  }, null, { timeout: 10000 });
  result.chart_points = Number(await page.locator("#topic-chart").getAttribute("data-points"));
  result.last_payload = JSON.parse(await page.locator("#topic-last").textContent());
  result.fields = await page.locator("#topic-detail .field-name").allTextContents();
  result.diff_rows = await page.locator("#topic-diff tr").count();
  // Open the other sensors for the picture.
  await page.locator('[data-topic="sensors"]').click();
  await page.locator('[data-topic="sensors/hall"]').click();
  await page.locator('[data-topic="sensors/kitchen"]').click();
  await page.locator('[data-topic="sensors/kitchen/temp"]').waitFor();
  await page.locator('[data-topic="dash/room/climate"]').click();
  await page.waitForFunction(() => Number(document.querySelector("#topic-chart")?.dataset.points) >= 10,
    null, { timeout: 10000 });
  if (readmeShot) await page.screenshot({ path: readmeShot });
  await page.screenshot({ path: join(artifacts, "dashboard-topics.png") });

  // A retained message, deleted from the browser.
  await page.click('nav a[data-tab="retained"]');
  const kept = page.locator('tr[data-retained-topic="dash/retained/one"]');
  await kept.click();
  const del = page.locator("#delete-retained");
  await del.click();
  await del.click();
  await page.waitForSelector("#retained-deleted");
  await page.waitForFunction(() => !document.querySelector('tr[data-retained-topic="dash/retained/one"]'));
  result.retained_deleted = true;

  // The live log saw the kick; the overview charts moved.
  await page.click('nav a[data-tab="log"]');
  await page.waitForSelector('#log-list li[data-kind="admin"]');
  result.log_admin = await page.locator('#log-list li[data-kind="admin"]').first().textContent();
  await page.click('nav a[data-tab="overview"]');
  await page.waitForFunction(() => Number(document.querySelector("#chart-messages")?.dataset.points) >= 2);
  result.overview_points = Number(await page.locator("#chart-messages").getAttribute("data-points"));
  await page.screenshot({ path: join(artifacts, "dashboard-overview.png") });
  result.page_errors = errors;
} catch (e) {
  failed = e;
  if (page) await page.screenshot({ path: join(artifacts, "dashboard-failure.png") }).catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(result));
if (failed) {
  console.error(String(failed.stack || failed));
  process.exit(1);
}
