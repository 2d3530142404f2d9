// Drives the demo page in a visible Chromium window (for tests/gui/demo.sh, under Xvfb): connects,
// clicks "Request session" (the app then shows its consent dialog, answered by the calling script),
// clicks "Start" and waits until the VM's API is up. Prints one marker line per step on stdout
// (CONNECTED, REQUESTED, SESSION, RUNNING, CLOSED) and waits for a line on stdin before closing the VM.
// SCREENSHOT=FILE saves a picture of the page once the VM's API answers.
// Usage: node demo-gui-driver.mjs PAGE_URL
import { createInterface } from "node:readline";
import { CHROMIUM, tempDir } from "./lib/harness.mjs";

const url = process.argv[2];
const VM_WAIT = 300_000;
const say = (m) => console.log(m);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((r) => lines.once("line", r));

const { chromium } = await import("playwright-core");
const context = await chromium.launchPersistentContext(tempDir("cvm-demo-chromium-"), {
  executablePath: CHROMIUM, headless: false, viewport: null,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-position=0,0", "--window-size=1000,780"],
});
const page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (e) => console.error(`[pageerror] ${e.message}`));
try {
  await page.goto(url);
  await page.waitForSelector('[data-testid=connection][data-state=connected]', { timeout: 30_000 });
  say("CONNECTED");
  await page.click("[data-testid=request]");
  say("REQUESTED");
  await page.waitForSelector("#vm:not([hidden])", { timeout: VM_WAIT });
  say("SESSION");
  await page.click('button[data-action="start"]');
  await page.waitForSelector('[data-testid=api-link][aria-disabled=false]', { timeout: VM_WAIT });
  await page.waitForSelector('[data-testid=log] li[data-event=apiStateChanged]', { timeout: 10_000 });
  const state = await page.getAttribute("[data-testid=state]", "data-state");
  const api = await page.getAttribute("[data-testid=api-link]", "href");
  // the port forward exists before the guest's web server does: ask until it answers
  let guest = null;
  for (const end = Date.now() + VM_WAIT; !guest && Date.now() < end;) {
    try { guest = await (await fetch(new URL("/cgi-bin/status", api), { signal: AbortSignal.timeout(3000) })).json(); }
    catch { await new Promise((r) => setTimeout(r, 500)); }
  }
  if (!guest) throw new Error(`the guest API at ${api} never answered`);
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  say(`RUNNING state=${state} api=${api} uptime=${guest.uptime}`);
  await nextLine();
  await page.click('button[data-action="close"]');
  await page.waitForSelector('[data-testid=state][data-state]:not([data-state=running])', { timeout: 60_000 });
  say("CLOSED");
} catch (e) {
  console.error(`driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await context.close();
  lines.close();
}
