// Accessibility of the control panel (ui/index.html) in headless Chromium, at the panel window's default
// size (1024×700): axe-core's WCAG 2.1 A/AA rules (labels, names, contrast, ARIA) on every tab, keyboard
// reach and a visible focus ring on every control, tabs by arrow keys, no sideways scrolling. The page
// runs on a stand-in for the Tauri IPC that answers with fixtures/panel-answers.json, whose shape the
// tray app's tests check against the real commands' answers (src-tauri/src/commands/tests.rs).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM, launchBrowser, repoRoot, requireTool, startStaticServer } from "./lib/harness.mjs";

const ANSWERS = JSON.parse(readFileSync(join(repoRoot, "tests/browser/fixtures/panel-answers.json"), "utf8"));
const AXE = join(repoRoot, "tests/browser/node_modules/axe-core/axe.min.js");
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
    await page.goto(`${site.origin}/ui/index.html`);
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

  async function axeViolations() {
    if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ path: AXE });
    return page.evaluate(async () => {
      const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
      return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " — " + n.failureSummary) }));
    });
  }

  for (const [tab, what] of [["tab-sessions", "sessions table, chart, per-session policy"], ["tab-activity", "event log and filters"], ["tab-settings", "settings, cache, sites"]]) {
    test(`${tab}: no WCAG 2.1 A/AA violations (${what})`, async (t) => {
      if (!ready(t)) return;
      await showTab(tab);
      const violations = await axeViolations();
      assert.deepEqual(violations, [], JSON.stringify(violations, null, 2));
    });

    test(`${tab}: every control is reached by Tab and shows where the focus is`, async (t) => {
      if (!ready(t)) return;
      await showTab(tab);
      const controls = await page.evaluate(() => {
        const visible = (e) => e.offsetParent !== null && !e.disabled && getComputedStyle(e).visibility !== "hidden";
        // A radio group is one stop (arrow keys move inside it): it counts as reached when any of it is.
        return [...document.querySelectorAll("button, input, select, textarea, a[href], [tabindex]")]
          .filter((e) => visible(e) && e.tabIndex >= 0)
          .map((e, i) => {
            e.dataset.a11yId = e.type === "radio" && e.name ? `radio:${e.name}` : String(i);
            return e.dataset.a11yId;
          })
          .filter((id, i, all) => all.indexOf(id) === i);
      });
      assert.ok(controls.length > 3, `only ${controls.length} controls found`);
      await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
      const reached = new Set();
      const noRing = [];
      for (let i = 0; i < controls.length + 10; i++) {
        await page.keyboard.press("Tab");
        const f = await page.evaluate(() => {
          const e = document.activeElement;
          if (!e || e === document.body) return null;
          const s = getComputedStyle(e);
          const ring = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
          return { id: e.dataset.a11yId, ring, what: e.id || e.textContent.trim().slice(0, 30) || e.tagName };
        });
        if (!f) continue;
        if (f.id !== undefined) reached.add(f.id);
        if (!f.ring) noRing.push(f.what);
      }
      const missed = controls.filter((id) => !reached.has(id));
      const names = await page.evaluate((ids) => ids.map((id) => {
        const e = document.querySelector(`[data-a11y-id="${id}"]`);
        return e.id || e.getAttribute("aria-label") || e.textContent.trim().slice(0, 30);
      }), missed);
      assert.deepEqual(names, [], "controls Tab never reaches");
      assert.deepEqual([...new Set(noRing)], [], "focused controls without a visible focus ring");
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
      const m = await page.evaluate(() => {
        const small = [...document.querySelectorAll("body *")]
          .filter((e) => e.offsetParent !== null && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
          .filter((e) => parseFloat(getComputedStyle(e).fontSize) < 12)
          .map((e) => e.id || e.className || e.tagName);
        return { scroll: document.documentElement.scrollWidth, width: document.documentElement.clientWidth, small };
      });
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
