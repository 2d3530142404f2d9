// The demo page's whole flow in headless Chromium against the real daemon and a real QEMU VM: the page
// is served by `cvmwebapi demo-site` (its own loopback origin, distinct from the daemon's), the daemon is
// `cvmwebapi serve --hypervisor qemu` trusting the demo keystore with the page's origin pre-approved
// (--allow-origin: the headless daemon has nobody to ask), and the test clicks what a visitor clicks:
// Request session, Start, Pause, Resume, Stop, Close. It asserts the page's observed events and states,
// the guest's API (answering, silent while paused, same boot after resume) and that no QEMU is left.
// The consent dialog itself is covered by tests/gui/demo.sh (the tray app under Xvfb).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { CHROMIUM, daemonBinary, launchBrowser, repoRoot, requireTool, sleep, startDaemon, tempDir } from "./lib/harness.mjs";
import { pageLog, pauseResumeStopClose, startVm, waitState } from "./lib/demo-flow.mjs";

const onPath = (tool) => (process.env.PATH || "").split(":").some((d) => d && existsSync(join(d, tool)));

/** PIDs of QEMU processes whose working directory is inside `dir` (the VMs of this test). */
function qemuIn(dir) {
  const pids = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("qemu-system")) continue;
      if (readlinkSync(`/proc/${pid}/cwd`).startsWith(dir + "/")) pids.push(Number(pid));
    } catch { /* gone or not ours to read */ }
  }
  return pids;
}

/** Starts `cvmwebapi demo-site` on a free loopback port; resolves with { origin, keystore, proc }. */
async function startDemoSite(dataDir, image) {
  const proc = spawn(daemonBinary(), ["demo-site", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--image", image],
    { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  for (const end = Date.now() + 20_000; Date.now() < end; await sleep(50)) {
    const origin = out.match(/^CernVM WebAPI demo site: (http:\/\/127\.0\.0\.1:\d+)\//m);
    const keystore = out.match(/^ {2}cernvm-webapi --keystore (.+)$/m);
    if (origin && keystore) return { origin: origin[1], keystore: keystore[1].trim(), proc };
    if (proc.exitCode !== null) break;
  }
  proc.kill("SIGKILL");
  throw new Error(`cvmwebapi demo-site did not start:\n${out}`);
}

describe("the demo page on a real VM (headless Chromium, real daemon, QEMU)", () => {
  let ready = false, missing = "", dataDir, site, daemon, browser;

  before(async () => {
    missing = [[existsSync(CHROMIUM), `Chromium at ${CHROMIUM}`], [onPath("qemu-system-x86_64"), "qemu-system-x86_64"],
      [onPath("qemu-img"), "qemu-img"], [onPath("xorriso"), "xorriso (tests/guest/build.sh)"]].filter(([ok]) => !ok).map(([, w]) => w).join(", ");
    if (missing) return;
    const image = execFileSync("sh", [join(repoRoot, "tests/guest/build.sh"), join(repoRoot, "tests/.cache/guest")], { encoding: "utf8" })
      .trim().split("\n").at(-1);
    dataDir = tempDir("cvm-sdk-demo-vm-");
    site = await startDemoSite(dataDir, image);
    daemon = await startDaemon({ dataDir, args: ["--keystore", site.keystore, "--allow-origin", site.origin, "--hypervisor", "qemu"] });
    browser = await launchBrowser();
    ready = true;
  });
  after(async () => {
    if (browser) await browser.close();
    if (daemon) await daemon.stop();
    if (site) site.proc.kill("SIGTERM");
    if (dataDir) {
      for (const pid of qemuIn(dataDir)) process.kill(pid, "SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("connect, session, start, running + API up, pause, resume, stop, close: as the page observes them", { timeout: 900_000 }, async (t) => {
    if (!requireTool(t, ready, missing)) return;
    assert.notEqual(new URL(site.origin).port, String(daemon.port), "the page's origin is not the daemon's");
    const errors = [];
    const p = await browser.context.newPage();
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(`${site.origin}/?daemon=${encodeURIComponent(daemon.url)}`);
    await p.waitForSelector("[data-testid=connection][data-state=connected]", { timeout: 30_000 });
    await p.click("[data-testid=request]");
    await waitState(p, "missing", 60_000);

    const markers = [];
    const vm = await startVm(p, (m) => markers.push(m));
    assert.equal(qemuIn(dataDir).length, 1, "one QEMU process runs the session's VM");
    assert.ok(vm.guest.uptime > 0 && vm.guest.boot_id, JSON.stringify(vm.guest));

    const log = await pauseResumeStopClose(p, vm, (m) => markers.push(m));
    t.diagnostic(markers.join(" | "));
    assert.deepEqual(markers.map((m) => m.split(" ")[0]), ["RUNNING", "PAUSED", "RESUMED", "STOPPED", "CLOSED"]);
    for (let i = 0; i < 50 && qemuIn(dataDir).length; i++) await sleep(100);
    assert.deepEqual(qemuIn(dataDir), [], "no QEMU process is left after Close");

    // The page's own log, in order: every step a visitor sees.
    const names = log.map((e) => `${e.source}.${e.event}`);
    const flow = ["plugin.connected", "page.requestSession", "page.session",
      "page.start", "session.stateChanged", "session.apiStateChanged",
      "page.pause", "session.stateChanged", "session.apiStateChanged",
      "page.resume", "session.stateChanged", "session.apiStateChanged",
      "page.stop", "session.stateChanged", "page.close", "session.stateChanged"];
    let at = 0;
    for (const e of flow) {
      const i = names.indexOf(e, at);
      assert.ok(i >= 0, `${e} after entry ${at} in ${names.join(" ")}`);
      at = i + 1;
    }
    assert.ok(!names.some((n) => n.endsWith("Failed")), names.join(" "));
    assert.equal(await p.textContent("[data-testid=state]"), "Not yet created (missing)");
    assert.deepEqual(errors, []);
    await p.close();
  });
});
