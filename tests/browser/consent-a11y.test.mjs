// Accessibility of the consent dialog (ui/app/consent/index.html) in headless Chromium at the dialog window's
// size (500×580), for a trusted https site and an untrusted http site with a long VM name: axe-core's WCAG
// 2.1 A/AA rules in the light and the dark colour scheme, Deny focused first and Allow reached by Tab once enabled, visible focus rings, nothing
// cut off sideways, text at least 12 px. The page gets exactly what the app injects for these requests
// (fixtures/consent-views.json, checked against the real serialisation by the tray app's tests in
// src-tauri/src/consent_dialog.rs) and a stand-in for the one command it calls, `consent_answer`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM, launchBrowser, repoRoot, requireTool, startStaticServer } from "./lib/harness.mjs";
import { AXE, axeViolations, readability, tabWalk } from "./lib/a11y.mjs";

const VIEWS = JSON.parse(readFileSync(join(repoRoot, "tests/browser/fixtures/consent-views.json"), "utf8"));
const WIDTH = 500, HEIGHT = 580; // src-tauri/src/consent_dialog.rs: inner_size

/** What the app's initialization script sets, plus the `consent_answer` command recording its answers. */
function injected(view) {
  window.__CONSENT__ = view;
  window.__answers = [];
  window.__TAURI__ = { core: { invoke: async (cmd, args) => { window.__answers.push({ cmd, args }); return null; } } };
}

describe("consent dialog accessibility", () => {
  let browser, site, ok = true;

  before(async () => {
    ok = existsSync(CHROMIUM) && existsSync(AXE);
    if (!ok) return;
    site = await startStaticServer();
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
    if (site) await site.close();
  });

  async function dialog(view) {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: WIDTH, height: HEIGHT });
    await page.addInitScript(injected, view);
    await page.goto(`${site.origin}/ui/app/consent/index.html`);
    await page.waitForFunction(() => !document.getElementById("main").hidden);
    return page;
  }

  for (const view of VIEWS) {
    const who = `${view.origin.serialized} (${view.request.trusted ? "trusted" : "untrusted"})`;

    for (const colorScheme of ["light", "dark"]) {
      test(`${who}, ${colorScheme}: no WCAG 2.1 A/AA violations, before and after Allow is enabled`, async (t) => {
        if (!requireTool(t, ok, `Chromium at ${CHROMIUM} and axe-core (npm ci)`)) return;
        const page = await dialog(view);
        await page.emulateMedia({ colorScheme });
        const waiting = await axeViolations(page);
        assert.deepEqual(waiting, [], JSON.stringify(waiting, null, 2));
        await page.waitForFunction(() => !document.getElementById("allow").disabled);
        const ready = await axeViolations(page);
        assert.deepEqual(ready, [], JSON.stringify(ready, null, 2));
        await page.close();
      });
    }

    test(`${who}: Deny has the focus first; Tab reaches every control with a visible focus ring`, async (t) => {
      if (!requireTool(t, ok, `Chromium at ${CHROMIUM} and axe-core (npm ci)`)) return;
      const page = await dialog(view);
      assert.equal(await page.evaluate(() => document.activeElement.id), "deny");
      await page.waitForFunction(() => !document.getElementById("allow").disabled);
      const walk = await tabWalk(page);
      assert.equal(walk.count, 3, "Remember, Deny and Allow");
      assert.deepEqual(walk.missed, [], "controls Tab never reaches");
      assert.deepEqual(walk.noRing, [], "focused controls without a visible focus ring");
      await page.close();
    });

    test(`${who}: readable in the dialog window: nothing cut off sideways, text at least 12 px`, async (t) => {
      if (!requireTool(t, ok, `Chromium at ${CHROMIUM} and axe-core (npm ci)`)) return;
      const page = await dialog(view);
      const m = await readability(page);
      assert.ok(m.scroll <= m.width, `the dialog is ${m.scroll} px wide in a ${m.width} px window`);
      assert.deepEqual(m.small, [], "text smaller than 12 px");
      const buttons = await page.evaluate(() => ["deny", "allow"].map((id) => {
        const r = document.getElementById(id).getBoundingClientRect();
        return { id, bottom: r.bottom, right: r.right };
      }));
      for (const b of buttons) {
        assert.ok(b.bottom <= HEIGHT && b.right <= WIDTH, `${b.id} is outside the ${WIDTH}×${HEIGHT} window: ${JSON.stringify(b)}`);
      }
      await page.close();
    });
  }

  test("Space on the focused Deny answers deny with the keyboard alone", async (t) => {
    if (!requireTool(t, ok, `Chromium at ${CHROMIUM} and axe-core (npm ci)`)) return;
    const page = await dialog(VIEWS[0]);
    await page.keyboard.press("Space");
    await page.waitForFunction(() => window.__answers.length === 1);
    assert.deepEqual(await page.evaluate(() => window.__answers),
      [{ cmd: "consent_answer", args: { allow: false, remember: false } }]);
    await page.close();
  });
});
