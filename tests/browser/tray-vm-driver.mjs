// Drives the demo page in headless Chromium for tests/gui/tray-vm.sh: connects to the tray app, clicks
// "Request session" (the app then shows its consent dialog, answered by the calling script), clicks
// "Start" and waits until the VM's API answers. Prints one marker line per step on stdout
// (CONNECTED, REQUESTED, SESSION, STARTING, RUNNING api=… uptime=… boot_id=…, LEFT). After RUNNING it
// waits for a line on stdin, then closes the browser and leaves the VM running (the session lives on
// in the app without its page).
// Usage: node tray-vm-driver.mjs PAGE_URL
import { createInterface } from "node:readline";
import { CHROMIUM, tempDir } from "./lib/harness.mjs";

const url = process.argv[2];
const VM_WAIT = 400_000;
const say = (m) => console.log(m);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((r) => lines.once("line", r));

const { chromium } = await import("playwright-core");
const context = await chromium.launchPersistentContext(tempDir("cvm-trayvm-chromium-"), {
  executablePath: CHROMIUM, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
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
  say("STARTING");
  await page.waitForSelector('[data-testid=api-link][aria-disabled=false]', { timeout: VM_WAIT });
  const api = await page.getAttribute("[data-testid=api-link]", "href");
  // the port forward exists before the guest's web server does: ask until it answers
  let guest = null;
  for (const end = Date.now() + VM_WAIT; !guest && Date.now() < end;) {
    try { guest = await (await fetch(new URL("/cgi-bin/status", api), { signal: AbortSignal.timeout(3000) })).json(); }
    catch { await new Promise((r) => setTimeout(r, 500)); }
  }
  if (!guest) throw new Error(`the guest API at ${api} never answered`);
  say(`RUNNING api=${api} uptime=${guest.uptime} boot_id=${guest.boot_id}`);
  await nextLine();
} catch (e) {
  console.error(`driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await context.close();
  lines.close();
  say("LEFT");
}
