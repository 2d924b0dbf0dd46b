// Presses and holds blue's BOOT button in the demo page with a real headless
// chromium, and checks that green's LED follows. Run by tests/it/browser.rs:
//
//   node press.mjs URL ARTIFACT_DIR [README_SCREENSHOT]
//
// Prints one JSON line with the measured delays; exits non-zero on failure.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, artifacts, readmeShot] = process.argv.slice(2);
if (!url || !artifacts) {
  console.error("usage: node press.mjs URL ARTIFACT_DIR [README_SCREENSHOT]");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(artifacts, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "culex-chromium-"));

const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1180, height: 640 },
  deviceScaleFactor: 1,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const timeout = 5000;
let failed = null;
const result = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeout);
  await page.goto(url);
  // Both boards drawn and connected, green's LED out, the stream live.
  await page.waitForSelector("#board-blue .link.online");
  await page.waitForSelector("#board-green .link.online");
  await page.waitForSelector("#stream.live");
  await page.waitForSelector('#board-green[data-led="off"]');
  // Let the monitor show some traffic before pressing.
  await page.waitForFunction(() => document.querySelectorAll("#log .line").length >= 2);

  // Note when green's LED changes in the DOM, as the page sees it (the
  // waits below poll, which would add their own delay to the figures).
  await page.evaluate(() => {
    window.ledChanges = [];
    const green = document.querySelector("#board-green");
    new MutationObserver(() => window.ledChanges.push([green.dataset.led, Date.now()]))
      .observe(green, { attributes: true, attributeFilter: ["data-led"] });
  });
  const changedAt = async (state, since) => {
    const changes = await page.evaluate(() => window.ledChanges);
    const hit = changes.find(([led, at]) => led === state && at >= since);
    return hit ? hit[1] - since : null;
  };
  const button = page.locator("#board-blue .btn");
  const box = await button.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  let start = Date.now();
  await page.mouse.down();
  await page.waitForSelector('#board-green[data-led="on"]');
  result.on_ms = await changedAt("on", start);
  result.green_led_class = await page.getAttribute("#board-green .led", "class");
  // Blue's own LED stays out: only the peer's button lights it.
  result.blue_led = await page.getAttribute("#board-blue", "data-led");
  // The monitor shows blue's button held, as mosquitto_sub -v prints it.
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#log .line")].some((l) => l.textContent === "blue/btn/0 0"));
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(artifacts, "demo-pressed.png") });
  if (readmeShot) await page.screenshot({ path: readmeShot });

  start = Date.now();
  await page.mouse.up();
  await page.waitForSelector('#board-green[data-led="off"]');
  result.off_ms = await changedAt("off", start);
  await page.screenshot({ path: join(artifacts, "demo-released.png") });
} catch (err) {
  failed = err;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) {
  console.error("browser check failed:", failed.message || failed);
  process.exit(1);
}
console.log(JSON.stringify(result));
