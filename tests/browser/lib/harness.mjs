// Test harness: the real `cvmwebapi serve` daemon, loopback HTTP(S) servers for the test pages and
// the VMCP endpoint, and headless Chromium driven by playwright-core (never a downloaded browser).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CI = process.env.CI === "true";

/** Skips (locally) or fails (CI=true) when a required tool is missing. */
export function requireTool(t, ok, what) {
  if (ok) return true;
  if (CI) throw new Error(`${what} is required in CI but missing`);
  t.skip(`${what} missing (CI unset, so skipping)`);
  return false;
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The daemon
// ---------------------------------------------------------------------------------------------

export function daemonBinary() {
  if (process.env.CVMWEBAPI_BIN) return process.env.CVMWEBAPI_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(repoRoot, "target");
  return join(target, "debug", "cvmwebapi");
}

async function infoAnswers(port) {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/info`, { signal: AbortSignal.timeout(1000) });
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * Starts `cvmwebapi serve --listen 127.0.0.1:PORT --data-dir DIR [args]` and waits until /info answers.
 * Returns { port, url, dataDir, proc, output(), stop(), kill(signal) }.
 */
export async function startDaemon({ port, dataDir, args = [] } = {}) {
  const bin = daemonBinary();
  if (!existsSync(bin)) throw new Error(`daemon binary ${bin} not found: run cargo build -p webapi-core --bin cvmwebapi`);
  port = port || (await freePort());
  dataDir = dataDir || tempDir("cvm-sdk-data-");
  const argv = ["serve", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, ...args];
  const proc = spawn(bin, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "info" } });
  let out = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (out += d));
  let exited = null;
  const exit = new Promise((r) => proc.on("exit", (code, signal) => { exited = { code, signal }; r(exited); }));
  const deadline = Date.now() + 20000;
  while (!(await infoAnswers(port))) {
    if (exited) throw new Error(`cvmwebapi ${argv.join(" ")} exited (${JSON.stringify(exited)}):\n${out}`);
    if (Date.now() > deadline) { proc.kill("SIGKILL"); throw new Error(`cvmwebapi did not answer /info within 20 s:\n${out}`); }
    await sleep(50);
  }
  return {
    port, dataDir, proc,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    kill: (signal = "SIGKILL") => { if (!exited) proc.kill(signal); return exit; },
    async stop() {
      if (!exited) { proc.kill("SIGTERM"); const t = setTimeout(() => proc.kill("SIGKILL"), 5000); await exit; clearTimeout(t); }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Static server for the test pages (an origin distinct from the daemon's)
// ---------------------------------------------------------------------------------------------

const MIME = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json" };
const ROOTS = { "/sdk/": join(repoRoot, "ui/sdk"), "/demo/": join(repoRoot, "ui/demo"), "/pages/": join(repoRoot, "tests/browser/pages"),
  "/ui/": join(repoRoot, "ui") };

function serveStatic(req, res) {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  for (const [prefix, root] of Object.entries(ROOTS)) {
    if (!path.startsWith(prefix)) continue;
    const file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root) || file.includes("node_modules") || !existsSync(file)) break;
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "content-type": MIME[extname(file)] || "application/octet-stream", "cache-control": "no-store" });
      return res.end(body);
    } catch { break; }
  }
  res.writeHead(404, { "content-type": "text/plain" });
  res.end("not found");
}

function listen(server, host = "127.0.0.1") {
  return new Promise((res) => server.listen(0, host, () => res(server.address().port)));
}

/** Serves ui/sdk, ui/demo, tests/browser/pages and ui (the control panel) on http://127.0.0.1:PORT. */
export async function startStaticServer() {
  const server = createHttpServer(serveStatic);
  const port = await listen(server);
  return { port, origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

/** The same over https with a throw-away self-signed certificate (Chromium runs with --ignore-certificate-errors). */
export async function startHttpsStaticServer() {
  const dir = tempDir("cvm-sdk-tls-");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
  const server = createHttpsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }, serveStatic);
  const port = await listen(server);
  rmSync(dir, { recursive: true, force: true });
  return { port, origin: `https://127.0.0.1:${port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

/** A loopback HTTP server that is not the daemon: answers every request with `status` and counts /info hits. */
export async function startImpostor(status = 503) {
  const hits = [];
  const server = createHttpServer((req, res) => {
    if (req.url.startsWith("/info")) hits.push(performance.now());
    res.writeHead(status, { "access-control-allow-origin": "*", "content-type": "text/plain" });
    res.end("not a CernVM WebAPI daemon");
  });
  const port = await listen(server);
  return { port, url: `http://127.0.0.1:${port}`, hits, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

// ---------------------------------------------------------------------------------------------
// Chromium
// ---------------------------------------------------------------------------------------------

export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** Launches headless Chromium with a fresh profile. Returns { context, newPage(url), close() }. */
export async function launchBrowser({ extraArgs = [], userAgent } = {}) {
  const { chromium } = await import("playwright-core");
  const userDataDir = tempDir("cvm-sdk-chromium-");
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...extraArgs],
    userAgent,
    ignoreHTTPSErrors: true,
  });
  const logs = [];
  context.on("page", (p) => attachLogs(p, logs));
  context.pages().forEach((p) => attachLogs(p, logs));
  return {
    context,
    logs,
    async newPage(url) {
      const page = await context.newPage();
      if (url) await page.goto(url);
      return page;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

function attachLogs(page, logs) {
  page.on("console", (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
}

export function writeFile(path, text) {
  writeFileSync(path, text);
  return path;
}
