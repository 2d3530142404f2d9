// Browser tests of ui/sdk/cvmwebapi.js that need only what the daemon serves today (/info), plus the
// library's own behaviour: loading, probing, "not running", retry timing, Safari and local-network
// detection. Headless Chromium, test page on a loopback origin distinct from the daemon's.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CHROMIUM, freePort, launchBrowser, repoRoot, requireTool, startDaemon, startHttpsStaticServer,
  startImpostor, startStaticServer,
} from "./lib/harness.mjs";

const SAFARI_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15";

describe("cvmwebapi.js in headless Chromium", () => {
  let browser, site, ok = true;

  before(async (t) => {
    ok = existsSync(CHROMIUM);
    if (!ok) return;
    site = await startStaticServer();
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
    if (site) await site.close();
  });

  const page = async (t, query = "") => {
    if (!requireTool(t, ok, `Chromium at ${CHROMIUM}`)) return null;
    return browser.newPage(`${site.origin}/pages/test.html${query}`);
  };

  for (const variant of ["readable", "minified"]) {
    test(`the ${variant} build loads and exposes the compatible and the promise API`, async (t) => {
      const p = await page(t, variant === "minified" ? "?min=1" : "");
      if (!p) return;
      const api = await p.evaluate(() => ({
        version: CVM.version, sdkVersion: CVM.sdkVersion,
        functions: ["startCVMWebAPI", "markPageLoaded", "connect", "ping", "configure"].filter((f) => typeof CVM[f] === "function"),
        plugin: ["requestSession", "connect", "close", "send", "stopService", "enumSessions", "syncSessions", "addEventListener", "removeEventListener", "on", "off"]
          .filter((f) => typeof CVM.WebAPIPlugin.prototype[f] === "function"),
        session: ["start", "stop", "pause", "resume", "hibernate", "reset", "close", "sync", "get", "set", "getAsync", "setAsync",
          "getProperty", "setProperty", "openRDPWindow", "waitForState", "addEventListener", "on"].filter((f) => typeof CVM.WebAPISession.prototype[f] === "function"),
        notDenied: CVM.errors.NOT_ALLOWED, daemonURL: CVM.configure().daemonURL,
      }));
      assert.equal(api.version, "2.0.12");
      assert.match(api.sdkVersion, /^\d+\.\d+\.\d+$/);
      assert.equal(api.functions.length, 5, JSON.stringify(api.functions));
      assert.equal(api.plugin.length, 11, JSON.stringify(api.plugin));
      assert.equal(api.session.length, 18, JSON.stringify(api.session));
      assert.equal(api.notDenied, -10);
      assert.equal(api.daemonURL, "http://127.0.0.1:5624", "a self-hosted copy talks to the standard port");
      await p.close();
    });
  }

  test("a session object keeps the compatible properties and events without a daemon frame", async (t) => {
    const p = await page(t);
    if (!p) return;
    const r = await p.evaluate(() => {
      const fired = [];
      const fakePlugin = { __request() { return "a-1"; }, _sessions: [], options: {} };
      const s = new CVM.WebAPISession(fakePlugin, 42, () => fired.push("init"));
      s.addEventListener("stateChanged", (st) => fired.push("state:" + st));
      const off = s.on("apiStateChanged", (up, url) => fired.push("api:" + up + ":" + url));
      s.handleEvent({ name: "stateVariables", data: [{ apiURL: "http://127.0.0.1:80", rdpURL: "127.0.0.1:5901@", cpus: 2, memory: 512, flags: 49 }, { color: "blue" }] });
      s.handleEvent({ name: "stateChanged", data: [5] });
      s.handleEvent({ name: "apiStateChanged", data: [1, "http://127.0.0.1:40123"] });
      s.handleEvent({ name: "resolutionChanged", data: [1024, 768, 32] });
      off();
      s.handleEvent({ name: "apiStateChanged", data: [0, "http://127.0.0.1:40123"] });
      return { fired, state: s.state, stateName: s.stateName, api: s.apiAvailable, cpus: s.cpus, rdp: s.rdpURL,
        prop: s.getProperty("color"), missing: s.getProperty("nope"), use64bit: s.flags.use64bit, floppy: s.flags.useFloppyIO, id: s.id };
    });
    assert.deepEqual(r.fired, ["init", "state:5", "api:1:http://127.0.0.1:40123"]);
    assert.equal(r.state, 5);
    assert.equal(r.stateName, "running");
    assert.equal(r.api, false, "the last apiStateChanged [0, ...] still updates the property");
    assert.equal(r.cpus, 2);
    assert.equal(r.rdp, "127.0.0.1:5901@1024x768x32");
    assert.equal(r.prop, "blue");
    assert.equal(r.missing, "");
    assert.equal(r.use64bit, true);
    assert.equal(r.floppy, false);
    assert.equal(r.id, 42);
    await p.close();
  });

  test("the minified build is up to date with cvmwebapi.js", () => {
    execFileSync(join(repoRoot, "ui/sdk/build.sh"), ["--check"], { stdio: "pipe" });
  });

  test("CVM.ping reaches the real daemon's /info from another loopback origin", async (t) => {
    const p = await page(t);
    if (!p) return;
    const daemon = await startDaemon();
    try {
      const info = await p.evaluate((url) => CVM.ping({ daemonURL: url }), daemon.url);
      assert.equal(info.status, "ok");
      assert.equal(info.domain, "127.0.0.1", "the daemon derives the page's domain from its Origin");
      assert.match(info.version, /^2\.0\.(1[2-9]|[2-9]\d)/, "a 2.0.x version >= 2.0.12 (no upgrade notice in old pages)");
    } finally {
      await daemon.stop();
      await p.close();
    }
  });

  test("the daemon serves the minified SDK at /js/cvmwebapi.js; loaded from there it targets that daemon", async (t) => {
    const p0 = await page(t);
    if (!p0) return;
    await p0.close();
    const daemon = await startDaemon();
    try {
      const resp = await fetch(`${daemon.url}/js/cvmwebapi.js`);
      assert.equal(resp.status, 200);
      assert.match(resp.headers.get("content-type"), /javascript/);
      assert.equal(await resp.text(), readFileSync(join(repoRoot, "ui/sdk/cvmwebapi.min.js"), "utf8"));
      const p = await browser.newPage(`${site.origin}/pages/test.html?src=${encodeURIComponent(daemon.url + "/js/cvmwebapi.js")}`);
      const r = await p.evaluate(async () => ({ daemonURL: CVM.configure().daemonURL, info: await CVM.ping() }));
      assert.equal(r.daemonURL, daemon.url);
      assert.equal(r.info.status, "ok");
      await p.close();
    } finally {
      await daemon.stop();
    }
  });

  test("nothing listening: connect rejects with DAEMON_NOT_RUNNING, startCVMWebAPI calls cbFail once", async (t) => {
    const p = await page(t);
    if (!p) return;
    const port = await freePort();
    const r = await p.evaluate(async (url) => {
      const out = {};
      try { await CVM.connect({ daemonURL: url }); out.connected = true; } catch (e) {
        out.code = e.code; out.kind = e.kind; out.message = e.message; out.name = e.name;
      }
      out.fails = await new Promise((resolve) => {
        const fails = [];
        CVM.startCVMWebAPI(() => fails.push("ok"), (msg, code) => {
          fails.push([msg, code]);
          // a second poll must not call cbFail again
          setTimeout(() => resolve(fails), 2500);
        }, { daemonURL: url });
      });
      out.notice = document.querySelector("[data-cvm-notice]")?.getAttribute("data-cvm-notice");
      out.noticeText = document.querySelector(".cvm-notice")?.textContent;
      return out;
    }, `http://127.0.0.1:${port}`);
    assert.equal(r.connected, undefined);
    assert.equal(r.name, "CVMError");
    assert.equal(r.code, -1001);
    assert.equal(r.kind, "DAEMON_NOT_RUNNING");
    assert.match(r.message, /not running/);
    assert.equal(r.fails.length, 1, JSON.stringify(r.fails));
    assert.equal(r.fails[0][1], -1001);
    assert.equal(r.notice, "notRunning");
    assert.match(r.noticeText, /does not seem to run/);
    await p.close();
  });

  test("probe retries: 4 tries at least 100 ms apart, then a poll at least 1 s later", async (t) => {
    const p = await page(t);
    if (!p) return;
    const impostor = await startImpostor(503); // a real loopback HTTP server that is not the daemon
    try {
      const code = await p.evaluate(async (url) => {
        try { await CVM.connect({ daemonURL: url }); return "connected"; } catch (e) { return e.code; }
      }, impostor.url);
      assert.equal(code, -1001);
      assert.equal(impostor.hits.length, 4, "the light probe makes exactly 4 tries");
      for (let i = 1; i < 4; i++) assert.ok(impostor.hits[i] - impostor.hits[i - 1] >= 90, `try ${i + 1} came too early`);

      impostor.hits.length = 0;
      await p.evaluate((url) => { CVM.startCVMWebAPI(() => {}, () => {}, { daemonURL: url }); }, impostor.url);
      const deadline = Date.now() + 15000;
      while (impostor.hits.length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(impostor.hits.length >= 8, "startCVMWebAPI keeps polling a daemon that is not there");
      assert.ok(impostor.hits[4] - impostor.hits[3] >= 990, "polls are at least pollInterval (1 s) apart");
    } finally {
      await p.close();
      await impostor.close();
    }
  });

  test("the demo page loads without script errors and says when the app is not running", async (t) => {
    if (!requireTool(t, ok, `Chromium at ${CHROMIUM}`)) return;
    const port = await freePort();
    const errors = [];
    const p = await browser.context.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(`${site.origin}/demo/index.html?daemon=${encodeURIComponent(`http://127.0.0.1:${port}`)}`);
    await p.waitForSelector("[data-testid=connection][data-state=failed]", { timeout: 15000 });
    assert.match(await p.textContent("[data-testid=connection]"), /not running.*-1001/);
    assert.equal(await p.isDisabled("[data-testid=request]"), true);
    assert.equal(await p.inputValue("[data-testid=vmcp]"), `${site.origin}/demo/vmcp`, "the VMCP defaults to the demo site's endpoint");
    assert.equal(await p.getAttribute("[data-cvm-notice]", "data-cvm-notice"), "notRunning");
    assert.deepEqual(errors, []);
    await p.close();
  });

  test("detection logic: Safari on https and the local-network permission plan", async (t) => {
    const p = await page(t);
    if (!p) return;
    const r = await p.evaluate(async (safariUA) => {
      const chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
      const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:150.0) Gecko/20100101 Firefox/150.0";
      const ios = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1";
      const edge = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0";
      const s = (protocol, hostname, userAgent) => CVM.detect.safariBlocksLoopback({ protocol, hostname, userAgent });
      const l = (protocol, hostname, permission) => CVM.detect.lnaPlan({ protocol, hostname, permission });
      const perm = await CVM.detect.queryLnaPermission();
      return {
        safari: [s("https:", "example.org", safariUA), s("http:", "example.org", safariUA), s("https:", "localhost", safariUA),
          s("https:", "example.org", chrome), s("https:", "example.org", firefox), s("https:", "example.org", ios), s("https:", "example.org", edge)],
        lna: [l("https:", "example.org", "prompt"), l("https:", "example.org", "granted"), l("http:", "example.org", "denied"),
          l("https:", "example.org", undefined), l("http:", "127.0.0.1", "prompt"), l("http:", "localhost", "denied"), l("file:", "", "prompt")],
        perm: perm && { name: perm.name, state: perm.state },
      };
    }, SAFARI_UA);
    assert.deepEqual(r.safari, [true, false, false, false, false, true, false]);
    assert.deepEqual(r.lna, ["explain", "none", "denied", "none", "none", "none", "none"]);
    // Chromium 2026 knows a local-network permission; on a loopback page it is not "denied".
    assert.ok(r.perm, "Chromium answers a local-network permission query");
    assert.notEqual(r.perm.state, "denied");
    await p.close();
  });
});

describe("browser gates in front of the daemon (real Chromium behaviour)", () => {
  test("Safari on an https page: a clear SAFARI_HTTPS error instead of 'not running'", async (t) => {
    if (!requireTool(t, existsSync(CHROMIUM), `Chromium at ${CHROMIUM}`)) return;
    const https = await startHttpsStaticServer();
    const browser = await launchBrowser({ userAgent: SAFARI_UA, extraArgs: ["--ignore-certificate-errors", "--host-resolver-rules=MAP sdk.test 127.0.0.1"] });
    try {
      const p = await browser.newPage(`https://sdk.test:${https.port}/pages/test.html`);
      // Chromium does not block loopback from https, so the "Safari" page tries a port where nothing
      // listens; the library must then explain Safari's block rather than claim the app is missing.
      const port = await freePort();
      const r = await p.evaluate(async (url) => {
        try { await CVM.connect({ daemonURL: url }); return { connected: true }; } catch (e) { return { code: e.code, kind: e.kind, message: e.message }; }
      }, `http://127.0.0.1:${port}`);
      assert.equal(r.code, -1003, JSON.stringify(r));
      assert.equal(r.kind, "SAFARI_HTTPS");
      assert.match(r.message, /Safari/);
      assert.equal(await p.getAttribute("[data-cvm-notice]", "data-cvm-notice"), "safari");
    } finally {
      await browser.close();
      await https.close();
    }
  });

  test("public http page: Chromium's local-network-access denial is reported as BROWSER_BLOCKED", async (t) => {
    if (!requireTool(t, existsSync(CHROMIUM), `Chromium at ${CHROMIUM}`)) return;
    const site = await startStaticServer();
    const daemon = await startDaemon();
    // Make the test page a "public" website (sdk.test) so Chromium applies Local Network Access.
    const browser = await launchBrowser({ extraArgs: ["--host-resolver-rules=MAP sdk.test 127.0.0.1", `--ip-address-space-overrides=127.0.0.1:${site.port}=public`] });
    try {
      const p = await browser.newPage(`http://sdk.test:${site.port}/pages/test.html`);
      const r = await p.evaluate(async (url) => {
        try { await CVM.connect({ daemonURL: url }); return { connected: true }; } catch (e) { return { code: e.code, kind: e.kind, message: e.message }; }
      }, daemon.url);
      assert.equal(r.kind, "BROWSER_BLOCKED", JSON.stringify(r));
      assert.match(r.message, /blocked this website/);
    } finally {
      await browser.close();
      await daemon.stop();
      await site.close();
    }
  });

  test("public https page: the notice explains the browser's prompt first; once allowed, /info answers", async (t) => {
    if (!requireTool(t, existsSync(CHROMIUM), `Chromium at ${CHROMIUM}`)) return;
    const https = await startHttpsStaticServer();
    const daemon = await startDaemon();
    const browser = await launchBrowser({ extraArgs: ["--ignore-certificate-errors", "--host-resolver-rules=MAP sdk.test 127.0.0.1",
      `--ip-address-space-overrides=127.0.0.1:${https.port}=public`] });
    try {
      const origin = `https://sdk.test:${https.port}`;
      const p = await browser.newPage(`${origin}/pages/test.html`);
      // Headless Chromium cannot show the prompt (it counts as dismissed): the library must have
      // explained it before the attempt, and must not blame the app afterwards.
      const r = await p.evaluate(async (url) => {
        const notices = [];
        CVM.configure({ notice: (kind, text) => notices.push([kind, text == null ? null : "text"]) });
        let err = null;
        try { await CVM.connect({ daemonURL: url }); } catch (e) { err = { code: e.code, kind: e.kind }; }
        return { notices, err };
      }, daemon.url);
      assert.deepEqual(r.notices[0], ["lna", "text"], JSON.stringify(r));
      assert.ok(r.notices.some(([k, v]) => k === "lna" && v === null), "the notice is removed after the attempt");
      assert.notEqual(r.err && r.err.kind, "SAFARI_HTTPS");

      // The visitor allows it: the same page now reaches the daemon.
      await browser.context.grantPermissions(["local-network-access"], { origin });
      const info = await p.evaluate((url) => CVM.ping({ daemonURL: url }), daemon.url);
      assert.equal(info.status, "ok");
      assert.equal(info.domain, "sdk.test");
    } finally {
      await browser.close();
      await daemon.stop();
      await https.close();
    }
  });
});
