// Accessibility of the control panel (ui/app/index.html) in headless Chromium, at the panel window's default
// size (1024×700): axe-core's WCAG 2.1 A/AA rules (labels, names, contrast, ARIA) on every tab in the
// light and the dark colour scheme, keyboard reach and a visible focus ring on every control, tabs by
// arrow keys, no sideways scrolling, no text under 12 px. The page runs on a stand-in for the Tauri IPC
// that answers with fixtures/panel-answers.json, whose shape the tray app's tests check against the real
// commands' answers (src-tauri/src/commands/tests.rs).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM, launchBrowser, repoRoot, requireTool, startStaticServer } from "./lib/harness.mjs";
import { AXE, axeViolations, readability, tabWalk } from "./lib/a11y.mjs";

const ANSWERS = JSON.parse(readFileSync(join(repoRoot, "tests/browser/fixtures/panel-answers.json"), "utf8"));
const WIDTH = 1024, HEIGHT = 700; // src-tauri/src/panel_window.rs: inner_size

/** Installed before the panel's scripts: `window.__TAURI__` answering from the fixture (samples moved to
 *  the last two minutes so the chart has something to draw); commands without an answer there (actions,
 *  saving) answer null. */
function ipcStandIn(answers) {
  const now = Date.now();
  for (const list of Object.values(answers.session_samples)) {
    list.forEach((s, i) => { s.atMs = now - (list.length - i) * 2000; });
  }
  window.__TAURI__ = {
    core: { invoke: async (cmd) => (cmd in answers ? structuredClone(answers[cmd]) : null) },
    event: { listen: async () => () => {} },
  };
}

describe("control panel accessibility", () => {
  let browser, site, page, ok = true;

  before(async () => {
    ok = existsSync(CHROMIUM) && existsSync(AXE);
    if (!ok) return;
    site = await startStaticServer();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.setViewportSize({ width: WIDTH, height: HEIGHT });
    await page.addInitScript(ipcStandIn, ANSWERS);
    await page.goto(`${site.origin}/ui/app/index.html`);
    await page.waitForFunction(() => document.querySelectorAll("#sessions-panel tbody tr").length >= 2);
  });
  after(async () => {
    if (browser) await browser.close();
    if (site) await site.close();
  });

  const ready = (t) => requireTool(t, ok, `Chromium at ${CHROMIUM} and axe-core (npm ci)`);

  async function showTab(id) {
    await page.click(`#${id}`);
    await page.waitForFunction((tab) => document.body.dataset.tab === tab, id);
    await page.waitForTimeout(300); // the tab's data arrives from the stand-in
  }

  for (const [tab, what] of [["tab-sessions", "sessions table, chart, per-session policy"], ["tab-activity", "event log and filters"], ["tab-settings", "settings, cache, sites"]]) {
    test(`${tab}: no WCAG 2.1 A/AA violations in either colour scheme (${what})`, async (t) => {
      if (!ready(t)) return;
      await showTab(tab);
      for (const colorScheme of ["light", "dark"]) {
        await page.emulateMedia({ colorScheme });
        const violations = await axeViolations(page);
        assert.deepEqual(violations, [], `${colorScheme}: ${JSON.stringify(violations, null, 2)}`);
      }
      await page.emulateMedia({ colorScheme: "light" });
    });

    test(`${tab}: every control is reached by Tab and shows where the focus is`, async (t) => {
      if (!ready(t)) return;
      await showTab(tab);
      const walk = await tabWalk(page);
      assert.ok(walk.count > 3, `only ${walk.count} controls found`);
      assert.deepEqual(walk.missed, [], "controls Tab never reaches");
      assert.deepEqual(walk.noRing, [], "focused controls without a visible focus ring");
    });
  }

  test("the tabs follow the arrow keys, Home and End (WAI-ARIA tabs pattern)", async (t) => {
    if (!ready(t)) return;
    await showTab("tab-sessions");
    await page.focus("#tab-sessions");
    const after = async (key) => {
      await page.keyboard.press(key);
      return page.evaluate(() => [document.activeElement.id, document.body.dataset.tab,
        document.activeElement.getAttribute("aria-selected")]);
    };
    assert.deepEqual(await after("ArrowRight"), ["tab-activity", "tab-activity", "true"]);
    assert.deepEqual(await after("End"), ["tab-settings", "tab-settings", "true"]);
    assert.deepEqual(await after("ArrowRight"), ["tab-sessions", "tab-sessions", "true"], "wraps around");
    assert.deepEqual(await after("ArrowLeft"), ["tab-settings", "tab-settings", "true"]);
    assert.deepEqual(await after("Home"), ["tab-sessions", "tab-sessions", "true"]);
  });

  test("readable at the default window size: no sideways scrolling, text at least 12 px", async (t) => {
    if (!ready(t)) return;
    for (const tab of ["tab-sessions", "tab-activity", "tab-settings"]) {
      await showTab(tab);
      const m = await readability(page);
      assert.ok(m.scroll <= m.width, `${tab}: the page is ${m.scroll} px wide in a ${m.width} px window`);
      assert.deepEqual(m.small, [], `${tab}: text smaller than 12 px`);
    }
  });

  test("a session's action buttons say which session they act on", async (t) => {
    if (!ready(t)) return;
    await showTab("tab-sessions");
    const names = await page.evaluate(() => [...document.querySelectorAll("#sessions-panel tbody button")]
      .map((b) => b.getAttribute("aria-label") || b.textContent.trim()));
    assert.ok(names.length > 0, "no action buttons");
    for (const n of names) assert.match(n, /atlas-worker|theory-mc|cvmweb-|lhcathome|test4theory/, `"${n}" does not name its session`);
  });
});
