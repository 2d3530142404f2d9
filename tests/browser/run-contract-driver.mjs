// For tests/gui/run-contract.sh: attaches (over the DevTools protocol) to the browser that `make run`
// opened with xdg-open, finds the demo page, waits until it is connected to the app, clicks "Request
// session" (the app then shows its consent dialog, which the calling script denies), and waits for the
// page to report the refusal. Prints CONNECTED, REQUESTED, then DENIED code=<code> on stdout.
// Usage: node run-contract-driver.mjs CDP_URL PAGE_URL_PREFIX
const [cdp, prefix] = process.argv.slice(2);
const say = (m) => console.log(m);
const { chromium } = await import("playwright-core");
let browser;
try {
  for (const end = Date.now() + 60_000; !browser;) {
    try { browser = await chromium.connectOverCDP(cdp, { timeout: 5000 }); } catch (e) {
      if (Date.now() > end) throw new Error(`no browser at ${cdp}: ${e.message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  let page;
  for (const end = Date.now() + 60_000; !page; await new Promise((r) => setTimeout(r, 250))) {
    page = browser.contexts().flatMap((c) => c.pages()).find((p) => p.url().startsWith(prefix));
    if (!page && Date.now() > end) throw new Error(`no page at ${prefix}* in the browser`);
  }
  await page.waitForSelector("[data-testid=connection][data-state=connected]", { timeout: 60_000 });
  say("CONNECTED");
  await page.click("[data-testid=request]");
  say("REQUESTED");
  const failed = await page.waitForSelector("[data-testid=log] li[data-event=requestSessionFailed]", { timeout: 300_000 });
  const text = await failed.textContent();
  say(`DENIED code=${(text.match(/, (-?\d+)\)$/) || [])[1]}`);
} catch (e) {
  console.error(`driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  // leave the browser to the test (it belongs to `make run`'s session); only detach
  if (browser) await browser.close().catch(() => {});
}
