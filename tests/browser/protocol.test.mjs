// Browser tests of ui/sdk/cvmwebapi.js over the full 2.0.x protocol against the real daemon:
// handshake, requestSession (compatible and promise APIs), session actions, consent denied (-10),
// wrong domain (-13), bad signature (-12), request timeouts, reheat after a daemon restart,
// disconnects, explicit close, the daemon serving the SDK at /js/cvmwebapi.js.
// The daemon runs as `cvmwebapi serve --keystore FILE --allow-origin ORIGIN` with a keystore that
// trusts a key made here for the domain 127.0.0.1; a loopback VMCP endpoint signs with that key.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM, freePort, launchBrowser, requireTool, sleep, startDaemon, startStaticServer, tempDir, writeFile } from "./lib/harness.mjs";
import { makeKey, startVmcpServer } from "./lib/vmcp.mjs";

const vmDoc = (name) => ({ name, secret: "sdk-test-secret", cpus: 1, memory: 128, disk: 0, executionCap: 100, flags: 0 });

describe("cvmwebapi.js over the full protocol (real daemon, headless Chromium)", () => {
  let browser, site, vmcp, key, otherKey, keystore, haveChromium;
  let daemons = [];

  before(async () => {
    haveChromium = existsSync(CHROMIUM);
    if (!haveChromium) return;
    key = makeKey();
    otherKey = makeKey();
    site = await startStaticServer();
    vmcp = await startVmcpServer(key, {
      good: vmDoc("sdk-good"), good2: vmDoc("sdk-good2"), reheat: vmDoc("sdk-reheat"), compat: vmDoc("sdk-compat"),
      timeout: vmDoc("sdk-timeout"), gone: vmDoc("sdk-gone"), demo: vmDoc("sdk-demo"), badsig: { doc: vmDoc("sdk-badsig"), key: otherKey },
    });
    const dir = tempDir("cvm-sdk-keystore-");
    keystore = writeFile(join(dir, "domainkeys.conf"), `127.0.0.1=${key.spki}\n`);
    browser = await launchBrowser();
  });
  after(async () => {
    for (const d of daemons) await d.stop().catch(() => {});
    if (browser) await browser.close();
    if (vmcp) await vmcp.close();
    if (site) await site.close();
  });

  /** A daemon trusting our key for 127.0.0.1 and pre-approving the test site's origin (or not). */
  const daemon = async ({ consent = true, extraOrigins = [], port, dataDir } = {}) => {
    const args = ["--keystore", keystore];
    if (consent) for (const o of [site.origin, ...extraOrigins]) args.push("--allow-origin", o);
    const d = await startDaemon({ args, port, dataDir });
    daemons.push(d);
    return d;
  };

  const page = async (t, origin = site.origin, query = "") => {
    if (!requireTool(t, haveChromium, `Chromium at ${CHROMIUM}`)) return null;
    return browser.newPage(`${origin}/pages/test.html${query}`);
  };

  test("a page that loads the SDK from the daemon's /js/cvmwebapi.js connects to that daemon", async (t) => {
    const d = await daemon();
    const p = await page(t, site.origin, `?src=${encodeURIComponent(d.url + "/js/cvmwebapi.js")}`);
    if (!p) return;
    const r = await p.evaluate(async () => {
      const c = await CVM.connect();
      return { daemonURL: c.daemonURL, version: c.version, connected: c.connected };
    });
    assert.equal(r.daemonURL, d.url);
    assert.equal(r.connected, true);
    assert.match(r.version, /^2\.0\.(1[2-9]|[2-9]\d)/);
    await p.close();
  });

  test("handshake: connect resolves with the daemon's 2.0.x version, then `privileged` [0] arrives", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const r = await p.evaluate(async (url) => {
      const c = await CVM.connect({ daemonURL: url });
      for (let i = 0; i < 50 && c.privileged === null; i++) await new Promise((res) => setTimeout(res, 20));
      return { version: c.version, privileged: c.privileged, info: c.info };
    }, d.url);
    assert.match(r.version, /^2\.0\.(1[2-9]|[2-9]\d)/);
    assert.equal(r.privileged, false, "a website is never privileged");
    assert.equal(r.info.domain, "127.0.0.1");
    await p.close();
  });

  test("compatible API: startCVMWebAPI → requestSession(vmcp, cbOk, cbFail) → session events", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const r = await p.evaluate(({ url, vmcpURL }) => new Promise((resolve, reject) => {
      const log = [];
      setTimeout(() => reject(new Error("no session within 30 s: " + JSON.stringify(log))), 30000);
      CVM.startCVMWebAPI((plugin) => {
        ["started", "progress", "completed", "failed"].forEach((n) => plugin.addEventListener(n, () => log.push("plugin:" + n)));
        plugin.requestSession(vmcpURL, (session) => {
          log.push("cbOk");
          const snap = { state: session.state, stateName: session.stateName, cpus: session.cpus, memory: session.memory,
            apiURL: session.apiURL, apiAvailable: session.apiAvailable, id: session.session_id };
          session.addEventListener("stateChanged", (s) => { log.push("stateChanged:" + s); resolve({ log, snap }); });
        }, (msg, code) => reject(new Error("cbFail " + msg + " " + code)));
      }, (msg, code) => reject(new Error("startCVMWebAPI failed: " + msg + " " + code)), { daemonURL: url });
    }), { url: d.url, vmcpURL: vmcp.url("compat") });
    assert.ok(r.log.includes("plugin:started") || r.log.includes("plugin:progress"), JSON.stringify(r.log));
    assert.ok(!r.log.includes("plugin:failed"), JSON.stringify(r.log));
    assert.equal(r.log.at(-1), "stateChanged:0", "stateChanged follows the first stateVariables");
    assert.equal(r.snap.state, 0);
    assert.equal(r.snap.stateName, "missing");
    assert.equal(r.snap.cpus, 1);
    assert.equal(r.snap.memory, 128);
    assert.equal(typeof r.snap.apiURL, "string");
    assert.equal(r.snap.apiAvailable, false);
    assert.ok(Number.isInteger(r.snap.id) && r.snap.id > 0, "session ids are positive integers");
    const req = vmcp.requests.find((q) => q.path === "/vmcp/compat");
    assert.match(req.salt, /^[A-Za-z0-9-]{64}$/, "the daemon sends a 64-character cvm_salt");
    await p.close();
  });

  test("promise API: requestSession, get, set, setProperty and sync round-trip", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const r = await p.evaluate(async ({ url, vmcpURL }) => {
      const client = await CVM.connect({ daemonURL: url });
      const progress = [];
      const s = await client.requestSession(vmcpURL, { onProgress: (msg, f) => progress.push(f) });
      const out = { progress, state: s.stateName };
      out.cpus = await s.get("cpus");
      out.memory = await s.get("memory");
      out.apiURL = await s.get("apiURL");
      await s.set("executionCap", 50);
      await s.setProperty("color", "blue");
      await s.sync();
      out.cap = s.executionCap;
      out.color = s.getProperty("color");
      out.props = s.properties;
      out.sessions = client.sessions.length;
      return out;
    }, { url: d.url, vmcpURL: vmcp.url("good") });
    assert.equal(r.state, "missing");
    assert.ok(r.progress.length > 0 && r.progress.every((f) => f >= 0 && f <= 1), JSON.stringify(r.progress));
    assert.equal(r.cpus, "1");
    assert.equal(r.memory, "128");
    assert.match(r.apiURL, /^http:\/\//);
    assert.equal(Number(r.cap), 50);
    assert.equal(r.color, "blue");
    assert.deepEqual(r.props, { color: "blue" });
    assert.equal(r.sessions, 1);
    await p.close();
  });

  test("denied consent: without --allow-origin nobody can say yes, so requestSession fails with -10", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon({ consent: false });
    const r = await p.evaluate(({ url, vmcpURL }) => new Promise((resolve) => {
      CVM.startCVMWebAPI((plugin) => {
        const failedEvents = [];
        plugin.addEventListener("failed", (msg, code) => failedEvents.push([msg, code]));
        plugin.requestSession(vmcpURL, () => resolve({ ok: true }), (msg, code) => resolve({ msg, code, failedEvents }));
      }, null, { daemonURL: url });
    }), { url: d.url, vmcpURL: vmcp.url("good2") });
    assert.equal(r.code, -10, JSON.stringify(r));
    assert.equal(r.failedEvents.length, 1);
    assert.equal(r.failedEvents[0][1], -10);
    const kind = await p.evaluate(async ({ url, vmcpURL }) => {
      const c = await CVM.connect({ daemonURL: url });
      try { await c.requestSession(vmcpURL); return "resolved"; } catch (e) { return e.kind + " " + e.code; }
    }, { url: d.url, vmcpURL: vmcp.url("good2") });
    assert.equal(kind, "NOT_ALLOWED -10");
    await p.close();
  });

  test("wrong domain: a page whose domain is not in the keystore gets -13", async (t) => {
    const p = await page(t, site.origin.replace("127.0.0.1", "localhost"));
    if (!p) return;
    const d = await daemon({ extraOrigins: [site.origin.replace("127.0.0.1", "localhost")] });
    const r = await p.evaluate(async ({ url, vmcpURL }) => {
      const c = await CVM.connect({ daemonURL: url });
      try { await c.requestSession(vmcpURL); return { ok: true }; } catch (e) { return { code: e.code, kind: e.kind, domain: c.info.domain }; }
    }, { url: d.url, vmcpURL: vmcp.url("good") });
    assert.equal(r.domain, "localhost");
    assert.equal(r.code, -13, JSON.stringify(r));
    assert.equal(r.kind, "NOT_TRUSTED");
    await p.close();
  });

  test("bad signature: a VMCP signed with an untrusted key gets -12", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const r = await p.evaluate(async ({ url, vmcpURL }) => {
      const c = await CVM.connect({ daemonURL: url });
      try { await c.requestSession(vmcpURL); return { ok: true }; } catch (e) { return { code: e.code, kind: e.kind }; }
    }, { url: d.url, vmcpURL: vmcp.url("badsig") });
    assert.equal(r.code, -12, JSON.stringify(r));
    assert.equal(r.kind, "NOT_VALIDATED");
    await p.close();
  });

  test("request timeout: while the daemon is frozen requests fail with TIMEOUT; after it thaws they work", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    await p.evaluate(async ({ url, vmcpURL }) => {
      window.client = await CVM.connect({ daemonURL: url, requestTimeout: 1500 });
      window.session = await window.client.requestSession(vmcpURL);
    }, { url: d.url, vmcpURL: vmcp.url("timeout") });
    d.proc.kill("SIGSTOP");
    let r;
    try {
      r = await p.evaluate(async () => {
        try { await window.session.get("cpus"); return { ok: true }; } catch (e) { return { code: e.code, kind: e.kind, message: e.message }; }
      });
    } finally {
      d.proc.kill("SIGCONT");
    }
    assert.equal(r.kind, "TIMEOUT", JSON.stringify(r));
    assert.equal(r.code, -1004);
    const after = await p.evaluate(async () => ({ cpus: await window.session.get("cpus"), connected: window.client.connected }));
    assert.deepEqual(after, { cpus: "1", connected: true });
    await p.close();
  });

  test("reheat: the daemon is killed and restarted on the same port; the session is re-requested and works", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const before = await p.evaluate(async ({ url, vmcpURL }) => {
      window.log = [];
      window.client = await CVM.connect({ daemonURL: url });
      ["disconnected", "reconnected"].forEach((n) => window.client.on(n, () => window.log.push(n)));
      window.session = await window.client.requestSession(vmcpURL);
      return window.session.session_id;
    }, { url: d.url, vmcpURL: vmcp.url("reheat") });
    const requestsBefore = vmcp.requests.filter((q) => q.path === "/vmcp/reheat").length;
    await d.kill("SIGKILL");
    const d2 = await daemon({ port: d.port, dataDir: d.dataDir });
    await p.waitForFunction(() => window.log.length > 0, null, { timeout: 20000 });
    const r = await p.evaluate(async () => ({ log: window.log, id: window.session.session_id, cpus: await window.session.get("cpus") }));
    assert.deepEqual(r.log, ["reconnected"]);
    assert.notEqual(r.id, before, "the re-requested session has a new id");
    assert.equal(r.cpus, "1");
    assert.equal(vmcp.requests.filter((q) => q.path === "/vmcp/reheat").length, requestsBefore + 1, "the VMCP was fetched again");
    assert.ok(d2.proc.pid !== d.proc.pid);
    await p.close();
  });

  test("daemon gone for good: pending requests fail with DISCONNECTED, then `disconnected` fires", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    await p.evaluate(async ({ url, vmcpURL }) => {
      window.log = [];
      window.client = await CVM.connect({ daemonURL: url });
      window.client.on("disconnected", () => window.log.push("disconnected"));
      window.session = await window.client.requestSession(vmcpURL);
    }, { url: d.url, vmcpURL: vmcp.url("gone") });
    d.proc.kill("SIGSTOP");
    const pending = p.evaluate(async () => { try { await window.session.get("cpus"); return "resolved"; } catch (e) { return e.kind; } });
    await sleep(200);
    await d.kill("SIGKILL");
    assert.equal(await pending, "DISCONNECTED");
    await p.waitForFunction(() => window.log.length > 0, null, { timeout: 10000 });
    const r = await p.evaluate(() => ({ log: window.log, connected: window.client.connected }));
    assert.deepEqual(r, { log: ["disconnected"], connected: false });
    await p.close();
  });

  test("close(): `disconnected` fires and the library does not reconnect by itself", async (t) => {
    const p = await page(t);
    if (!p) return;
    const d = await daemon();
    const r = await p.evaluate(async (url) => {
      const log = [];
      const c = await CVM.connect({ daemonURL: url });
      c.on("disconnected", () => log.push("disconnected"));
      c.on("reconnected", () => log.push("reconnected"));
      c.close();
      await new Promise((res) => setTimeout(res, 3000));
      return { log, connected: c.connected, connecting: c.connecting };
    }, d.url);
    assert.deepEqual(r, { log: ["disconnected"], connected: false, connecting: false });
    await p.close();
  });

  test("demo page: connects, requests a session with its button, shows state and applies the idle policy", async (t) => {
    if (!requireTool(t, haveChromium, `Chromium at ${CHROMIUM}`)) return;
    const d = await daemon();
    const errors = [];
    const p = await browser.context.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(`${site.origin}/demo/index.html?daemon=${encodeURIComponent(d.url)}&vmcp=${encodeURIComponent(vmcp.url("demo"))}`);
    await p.waitForSelector("[data-testid=connection][data-state=connected]", { timeout: 15000 });
    await p.click("[data-testid=request]");
    await p.waitForSelector("[data-testid=state][data-state=missing]", { timeout: 30000 });
    assert.equal(await p.getAttribute("[data-testid=api-link]", "aria-disabled"), "true");
    await p.check("#idle-controlled");
    await p.fill("#idle-min", "10");
    await p.fill("#idle-max", "90");
    await p.click("#idle-apply");
    await p.waitForSelector("[data-testid=log] li[data-event=idlePolicy], [data-testid=log] li[data-event=idlePolicyFailed]");
    const last = await p.getAttribute("[data-testid=log] li:first-child", "data-event");
    assert.equal(last, "idlePolicy", await p.textContent("[data-testid=log]"));
    const events = await p.$$eval("[data-testid=log] li", (lis) => lis.map((li) => li.dataset.source + "." + li.dataset.event).reverse());
    for (const e of ["plugin.connected", "page.requestSession", "page.session", "session.stateChanged"]) assert.ok(events.includes(e), `${e} in ${events}`);
    assert.deepEqual(errors, []);
    await p.close();
  });

  test("startCVMWebAPI: the app starts after the page; cbFail first, then cbOK once it answers", async (t) => {
    const p = await page(t);
    if (!p) return;
    const port = await freePort();
    await p.evaluate((url) => {
      window.log = [];
      CVM.startCVMWebAPI((plugin) => window.log.push("ok:" + plugin.version), (msg, code) => window.log.push("fail:" + code), { daemonURL: url });
    }, `http://127.0.0.1:${port}`);
    await p.waitForFunction(() => window.log.length > 0, null, { timeout: 10000 });
    await daemon({ port });
    await p.waitForFunction(() => window.log.length > 1, null, { timeout: 15000 });
    const r = await p.evaluate(() => ({ log: window.log, notice: document.querySelector("[data-cvm-notice]") }));
    assert.equal(r.log[0], "fail:-1001");
    assert.match(r.log[1], /^ok:2\.0\./);
    assert.equal(r.notice, null, "the 'not running' notice is gone");
    await p.close();
  });
});
