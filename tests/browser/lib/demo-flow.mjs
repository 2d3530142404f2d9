// The demo page's VM lifecycle as a visitor clicks it, with what the page must observe at each step:
// Start → running + apiStateChanged(1) and the guest's API answering; Pause → paused + apiStateChanged(0)
// and the guest silent; Resume → running + apiStateChanged(1) and the guest answering again (same boot);
// Stop → powered off; Close → the session destroyed. Shared by the headless test (demo-vm.test.mjs) and
// the visible-Chromium driver of tests/gui/demo.sh (demo-gui-driver.mjs).

/** Milliseconds to wait for a VM step (TCG on a shared 2-core machine is slow). */
export const VM_WAIT = 300_000;

/** The page's event log, oldest first: [{ source, event, text }]. */
export function pageLog(page) {
  return page.$$eval("[data-testid=log] li", (lis) =>
    lis.map((li) => ({ source: li.dataset.source, event: li.dataset.event, text: li.textContent })).reverse());
}

/** The JSON arguments of a log line "<local time> source.event(a, b)". */
function args(entry) {
  const head = `${entry.source}.${entry.event}(`;
  const at = entry.text.indexOf(head);
  return at < 0 ? [] : JSON.parse(`[${entry.text.slice(at + head.length, -1)}]`);
}

/** Waits until the page shows session state `name` (missing, poweroff, saved, paused, running). */
export async function waitState(page, name, timeout = VM_WAIT) {
  await page.waitForSelector(`[data-testid=state][data-state=${name}]`, { timeout });
}

/** Waits until the page's log holds more than `after` entries matching source.event(first arg). */
async function waitLog(page, after, source, event, first, timeout = VM_WAIT) {
  const end = Date.now() + timeout;
  for (;;) {
    const log = await pageLog(page);
    const hit = log.slice(after).find((e) => e.source === source && e.event === event
      && (first === undefined || args(e)[0] === first));
    if (hit) return hit;
    if (Date.now() > end) {
      throw new Error(`no ${source}.${event}(${first ?? "…"}) after entry ${after}; log:\n${log.map((e) => e.text).join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** GET apiURL/cgi-bin/status of the test guest; null when it does not answer within `ms`. */
export async function guestStatus(api, ms = 3000) {
  try {
    const r = await fetch(new URL("/cgi-bin/status", api), { signal: AbortSignal.timeout(ms) });
    return r.ok ? await r.json() : null;
  } catch {
    return null;
  }
}

/** Asks the guest until it answers (the port forward exists before the guest's web server does). */
async function guestAnswers(api, timeout = VM_WAIT) {
  for (const end = Date.now() + timeout; Date.now() < end;) {
    const s = await guestStatus(api);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the guest API at ${api} never answered`);
}

/** Clicks the session button `action` and checks the page logged the click and no failed reply. */
async function click(page, action) {
  const before = (await pageLog(page)).length;
  await page.click(`button[data-action="${action}"]`);
  await waitLog(page, before, "page", action, undefined, 10_000);
  return before;
}

async function noFailure(page, action, since) {
  const failed = (await pageLog(page)).slice(since).find((e) => e.event === `${action}Failed`);
  if (failed) throw new Error(`the app refused ${action}: ${failed.text}`);
}

/**
 * Clicks Start and waits for the running VM. Returns { api, guest } (the apiURL the page shows and the
 * guest's first status answer). `say(marker)` reports progress.
 */
export async function startVm(page, say = () => {}) {
  const since = await click(page, "start");
  await waitState(page, "running");
  await waitLog(page, since, "session", "stateChanged", 5);
  await waitLog(page, since, "session", "apiStateChanged", 1);
  await page.waitForSelector("[data-testid=api-link][aria-disabled=false]", { timeout: 10_000 });
  await noFailure(page, "start", since);
  const api = await page.getAttribute("[data-testid=api-link]", "href");
  const url = new URL(api);
  if (url.hostname !== "127.0.0.1" || !url.port || url.port === "80") throw new Error(`apiURL ${api} is not a loopback port forward`);
  const guest = await guestAnswers(api);
  say(`RUNNING state=running api=${api} uptime=${guest.uptime}`);
  return { api, guest };
}

/**
 * Pause, Resume, Stop on the running VM, then Close, each checked on the page and against the guest.
 * Returns the page's log (oldest first) for further assertions.
 */
export async function pauseResumeStopClose(page, { api, guest }, say = () => {}) {
  let since = await click(page, "pause");
  await waitState(page, "paused");
  await waitLog(page, since, "session", "stateChanged", 4);
  await waitLog(page, since, "session", "apiStateChanged", 0);
  await noFailure(page, "pause", since);
  if (await page.getAttribute("[data-testid=api-link]", "aria-disabled") !== "true") throw new Error("the API link stays live while paused");
  const whilePaused = await guestStatus(api, 2000);
  if (whilePaused) throw new Error(`the guest answered while paused: ${JSON.stringify(whilePaused)}`);
  say("PAUSED state=paused api=silent");

  since = await click(page, "resume");
  await waitState(page, "running");
  await waitLog(page, since, "session", "stateChanged", 5);
  await waitLog(page, since, "session", "apiStateChanged", 1);
  await noFailure(page, "resume", since);
  const resumed = await guestAnswers(api);
  if (resumed.boot_id !== guest.boot_id) throw new Error(`resume rebooted the guest: ${guest.boot_id} → ${resumed.boot_id}`);
  say(`RESUMED state=running uptime=${resumed.uptime} same_boot=true`);

  since = await click(page, "stop");
  await waitState(page, "poweroff");
  await waitLog(page, since, "session", "stateChanged", 2);
  await waitLog(page, since, "session", "apiStateChanged", 0);
  await noFailure(page, "stop", since);
  const afterStop = await guestStatus(api, 2000);
  if (afterStop) throw new Error(`the guest answered after stop: ${JSON.stringify(afterStop)}`);
  say("STOPPED state=poweroff api=silent");

  since = await click(page, "close");
  await page.waitForSelector("[data-testid=state][data-state]:not([data-state=poweroff])", { timeout: 60_000 });
  await noFailure(page, "close", since);
  const state = await page.getAttribute("[data-testid=state]", "data-state");
  if (state !== "missing") throw new Error(`after close the page shows ${state}, not missing`);
  say("CLOSED state=missing");
  return pageLog(page);
}
