// Drives the demo page in a visible Chromium window (for tests/gui/demo.sh, under Xvfb): connects,
// clicks "Request session" (the app then shows its consent dialog, answered by the calling script),
// clicks "Start" and waits until the VM's API is up, then — after a line on stdin — clicks Pause,
// Resume, Stop and Close, checking at each step the page's state and events and the guest's API
// (lib/demo-flow.mjs). Prints one marker line per step on stdout:
// CONNECTED, REQUESTED, SESSION, RUNNING, PAUSED, RESUMED, STOPPED, CLOSED, then EVENTS with the page's
// observed events. SCREENSHOT=FILE saves the page's viewport (no browser chrome) once the VM's API answers.
// Usage: node demo-gui-driver.mjs PAGE_URL
import { createInterface } from "node:readline";
import { CHROMIUM, tempDir } from "./lib/harness.mjs";
import { VM_WAIT, pageLog, pauseResumeStopClose, startVm } from "./lib/demo-flow.mjs";

const url = process.argv[2];
const say = (m) => console.log(m);
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise((r) => lines.once("line", r));

const { chromium } = await import("playwright-core");
const context = await chromium.launchPersistentContext(tempDir("cvm-demo-chromium-"), {
  executablePath: CHROMIUM, headless: false, viewport: null,
  // --test-type: no "unsupported command-line flag" bar over the page (--no-sandbox: root in CI)
  args: ["--no-sandbox", "--test-type", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--window-position=0,0", "--window-size=1000,780"],
});
const page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (e) => console.error(`[pageerror] ${e.message}`));
try {
  await page.goto(url);
  await page.waitForSelector("[data-testid=connection][data-state=connected]", { timeout: 30_000 });
  say("CONNECTED");
  await page.click("[data-testid=request]");
  say("REQUESTED");
  await page.waitForSelector("#vm:not([hidden])", { timeout: VM_WAIT });
  say("SESSION");
  const vm = await startVm(page, () => {});
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  say(`RUNNING state=running api=${vm.api} uptime=${vm.guest.uptime}`);
  await nextLine();
  const log = await pauseResumeStopClose(page, vm, say);
  say(`EVENTS ${log.map((e) => `${e.source}.${e.event}`).join(" ")}`);
} catch (e) {
  console.error(`driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await context.close();
  lines.close();
}
