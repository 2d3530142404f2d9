// Accessibility checks shared by the panel's and the consent dialog's browser tests: axe-core's
// WCAG 2.1 A/AA rules, a walk with the Tab key over every control, and readability at a window size.
import { join } from "node:path";
import { repoRoot } from "./harness.mjs";

export const AXE = join(repoRoot, "tests/browser/node_modules/axe-core/axe.min.js");

/** axe-core's WCAG 2.1 A/AA violations on the page as it is now (hidden parts are not checked). */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ path: AXE });
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " — " + n.failureSummary) }));
  });
}

/** Presses Tab from the top of the page until every visible, enabled control had the focus (or enough
 *  presses for all of them went by). Returns the controls never reached, the focused ones without a
 *  visible focus ring (outline or box shadow), and how many controls there are. A radio group is one
 *  stop (arrow keys move inside it): it counts as reached when any of it is. */
export async function tabWalk(page) {
  const controls = await page.evaluate(() => {
    const visible = (e) => e.offsetParent !== null && !e.disabled && getComputedStyle(e).visibility !== "hidden";
    return [...document.querySelectorAll("button, input, select, textarea, a[href], [tabindex]")]
      .filter((e) => visible(e) && e.tabIndex >= 0)
      .map((e, i) => {
        e.dataset.a11yId = e.type === "radio" && e.name ? `radio:${e.name}` : String(i);
        return e.dataset.a11yId;
      })
      .filter((id, i, all) => all.indexOf(id) === i);
  });
  await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
  const reached = new Set();
  const noRing = new Set();
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
    if (!f.ring) noRing.add(f.what);
  }
  const missed = await page.evaluate((ids) => ids.map((id) => {
    const e = document.querySelector(`[data-a11y-id="${id}"]`);
    return e.id || e.getAttribute("aria-label") || e.textContent.trim().slice(0, 30);
  }), controls.filter((id) => !reached.has(id)));
  return { count: controls.length, missed, noRing: [...noRing] };
}

/** The page's width against the window's, and the elements with text under `minPx`. */
export function readability(page, minPx = 12) {
  return page.evaluate((min) => {
    const small = [...document.querySelectorAll("body *")]
      .filter((e) => e.offsetParent !== null && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
      .filter((e) => parseFloat(getComputedStyle(e).fontSize) < min)
      .map((e) => e.id || e.className || e.tagName);
    return { scroll: document.documentElement.scrollWidth, width: document.documentElement.clientWidth, small };
  }, minPx);
}
